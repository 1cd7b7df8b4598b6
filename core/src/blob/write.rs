//! The blob writer (feature `std`): owned model parameters in, a complete v1 blob (`Vec<u8>`) out.
//!
//! Layout written (see `docs/blob-format.md`): the 64-byte header, the section table, the metadata area
//! straight after the table, then each tensor starting at a multiple of [`WRITER_ALIGN`] bytes from the blob
//! start, zero padding between them, no trailing padding.
//!
//! Storage types: [`WriteOptions::dtype`] applies to the big matrices only: `u_t` (Gaussian and basis),
//! `W` (dense) and `M` (basis). The vectors `mu` and `b` stay f32 (they are d and L x d values, small next to
//! the matrices, and an error in the mean shifts every sample), and `lambda`, `sigmas` and `a` are always f32
//! (the format requires it). f16 rounds to nearest-even (`half`); int8 is symmetric per row:
//! `scale_r = max_c |v_rc| / 127`, `q_rc = clamp(round(v_rc / scale_r), -127, 127)`, an all-zero row stores
//! scale 1.0 and zeros.
//!
//! Every blob is parsed back and turned into a denoiser before it is returned, so the writer never hands
//! out bytes the reader would reject.

use std::fmt;
use std::string::String;
use std::vec;
use std::vec::Vec;

use crate::blob::format::{
    self, section, Header, Kind, SectionEntry, CRC32, FORMAT_VERSION, HEADER_SIZE, MAX_CHANNELS, MAX_COMPONENTS,
    MAX_DIM, MAX_KEY_LEN, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_RANK, MAX_SECTIONS, MAX_SIGMAS,
    SECTION_ENTRY_SIZE, WRITER_ALIGN,
};
use crate::blob::read::Blob;
use crate::error::BlobError;
use crate::pixel::{ImageShape, PixelMap};
use crate::tensor::{DType, Tensor};

/// Parameters of a Gaussian denoiser `N(mu, U diag(lambda) U^T + c (I - U U^T))`, owned, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianParams {
    /// Image shape; `d = shape.dim()`.
    pub shape: ImageShape,
    /// Mean, length d.
    pub mu: Vec<f32>,
    /// Eigenvectors as rows (`U^T`), `k x d` row-major, length `k * d`.
    pub u_t: Vec<f32>,
    /// Eigenvalues, length k, finite, >= 0, descending.
    pub lambda: Vec<f32>,
    /// Isotropic floor c for the complement of span(U), finite, >= 0.
    pub floor: f32,
}

/// Parameters of a mixture of Gaussians (kind 4): K components of one shape and one rank, their weights
/// and optional labels (stored in the metadata under [`format::LABELS_KEY`]).
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureParams {
    /// The components (same shape, same rank `k`); each is validated like a [`GaussianParams`].
    pub components: Vec<GaussianParams>,
    /// Weights `pi_j`, length K, finite, `>= 0`, at least one `> 0` (conventionally summing to 1).
    pub weights: Vec<f32>,
    /// Component labels (empty: none), length K otherwise, each non-empty, without `,`.
    pub labels: Vec<String>,
}

/// A [`MixtureParams`] flattened into its stacked sections.
struct MixtureStacks {
    mu: Vec<f32>,
    u_t: Vec<f32>,
    lambda: Vec<f32>,
    floors: Vec<f32>,
}

/// The per-sigma maps of a linear denoiser.
#[derive(Clone, Debug, PartialEq)]
pub enum LinearMaps {
    /// `D(x; sigma_i) = W_i x + b_i` with dense `W_i`.
    Dense {
        /// Sigma grid, length L, finite, > 0, strictly descending.
        sigmas: Vec<f32>,
        /// `W_0 .. W_{L-1}` stacked, `(L*d) x d` row-major, length `L * d * d`.
        w: Vec<f32>,
        /// `b_0 .. b_{L-1}`, `L x d` row-major.
        b: Vec<f32>,
    },
    /// `D(x; sigma_i) = (U M_i U^T + a_i (I - U U^T)) x + b_i` in a shared basis.
    Basis {
        /// Sigma grid, length L, finite, > 0, strictly descending.
        sigmas: Vec<f32>,
        /// Basis as rows (`U^T`), `k x d` row-major.
        u_t: Vec<f32>,
        /// `M_0 .. M_{L-1}` stacked, `(L*k) x k` row-major.
        m: Vec<f32>,
        /// Complement scales `a_i`, length L.
        a: Vec<f32>,
        /// `b_0 .. b_{L-1}`, `L x d` row-major.
        b: Vec<f32>,
    },
}

