//! Host-side dataset readers shared by the CLI (`gaussdiff`) and the trainer (`gaussdiff-train`).
//!
//! [`load`] reads one of the formats people actually have and returns a [`Dataset`]: `n x d` f32 images,
//! flattened CHW (see [`ImageShape`]), in model space.
//!
//! | format | input | shape | pixel levels |
//! |---|---|---|---|
//! | [`Format::Idx`] | MNIST / Fashion-MNIST `*-images-idx3-ubyte[.gz]` (labels read from the sibling `*-labels-idx1-ubyte[.gz]` when present) | 1 x H x W | 0..255 |
//! | [`Format::Cifar10`] | a CIFAR-10 binary batch, or a directory of `data_batch_*.bin` (else `test_batch.bin`) | 3 x 32 x 32 | 0..255 |
//! | [`Format::ImageFolder`] | a directory of PNG / PGM / PPM / JPEG files, all one size, read recursively: each folder's files by name, then its subfolders in natural order (`s2` before `s10`); other files and `.`-folders skipped. Label = the image's subfolder (relative path, [`Dataset::label_names`]) when every image sits in one | 1 or 3 x H x W | 0..255 |
//! | [`Format::DigitsCsv`] | scikit-learn's `digits.csv[.gz]`: 64 pixel columns 0..16 then the label | 1 x 8 x 8 | 0..16 |
//! | [`Format::FreyMat`] | `frey_rawface.mat` (MAT v5, uint8 `ff`, 560 x N) | 1 x 28 x 20 | 0..255 |
//!
//! **Model space.** A pixel `p` with `L` levels (`p` in `0..=L`) maps to `v = (p - L/2) / (L/2)`, so black is
//! `-1` and full intensity `+1`, EDM's convention. Every dataset records [`PixelMap::EDM`]
//! (`pixel = 127.5 v + 127.5`) as the mapping back to 8-bit pixels. For the 17-level digits this is the right
//! map too: `v = p/8 - 1` gives `127.5 (v + 1) = p * 255/16`, the usual way to show 0..16 as 8-bit gray.
//!
//! **Selection.** With `limit` or `hold_out`, the image indices are shuffled by a SplitMix64 stream (core's `rng::splitmix64`) seeded
//! with `seed` (Fisher-Yates from the last index down); the first `hold_out` indices become the held-out
//! set and the next `limit` (or all the rest) the training set. Both sets are then sorted back into file
//! order, and labels follow their images ([`Dataset::labels`], [`Dataset::held_out_labels`]). Without either
//! option the file order is kept and nothing is shuffled.
//!
//! **Post-processing**, in this order: selection, `grayscale` (Rec. 601 luma `0.299 R + 0.587 G + 0.114 B`,
//! applied in model space, which is exact because the map is affine with weights summing to 1), `resize`
//! (bilinear "triangle" filter of the `image` crate, per channel; the filter is a convex combination, so it
//! commutes with the affine pixel map: a constant image keeps its 8-bit level, at any level).

use std::path::{Path, PathBuf};

use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_core::rng::splitmix64;

mod cifar;
mod csv;
mod detect;
mod folder;
mod idx;
pub mod labels;
mod mat;

/// Input format; [`Format::Auto`] decides by content (magic bytes), not only by the file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Detect from the content: gzip and IDX magic, the MAT text header, CIFAR record structure, CSV shape,
    /// or a directory's contents.
    #[default]
    Auto,
    /// MNIST-style IDX (`00 00 08 03`), raw or gzipped.
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// A directory of images.
    ImageFolder,
    /// scikit-learn's digits CSV (raw or gzipped).
    DigitsCsv,
    /// The Frey faces MAT file.
    FreyMat,
}

impl Format {
    /// The names accepted by [`core::str::FromStr`] (`auto`, `idx`, `cifar10`, `folder`, `digits-csv`, `frey-mat`).
    pub const NAMES: [&'static str; 6] = ["auto", "idx", "cifar10", "folder", "digits-csv", "frey-mat"];

    /// The canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Idx => "idx",
            Self::Cifar10 => "cifar10",
            Self::ImageFolder => "folder",
            Self::DigitsCsv => "digits-csv",
            Self::FreyMat => "frey-mat",
        }
    }
}

