//! Training data for the trainer, read by the readers shared with the CLI
//! (`gaussdiff_fit::dataset`: MNIST IDX, CIFAR-10, image folders, sklearn digits CSV, Frey MAT;
//! format detected by content), with the hold-out and the random `--limit` subset chosen there.

use anyhow::Result;
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_fit::dataset::{self, Format, LoadOptions};
use std::path::Path;

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
    /// Convert colour images to one channel.
    pub grayscale: bool,
    /// Resize to (width, height).
    pub resize: Option<(u16, u16)>,
}

/// Load a dataset file or folder (any format core reads), then split hold-out and subset.
///
/// # Errors
/// Whatever the reader reports (the message names the file and what was expected).
pub fn load(path: &Path, spec: &LoadSpec) -> Result<TrainData> {
    let opts = LoadOptions {
        format: Format::Auto,
        limit: spec.limit,
        seed: spec.seed,
        grayscale: spec.grayscale,
        resize: spec.resize,
        hold_out: spec.hold_out,
    };
    let d = dataset::load(path, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(TrainData { name: d.name, shape: d.shape, pixel: d.pixel, images: d.images, held_out: d.held_out })
}