/// Parameters of a linear denoiser, owned.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearParams {
    /// Image shape; `d = shape.dim()`.
    pub shape: ImageShape,
    /// The maps.
    pub maps: LinearMaps,
}

/// How to write a blob.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOptions {
    /// Storage type of the big matrices (`u_t`, `W`, `M`); everything else is f32.
    pub dtype: DType,
    /// Pixel mapping recorded in the header.
    pub pixel: PixelMap,
    /// Key/value metadata in this order. Conventional keys: `dataset`, `n_train`, `tool_version`.
    /// Keys are 1..=64 bytes of `[a-z0-9_.-]` and unique.
    pub metadata: Vec<(String, String)>,
}

impl Default for WriteOptions {
    /// f32 storage, EDM pixel mapping, no metadata.
    fn default() -> Self {
        Self { dtype: DType::F32, pixel: PixelMap::EDM, metadata: Vec::new() }
    }
}

/// Why parameters cannot be written. Names the tensor (`mu`, `u_t`, `lambda`, ...) and the position.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum WriteError {
    /// The image shape is invalid (a zero side, more than [`MAX_CHANNELS`] channels, `d` over [`MAX_DIM`]).
    BadShape {
        /// Channels.
        channels: u16,
        /// Height.
        height: u16,
        /// Width.
        width: u16,
    },
    /// A tensor has the wrong number of elements.
    Length {
        /// Tensor name.
        tensor: &'static str,
        /// Elements expected.
        expected: usize,
        /// Elements given.
        found: usize,
    },
    /// A value is NaN or infinite (or, for f16 storage, outside +-65504).
    NonFinite {
        /// Tensor name.
        tensor: &'static str,
        /// Element index.
        index: usize,
    },
    /// A value is out of its range (lambda and the floor must be >= 0, sigmas > 0).
    OutOfRange {
        /// Tensor name.
        tensor: &'static str,
        /// Element index.
        index: usize,
        /// The value.
        value: f32,
    },
    /// lambda must be descending, sigmas strictly descending; `index` is the first offending element.
    NotDescending {
        /// Tensor name.
        tensor: &'static str,
        /// First offending element.
        index: usize,
    },
    /// A `MAX_*` limit of the format is exceeded.
    Limit {
        /// What is limited.
        what: &'static str,
        /// The value.
        value: usize,
        /// The limit.
        max: usize,
    },
    /// The pixel map is not finite or its scale is 0.
    BadPixelMap {
        /// Scale.
        scale: f32,
        /// Offset.
        offset: f32,
    },
    /// Metadata entry `index` is invalid.
    Metadata {
        /// Entry index.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The blob would exceed 4 GiB.
    TooLarge {
        /// The size it would have.
        bytes: u64,
    },
    /// The written blob failed to parse or to build its denoiser (a writer/reader disagreement or a
    /// property only the denoiser checks).
    Rejected(BlobError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadShape { channels, height, width } => write!(
                f,
                "invalid image shape {channels}x{height}x{width}: sides must be >= 1, channels <= {MAX_CHANNELS}, \
                 d <= {MAX_DIM}"
            ),
            Self::Length { tensor, expected, found } => {
                write!(f, "{tensor}: expected {expected} values, found {found}")
            }
            Self::NonFinite { tensor, index } => {
                write!(f, "{tensor}[{index}] is not finite (or does not fit the storage type)")
            }
            Self::OutOfRange { tensor, index, value } => write!(f, "{tensor}[{index}] = {value} is out of range"),
            Self::NotDescending { tensor, index } => {
                write!(f, "{tensor} must be descending, but {tensor}[{index}] is larger than its predecessor")
            }
            Self::Limit { what, value, max } => write!(f, "{what} = {value} exceeds the format limit {max}"),
            Self::BadPixelMap { scale, offset } => {
                write!(f, "pixel map scale {scale}, offset {offset}: both must be finite and scale nonzero")
            }
            Self::Metadata { index, reason } => write!(f, "metadata entry {index}: {reason}"),
            Self::TooLarge { bytes } => write!(f, "blob would be {bytes} bytes, over the 4 GiB limit"),
            Self::Rejected(e) => write!(f, "the written blob does not read back: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

impl From<BlobError> for WriteError {
    fn from(e: BlobError) -> Self {
        Self::Rejected(e)
    }
}

/// The relative reconstruction error of one stored tensor (see [`GaussianParams::quantization_report`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantError {
    /// Section id.
    pub section: u8,
    /// Section name (`u_t`, `w`, ...).
    pub name: &'static str,
    /// Storage type the writer uses for it.
    pub dtype: DType,
    /// `||Q(x) - x||_F / ||x||_F` in f64 (0 for an all-zero tensor and for f32 storage).
    pub rel_frobenius: f64,
}

/// One tensor to store: section id, dtype, shape and the f32 values, in `blocks` equal row blocks each
/// stored as a standalone tensor (1 except the mixture's stacked sections).
struct Plan<'p> {
    id: u8,
    dtype: DType,
    rows: usize,
    cols: usize,
    values: &'p [f32],
    blocks: usize,
}

fn check_len(tensor: &'static str, v: &[f32], expected: usize) -> Result<(), WriteError> {
    if v.len() == expected {
        Ok(())
    } else {
        Err(WriteError::Length { tensor, expected, found: v.len() })
    }
}

fn check_finite(tensor: &'static str, v: &[f32]) -> Result<(), WriteError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(WriteError::NonFinite { tensor, index }),
        None => Ok(()),
    }
}

