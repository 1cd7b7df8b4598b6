//! Label files given beside a dataset (`gaussdiff export --labels L`): they replace the labels the dataset's
//! own reader found (see [`super::load_with_labels`]).
//!
//! `L` is `PATH` or `PATH:COLUMN`:
//! * an **IDX label file** (`00 00 08 01`, n, then n bytes; gzipped or not): one label per image;
//! * otherwise a **CSV / text file**, one row per image: the label is column `COLUMN` (a 0-based index or
//!   a header name; default the last column). A first row whose cell is not a number is a header. Labels
//!   are whole numbers 0..=255.
//!
//! A path that exists as given is never split at a colon.

use std::path::{Path, PathBuf};

use super::{read_maybe_gz, DatasetError};

/// Split `L` into the file and the optional column.
fn split(spec: &str) -> (PathBuf, Option<String>) {
    if Path::new(spec).exists() {
        return (PathBuf::from(spec), None);
    }
    match spec.rsplit_once(':') {
        Some((p, c)) if !p.is_empty() && !c.contains('/') => (PathBuf::from(p), Some(c.to_string())),
        _ => (PathBuf::from(spec), None),
    }
}

/// Read the `n` labels that `spec` names (see the module docs).
///
/// # Errors
/// An unreadable file, a count other than `n`, a value outside 0..=255, an unknown column.
pub fn read(spec: &str, n: usize) -> Result<Vec<u8>, DatasetError> {
    let (path, column) = split(spec);
    let bad = |message: String| DatasetError::BadOption { path: path.clone(), message };
    let bytes = read_maybe_gz(&path)?;
    if bytes.len() >= 8 && bytes[..4] == [0, 0, 8, 1] {
        if column.is_some() {
            return Err(bad("an IDX label file has no columns: drop the :COLUMN".into()));
        }
        let m = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if m != n || bytes.len() != 8 + m {
            return Err(bad(format!(
                "--labels: expected {n} labels to match the images, found an IDX label file of {m} labels in {} bytes",
                bytes.len()
            )));
        }
        return Ok(bytes[8..].to_vec());
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| bad("--labels: expected an IDX label file (00 00 08 01) or a CSV text file".into()))?;
    let rows: Vec<Vec<&str>> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.split(',').map(str::trim).collect()).collect();
    let Some(first) = rows.first() else { return Err(bad("--labels: the file is empty".into())) };
    let col = match &column {
        None => first.len() - 1,
        Some(c) => match c.parse::<usize>() {
            Ok(i) => i,
            Err(_) => first
                .iter()
                .position(|h| h == c)
                .ok_or_else(|| bad(format!("--labels: no column named {c:?} in the header ({})", first.join(", "))))?,
        },
    };
    let header = first.get(col).is_some_and(|v| v.parse::<u64>().is_err());
    let body = &rows[usize::from(header)..];
    if body.len() != n {
        return Err(bad(format!("--labels: expected {n} rows to match the images, found {}", body.len())));
    }
    body.iter()
        .enumerate()
        .map(|(i, r)| {
            let v = r.get(col).ok_or_else(|| bad(format!("--labels: row {} has no column {col}", i + 1)))?;
            v.parse::<u8>()
                .map_err(|_| bad(format!("--labels: row {}, column {col}: {v:?} is not a label 0..=255", i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_and_csv_columns() {
        let dir = tempfile::tempdir().unwrap();
        let idx = dir.path().join("l.idx");
        std::fs::write(&idx, [0, 0, 8, 1, 0, 0, 0, 3, 7, 1, 2]).unwrap();
        assert_eq!(read(idx.to_str().unwrap(), 3).unwrap(), vec![7, 1, 2]);
        assert!(read(idx.to_str().unwrap(), 4).unwrap_err().to_string().contains("expected 4 labels"));
        let csv = dir.path().join("l.csv");
        std::fs::write(&csv, "name,person,x\na,3,0\nb,4,1\nc,5,9\n").unwrap();
        let p = csv.to_str().unwrap();
        assert_eq!(read(p, 3).unwrap(), vec![0, 1, 9]);
        assert_eq!(read(&format!("{p}:person"), 3).unwrap(), vec![3, 4, 5]);
        assert_eq!(read(&format!("{p}:1"), 3).unwrap(), vec![3, 4, 5]);
        assert!(read(&format!("{p}:name"), 3).unwrap_err().to_string().contains("not a label"));
        assert!(read(&format!("{p}:nope"), 3).unwrap_err().to_string().contains("no column named"));
        std::fs::write(&csv, "1\n2\n").unwrap();
        assert_eq!(read(csv.to_str().unwrap(), 2).unwrap(), vec![1, 2]);
    }
}
