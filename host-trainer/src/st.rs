//! safetensors helpers: f32 tensors in and out (written with `gaussdiff_fit::io::write_atomic`).

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

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

/// Serialise f32 tensors plus string metadata and write them atomically.
pub fn save(path: &Path, tensors: &[F32Tensor], metadata: HashMap<String, String>) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|t| (t.name.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let out = safetensors::serialize(views, Some(metadata))?;
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
        let data = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(F32Tensor { name: name.to_string(), shape: v.shape().to_vec(), data })
    }
}
