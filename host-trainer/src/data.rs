//! Training data for the trainer.
//!
//! TEMPORARY local reader (sklearn digits CSV and MNIST IDX, gzipped or raw) used until
//! `gaussdiff_core::dataset` lands; the struct mirrors `core::dataset::Dataset` so that the swap is a
//! one-function change.

use anyhow::{bail, Context, Result};
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use std::io::Read;
use std::path::Path;

use crate::rng::TrainRng;

/// Images in model space (`[-1, 1]`), row-major `n x d`.
#[derive(Clone, Debug)]
pub struct TrainData {
    /// Dataset name (file stem).
    pub name: String,
    /// Image shape (CHW).
    pub shape: ImageShape,
    /// Mapping from model values to 8-bit pixels.
    pub pixel: PixelMap,
    /// Training images, `n x d`.
    pub images: Vec<f32>,
    /// Held-out images (disjoint from `images`), `m x d`.
    pub held_out: Vec<f32>,
}

impl TrainData {
    /// `d`.
    pub fn dim(&self) -> usize {
        self.shape.dim()
    }
    /// Number of training images.
    pub fn n(&self) -> usize {
        self.images.len() / self.dim()
    }
    /// Number of held-out images.
    pub fn n_held_out(&self) -> usize {
        self.held_out.len() / self.dim()
    }
}

/// How to load.
#[derive(Clone, Debug, Default)]
pub struct LoadSpec {
    /// Random subset of this many training images (after the hold-out is taken).
    pub limit: Option<usize>,
    /// Seed of the subset/hold-out choice.
    pub seed: u64,
    /// Images kept out of training.
    pub hold_out: usize,
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("reading dataset file {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: not a valid gzip stream", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Load a dataset file (sklearn digits CSV or MNIST IDX images), then split hold-out and subset.
pub fn load(path: &Path, spec: &LoadSpec) -> Result<TrainData> {
    let bytes = read_maybe_gz(path)?;
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .map(|s| s.split('.').next().unwrap_or(s).to_string())
        .unwrap_or_else(|| "dataset".into());
    let (shape, pixel, all) = if bytes.len() >= 16 && bytes[0..4] == [0, 0, 8, 3] {
        let n = u32::from_be_bytes(bytes[4..8].try_into()?) as usize;
        let h = u32::from_be_bytes(bytes[8..12].try_into()?) as usize;
        let w = u32::from_be_bytes(bytes[12..16].try_into()?) as usize;
        if bytes.len() != 16 + n * h * w {
            bail!("{}: IDX header says {n}x{h}x{w} but the file holds {} pixel bytes", path.display(), bytes.len() - 16);
        }
        let pm = PixelMap::EDM;
        let v = bytes[16..].iter().map(|&p| pm.to_value(p as f32)).collect::<Vec<_>>();
        (ImageShape { channels: 1, height: h as u16, width: w as u16 }, pm, v)
    } else {
        let text = std::str::from_utf8(&bytes).with_context(|| format!("{}: neither IDX nor UTF-8 CSV", path.display()))?;
        // sklearn digits: 64 values 0..16 then a label. Map 0..16 to [-1, 1]: value = (p - 8) / 8;
        // pixel (0..255) = value * 127.5 + 127.5.
        let mut v = Vec::new();
        for (li, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 65 {
                bail!("{}: line {}: expected 65 comma-separated fields (64 pixels + label), found {}", path.display(), li + 1, fields.len());
            }
            for f in &fields[..64] {
                let p: f32 = f.trim().parse().with_context(|| format!("{}: line {}: bad pixel {f:?}", path.display(), li + 1))?;
                v.push((p - 8.0) / 8.0);
            }
        }
        (ImageShape { channels: 1, height: 8, width: 8 }, PixelMap::EDM, v)
    };
    let d = shape.dim();
    let n_all = all.len() / d;
    if n_all == 0 {
        bail!("{}: dataset is empty", path.display());
    }
    if spec.hold_out >= n_all {
        bail!("{}: --hold-out {} leaves no training images (dataset has {n_all})", path.display(), spec.hold_out);
    }
    let mut rng = TrainRng::stream(spec.seed, 0xDA7A);
    let order = if spec.hold_out > 0 || spec.limit.is_some_and(|l| l < n_all) { rng.permutation(n_all) } else { (0..n_all).collect() };
    let (ho, rest) = order.split_at(spec.hold_out);
    let take = spec.limit.unwrap_or(rest.len()).min(rest.len());
    let mut ho: Vec<usize> = ho.to_vec();
    let mut tr: Vec<usize> = rest[..take].to_vec();
    ho.sort_unstable();
    tr.sort_unstable();
    let gather = |idx: &[usize]| idx.iter().flat_map(|&i| all[i * d..(i + 1) * d].iter().copied()).collect::<Vec<f32>>();
    Ok(TrainData { name, shape, pixel, images: gather(&tr), held_out: gather(&ho) })
}
