//! Output files: the one home of the rules every writer of the CLI and the trainer follows (blobs,
//! checkpoints, reports, images).
//!
//! * [`write_atomic`]: a temporary file in the target's directory, fsync, then a rename, so a failure never
//!   leaves a partial file. A symlink is followed and its *target* replaced; anything that is not a regular
//!   file (directory, FIFO, device, socket) is refused. A new file gets mode `0o666` minus the umask (as
//!   `File::create`); a replaced file keeps its mode.
//! * [`check_output`]: the same checks before any work, plus "the output is not one of the inputs" (same
//!   device and inode after following links).
//! * [`OutputDir`]: an output directory that is removed again (with what the run wrote into it) unless the
//!   run [`keep`](OutputDir::keep)s it, so a failed run leaves no empty or half-filled directory.
//! * [`remove_stale_temporaries`]: removes the temporary files a killed writer left in a directory.

use std::io::{Error, ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Prefix of the temporary files [`write_atomic`] creates (suffix [`TEMP_SUFFIX`]).
pub const TEMP_PREFIX: &str = ".gaussdiff-";
/// Suffix of the temporary files [`write_atomic`] creates.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Symlinks followed at most when resolving an output path (as the kernel's `ELOOP` limit).
const MAX_LINKS: usize = 40;

fn err(kind: ErrorKind, msg: String) -> Error {
    Error::new(kind, msg)
}

/// `Ok` when `dir` is a directory; else `"{path}: {which} directory {dir} does not exist (expected an
/// existing directory)"`.
fn require_dir(path: &Path, which: &str, dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(err(
        ErrorKind::NotFound,
        format!(
            "{}: {which} directory {} does not exist (expected an existing directory)",
            path.display(),
            dir.display()
        ),
    ))
}

/// The file an output path designates: symlinks followed (a dangling link designates the path it points
/// to). Refuses a directory, FIFO, device or socket.
///
/// # Errors
/// `"{path}: is a directory ..."`, `"{path}: is a FIFO/device/socket (not a regular file) ..."`, a link loop,
/// or an unreadable path; every message names `path`.
pub fn resolve_output(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let md = match std::fs::symlink_metadata(&p) {
            Ok(md) => md,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(err(e.kind(), format!("{}: cannot examine the output path: {e}", path.display()))),
        };
        let ft = md.file_type();
        if ft.is_symlink() {
            let to = std::fs::read_link(&p)
                .map_err(|e| err(e.kind(), format!("{}: cannot read the symlink: {e}", path.display())))?;
            p = match p.parent() {
                Some(dir) if to.is_relative() => dir.join(to),
                _ => to,
            };
            continue;
        }
        if ft.is_file() {
            return Ok(p);
        }
        let what = if ft.is_dir() { "a directory" } else { non_regular_kind(&md) };
        return Err(err(
            ErrorKind::InvalidInput,
            format!(
                "{}: is {what}, not a regular file; refusing to write over it (expected a file path)",
                path.display()
            ),
        ));
    }
    Err(err(ErrorKind::InvalidInput, format!("{}: too many levels of symbolic links", path.display())))
}

