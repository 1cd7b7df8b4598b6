//! Output files: the one atomic write (temporary file in the target directory, then a rename) used by
//! the CLI and the trainer for every blob, checkpoint, report and image they write.

use std::io::{Error, ErrorKind, Write};
use std::path::Path;

/// Write `bytes` to `path` atomically: a temporary file in the same directory, fsync, then a rename, so a
/// failure never leaves a partial file at `path`.
///
/// # Errors
/// If the directory does not exist (`"{path}: output directory {dir} does not exist (expected an existing
/// directory)"`) or cannot be written; every message names the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "{}: output directory {} does not exist (expected an existing directory)",
                path.display(),
                dir.display()
            ),
        ));
    }
    let named = |what: String| move |e: Error| Error::new(e.kind(), format!("{what}: {e}"));
    let mut tmp = tempfile::Builder::new()
        .prefix(".gaussdiff-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(named(format!("{}: cannot create a temporary file in {}", path.display(), dir.display())))?;
    tmp.write_all(bytes).map_err(named(format!("{}: write failed", path.display())))?;
    tmp.as_file().sync_all().map_err(named(format!("{}: sync failed", path.display())))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(named(format!("{}: cannot rename the temporary file into place", path.display())))?;
    Ok(())
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
}
