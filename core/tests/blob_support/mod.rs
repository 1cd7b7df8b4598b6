//! Shared helpers for the blob tests: deterministic model parameters, byte patching with CRC repair, and
//! the f64 views used as references.
#![allow(dead_code)]

use gaussdiff_core::blob::format::{header, CRC32, HEADER_SIZE};
use gaussdiff_core::blob::write::{GaussianParams, LinearMaps, LinearParams, WriteOptions};
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_core::rng::Rng;
use gaussdiff_core::tensor::DType;

/// Every storage type.
pub const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::I8];

/// `n` standard normal values from `seed`.
pub fn normals(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut v = vec![0.0f32; n];
    rng.fill_normal(&mut v);
    v
}

/// `k` orthonormal rows of length `d` (Gram-Schmidt in f64 on normal vectors), row-major.
pub fn orthonormal_rows(seed: u64, k: usize, d: usize) -> Vec<f32> {
    assert!(k <= d);
    let raw = normals(seed, k * d);
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(k);
    for r in 0..k {
        let mut v: Vec<f64> = raw[r * d..(r + 1) * d].iter().map(|&x| f64::from(x)).collect();
        for _ in 0..2 {
            for u in &rows {
                let p: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
            }
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        rows.push(v);
    }
    rows.into_iter().flatten().map(|x| x as f32).collect()
}

/// A shape with `d = c * h * w`.
pub fn shape(channels: u16, height: u16, width: u16) -> ImageShape {
    ImageShape { channels, height, width }
}

/// A Gaussian with descending eigenvalues `4, 4/2, 4/3, ...`, orthonormal basis, floor `c`.
pub fn gaussian(seed: u64, shape: ImageShape, k: usize, floor: f32) -> GaussianParams {
    let d = shape.dim();
    GaussianParams {
        shape,
        mu: normals(seed, d).iter().map(|v| 0.3 * v).collect(),
        u_t: orthonormal_rows(seed + 1, k, d),
        lambda: (0..k).map(|i| 4.0 / (i as f32 + 1.0)).collect(),
        floor,
    }
}

/// The sigma grid `80 * 0.5^i`, `l` levels (strictly descending).
pub fn sigmas(l: usize) -> Vec<f32> {
    (0..l).map(|i| 80.0 * 0.5f32.powi(i as i32)).collect()
}

/// Dense linear maps with random weights.
pub fn linear_dense(seed: u64, shape: ImageShape, l: usize) -> LinearParams {
    let d = shape.dim();
    LinearParams {
        shape,
        maps: LinearMaps::Dense {
            sigmas: sigmas(l),
            w: normals(seed, l * d * d).iter().map(|v| 0.2 * v).collect(),
            b: normals(seed + 1, l * d).iter().map(|v| 0.1 * v).collect(),
        },
    }
}

/// Shared-basis linear maps with random weights.
pub fn linear_basis(seed: u64, shape: ImageShape, k: usize, l: usize) -> LinearParams {
    let d = shape.dim();
    LinearParams {
        shape,
        maps: LinearMaps::Basis {
            sigmas: sigmas(l),
            u_t: orthonormal_rows(seed, k, d),
            m: normals(seed + 1, l * k * k).iter().map(|v| 0.3 * v).collect(),
            a: (0..l).map(|i| 1.0 / (1.0 + i as f32)).collect(),
            b: normals(seed + 2, l * d).iter().map(|v| 0.1 * v).collect(),
        },
    }
}

/// Options with `dtype`, EDM pixels and the conventional metadata keys.
pub fn opts(dtype: DType) -> WriteOptions {
    WriteOptions {
        dtype,
        pixel: PixelMap::EDM,
        metadata: vec![
            ("dataset".into(), "unit-test".into()),
            ("n_train".into(), "1000".into()),
            ("tool_version".into(), "gaussdiff 0.1.0".into()),
        ],
    }
}

/// Little-endian `u32` at `at`.
pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Overwrites a little-endian `u32` at `at`.
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Overwrites a little-endian `u16` at `at`.
pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes the payload CRC (over `[64, len)`) and then the header CRC, so that a deliberately
/// inconsistent blob reaches the structural checks.
pub fn fix_crcs(b: &mut [u8]) {
    let payload = CRC32.checksum(&b[HEADER_SIZE..]);
    put_u32(b, header::PAYLOAD_CRC, payload);
    let h = CRC32.checksum(&b[..header::HEADER_CRC]);
    put_u32(b, header::HEADER_CRC, h);
}

/// Like [`fix_crcs`] but also sets `total_len` to the slice length first.
pub fn fix_len_and_crcs(b: &mut [u8]) {
    let n = b.len() as u32;
    put_u32(b, header::TOTAL_LEN, n);
    fix_crcs(b);
}
