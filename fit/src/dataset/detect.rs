//! `--format auto`: decide by content. Directories hold CIFAR-10 batches or images (possibly in
//! subfolders); files are recognised by the gzip magic (then by the decompressed content), the IDX magic
//! `00 00 08 03`, the MAT v5 text header, a first CSV line of 65 numbers, or CIFAR-10's record structure
//! (size a multiple of 3073 with labels 0..9 at every record start).

use std::io::Read;
use std::path::Path;

use super::{cifar, csv, folder, mat, DatasetError, Format};

const PREFIX: u64 = 64 * 1024;

pub(crate) fn detect(path: &Path) -> Result<Format, DatasetError> {
    let meta = std::fs::metadata(path).map_err(|e| DatasetError::io(path, e))?;
    if meta.is_dir() {
        if !cifar::batch_files(path)?.is_empty() {
            return Ok(Format::Cifar10);
        }
        if !folder::image_files(path)?.is_empty() {
            return Ok(Format::ImageFolder);
        }
        return Err(DatasetError::Empty {
            path: path.to_path_buf(),
            what: std::format!(
                "the directory holds neither CIFAR-10 batches nor image files ({}), not even in subfolders",
                folder::EXTENSIONS.join(", ")
            ),
        });
    }
    let file = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut head = Vec::new();
    file.take(PREFIX).read_to_end(&mut head).map_err(|e| DatasetError::io(path, e))?;
    if head.is_empty() {
        return Err(DatasetError::Empty { path: path.to_path_buf(), what: "the file is empty (0 bytes)".into() });
    }
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let content = if gz {
        let mut inner = Vec::new();
        // A prefix of the stream suffices; a truncated stream still yields its first bytes.
        let _ = flate2::read::GzDecoder::new(&head[..]).take(PREFIX).read_to_end(&mut inner);
        inner
    } else {
        head
    };
    if content.starts_with(&[0, 0, 8, 3]) {
        return Ok(Format::Idx);
    }
    if content.starts_with(&[0, 0, 8, 1]) {
        return Err(unrecognised(path, "this is an IDX label file; pass the images file"));
    }
    if content.starts_with(mat::TEXT_MAGIC) {
        return Ok(Format::FreyMat);
    }
    if looks_like_digits_csv(&content) {
        return Ok(Format::DigitsCsv);
    }
    if content.starts_with(b"\x89PNG") || content.starts_with(&[0xff, 0xd8]) || content.starts_with(b"P5") {
        return Err(unrecognised(path, "this is a single image; pass the directory that holds the images"));
    }
    if !gz && meta.len() % cifar::RECORD as u64 == 0 {
        let labels_ok = content.chunks(cifar::RECORD).all(|r| r[0] <= 9);
        if labels_ok {
            return Ok(Format::Cifar10);
        }
    }
    let shown: Vec<std::string::String> = content.iter().take(8).map(|b| std::format!("{b:02x}")).collect();
    Err(unrecognised(
        path,
        &std::format!("{}first bytes {}", if gz { "gzip, decompressed " } else { "" }, shown.join(" ")),
    ))
}

fn unrecognised(path: &Path, hint: &str) -> DatasetError {
    DatasetError::Unrecognised { path: path.to_path_buf(), hint: hint.into() }
}

fn looks_like_digits_csv(content: &[u8]) -> bool {
    let line_end = content.iter().position(|&b| b == b'\n').unwrap_or(content.len());
    let Ok(line) = std::str::from_utf8(&content[..line_end]) else { return false };
    let fields: Vec<&str> = line.trim().split(',').collect();
    fields.len() == csv::COLUMNS && fields.iter().all(|f| f.trim().parse::<f64>().is_ok())
}