impl core::fmt::Display for Format {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "idx" | "mnist" => Ok(Self::Idx),
            "cifar10" | "cifar" => Ok(Self::Cifar10),
            "folder" | "image-folder" | "images" => Ok(Self::ImageFolder),
            "digits-csv" | "digits" | "csv" => Ok(Self::DigitsCsv),
            "frey-mat" | "frey" | "mat" => Ok(Self::FreyMat),
            _ => Err(std::format!("unknown dataset format '{s}', expected one of {}", Self::NAMES.join(", "))),
        }
    }
}

/// Options for [`load`].
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// Input format (default [`Format::Auto`]).
    pub format: Format,
    /// Keep a random subset of at most this many training images (after the hold-out).
    pub limit: Option<usize>,
    /// Seed of the subset / hold-out shuffle.
    pub seed: u64,
    /// Convert colour images to one luma channel.
    pub grayscale: bool,
    /// Resize every image to `(width, height)`.
    pub resize: Option<(u16, u16)>,
    /// Number of images kept out of the training set (in [`Dataset::held_out`]).
    pub hold_out: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { format: Format::Auto, limit: None, seed: 0, grayscale: false, resize: None, hold_out: 0 }
    }
}

impl LoadOptions {
    /// The preparation as blob metadata entries (`prep.format`, `prep.limit`, `prep.seed`, `prep.grayscale`,
    /// `prep.resize`, `prep.hold_out`), only those that differ from the defaults, so a plain export's
    /// metadata is unchanged. [`LoadOptions::from_metadata`] reads them back.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let mut m = Vec::new();
        if self.format != Format::Auto {
            m.push(("prep.format".to_string(), self.format.name().to_string()));
        }
        if let Some(l) = self.limit {
            m.push(("prep.limit".to_string(), l.to_string()));
        }
        if self.limit.is_some() || self.hold_out > 0 {
            m.push(("prep.seed".to_string(), self.seed.to_string()));
        }
        if self.grayscale {
            m.push(("prep.grayscale".to_string(), "1".to_string()));
        }
        if let Some((w, h)) = self.resize {
            m.push(("prep.resize".to_string(), format!("{w}x{h}")));
        }
        if self.hold_out > 0 {
            m.push(("prep.hold_out".to_string(), self.hold_out.to_string()));
        }
        m
    }

    /// The preparation recorded by [`LoadOptions::to_metadata`] (keys not given keep their defaults;
    /// other keys are ignored).
    ///
    /// # Errors
    /// A recorded value that does not parse, naming the key.
    pub fn from_metadata<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut o = Self::default();
        let num =
            |k: &str, v: &str| v.parse::<u64>().map_err(|_| format!("metadata {k} = {v:?}: expected a whole number"));
        for (k, v) in entries {
            match k {
                "prep.format" => o.format = v.parse().map_err(|e| format!("metadata {k}: {e}"))?,
                "prep.limit" => o.limit = Some(num(k, v)? as usize),
                "prep.seed" => o.seed = num(k, v)?,
                "prep.grayscale" => o.grayscale = v == "1",
                "prep.resize" => o.resize = Some(parse_wxh(v).map_err(|e| format!("metadata {k}: {e}"))?),
                "prep.hold_out" => o.hold_out = num(k, v)? as usize,
                _ => {}
            }
        }
        Ok(o)
    }
}

/// A loaded dataset in model space.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Short name (the file or directory stem, e.g. `t10k-images-idx3-ubyte`).
    pub name: String,
    /// Image shape after grayscale/resize; `shape.dim()` is `d`.
    pub shape: ImageShape,
    /// Mapping from model values back to 8-bit pixels (always [`PixelMap::EDM`], see the module docs).
    pub pixel: PixelMap,
    /// Training images, `n x d` row-major, values in `[-1, 1]`.
    pub images: Vec<f32>,
    /// Labels of the training images, where the format has them.
    pub labels: Option<Vec<u8>>,
    /// Class names, index = label, where the format names its classes (an image folder's subfolders).
    pub label_names: Option<Vec<String>>,
    /// Held-out images, `hold_out x d` row-major.
    pub held_out: Vec<f32>,
    /// Labels of the held-out images (`Some` exactly when `labels` is).
    pub held_out_labels: Option<Vec<u8>>,
}

