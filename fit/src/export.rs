//! The one exporter helper of the host tools: everything between a fitted Gaussian or a set of
//! per-sigma linear maps and the bytes of a blob that core's writer
//! ([`gaussdiff_core::blob::write`]) produces. `gaussdiff export` / `gaussdiff demo`, the trainer's
//! `train --gaussian-blob` and `distill --blob`, and its experiments all go through here.
//!
//! * [`Provenance`]: the metadata every blob carries (`dataset`, `n_train`, optional
//!   `explained_variance`, `tool_version`, optional `source`, in that order) -> [`WriteOptions`].
//! * [`gaussian_blob`]: a [`GaussianFit`] -> Gaussian blob bytes; [`mixture_blob`]: a [`MixtureFit`] ->
//!   mixture blob bytes (kind 4, component labels in the metadata).
//! * [`dominant_basis`] and [`project`]: the shared-basis form of linear maps. With an orthonormal
//!   basis `U` (`d x k`, stored as rows `U^T`): `M_i = U^T W_i U` (`k x k`) and
//!   `a_i = tr((I - U U^T) W_i) / (d - k)`, the mean eigenvalue of `W_i` on the complement, so that
//!   `W_i ~ U M_i U^T + a_i (I - U U^T)` (exact when `W_i` is a Gaussian's closed form and `U` its
//!   eigenvectors).
//! * [`parse_dtype`]: core's [`DType::from_name`] with the CLI's error text (a clap `value_parser`).

use faer::{Accum, Mat, Par};
use gaussdiff_core::blob::write::{
    self, GaussianParams, LinearMaps, LinearParams, MixtureParams, WriteError, WriteOptions,
};
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_core::tensor::DType;

use crate::gaussian::{eigh_descending, FitError, GaussianFit};
use crate::mixture::MixtureFit;

/// A storage type from its name: `f32`, `f16`, `i8` (or `int8`).
///
/// # Errors
/// For any other name: `invalid dtype '{s}': expected f32, f16 or i8`.
pub fn parse_dtype(s: &str) -> Result<DType, String> {
    DType::from_name(s).ok_or_else(|| format!("invalid dtype '{s}': expected f32, f16 or i8"))
}

/// Where a blob came from: its metadata entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    /// Dataset name (`dataset`).
    pub dataset: String,
    /// Number of training images (`n_train`), as written.
    pub n_train: String,
    /// Fraction of the variance the kept eigenvectors explain (`explained_variance`, 6 decimals).
    pub explained_variance: Option<f64>,
    /// Writing tool and version (`tool_version`), e.g. `gaussdiff 0.1.0`.
    pub tool: String,
    /// What the blob holds (`source`), e.g. `distilled`.
    pub source: Option<String>,
    /// How the data was prepared (`prep.*` entries from `LoadOptions::to_metadata`: resize, grayscale,
    /// hold-out, limit, seed), so `gaussdiff sample --nearest` can prepare the same training set.
    pub preparation: Vec<(String, String)>,
}

impl Provenance {
    /// Provenance with the three mandatory entries.
    pub fn new(dataset: impl Into<String>, n_train: impl ToString, tool: impl Into<String>) -> Self {
        Self {
            dataset: dataset.into(),
            n_train: n_train.to_string(),
            explained_variance: None,
            tool: tool.into(),
            source: None,
            preparation: Vec::new(),
        }
    }

    /// With the `prep.*` entries of the load options the data went through.
    pub fn with_preparation(mut self, opts: &crate::dataset::LoadOptions) -> Self {
        self.preparation = opts.to_metadata();
        self
    }

    /// With an `explained_variance` entry.
    pub fn with_explained_variance(mut self, v: f64) -> Self {
        self.explained_variance = Some(v);
        self
    }

    /// With a `source` entry.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The metadata entries, in the order they are stored.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let mut m = vec![("dataset".to_string(), self.dataset.clone()), ("n_train".to_string(), self.n_train.clone())];
        if let Some(v) = self.explained_variance {
            m.push(("explained_variance".to_string(), format!("{v:.6}")));
        }
        m.push(("tool_version".to_string(), self.tool.clone()));
        if let Some(s) = &self.source {
            m.push(("source".to_string(), s.clone()));
        }
        m.extend(self.preparation.iter().cloned());
        m
    }

    /// Writer options: storage type, pixel map and these metadata entries.
    pub fn write_options(&self, dtype: DType, pixel: PixelMap) -> WriteOptions {
        WriteOptions { dtype, pixel, metadata: self.metadata() }
    }
}

