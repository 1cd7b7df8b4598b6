//! The Frey faces file `frey_rawface.mat`: MAT v5, little-endian, one uncompressed uint8 matrix `ff` of
//! 560 x N (column-major, so each image's 560 bytes are contiguous; an image is 28 rows x 20 columns,
//! row-major). For the shipped file the pixels start at byte 184. The header is validated element by
//! element rather than trusted.

use std::path::Path;

use super::{DatasetError, Format, Raw};
use gaussdiff_core::pixel::ImageShape;

pub(crate) const TEXT_MAGIC: &[u8] = b"MATLAB 5.0 MAT-file";
const MI_UINT8: u32 = 2;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_MATRIX: u32 = 14;
const MX_UINT8_CLASS: u32 = 9;
const FREY_H: u16 = 28;
const FREY_W: u16 = 20;

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn read(path: &Path) -> Result<Raw, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let bad =
        |expected: &str, found: std::string::String| DatasetError::invalid(path, Format::FreyMat, expected, found);
    if !bytes.starts_with(TEXT_MAGIC) {
        return Err(bad("a MAT v5 file starting with 'MATLAB 5.0 MAT-file'", "other content".into()));
    }
    if bytes.len() < 184 {
        return Err(bad("at least 184 header bytes", std::format!("{} bytes", bytes.len())));
    }
    if &bytes[126..128] != b"IM" {
        return Err(bad("little-endian MAT data (endian mark 'IM')", std::format!("{:?}", &bytes[126..128])));
    }
    let u = |at: usize| le_u32(&bytes, at).unwrap_or(0);
    if u(128) != MI_MATRIX {
        return Err(bad("an uncompressed miMATRIX element (type 14) at byte 128", std::format!("type {}", u(128))));
    }
    if u(136) != MI_UINT32 || u(140) != 8 || u(144) & 0xff != MX_UINT8_CLASS {
        return Err(bad("a uint8 matrix (array flags class 9)", std::format!("class {}", u(144) & 0xff)));
    }
    if u(152) != MI_INT32 || u(156) != 8 {
        return Err(bad(
            "a 2-D matrix (dimensions tag miINT32, 8 bytes)",
            std::format!("tag {} size {}", u(152), u(156)),
        ));
    }
    let (rows, cols) = (u(160) as usize, u(164) as usize);
    let d = usize::from(FREY_H) * usize::from(FREY_W);
    if rows != d {
        return Err(bad(&std::format!("{d} rows (28 x 20 pixels per image)"), std::format!("{rows} rows")));
    }
    // Array name: small element (size in the upper half of the tag) or a normal, 8-byte padded one.
    let tag = u(168);
    let data_tag = if tag >> 16 != 0 { 176 } else { 176 + (u(172) as usize).div_ceil(8) * 8 };
    let data_type = le_u32(&bytes, data_tag).unwrap_or(0);
    let data_len = le_u32(&bytes, data_tag + 4).unwrap_or(0) as usize;
    if data_type != MI_UINT8 || data_len != rows * cols {
        return Err(bad(
            &std::format!("miUINT8 pixel data of {} bytes", rows * cols),
            std::format!("type {data_type}, {data_len} bytes"),
        ));
    }
    let start = data_tag + 8;
    let Some(pixels) = bytes.get(start..start + data_len) else {
        return Err(bad(
            &std::format!("{} bytes ({start} + {rows} x {cols} pixels)", start + data_len),
            std::format!("{} bytes (truncated)", bytes.len()),
        ));
    };
    let shape = ImageShape { channels: 1, height: FREY_H, width: FREY_W };
    Ok(Raw { shape, pixels: pixels.to_vec(), levels: 255, labels: None, label_names: None })
}