/// Checks `v` is descending (strictly if `strict`) and each value `>= 0` (`> 0` if `strict`).
fn check_descending(tensor: &'static str, v: &[f32], strict: bool) -> Result<(), WriteError> {
    check_finite(tensor, v)?;
    for (index, &value) in v.iter().enumerate() {
        if value < 0.0 || (strict && value <= 0.0) {
            return Err(WriteError::OutOfRange { tensor, index, value });
        }
        if index > 0 && (value > v[index - 1] || (strict && value == v[index - 1])) {
            return Err(WriteError::NotDescending { tensor, index });
        }
    }
    Ok(())
}

fn limit(what: &'static str, value: usize, max: usize) -> Result<(), WriteError> {
    if value > max {
        Err(WriteError::Limit { what, value, max })
    } else {
        Ok(())
    }
}

/// `d` for a valid shape.
fn shape_dim(shape: ImageShape) -> Result<usize, WriteError> {
    let d = u64::from(shape.channels) * u64::from(shape.height) * u64::from(shape.width);
    if d == 0 || usize::from(shape.channels) > MAX_CHANNELS || d > MAX_DIM as u64 {
        return Err(WriteError::BadShape { channels: shape.channels, height: shape.height, width: shape.width });
    }
    Ok(d as usize)
}

/// The int8 scale of one row, `max |v| / 127`, or `None` when that is 0 (an all-zero row, or one so tiny
/// that the division underflows); such rows are stored as zeros with scale 1.0.
fn i8_scale(row: &[f32]) -> Option<f32> {
    let scale = row.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
    (scale > 0.0).then_some(scale)
}

/// Appends the storage bytes of a `rows x cols` tensor (values already validated finite) to `out`.
fn encode_tensor(values: &[f32], rows: usize, cols: usize, dtype: DType, out: &mut Vec<u8>) {
    debug_assert_eq!(values.len(), rows * cols);
    match dtype {
        DType::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => values.iter().for_each(|&v| out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes())),
        DType::I8 => {
            let mut scales = vec![1.0f32; rows];
            if cols > 0 {
                for (row, stored) in values.chunks_exact(cols).zip(scales.iter_mut()) {
                    let scale = i8_scale(row);
                    for &v in row {
                        let q = scale.map_or(0.0, |s| (f64::from(v) / f64::from(s)).round().clamp(-127.0, 127.0));
                        out.push(q as i8 as u8);
                    }
                    *stored = scale.unwrap_or(1.0);
                }
            }
            scales.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        }
    }
}