/// A dataset name reduced to metadata-safe characters: lower-case ASCII letters, digits and `_.-`, every
/// other character replaced by `_`.
pub fn metadata_name(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' })
        .collect()
}

/// Serialise a fitted Gaussian of images of `shape` as a blob. Returns the bytes and the parameters
/// written (for the quantisation report).
///
/// # Errors
/// Whatever core's writer reports.
pub fn gaussian_blob(
    g: &GaussianFit,
    shape: ImageShape,
    dtype: DType,
    pixel: PixelMap,
    provenance: &Provenance,
) -> Result<(Vec<u8>, GaussianParams), WriteError> {
    let params = g.to_params(shape);
    let bytes = write::write_gaussian(&params, &provenance.write_options(dtype, pixel))?;
    Ok((bytes, params))
}

/// Serialise a fitted mixture of images of `shape` as a mixture blob. Component labels: `names[label]`
/// where given, else the label's number; an unsupervised mixture stores none. Returns the bytes and the
/// parameters written (for the quantisation report).
///
/// # Errors
/// Whatever core's writer reports.
pub fn mixture_blob(
    m: &MixtureFit,
    shape: ImageShape,
    dtype: DType,
    pixel: PixelMap,
    provenance: &Provenance,
    names: Option<&[String]>,
) -> Result<(Vec<u8>, MixtureParams), WriteError> {
    let labels = if m.labels.iter().all(Option::is_some) {
        m.labels
            .iter()
            .flatten()
            .map(|&l| names.and_then(|n| n.get(usize::from(l)).cloned()).unwrap_or_else(|| l.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    let params = MixtureParams {
        components: m.components.iter().map(|g| g.to_params(shape)).collect(),
        weights: m.weights.iter().map(|&w| w as f32).collect(),
        labels,
    };
    let bytes = write::write_mixture(&params, &provenance.write_options(dtype, pixel))?;
    Ok((bytes, params))
}

/// Serialise per-sigma linear maps (dense or in a shared basis) as a blob.
///
/// # Errors
/// Whatever core's writer reports.
pub fn linear_blob(
    shape: ImageShape,
    maps: LinearMaps,
    dtype: DType,
    pixel: PixelMap,
    provenance: &Provenance,
) -> Result<(Vec<u8>, LinearParams), WriteError> {
    let params = LinearParams { shape, maps };
    let bytes = write::write_linear(&params, &provenance.write_options(dtype, pixel))?;
    Ok((bytes, params))
}

/// Top-`k` eigenvectors (rows, `k x d`) of `sum_i (W_i + W_i^T) / 2` over the `l` maps `w` (`l x d x d`):
/// the subspace the maps act on most.
///
/// # Errors
/// If the eigendecomposition fails.
pub fn dominant_basis(w: &[f32], l: usize, d: usize, k: usize) -> Result<Vec<f32>, FitError> {
    let mut s = Mat::<f64>::zeros(d, d);
    for i in 0..l {
        let wi = &w[i * d * d..(i + 1) * d * d];
        for r in 0..d {
            for c in 0..d {
                s[(r, c)] += 0.5 * (f64::from(wi[r * d + c]) + f64::from(wi[c * d + r]));
            }
        }
    }
    let eig = eigh_descending(s.as_ref())?;
    Ok(eig.vectors[..k * d].iter().map(|&v| v as f32).collect())
}

/// The maps `W_i` in a shared basis (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    /// `M_i = U^T W_i U`, `l x k x k` (f32).
    pub m: Vec<f32>,
    /// `a_i = tr((I - U U^T) W_i) / (d - k)` (0 when `k = d`).
    pub a: Vec<f32>,
    /// Worst relative Frobenius error of `U M_i U^T + a_i (I - U U^T)` against `W_i` over the maps.
    pub worst_rel_error: f64,
}

/// Project the `l` maps `w` (`l x d x d`, row-major) on the orthonormal basis rows `u_t` (`k x d`), in f64
/// with faer's products (`W_i U` first, then `U^T (W_i U)`); `M_i` and `a_i` are rounded to f32 once.
pub fn project(w: &[f32], l: usize, d: usize, u_t: &[f64]) -> Projection {
    let k = u_t.len() / d;
    let u = Mat::<f64>::from_fn(d, k, |r, c| u_t[c * d + r]);
    let mut uu = Mat::<f64>::zeros(d, d);
    faer::linalg::matmul::matmul(uu.as_mut(), Accum::Replace, u.as_ref(), u.transpose(), 1.0, Par::rayon(0));
    let (mut m_all, mut a_all, mut worst) = (Vec::with_capacity(l * k * k), Vec::with_capacity(l), 0.0f64);
    for i in 0..l {
        let wi = Mat::<f64>::from_fn(d, d, |r, c| f64::from(w[i * d * d + r * d + c]));
        let mut wu = Mat::<f64>::zeros(d, k);
        faer::linalg::matmul::matmul(wu.as_mut(), Accum::Replace, wi.as_ref(), u.as_ref(), 1.0, Par::rayon(0));
        let mut m = Mat::<f64>::zeros(k, k);
        faer::linalg::matmul::matmul(m.as_mut(), Accum::Replace, u.transpose(), wu.as_ref(), 1.0, Par::rayon(0));
        let tr_w: f64 = (0..d).map(|j| wi[(j, j)]).sum();
        let tr_m: f64 = (0..k).map(|j| m[(j, j)]).sum();
        let a = if k < d { (tr_w - tr_m) / (d - k) as f64 } else { 0.0 };
        // Reconstruction U M U^T + a (I - U U^T).
        let mut um = Mat::<f64>::zeros(d, k);
        faer::linalg::matmul::matmul(um.as_mut(), Accum::Replace, u.as_ref(), m.as_ref(), 1.0, Par::rayon(0));
        let mut rec = Mat::<f64>::zeros(d, d);
        faer::linalg::matmul::matmul(rec.as_mut(), Accum::Replace, um.as_ref(), u.transpose(), 1.0, Par::rayon(0));
        let (mut err, mut norm) = (0.0, 0.0);
        for c in 0..d {
            for r in 0..d {
                let eye = if r == c { 1.0 } else { 0.0 };
                let v = rec[(r, c)] + a * (eye - uu[(r, c)]);
                err += (v - wi[(r, c)]).powi(2);
                norm += wi[(r, c)].powi(2);
            }
        }
        worst = worst.max(if norm > 0.0 { (err / norm).sqrt() } else { 0.0 });
        for r in 0..k {
            for c in 0..k {
                m_all.push(m[(r, c)] as f32);
            }
        }
        a_all.push(a as f32);
    }
    Projection { m: m_all, a: a_all, worst_rel_error: worst }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names() {
        assert_eq!(parse_dtype("f32"), Ok(DType::F32));
        assert_eq!(parse_dtype("f16"), Ok(DType::F16));
        assert_eq!(parse_dtype("int8"), Ok(DType::I8));
        assert!(parse_dtype("f64").unwrap_err().contains("expected f32, f16 or i8"));
    }

    #[test]
    fn metadata_order() {
        let p = Provenance::new("digits", 1797, "gaussdiff 0").with_explained_variance(0.5).with_source("x");
        let keys: Vec<_> = p.metadata().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["dataset", "n_train", "explained_variance", "tool_version", "source"]);
        assert_eq!(metadata_name("Frey Faces.MAT"), "frey_faces.mat");
    }

    #[test]
    fn projection_of_a_basis_map_is_exact() {
        // W = U diag(2, 3) U^T + 0.5 (I - U U^T) with U the first two unit vectors of R^3.
        let w = [2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.5];
        let p = project(&w, 1, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(p.m, [2.0, 0.0, 0.0, 3.0]);
        assert_eq!(p.a, [0.5]);
        assert!(p.worst_rel_error < 1e-15);
    }
}
