//! MNIST / Fashion-MNIST IDX files: big-endian header `00 00 08 03`, u32 n, rows, cols, then bytes.
//! Labels come from the sibling file (`images-idx3` -> `labels-idx1`) when it exists.

use std::path::{Path, PathBuf};

use super::{read_maybe_gz, DatasetError, Format, Raw};
use gaussdiff_core::pixel::ImageShape;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn read(path: &Path) -> Result<Raw, DatasetError> {
    let bytes = read_maybe_gz(path)?;
    let bad = |expected: &str, found: std::string::String| DatasetError::invalid(path, Format::Idx, expected, found);
    if bytes.len() < 4 {
        return Err(bad("an IDX header of at least 16 bytes", std::format!("{} bytes", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(
            "IDX magic 00 00 08 03",
            std::format!("{:02x} {:02x} {:02x} {:02x}", bytes[0], bytes[1], bytes[2], bytes[3]),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(bad("element type 0x08 (unsigned byte)", std::format!("type 0x{:02x}", bytes[2])));
    }
    if bytes[3] != 3 {
        let what = if bytes[3] == 1 { " (a label file, not images)" } else { "" };
        return Err(bad("3 dimensions (n, rows, cols)", std::format!("{} dimensions{what}", bytes[3])));
    }
    if bytes.len() < 16 {
        return Err(bad("a 16-byte IDX header", std::format!("{} bytes", bytes.len())));
    }
    let (n, h, w) = (be_u32(&bytes, 4) as usize, be_u32(&bytes, 8), be_u32(&bytes, 12));
    if h == 0 || w == 0 || h > u32::from(u16::MAX) || w > u32::from(u16::MAX) {
        return Err(bad("image rows and cols in 1..=65535", std::format!("{h} x {w}")));
    }
    let d = h as usize * w as usize;
    let want = n.checked_mul(d).and_then(|x| x.checked_add(16));
    if want != Some(bytes.len()) {
        return Err(bad(
            &std::format!("{} bytes (16 + {n} x {h} x {w})", want.map_or("too many".into(), |x| x.to_string())),
            std::format!("{} bytes (truncated or trailing data)", bytes.len()),
        ));
    }
    let labels = match label_sibling(path) {
        Some(lp) => Some(read_labels(&lp, n)?),
        None => None,
    };
    let shape = ImageShape { channels: 1, height: h as u16, width: w as u16 };
    Ok(Raw { shape, pixels: bytes[16..].to_vec(), levels: 255, labels, label_names: None })
}

fn label_sibling(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    if !name.contains("images-idx3") {
        return None;
    }
    let lp = path.with_file_name(name.replace("images-idx3", "labels-idx1"));
    lp.is_file().then_some(lp)
}

fn read_labels(path: &Path, n: usize) -> Result<Vec<u8>, DatasetError> {
    let bytes = read_maybe_gz(path)?;
    if bytes.len() < 8 || bytes[..4] != [0, 0, 8, 1] {
        return Err(DatasetError::invalid(path, Format::Idx, "an IDX label file (magic 00 00 08 01)", "other content"));
    }
    let m = be_u32(&bytes, 4) as usize;
    if m != n || bytes.len() != 8 + n {
        return Err(DatasetError::invalid(
            path,
            Format::Idx,
            std::format!("{n} labels ({} bytes) to match the images", 8 + n),
            std::format!("{m} labels in {} bytes", bytes.len()),
        ));
    }
    Ok(bytes[8..].to_vec())
}
