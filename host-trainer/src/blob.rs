//! Blobs written through gaussdiff-core's writer: the Gaussian of the training data (`train
//! --gaussian-blob`) and distilled linear maps (`distill --blob`), dense or projected on the data's
//! top-k eigenbasis.
//!
//! Basis projection of a distilled map (orthonormal basis rows `U^T`, k x d):
//! `M_i = U^T W_i U` (k x k) and `a_i = tr((I - U U^T) W_i) / (d - k)`, the mean eigenvalue of `W_i` on
//! the complement, so that `W_i ~ U M_i U^T + a_i (I - U U^T)` (exact when `W_i` is the Gaussian's
//! closed form and `U` its eigenvectors).

use anyhow::{Context, Result};
use gaussdiff_core::blob::write::{
    write_gaussian, write_linear, GaussianParams, LinearMaps as CoreMaps, LinearParams, WriteOptions,
};
use gaussdiff_core::tensor::DType;
use std::path::Path;

use crate::data::TrainData;
use crate::distill::LinearMaps;
use crate::gauss::Gaussian;
use crate::st::write_atomic;

fn options(data: &TrainData, dtype: DType, kind: &str) -> WriteOptions {
    WriteOptions {
        dtype,
        pixel: data.pixel,
        metadata: vec![
            (
                "dataset".into(),
                data.name
                    .to_ascii_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' })
                    .collect(),
            ),
            ("n_train".into(), data.n().to_string()),
            ("tool_version".into(), format!("gaussdiff-train {}", env!("CARGO_PKG_VERSION"))),
            ("source".into(), kind.into()),
        ],
    }
}

/// Write the full-rank Gaussian (mean, all eigenvectors and eigenvalues, floor 0) of `data`'s
/// training images as a blob with f32 storage. Returns the byte count.
pub fn write_gaussian_blob(data: &TrainData, g: &Gaussian, rank: Option<usize>, path: &Path) -> Result<usize> {
    let d = data.dim();
    let k = rank.unwrap_or(d).clamp(1, d);
    let params = GaussianParams {
        shape: data.shape,
        mu: g.mu.iter().map(|&v| v as f32).collect(),
        u_t: g.u_rows[..k * d].iter().map(|&v| v as f32).collect(),
        lambda: g.lambda[..k].iter().map(|&v| v as f32).collect(),
        floor: 0.0,
    };
    let bytes = write_gaussian(&params, &options(data, DType::F32, "gaussian-of-training-data"))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    write_atomic(path, &bytes)?;
    Ok(bytes.len())
}

/// Write distilled maps as a linear blob: dense when `basis` is `None`, else projected on the first
/// `k` rows of `basis`. Returns the byte count.
pub fn write_linear_blob(
    data: &TrainData,
    maps: &LinearMaps,
    basis: Option<(&Gaussian, usize)>,
    dtype: DType,
    path: &Path,
) -> Result<usize> {
    let d = maps.d;
    let l = maps.sigmas.len();
    let sigmas: Vec<f32> = maps.sigmas.iter().map(|&s| s as f32).collect();
    let core_maps = match basis {
        None => CoreMaps::Dense { sigmas, w: maps.w.clone(), b: maps.b.clone() },
        Some((g, k)) => {
            let k = k.clamp(1, d);
            let u = faer::Mat::<f64>::from_fn(d, k, |i, j| g.u_rows[j * d + i]);
            let mut m = Vec::with_capacity(l * k * k);
            let mut a = Vec::with_capacity(l);
            for i in 0..l {
                let w = faer::Mat::<f64>::from_fn(d, d, |r, c| maps.w[i * d * d + r * d + c] as f64);
                let mi = u.transpose() * &w * &u;
                for r in 0..k {
                    for c in 0..k {
                        m.push(mi[(r, c)] as f32);
                    }
                }
                let tr_w: f64 = (0..d).map(|r| w[(r, r)]).sum();
                let tr_m: f64 = (0..k).map(|r| mi[(r, r)]).sum();
                a.push(if k < d { ((tr_w - tr_m) / (d - k) as f64) as f32 } else { 0.0 });
            }
            CoreMaps::Basis {
                sigmas,
                u_t: g.u_rows[..k * d].iter().map(|&v| v as f32).collect(),
                m,
                a,
                b: maps.b.clone(),
            }
        }
    };
    let params = LinearParams { shape: data.shape, maps: core_maps };
    let bytes = write_linear(&params, &options(data, dtype, "distilled"))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes.len())
}
