//! CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32).
//! A directory reads `data_batch_*.bin` in name order, or `test_batch.bin` when there are none.

use std::path::{Path, PathBuf};

use super::{DatasetError, Format, Raw};
use gaussdiff_core::pixel::ImageShape;

pub(crate) const RECORD: usize = 1 + 3 * 32 * 32;

pub(crate) fn batch_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut test = None;
    for entry in std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))? {
        let p = entry.map_err(|e| DatasetError::io(dir, e))?.path();
        let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
        if name.starts_with("data_batch_") && name.ends_with(".bin") {
            files.push(p);
        } else if name == "test_batch.bin" {
            test = Some(p);
        }
    }
    files.sort();
    if files.is_empty() {
        files.extend(test);
    }
    Ok(files)
}

pub(crate) fn read(path: &Path) -> Result<Raw, DatasetError> {
    let files = if path.is_dir() { batch_files(path)? } else { std::vec![path.to_path_buf()] };
    if files.is_empty() {
        return Err(DatasetError::Empty {
            path: path.to_path_buf(),
            what: "no data_batch_*.bin or test_batch.bin in the directory".into(),
        });
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| DatasetError::io(f, e))?;
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            return Err(DatasetError::invalid(
                f,
                Format::Cifar10,
                std::format!("a multiple of {RECORD} bytes (1 label + 3x32x32 pixels per record)"),
                std::format!("{} bytes", bytes.len()),
            ));
        }
        for (r, rec) in bytes.chunks_exact(RECORD).enumerate() {
            if rec[0] > 9 {
                return Err(DatasetError::invalid(
                    f,
                    Format::Cifar10,
                    "a label 0..9 at the start of each record",
                    std::format!("{} in record {r}", rec[0]),
                ));
            }
            labels.push(rec[0]);
            pixels.extend_from_slice(&rec[1..]);
        }
    }
    let shape = ImageShape { channels: 3, height: 32, width: 32 };
    Ok(Raw { shape, pixels, levels: 255, labels: Some(labels), label_names: None })
}