fn non_regular_kind(md: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ft = md.file_type();
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn parent_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Check an output path before any work: its directory exists, it is not a directory/FIFO/device (a
/// symlink is followed), and it is not the same file as any of `inputs` (inputs that do not exist are
/// ignored; a directory input is compared as a whole).
///
/// # Errors
/// As [`resolve_output`], `"{path}: output directory {dir} does not exist (expected an existing
/// directory)"`, or `"{path}: is the input {input}; refusing to overwrite an input (choose another output
/// path)"`.
pub fn check_output(path: &Path, inputs: &[&Path]) -> std::io::Result<()> {
    let target = resolve_output(path)?;
    require_dir(path, "output", parent_dir(&target))?;
    if let Ok(out) = std::fs::metadata(&target) {
        for input in inputs {
            if let Ok(inp) = std::fs::metadata(input) {
                if inp.dev() == out.dev() && inp.ino() == out.ino() {
                    return Err(err(
                        ErrorKind::InvalidInput,
                        format!(
                            "{}: is the input {}; refusing to overwrite an input (choose another output path)",
                            path.display(),
                            input.display()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Write `bytes` to `path` atomically (see the module docs: symlinks followed, non-regular files refused,
/// mode from the umask or kept).
///
/// # Errors
/// As [`check_output`] (without inputs), or if the directory cannot be written; every message names the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    check_output(path, &[])?;
    let target = resolve_output(path)?;
    let dir = parent_dir(&target);
    let named = |what: String| move |e: Error| Error::new(e.kind(), format!("{what}: {e}"));
    // Created with 0o666: the kernel applies the umask, as for `File::create`.
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(named(format!("{}: cannot create a temporary file in {}", path.display(), dir.display())))?;
    if let Ok(old) = std::fs::metadata(&target) {
        // Replacing a file: keep its mode.
        let _ = tmp.as_file().set_permissions(old.permissions());
    }
    tmp.write_all(bytes).map_err(named(format!("{}: write failed", path.display())))?;
    tmp.as_file().sync_all().map_err(named(format!("{}: sync failed", path.display())))?;
    tmp.persist(&target)
        .map_err(|e| e.error)
        .map_err(named(format!("{}: cannot rename the temporary file into place", path.display())))?;
    Ok(())
}

/// Remove the temporary files ([`TEMP_PREFIX`]`*`[`TEMP_SUFFIX`], and safetensors' `.tmp*`) that a killed
/// writer left in `dir`; returns how many were removed. Call it only on a directory the caller owns for
/// the run (another process writing there at the same time would lose its temporary file).
///
/// # Errors
/// If `dir` cannot be listed.
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX);
        if ours && e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// An output directory for one run: created if missing (its parent must exist, or `parents`), and removed
/// again with its contents when dropped unless [`keep`](OutputDir::keep) was called, if and only if this run
/// created it. When the directory already exists, the run's files go to a hidden staging directory inside it
/// ([`file`](OutputDir::file)) and [`keep`](OutputDir::keep) moves them into place, so a failed run leaves
/// the directory as it found it: no new file, no replaced file.
#[derive(Debug)]
pub struct OutputDir {
    /// The directory as given.
    path: PathBuf,
    /// The outermost directory this run created (what a failure removes).
    top: PathBuf,
    created: bool,
    /// Where the files go until [`keep`](OutputDir::keep), for a directory that existed before the run.
    staging: Option<PathBuf>,
}

impl OutputDir {
    /// Use `path` as the run's output directory (`parents`: also create missing parents, which are then
    /// removed too on failure).
    ///
    /// # Errors
    /// `"{path}: is not a directory"`, `"{path}: parent directory {p} does not exist (expected an existing
    /// directory)"`, or a creation failure; every message names `path`.
    pub fn create(path: &Path, parents: bool) -> std::io::Result<Self> {
        if path.is_dir() {
            let staging = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .suffix(TEMP_SUFFIX)
                .tempdir_in(path)
                .map_err(|e| {
                    err(e.kind(), format!("{}: cannot create a staging directory in it: {e}", path.display()))
                })?
                .keep();
            return Ok(Self {
                path: path.to_path_buf(),
                top: path.to_path_buf(),
                created: false,
                staging: Some(staging),
            });
        }
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(err(
                ErrorKind::InvalidInput,
                format!("{}: exists and is not a directory (expected a directory path)", path.display()),
            ));
        }
        // The outermost missing ancestor is what this run creates (and removes on failure).
        let mut top = path.to_path_buf();
        if parents {
            while let Some(p) = top.parent() {
                if p.as_os_str().is_empty() || p.exists() {
                    break;
                }
                top = p.to_path_buf();
            }
        } else {
            require_dir(path, "parent", parent_dir(path))?;
        }
        let made = if parents { std::fs::create_dir_all(path) } else { std::fs::create_dir(path) };
        made.map_err(|e| err(e.kind(), format!("{}: cannot create the directory: {e}", path.display())))?;
        Ok(Self { path: path.to_path_buf(), top, created: true, staging: None })
    }

    /// Where the run writes its file `name` (a plain file name): in the directory if this run created it,
    /// else in the staging directory until [`keep`](OutputDir::keep).
    ///
    /// # Errors
    /// When `name` designates a directory, FIFO or device in the output directory (as [`resolve_output`]),
    /// so the run stops before its work rather than when it keeps its files.
    pub fn file(&self, name: &str) -> std::io::Result<PathBuf> {
        resolve_output(&self.path.join(name))?;
        Ok(self.staging.as_deref().unwrap_or(&self.path).join(name))
    }

    /// Keep the directory (the run succeeded): staged files are moved into place, each replacing what its
    /// name designates there (a symlink is followed, as [`write_atomic`] does).
    ///
    /// # Errors
    /// A staged file whose destination is a directory, FIFO or device, or a failed move; the message names
    /// the destination. The staging directory is removed in every case.
    pub fn keep(mut self) -> std::io::Result<()> {
        self.created = false;
        let Some(staging) = self.staging.clone() else { return Ok(()) };
        let mut entries: Vec<_> = std::fs::read_dir(&staging)?.collect::<std::io::Result<Vec<_>>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        // Every destination checked before the first file moves.
        let moves = entries
            .iter()
            .map(|e| {
                let dest = self.path.join(e.file_name());
                resolve_output(&dest).map(|target| (e.path(), dest, target))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        for (from, dest, target) in moves {
            if let Err(rename) = std::fs::rename(&from, &target) {
                // Another file system (a symlink pointing out of the directory): copy atomically instead.
                let bytes = std::fs::read(&from).map_err(|e| {
                    err(e.kind(), format!("{}: cannot move the file into place: {rename}", dest.display()))
                })?;
                write_atomic(&target, &bytes)?;
            }
        }
        Ok(())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if let Some(staging) = &self.staging {
            let _ = std::fs::remove_dir_all(staging);
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.top);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn missing_directory_is_named() {
        let e = write_atomic(Path::new("no/such/dir/x.gdn"), b"").unwrap_err().to_string();
        assert!(e.contains("no/such/dir") && e.contains("does not exist"), "{e}");
    }

    #[test]
    fn refuses_directory_and_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_atomic(dir.path(), b"x").unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = write_atomic(&fifo, b"x").unwrap_err().to_string();
        assert!(e.contains("is a FIFO"), "{e}");
        let e = write_atomic(Path::new("/dev/null"), b"x").unwrap_err().to_string();
        assert!(e.contains("is a device"), "{e}");
    }

    #[test]
    fn follows_symlink_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.bin");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink("target.bin", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn mode_from_umask_or_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.bin");
        write_atomic(&p, b"x").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        // The test harness's umask is unknown but never masks the owner's read/write bits; 0600 was the
        // old tempfile mode, which a typical umask (022, 002) does not give.
        assert_eq!(mode & 0o600, 0o600);
        let probe = dir.path().join("probe");
        std::fs::File::create(&probe).unwrap();
        assert_eq!(mode, std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777, "same as File::create");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"y").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640, "mode kept");
    }

    #[test]
    fn output_equal_to_input_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data.csv");
        std::fs::write(&p, b"1").unwrap();
        let via = dir.path().join(".").join("data.csv");
        let e = check_output(&via, &[&p]).unwrap_err().to_string();
        assert!(e.contains("refusing to overwrite an input"), "{e}");
        check_output(&dir.path().join("other"), &[&p]).unwrap();
    }

    #[test]
    fn output_dir_removed_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b");
        {
            let d = OutputDir::create(&p, true).unwrap();
            std::fs::write(p.join("f"), b"x").unwrap();
            drop(d);
        }
        assert!(!dir.path().join("a").exists(), "created tree removed");
        OutputDir::create(&p, true).unwrap().keep().unwrap();
        assert!(p.is_dir());
        // An existing directory: a failed run leaves it as it was (no new file, no replaced file) ...
        std::fs::write(p.join("old.png"), b"old").unwrap();
        {
            let d = OutputDir::create(&p, false).unwrap();
            std::fs::write(d.file("old.png").unwrap(), b"new").unwrap();
            std::fs::write(d.file("new.png").unwrap(), b"new").unwrap();
        }
        let names = |p: &Path| {
            let mut v: Vec<String> =
                std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            v.sort();
            v
        };
        assert_eq!(names(&p), ["old.png"], "nothing added, no staging directory left");
        assert_eq!(std::fs::read(p.join("old.png")).unwrap(), b"old");
        // ... and a kept run moves its files into place, following a symlink to its target.
        std::fs::write(dir.path().join("linked"), b"before").unwrap();
        std::os::unix::fs::symlink(dir.path().join("linked"), p.join("link.png")).unwrap();
        let d = OutputDir::create(&p, false).unwrap();
        for name in ["old.png", "new.png", "link.png"] {
            std::fs::write(d.file(name).unwrap(), name).unwrap();
        }
        d.keep().unwrap();
        assert_eq!(names(&p), ["link.png", "new.png", "old.png"]);
        assert_eq!(std::fs::read(p.join("old.png")).unwrap(), b"old.png");
        assert_eq!(std::fs::read(dir.path().join("linked")).unwrap(), b"link.png", "the link's target replaced");
        assert!(std::fs::symlink_metadata(p.join("link.png")).unwrap().file_type().is_symlink());
        // A destination that is a directory is refused by name.
        std::fs::create_dir(p.join("sub.png")).unwrap();
        let d = OutputDir::create(&p, false).unwrap();
        let e = d.file("sub.png").unwrap_err().to_string();
        assert!(e.contains("sub.png") && e.contains("directory"), "{e}");
        let e = OutputDir::create(&dir.path().join("x/y"), false).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn stale_temporaries_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gaussdiff-abc.tmp"), b"x").unwrap();
        std::fs::write(dir.path().join("keep.tmp"), b"x").unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep.tmp").exists());
    }
}