impl Dataset {
    /// Number of training images `n`.
    pub fn len(&self) -> usize {
        self.images.len() / self.dim().max(1)
    }

    /// `true` when there are no training images (never the case for a dataset returned by [`load`]).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Dimension `d = channels * height * width`.
    pub fn dim(&self) -> usize {
        self.shape.dim()
    }

    /// Training image `i` (length `d`).
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.images[i * d..(i + 1) * d]
    }

    /// Number of held-out images.
    pub fn held_out_len(&self) -> usize {
        self.held_out.len() / self.dim().max(1)
    }

    /// Held-out image `i` (length `d`).
    ///
    /// # Panics
    /// If `i >= held_out_len()`.
    pub fn held_out_image(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.held_out[i * d..(i + 1) * d]
    }
}

/// A `WxH` size such as `28x28` (or `28X28`): width and height, positive, at most 65535. The one parser of
/// the `--resize` arguments of the CLI and the trainer.
///
/// # Errors
/// `invalid size '{s}': expected WxH, e.g. 16x16` without a separator, and
/// `invalid size '{s}': expected WxH with positive integers up to 65535` for a bad number.
pub fn parse_wxh(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("invalid size '{s}': expected WxH, e.g. 16x16"))?;
    let p = |v: &str| v.trim().parse::<u16>().ok().filter(|&x| x > 0);
    match (p(w), p(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!("invalid size '{s}': expected WxH with positive integers up to 65535")),
    }
}

/// Why a dataset could not be loaded. Every variant names the file and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// The file or directory could not be opened or read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The content does not match the format.
    #[error("{}: {format}: expected {expected}, found {found}", path.display())]
    Invalid {
        /// The path.
        path: PathBuf,
        /// The format being read.
        format: Format,
        /// What the reader expected.
        expected: String,
        /// What it found.
        found: String,
    },
    /// `--format auto` could not recognise the content.
    #[error(
        "{}: unrecognised dataset (expected IDX, gzipped IDX, CIFAR-10 batches, an image folder, a digits CSV or a Frey MAT file; {hint})",
        path.display()
    )]
    Unrecognised {
        /// The path.
        path: PathBuf,
        /// What was seen.
        hint: String,
    },
    /// An image in a folder could not be decoded.
    #[error("{}: cannot decode image: {source}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// Images in a folder differ in size.
    #[error("{}: image is {found_w}x{found_h}, expected {expected_w}x{expected_h} like {}", path.display(), first.display())]
    MixedSizes {
        /// The first image whose size differs.
        path: PathBuf,
        /// The first image of the folder (which set the size).
        first: PathBuf,
        /// Expected width.
        expected_w: u32,
        /// Expected height.
        expected_h: u32,
        /// Found width.
        found_w: u32,
        /// Found height.
        found_h: u32,
    },
    /// No images (or none left for training).
    #[error("{}: empty dataset: {what}", path.display())]
    Empty {
        /// The path.
        path: PathBuf,
        /// What is empty.
        what: String,
    },
    /// A non-finite value in the data.
    #[error("{}: value {value} at image {image}, pixel {pixel}: expected a finite number", path.display())]
    NonFinite {
        /// The path.
        path: PathBuf,
        /// Image index (in the file).
        image: usize,
        /// Pixel index in the image.
        pixel: usize,
        /// The value.
        value: f32,
    },
    /// An option does not fit the data.
    #[error("{}: {message}", path.display())]
    BadOption {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl DatasetError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn invalid(path: &Path, format: Format, expected: impl Into<String>, found: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_path_buf(), format, expected: expected.into(), found: found.into() }
    }
}

/// Raw pixels as read from a file: `n x d` bytes with `levels + 1` gray levels (255 or 16).
#[derive(Debug)]
pub(crate) struct Raw {
    pub shape: ImageShape,
    pub pixels: Vec<u8>,
    pub levels: u8,
    pub labels: Option<Vec<u8>>,
    pub label_names: Option<Vec<String>>,
}

