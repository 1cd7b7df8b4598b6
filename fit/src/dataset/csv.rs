//! scikit-learn's digits CSV (`sklearn/datasets/data/digits.csv.gz`): no header, one image per line,
//! 64 pixel values 0..16 (8x8 row-major) then the label 0..9.

use std::path::Path;

use super::{read_maybe_gz, DatasetError, Format, Raw};
use gaussdiff_core::pixel::ImageShape;

pub(crate) const COLUMNS: usize = 65;

pub(crate) fn read(path: &Path) -> Result<Raw, DatasetError> {
    let bytes = read_maybe_gz(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| DatasetError::invalid(path, Format::DigitsCsv, "UTF-8 text", std::format!("{e}")))?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != COLUMNS {
            return Err(DatasetError::invalid(
                path,
                Format::DigitsCsv,
                std::format!("{COLUMNS} comma-separated values on line {} (64 pixels + label)", ln + 1),
                std::format!("{} values", fields.len()),
            ));
        }
        for (c, f) in fields.iter().enumerate() {
            let max = if c == 64 { 9 } else { 16 };
            // Accept "3" and "3.0" (some exports write floats); reject NaN, fractions and out-of-range values.
            let v =
                f.parse::<f64>().ok().filter(|v| v.is_finite() && v.fract() == 0.0 && (0.0..=max as f64).contains(v));
            let Some(v) = v else {
                let what = if c == 64 { "a label 0..9" } else { "an integer pixel value 0..16" };
                return Err(DatasetError::invalid(
                    path,
                    Format::DigitsCsv,
                    std::format!("{what} on line {} column {}", ln + 1, c + 1),
                    std::format!("'{f}'"),
                ));
            };
            if c == 64 {
                labels.push(v as u8);
            } else {
                pixels.push(v as u8);
            }
        }
    }
    let shape = ImageShape { channels: 1, height: 8, width: 8 };
    Ok(Raw { shape, pixels, levels: 16, labels: Some(labels), label_names: None })
}
