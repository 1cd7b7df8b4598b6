//! safetensors helpers: f32 tensors in and out (written with `gaussdiff_fit::io::write_atomic`).
//!
//! Every file [`save`] writes is byte-identical for identical inputs (the JSON header's keys, metadata
//! included, in sorted order) and carries a checksum of every tensor: metadata `crc32.<tensor>` = the
//! CRC-32 (ISO-HDLC, as the blob format) of the tensor's little-endian bytes, 8 hex digits.
//! [`Loaded::f32`] verifies it (and refuses non-finite values) naming the tensor; [`Loaded::require_checksums`]
//! makes its presence mandatory (checkpoints, on resume and on distill).

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Prefix of the per-tensor checksum metadata keys.
pub const CRC_PREFIX: &str = "crc32.";

fn crc32(bytes: &[u8]) -> u32 {
    gaussdiff_core::blob::format::CRC32.checksum(bytes)
}

/// Rewrite a serialised safetensors file with its JSON header's keys sorted (serde_json's maps are ordered)
/// and padded with spaces to a multiple of 8, as the format requires; the data offsets are unchanged.
fn canonical(bytes: Vec<u8>) -> Result<Vec<u8>> {
    let n = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n])?;
    let sorted = |v: serde_json::Value| -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let b: BTreeMap<String, serde_json::Value> = m.into_iter().collect();
                serde_json::to_value(b).unwrap_or(serde_json::Value::Null)
            }
            v => v,
        }
    };
    let header: BTreeMap<String, serde_json::Value> = header.into_iter().map(|(k, v)| (k, sorted(v))).collect();
    let mut json = serde_json::to_vec(&header)?;
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// An owned f32 tensor: name, shape, row-major data.
#[derive(Clone, Debug)]
pub struct F32Tensor {
    /// Key in the file.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Serialise f32 tensors plus string metadata (and a `crc32.<name>` checksum per tensor) and write them
/// atomically; identical inputs give identical bytes.
pub fn save(path: &Path, tensors: &[F32Tensor], metadata: BTreeMap<String, String>) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|t| (t.name.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone()))
        .collect();
    let mut metadata = metadata;
    for (n, b, _) in &bytes {
        metadata.insert(format!("{CRC_PREFIX}{n}"), format!("{:08x}", crc32(b)));
    }
    let metadata: HashMap<String, String> = metadata.into_iter().collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let out = canonical(safetensors::serialize(views, Some(metadata))?)?;
    Ok(gaussdiff_fit::io::write_atomic(path, &out)?)
}

/// A parsed safetensors file held in memory.
#[derive(Debug)]
pub struct Loaded {
    path: String,
    bytes: Vec<u8>,
    metadata: HashMap<String, String>,
}

impl Loaded {
    /// Read and validate the header.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (_, md) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a valid safetensors file: {e}", path.display()))?;
        let metadata = md.metadata().clone().unwrap_or_default();
        SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a valid safetensors file: {e}", path.display()))?;
        Ok(Self { path: path.display().to_string(), bytes, metadata })
    }

    /// The file's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty file (never, once [`Loaded::open`] has accepted it).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// String metadata.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// A required metadata value.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(|s| s.as_str())
            .with_context(|| format!("{}: metadata key {key:?} is missing", self.path))
    }

    /// Require a `crc32.<name>` checksum for every tensor in the file (checked when each is read).
    ///
    /// # Errors
    /// Naming the first tensor without one.
    pub fn require_checksums(&self) -> Result<()> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| anyhow::anyhow!("{}: {e}", self.path))?;
        let mut names = st.names();
        names.sort();
        for n in names {
            if !self.metadata.contains_key(&format!("{CRC_PREFIX}{n}")) {
                bail!(
                    "{}: tensor {n:?} has no checksum (metadata \"{CRC_PREFIX}{n}\"); the file was not written by \
                     this trainer or was altered",
                    self.path
                );
            }
        }
        Ok(())
    }

    /// Does a tensor of this name exist?
    pub fn has(&self, name: &str) -> bool {
        SafeTensors::deserialize(&self.bytes).map(|st| st.tensor(name).is_ok()).unwrap_or(false)
    }

    /// Read an f32 tensor, checking its dtype (and the shape when `want` is given).
    pub fn f32(&self, name: &str, want: Option<&[usize]>) -> Result<F32Tensor> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| anyhow::anyhow!("{}: {e}", self.path))?;
        let v = st.tensor(name).map_err(|_| anyhow::anyhow!("{}: tensor {name:?} is missing", self.path))?;
        if v.dtype() != Dtype::F32 {
            bail!("{}: tensor {name:?} has dtype {:?}, expected F32", self.path, v.dtype());
        }
        if let Some(w) = want {
            if v.shape() != w {
                bail!("{}: tensor {name:?} has shape {:?}, expected {:?}", self.path, v.shape(), w);
            }
        }
        if let Some(want) = self.metadata.get(&format!("{CRC_PREFIX}{name}")) {
            let got = format!("{:08x}", crc32(v.data()));
            if *want != got {
                bail!(
                    "{}: tensor {name:?} is corrupt: checksum {got}, expected {want} (metadata \"{CRC_PREFIX}{name}\")",
                    self.path
                );
            }
        }
        let data: Vec<f32> = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            bail!("{}: tensor {name:?} element {i} is {}, expected finite values", self.path, data[i]);
        }
        Ok(F32Tensor { name: name.to_string(), shape: v.shape().to_vec(), data })
    }
}