impl Raw {
    fn len(&self) -> usize {
        self.pixels.len() / self.shape.dim().max(1)
    }
}

/// Load a dataset (see the module docs for formats, the model-space mapping and the options).
///
/// # Errors
/// [`DatasetError`] naming the file and what was expected: unreadable files, wrong magic, truncated data,
/// mixed image sizes, an empty dataset, non-finite values, or a `limit`/`hold_out`/`resize` that does not fit.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, DatasetError> {
    finish(path, read_raw(path, opts)?, opts)
}

/// [`load`] with the labels of `labels` (an IDX label file or a CSV column, [`labels::read`]) in place of
/// the dataset's own, one per image of the file (before the hold-out and limit selection).
///
/// # Errors
/// As [`load`], and a label file that does not match the images.
pub fn load_with_labels(path: &Path, opts: &LoadOptions, labels: &str) -> Result<Dataset, DatasetError> {
    let mut raw = read_raw(path, opts)?;
    raw.labels = Some(labels::read(labels, raw.len())?);
    raw.label_names = None;
    finish(path, raw, opts)
}

fn read_raw(path: &Path, opts: &LoadOptions) -> Result<Raw, DatasetError> {
    let format = match opts.format {
        Format::Auto => detect::detect(path)?,
        f => f,
    };
    let raw = match format {
        Format::Idx => idx::read(path)?,
        Format::Cifar10 => cifar::read(path)?,
        Format::ImageFolder => folder::read(path)?,
        Format::DigitsCsv => csv::read(path)?,
        Format::FreyMat => mat::read(path)?,
        Format::Auto => unreachable_auto(path)?,
    };
    Ok(raw)
}

fn unreachable_auto(path: &Path) -> Result<Raw, DatasetError> {
    Err(DatasetError::Unrecognised { path: path.to_path_buf(), hint: "detection returned no format".into() })
}