/// Checks that every value survives conversion to `dtype` (f16's range is +-65504).
fn check_storable(tensor: &'static str, values: &[f32], dtype: DType) -> Result<(), WriteError> {
    check_finite(tensor, values)?;
    if dtype == DType::F16 {
        if let Some(index) = values.iter().position(|&v| !half::f16::from_f32(v).is_finite()) {
            return Err(WriteError::NonFinite { tensor, index });
        }
    }
    Ok(())
}

/// `||Q(x) - x||_F / ||x||_F` in f64 for storing `values` (`rows = len / cols`) as `dtype`, decoded through
/// [`Tensor::get`] exactly as the reader does; 0 when `x = 0`.
///
/// # Panics
/// If `cols == 0` while `values` is non-empty, or `values.len()` is not a multiple of `cols`.
pub fn quantize_roundtrip_error(values: &[f32], cols: usize, dtype: DType) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    contract!(cols > 0 && values.len().is_multiple_of(cols), "quantize_roundtrip_error: length not a multiple of cols");
    let rows = values.len() / cols;
    let mut bytes = Vec::with_capacity(dtype.storage_bytes(rows, cols));
    encode_tensor(values, rows, cols, dtype, &mut bytes);
    // `encode_tensor` writes exactly `storage_bytes`, so this view always exists; NaN would flag a bug.
    let Ok(t) = Tensor::new(dtype, rows, cols, &bytes) else { return f64::NAN };
    let (mut err, mut norm) = (0.0f64, 0.0f64);
    for r in 0..rows {
        for c in 0..cols {
            let x = f64::from(values[r * cols + c]);
            let e = f64::from(t.get(r, c)) - x;
            err += e * e;
            norm += x * x;
        }
    }
    if norm == 0.0 {
        0.0
    } else {
        (err / norm).sqrt()
    }
}

