//! A directory of images (PNG, PGM/PPM, JPEG; decoded by the `image` crate by content). Files are read in
//! name order; all must share the first image's size. The set is gray (1 channel) unless some image has
//! colour channels, then RGB (3 channels, CHW).

use std::path::{Path, PathBuf};

use super::{DatasetError, Raw};
use gaussdiff_core::pixel::ImageShape;

pub(crate) const EXTENSIONS: [&str; 6] = ["png", "pgm", "ppm", "pnm", "jpg", "jpeg"];

pub(crate) fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))? {
        let p = entry.map_err(|e| DatasetError::io(dir, e))?.path();
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if p.is_file() && ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

pub(crate) fn read(dir: &Path) -> Result<Raw, DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::invalid(dir, super::Format::ImageFolder, "a directory of images", "a file"));
    }
    let files = image_files(dir)?;
    let Some(first) = files.first() else {
        return Err(DatasetError::Empty {
            path: dir.to_path_buf(),
            what: std::format!("no image files ({}) in the directory", EXTENSIONS.join(", ")),
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
            if w > u32::from(u16::MAX) || h > u32::from(u16::MAX) {
                return Err(DatasetError::invalid(
                    f,
                    super::Format::ImageFolder,
                    "width and height up to 65535",
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
    Ok(Raw { shape, pixels, levels: 255, labels: None })
}