/// Training and held-out indices (each sorted) for `n` images.
fn select(path: &Path, n: usize, opts: &LoadOptions) -> Result<(Vec<usize>, Vec<usize>), DatasetError> {
    if n == 0 {
        return Err(DatasetError::Empty { path: path.to_path_buf(), what: "the file holds no images".into() });
    }
    if opts.limit == Some(0) {
        return Err(DatasetError::BadOption { path: path.to_path_buf(), message: "--limit must be at least 1".into() });
    }
    if opts.hold_out >= n {
        return Err(DatasetError::BadOption {
            path: path.to_path_buf(),
            message: std::format!(
                "--hold-out {} leaves no training images: expected at most {} for {n} images",
                opts.hold_out,
                n - 1
            ),
        });
    }
    if opts.limit.is_none() && opts.hold_out == 0 {
        return Ok(((0..n).collect(), Vec::new()));
    }
    let mut perm: Vec<usize> = (0..n).collect();
    let mut state = opts.seed;
    for i in (1..n).rev() {
        // Lemire-free modulo: the bias of u64 % (i+1) is below 2^-32 for any realistic n.
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    let mut held: Vec<usize> = perm[..opts.hold_out].to_vec();
    let rest = &perm[opts.hold_out..];
    let take = opts.limit.map_or(rest.len(), |l| l.min(rest.len()));
    let mut train: Vec<usize> = rest[..take].to_vec();
    held.sort_unstable();
    train.sort_unstable();
    Ok((train, held))
}

fn finish(path: &Path, raw: Raw, opts: &LoadOptions) -> Result<Dataset, DatasetError> {
    let n = raw.len();
    let (train, held) = select(path, n, opts)?;
    let d0 = raw.shape.dim();
    let half = f32::from(raw.levels) / 2.0;
    let to_values = |idx: &[usize]| -> Vec<f32> {
        let mut out = Vec::with_capacity(idx.len() * d0);
        for &i in idx {
            out.extend(raw.pixels[i * d0..(i + 1) * d0].iter().map(|&p| (f32::from(p) - half) / half));
        }
        out
    };
    let mut images = to_values(&train);
    let mut held_out = to_values(&held);
    let labels = raw.labels.as_ref().map(|l| train.iter().map(|&i| l[i]).collect());
    let held_out_labels = raw.labels.as_ref().map(|l| held.iter().map(|&i| l[i]).collect());
    let mut shape = raw.shape;

    if opts.grayscale && shape.channels == 3 {
        images = to_gray(&images, shape);
        held_out = to_gray(&held_out, shape);
        shape.channels = 1;
    }
    if let Some((w, h)) = opts.resize {
        if w == 0 || h == 0 {
            return Err(DatasetError::BadOption {
                path: path.to_path_buf(),
                message: std::format!("--resize {w}x{h}: expected a width and height of at least 1"),
            });
        }
        let d = usize::from(shape.channels) * usize::from(w) * usize::from(h);
        if d > gaussdiff_core::blob::format::MAX_DIM {
            return Err(DatasetError::BadOption {
                path: path.to_path_buf(),
                message: std::format!(
                    "--resize {w}x{h}: d = {} x {w} x {h} = {d} exceeds the blob limit MAX_DIM = {}",
                    shape.channels,
                    gaussdiff_core::blob::format::MAX_DIM
                ),
            });
        }
        if (w, h) != (shape.width, shape.height) {
            images = resize(&images, shape, w, h);
            held_out = resize(&held_out, shape, w, h);
            shape.width = w;
            shape.height = h;
        }
    }
    let d = shape.dim();
    if let Some(pos) = images.iter().position(|v| !v.is_finite()) {
        return Err(DatasetError::NonFinite {
            path: path.to_path_buf(),
            image: train[pos / d],
            pixel: pos % d,
            value: images[pos],
        });
    }
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let name = name.trim_end_matches(".gz").to_string();
    let label_names = raw.label_names;
    Ok(Dataset { name, shape, pixel: PixelMap::EDM, images, labels, label_names, held_out, held_out_labels })
}

/// Rec. 601 luma of CHW RGB images in model space.
fn to_gray(images: &[f32], shape: ImageShape) -> Vec<f32> {
    let plane = shape.height as usize * shape.width as usize;
    let d = 3 * plane;
    let mut out = Vec::with_capacity(images.len() / 3);
    for img in images.chunks_exact(d) {
        let (r, rest) = img.split_at(plane);
        let (g, b) = rest.split_at(plane);
        out.extend((0..plane).map(|p| 0.299 * r[p] + 0.587 * g[p] + 0.114 * b[p]));
    }
    out
}

/// Per-channel triangle-filter resize of CHW images in model space.
///
/// The `image` crate clamps `f32` samples to its `[0, 1]` range, so the model values `v` in `[-1, 1]` go
/// through it as `u = (v + 1) / 2` and come back as `2u - 1`. The filter is a convex combination (weights
/// non-negative, normalised to sum 1), so `u` stays in `[0, 1]`, nothing is clamped, and the affine map
/// commutes with it: a constant image keeps its value (up to f32 rounding), so its 8-bit level exactly.
fn resize(images: &[f32], shape: ImageShape, w: u16, h: u16) -> Vec<f32> {
    let (sw, sh) = (u32::from(shape.width), u32::from(shape.height));
    let plane = sw as usize * sh as usize;
    let mut out = Vec::with_capacity(images.len() / plane.max(1) * usize::from(w) * usize::from(h));
    for channel in images.chunks_exact(plane) {
        let unit: Vec<f32> = channel.iter().map(|&v| (v + 1.0) * 0.5).collect();
        let buf: image::ImageBuffer<image::Luma<f32>, Vec<f32>> =
            image::ImageBuffer::from_raw(sw, sh, unit).unwrap_or_else(|| image::ImageBuffer::new(sw, sh));
        let r = image::imageops::resize(&buf, u32::from(w), u32::from(h), image::imageops::FilterType::Triangle);
        out.extend(r.as_raw().iter().map(|&u| 2.0 * u - 1.0));
    }
    out
}

/// Read a whole file, gunzipping it when it starts with the gzip magic `1f 8b`.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut out).map_err(|e| {
            DatasetError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(e.kind(), std::format!("gzip stream is corrupt or truncated: {e}")),
            }
        })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests;
