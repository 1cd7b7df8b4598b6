//! A directory of images (PNG, PGM/PPM, JPEG; decoded by the `image` crate by content), read recursively.
//!
//! **Order.** In each directory its own image files come first, in name (byte) order, then its subfolders
//! one by one, in natural order (digit runs compare as numbers: `s2` before `s10`), each read the same way.
//! Files without an image extension are skipped, as are subfolders whose name starts with `.`; a subfolder
//! reached twice (through a symbolic link) is read once.
//!
//! **Labels.** When every image sits in some subfolder, an image's class is the path of its folder relative
//! to the top one (`s1`, or `train/cat` deeper down), and classes are numbered in reading order (ORL's
//! `s1 ... s40` become labels 0..39). A flat folder, a folder with images both at the top and in
//! subfolders, and a tree of more than 256 class folders have no labels.
//!
//! All images must share the first image's size. The set is gray (1 channel) unless some image has colour
//! channels, then RGB (3 channels, CHW).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{DatasetError, Raw};
use gaussdiff_core::pixel::ImageShape;

pub(crate) const EXTENSIONS: [&str; 6] = ["png", "pgm", "ppm", "pnm", "jpg", "jpeg"];

/// Most classes a tree can have and still be labelled (labels are `u8`).
const MAX_CLASSES: usize = 256;

/// The image files under `dir`, in reading order (see the module docs).
pub(crate) fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    walk(dir, &mut files, &mut seen)?;
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) -> Result<(), DatasetError> {
    seen.insert(std::fs::canonicalize(dir).map_err(|e| DatasetError::io(dir, e))?);
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))? {
        let p = entry.map_err(|e| DatasetError::io(dir, e))?.path();
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if p.is_file() && ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
            files.push(p);
        } else if p.is_dir() && !p.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b".")) {
            dirs.push(p);
        }
    }
    files.sort();
    out.extend(files);
    let name = |p: &PathBuf| p.file_name().map_or(&[][..], |n| n.as_encoded_bytes()).to_vec();
    dirs.sort_by(|a, b| natural_cmp(&name(a), &name(b)));
    for d in dirs {
        let canonical = std::fs::canonicalize(&d).map_err(|e| DatasetError::io(&d, e))?;
        if !seen.contains(&canonical) {
            walk(&d, out, seen)?;
        }
    }
    Ok(())
}

/// Natural order: runs of ASCII digits compare by numeric value (`2 < 10`), everything else byte by byte;
/// names equal that way (`s02`, `s2`) fall back to plain byte order, so the order is total.
pub(crate) fn natural_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let run = |s: &[u8], k: usize| k + s[k..].iter().take_while(|c| c.is_ascii_digit()).count();
            let (ie, je) = (run(a, i), run(b, j));
            let strip = |s: &[u8]| {
                let z = s.iter().take_while(|&&c| c == b'0').count();
                s[z..].to_vec()
            };
            let (x, y) = (strip(&a[i..ie]), strip(&b[j..je]));
            let ord = x.len().cmp(&y.len()).then_with(|| x.cmp(&y));
            if ord != Ordering::Equal {
                return ord;
            }
            (i, j) = (ie, je);
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            (i, j) = (i + 1, j + 1);
        }
    }
    (a.len() - i).cmp(&(b.len() - j)).then_with(|| a.cmp(b))
}

/// Class labels of `files` under `dir` and the class names (see the module docs), or `None`.
fn classes(dir: &Path, files: &[PathBuf]) -> Option<(Vec<u8>, Vec<String>)> {
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<PathBuf, u8> = HashMap::new();
    let mut labels = Vec::with_capacity(files.len());
    for f in files {
        let rel = f.parent()?.strip_prefix(dir).ok()?;
        if rel.as_os_str().is_empty() {
            return None;
        }
        let label = match index.get(rel) {
            Some(&l) => l,
            None => {
                if names.len() == MAX_CLASSES {
                    return None;
                }
                let l = names.len() as u8;
                let parts: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                names.push(parts.join("/"));
                index.insert(rel.to_path_buf(), l);
                l
            }
        };
        labels.push(label);
    }
    Some((labels, names))
}

pub(crate) fn read(dir: &Path) -> Result<Raw, DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::invalid(dir, super::Format::ImageFolder, "a directory of images", "a file"));
    }
    let files = image_files(dir)?;
    let Some(first) = files.first() else {
        return Err(DatasetError::Empty {
            path: dir.to_path_buf(),
            what: std::format!("no image files ({}) in the directory or its subfolders", EXTENSIONS.join(", ")),
        });
    };
    let mut rgb: Vec<u8> = Vec::new();
    let mut colour = false;
    let mut size = (0, 0);
    for (i, f) in files.iter().enumerate() {
        let img = image::ImageReader::open(f)
            .map_err(|e| DatasetError::io(f, e))?
            .with_guessed_format()
            .map_err(|e| DatasetError::io(f, e))?
            .decode()
            .map_err(|source| DatasetError::Image { path: f.clone(), source })?;
        let (w, h) = (img.width(), img.height());
        if i == 0 {
            if w == 0 || h == 0 || w > u32::from(u16::MAX) || h > u32::from(u16::MAX) {
                return Err(DatasetError::invalid(
                    f,
                    super::Format::ImageFolder,
                    "width and height from 1 to 65535",
                    std::format!("{w}x{h}"),
                ));
            }
            size = (w, h);
        } else if (w, h) != size {
            return Err(DatasetError::MixedSizes {
                path: f.clone(),
                first: first.clone(),
                expected_w: size.0,
                expected_h: size.1,
                found_w: w,
                found_h: h,
            });
        }
        colour |= img.color().has_color();
        let buf = img.to_rgb8();
        // HWC -> CHW.
        let plane = (w * h) as usize;
        let raw = buf.as_raw();
        for c in 0..3 {
            rgb.extend((0..plane).map(|p| raw[3 * p + c]));
        }
    }
    let (w, h) = (size.0 as u16, size.1 as u16);
    let plane = usize::from(w) * usize::from(h);
    let pixels =
        if colour { rgb } else { rgb.chunks_exact(3 * plane).flat_map(|img| img[..plane].iter().copied()).collect() };
    let shape = ImageShape { channels: if colour { 3 } else { 1 }, height: h, width: w };
    let (labels, label_names) = classes(dir, &files).unzip();
    Ok(Raw { shape, pixels, levels: 255, labels, label_names })
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut v = ["s10", "s2", "s1", "b", "a10b", "a9z", "s02", "s", "10", "9", "S3", "s2a"];
        v.sort_by(|a, b| natural_cmp(a.as_bytes(), b.as_bytes()));
        assert_eq!(v, ["9", "10", "S3", "a9z", "a10b", "b", "s", "s1", "s02", "s2", "s2a", "s10"]);
        assert_eq!(natural_cmp(b"x", b"x"), std::cmp::Ordering::Equal);
        // A total order: antisymmetric on distinct keys.
        for a in v {
            for b in v {
                assert_eq!(natural_cmp(a.as_bytes(), b.as_bytes()), natural_cmp(b.as_bytes(), a.as_bytes()).reverse());
            }
        }
    }
}