fn report(plans: &[Plan<'_>]) -> Vec<QuantError> {
    plans
        .iter()
        .map(|p| QuantError {
            section: p.id,
            name: section::name(p.id),
            dtype: p.dtype,
            // Per-row scales: blocks do not change the error.
            rel_frobenius: quantize_roundtrip_error(p.values, p.cols.max(1), p.dtype),
        })
        .collect()
}

impl GaussianParams {
    /// d, k after checking every length, range and limit.
    fn validate(&self) -> Result<(usize, usize), WriteError> {
        let d = shape_dim(self.shape)?;
        let k = self.lambda.len();
        limit("rank k (at most min(d, 4096))", k, MAX_RANK.min(d))?;
        check_len("mu", &self.mu, d)?;
        check_len("u_t", &self.u_t, k * d)?;
        check_finite("mu", &self.mu)?;
        check_finite("u_t", &self.u_t)?;
        check_descending("lambda", &self.lambda, false)?;
        if !self.floor.is_finite() {
            return Err(WriteError::NonFinite { tensor: "floor", index: 0 });
        }
        if self.floor < 0.0 {
            return Err(WriteError::OutOfRange { tensor: "floor", index: 0, value: self.floor });
        }
        Ok((d, k))
    }

    fn plans(&self, dtype: DType, d: usize, k: usize) -> [Plan<'_>; 3] {
        [
            Plan { id: section::MU, dtype: DType::F32, rows: 1, cols: d, values: &self.mu, blocks: 1 },
            Plan { id: section::U_T, dtype, rows: k, cols: d, values: &self.u_t, blocks: 1 },
            Plan { id: section::LAMBDA, dtype: DType::F32, rows: 1, cols: k, values: &self.lambda, blocks: 1 },
        ]
    }

    /// Relative Frobenius error of each stored tensor when written with `dtype`.
    ///
    /// # Errors
    /// As [`write_gaussian`]'s validation.
    pub fn quantization_report(&self, dtype: DType) -> Result<Vec<QuantError>, WriteError> {
        let (d, k) = self.validate()?;
        Ok(report(&self.plans(dtype, d, k)))
    }
}

impl MixtureParams {
    /// (shape, d, k, K) after checking every component, the weights, the labels and the limits.
    fn validate(&self) -> Result<(ImageShape, usize, usize, usize), WriteError> {
        let n = self.components.len();
        if n == 0 {
            return Err(WriteError::Length { tensor: "components", expected: 1, found: 0 });
        }
        limit("mixture components", n, MAX_COMPONENTS)?;
        let shape = self.components[0].shape;
        let (d, k) = self.components[0].validate()?;
        for c in &self.components[1..] {
            if c.shape != shape {
                let s = c.shape;
                return Err(WriteError::BadShape { channels: s.channels, height: s.height, width: s.width });
            }
            c.validate()?;
            check_len("lambda (every component has the same rank)", &c.lambda, k)?;
        }
        check_len("weights", &self.weights, n)?;
        check_finite("weights", &self.weights)?;
        if let Some(index) = self.weights.iter().position(|&w| w < 0.0) {
            return Err(WriteError::OutOfRange { tensor: "weights", index, value: self.weights[index] });
        }
        if self.weights.iter().all(|&w| w == 0.0) {
            return Err(WriteError::OutOfRange { tensor: "weights", index: 0, value: 0.0 });
        }
        if !self.labels.is_empty() {
            if self.labels.len() != n {
                return Err(WriteError::Metadata { index: 0, reason: "one label per mixture component" });
            }
            if let Some(index) = self.labels.iter().position(|l| l.is_empty() || l.contains(',')) {
                return Err(WriteError::Metadata { index, reason: "component labels must be non-empty, without ','" });
            }
        }
        Ok((shape, d, k, n))
    }

    fn stacks(&self) -> MixtureStacks {
        let cat = |f: &dyn Fn(&GaussianParams) -> &[f32]| self.components.iter().flat_map(f).copied().collect();
        MixtureStacks {
            mu: cat(&|c| &c.mu),
            u_t: cat(&|c| &c.u_t),
            lambda: cat(&|c| &c.lambda),
            floors: self.components.iter().map(|c| c.floor).collect(),
        }
    }

    fn plans<'p>(&'p self, st: &'p MixtureStacks, dtype: DType, d: usize, k: usize, n: usize) -> [Plan<'p>; 5] {
        [
            Plan { id: section::MU, dtype: DType::F32, rows: n, cols: d, values: &st.mu, blocks: n },
            Plan { id: section::U_T, dtype, rows: n * k, cols: d, values: &st.u_t, blocks: n },
            Plan { id: section::LAMBDA, dtype: DType::F32, rows: n, cols: k, values: &st.lambda, blocks: n },
            Plan { id: section::WEIGHTS, dtype: DType::F32, rows: 1, cols: n, values: &self.weights, blocks: 1 },
            Plan { id: section::FLOORS, dtype: DType::F32, rows: 1, cols: n, values: &st.floors, blocks: 1 },
        ]
    }

    /// Relative Frobenius error of each stored tensor when written with `dtype`.
    ///
    /// # Errors
    /// As [`write_mixture`]'s validation.
    pub fn quantization_report(&self, dtype: DType) -> Result<Vec<QuantError>, WriteError> {
        let (_, d, k, n) = self.validate()?;
        let st = self.stacks();
        Ok(report(&self.plans(&st, dtype, d, k, n)))
    }
}

impl LinearParams {
    /// (kind, d, k, L) after checking every length, range and limit.
    fn validate(&self, dtype: DType) -> Result<(Kind, usize, usize, usize), WriteError> {
        let d = shape_dim(self.shape)?;
        match &self.maps {
            LinearMaps::Dense { sigmas, w, b } => {
                let l = sigmas.len();
                validate_sigmas(sigmas)?;
                // Before the length checks: a d whose L dense d x d maps cannot fit is reported as such.
                let w_bytes = (dtype.storage_bytes(1, d) as u64) * (l as u64) * (d as u64);
                if w_bytes > u64::from(u32::MAX) {
                    return Err(WriteError::TooLarge { bytes: w_bytes });
                }
                check_len("w", w, l * d * d)?;
                check_len("b", b, l * d)?;
                check_finite("w", w)?;
                check_finite("b", b)?;
                Ok((Kind::LinearDense, d, 0, l))
            }
            LinearMaps::Basis { sigmas, u_t, m, a, b } => {
                let l = sigmas.len();
                validate_sigmas(sigmas)?;
                let k = u_t.len() / d;
                if k == 0 || k * d != u_t.len() {
                    return Err(WriteError::Length { tensor: "u_t", expected: k.max(1) * d, found: u_t.len() });
                }
                limit("rank k (at most min(d, 4096))", k, MAX_RANK.min(d))?;
                check_len("m", m, l * k * k)?;
                check_len("a", a, l)?;
                check_len("b", b, l * d)?;
                check_finite("u_t", u_t)?;
                check_finite("m", m)?;
                check_finite("a", a)?;
                check_finite("b", b)?;
                Ok((Kind::LinearBasis, d, k, l))
            }
        }
    }

    fn plans(&self, dtype: DType, d: usize, k: usize, l: usize) -> Vec<Plan<'_>> {
        match &self.maps {
            LinearMaps::Dense { sigmas, w, b } => vec![
                Plan { id: section::SIGMAS, dtype: DType::F32, rows: 1, cols: l, values: sigmas, blocks: 1 },
                Plan { id: section::W, dtype, rows: l * d, cols: d, values: w, blocks: 1 },
                Plan { id: section::B, dtype: DType::F32, rows: l, cols: d, values: b, blocks: 1 },
            ],
            LinearMaps::Basis { sigmas, u_t, m, a, b } => vec![
                Plan { id: section::SIGMAS, dtype: DType::F32, rows: 1, cols: l, values: sigmas, blocks: 1 },
                Plan { id: section::U_T, dtype, rows: k, cols: d, values: u_t, blocks: 1 },
                Plan { id: section::M, dtype, rows: l * k, cols: k, values: m, blocks: 1 },
                Plan { id: section::A, dtype: DType::F32, rows: 1, cols: l, values: a, blocks: 1 },
                Plan { id: section::B, dtype: DType::F32, rows: l, cols: d, values: b, blocks: 1 },
            ],
        }
    }

    /// Relative Frobenius error of each stored tensor when written with `dtype`.
    ///
    /// # Errors
    /// As [`write_linear`]'s validation.
    pub fn quantization_report(&self, dtype: DType) -> Result<Vec<QuantError>, WriteError> {
        let (_, d, k, l) = self.validate(dtype)?;
        Ok(report(&self.plans(dtype, d, k, l)))
    }
}

fn validate_sigmas(sigmas: &[f32]) -> Result<(), WriteError> {
    if sigmas.is_empty() {
        return Err(WriteError::Length { tensor: "sigmas", expected: 1, found: 0 });
    }
    limit("number of sigma levels", sigmas.len(), MAX_SIGMAS)?;
    check_descending("sigmas", sigmas, true)
}

/// Encodes the metadata area: per entry `key_len u8, value_len u16 LE, key, value`.
fn encode_metadata(entries: &[(String, String)]) -> Result<Vec<u8>, WriteError> {
    limit("metadata entries", entries.len(), MAX_METADATA_ENTRIES)?;
    let mut out = Vec::new();
    for (index, (key, value)) in entries.iter().enumerate() {
        if !format::valid_key(key.as_bytes()) {
            return Err(WriteError::Metadata { index, reason: "key must be 1..=64 bytes of [a-z0-9_.-]" });
        }
        if entries[..index].iter().any(|(k, _)| k == key) {
            return Err(WriteError::Metadata { index, reason: "duplicate key" });
        }
        let Ok(value_len) = u16::try_from(value.len()) else {
            return Err(WriteError::Metadata { index, reason: "value longer than 65535 bytes" });
        };
        debug_assert!(key.len() <= MAX_KEY_LEN);
        out.push(key.len() as u8);
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    limit("metadata bytes", out.len(), MAX_METADATA_BYTES)?;
    Ok(out)
}

fn align_up(n: usize) -> usize {
    n.div_ceil(WRITER_ALIGN) * WRITER_ALIGN
}

/// Lays out header, table, metadata and tensors, computes both CRCs.
fn assemble(
    kind: Kind,
    shape: ImageShape,
    (d, k, l): (usize, usize, usize),
    floor: f32,
    plans: &[Plan<'_>],
    opts: &WriteOptions,
) -> Result<Vec<u8>, WriteError> {
    let p = opts.pixel;
    if !p.scale.is_finite() || !p.offset.is_finite() || p.scale == 0.0 {
        return Err(WriteError::BadPixelMap { scale: p.scale, offset: p.offset });
    }
    for plan in plans {
        check_storable(section::name(plan.id), plan.values, plan.dtype)?;
    }
    let meta = encode_metadata(&opts.metadata)?;
    debug_assert!(plans.len() <= MAX_SECTIONS);
    let table_end = HEADER_SIZE + plans.len() * SECTION_ENTRY_SIZE;
    let mut total = (table_end + meta.len()) as u64;
    for plan in plans {
        total = align_up(total as usize) as u64 + plan.dtype.storage_bytes(plan.rows, plan.cols) as u64;
        if total > u64::from(u32::MAX) {
            return Err(WriteError::TooLarge { bytes: total });
        }
    }
    let mut out = Vec::with_capacity(total as usize);
    out.resize(table_end, 0);
    out.extend_from_slice(&meta);
    for (i, plan) in plans.iter().enumerate() {
        out.resize(align_up(out.len()), 0);
        let offset = out.len();
        let rows = plan.rows / plan.blocks;
        for block in 0..plan.blocks {
            let values = &plan.values[block * rows * plan.cols..(block + 1) * rows * plan.cols];
            encode_tensor(values, rows, plan.cols, plan.dtype, &mut out);
        }
        let entry = SectionEntry {
            id: plan.id,
            dtype_code: plan.dtype as u8,
            reserved: 0,
            rows: plan.rows as u32,
            cols: plan.cols as u32,
            offset: offset as u32,
            len: (out.len() - offset) as u32,
        };
        let at = HEADER_SIZE + i * SECTION_ENTRY_SIZE;
        out[at..at + SECTION_ENTRY_SIZE].copy_from_slice(&entry.encode());
    }
    debug_assert_eq!(out.len() as u64, total);
    let header = Header {
        version: FORMAT_VERSION,
        shape,
        pixel: p,
        kind,
        dim: d as u32,
        rank: k as u32,
        num_sigmas: l as u32,
        floor,
        section_count: plans.len() as u32,
        metadata_offset: table_end as u32,
        metadata_len: meta.len() as u32,
        total_len: out.len() as u32,
        payload_crc: CRC32.checksum(&out[HEADER_SIZE..]),
        header_crc: 0,
    };
    out[..HEADER_SIZE].copy_from_slice(&header.encode());
    // Read it back exactly as a user would, denoiser included.
    Blob::parse(&out)?.model()?;
    Ok(out)
}

/// Writes a Gaussian blob (kind 1: sections MU, U_T, LAMBDA).
///
/// # Errors
/// [`WriteError`] naming the tensor and index for wrong lengths, non-finite values, negative or ascending
/// eigenvalues, a negative floor, values outside f16's range when `opts.dtype` is f16, exceeded limits,
/// invalid metadata; [`WriteError::Rejected`] if the result does not read back.
pub fn write_gaussian(params: &GaussianParams, opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    let (d, k) = params.validate()?;
    let plans = params.plans(opts.dtype, d, k);
    assemble(Kind::Gaussian, params.shape, (d, k, 0), params.floor, &plans, opts)
}

/// Writes a mixture blob (kind 4: sections MU, U_T, LAMBDA stacked in K blocks, WEIGHTS, FLOORS; K in the
/// header's L field, header floor 0). Labels, if any, are appended to `opts.metadata` under
/// [`format::LABELS_KEY`].
///
/// # Errors
/// As [`write_gaussian`] for each component; components of different shapes or ranks, bad weights
/// (negative, non-finite, all zero) or labels, more than [`MAX_COMPONENTS`] components.
pub fn write_mixture(params: &MixtureParams, opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    let (shape, d, k, n) = params.validate()?;
    let st = params.stacks();
    let plans = params.plans(&st, opts.dtype, d, k, n);
    let mut opts = opts.clone();
    if !params.labels.is_empty() {
        opts.metadata.push((format::LABELS_KEY.into(), params.labels.join(",")));
    }
    assemble(Kind::Mixture, shape, (d, k, n), 0.0, &plans, &opts)
}

/// Writes a linear blob (kind 2 dense: SIGMAS, W, B; kind 3 basis: SIGMAS, U_T, M, A, B).
///
/// # Errors
/// As [`write_gaussian`]; sigmas must be finite, > 0 and strictly descending, with 1..=256 levels.
pub fn write_linear(params: &LinearParams, opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    let (kind, d, k, l) = params.validate(opts.dtype)?;
    let plans = params.plans(opts.dtype, d, k, l);
    assemble(kind, params.shape, (d, k, l), 0.0, &plans, opts)
}
