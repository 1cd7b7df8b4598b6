//! Round trips through the writer and the reader for every storage type and every denoiser kind.
//!
//! Decoded values are compared with the original parameters in f64 with per-type bounds:
//! * f32: bit-exact;
//! * f16: `|q - x| <= 2^-11 |x| + 2^-25` (round to nearest: half an ulp, relative 2^-11 for normal numbers,
//!   absolute 2^-25 in the subnormal range);
//! * int8: `|q - x| <= scale_r / 2 * (1 + 1e-6)` with `scale_r = max_c |x_rc| / 127` (half a quantisation step).
//!
//! The denoisers built by `Blob::model` are then checked against f64 references of the documented formulas,
//! computed once from the decoded weights (tight: f32 rounding only) and once from the original weights
//! (bounded by the storage error).
#![cfg(feature = "std")]

mod blob_support;

use blob_support::*;
use gaussdiff_core::blob::format::{section, HEADER_SIZE, SECTION_ENTRY_SIZE, WRITER_ALIGN};
use gaussdiff_core::blob::write::{
    quantize_roundtrip_error, write_gaussian, write_linear, GaussianParams, LinearMaps, LinearParams,
};
use gaussdiff_core::blob::{Blob, Kind};
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::pixel::PixelMap;
use gaussdiff_core::tensor::{DType, Tensor};

/// Decoded `rows x cols` values of a tensor in f64.
fn decoded(t: &Tensor<'_>) -> Vec<f64> {
    (0..t.rows()).flat_map(|r| (0..t.cols()).map(move |c| f64::from(t.get(r, c)))).collect()
}

/// Asserts every decoded value is within the storage bound of its original.
fn assert_storage_close(name: &str, t: &Tensor<'_>, original: &[f32]) {
    assert_eq!(t.len(), original.len(), "{name}: element count");
    let cols = t.cols();
    for r in 0..t.rows() {
        let row = &original[r * cols..(r + 1) * cols];
        let scale = row.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs()))) / 127.0;
        for (c, &x) in row.iter().enumerate() {
            let (q, x) = (f64::from(t.get(r, c)), f64::from(x));
            let bound = match t.dtype() {
                DType::F32 => 0.0,
                DType::F16 => x.abs() * 2f64.powi(-11) + 2f64.powi(-25),
                DType::I8 => scale / 2.0 * (1.0 + 1e-6),
            };
            assert!(
                (q - x).abs() <= bound,
                "{name}[{r},{c}] ({:?}): stored {q}, original {x}, bound {bound}",
                t.dtype()
            );
        }
    }
}

/// `sqrt(sum (a-b)^2) / sqrt(sum b^2)`.
fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(&a, &b)| (f64::from(a) - b).powi(2)).sum();
    let den: f64 = b.iter().map(|b| b * b).sum();
    (num / den).sqrt()
}

/// f64 reference of the Gaussian denoiser, `mu + f (x - mu) + U diag(g - f) U^T (x - mu)`.
fn gaussian_ref(mu: &[f64], u_t: &[f64], lambda: &[f64], c: f64, x: &[f32], sigma: f64) -> Vec<f64> {
    let d = mu.len();
    let s2 = sigma * sigma;
    let f = if c + s2 > 0.0 { c / (c + s2) } else { 0.0 };
    let y: Vec<f64> = x.iter().zip(mu).map(|(&x, m)| f64::from(x) - m).collect();
    let mut out: Vec<f64> = mu.iter().zip(&y).map(|(m, y)| m + f * y).collect();
    for (i, &l) in lambda.iter().enumerate() {
        let u = &u_t[i * d..(i + 1) * d];
        let p: f64 = u.iter().zip(&y).map(|(a, b)| a * b).sum();
        let g = if l + s2 > 0.0 { l / (l + s2) } else { 0.0 };
        out.iter_mut().zip(u).for_each(|(o, u)| *o += (g - f) * p * u);
    }
    out
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// f64 reference of linear level `i`: dense `W_i x + b_i`, or basis `U M_i U^T x + a_i (x - U U^T x) + b_i`.
fn linear_level_ref(maps: &Maps64, d: usize, i: usize, x: &[f32]) -> Vec<f64> {
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let b = &maps.b[i * d..(i + 1) * d];
    match maps.k {
        None => (0..d)
            .map(|r| {
                let w = &maps.w[(i * d + r) * d..(i * d + r + 1) * d];
                w.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() + b[r]
            })
            .collect(),
        Some(k) => {
            let c: Vec<f64> =
                (0..k).map(|j| maps.u_t[j * d..(j + 1) * d].iter().zip(&x).map(|(a, b)| a * b).sum()).collect();
            let a = maps.a[i];
            let z: Vec<f64> = (0..k)
                .map(|r| {
                    let m = &maps.m[(i * k + r) * k..(i * k + r + 1) * k];
                    m.iter().zip(&c).map(|(a, b)| a * b).sum::<f64>() - a * c[r]
                })
                .collect();
            (0..d).map(|j| a * x[j] + b[j] + (0..k).map(|r| maps.u_t[r * d + j] * z[r]).sum::<f64>()).collect()
        }
    }
}

/// Linear maps in f64 (either original or decoded).
struct Maps64 {
    k: Option<usize>,
    sigmas: Vec<f64>,
    w: Vec<f64>,
    u_t: Vec<f64>,
    m: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Maps64 {
    fn from_params(p: &LinearParams) -> Self {
        match &p.maps {
            LinearMaps::Dense { sigmas, w, b } => {
                Self { k: None, sigmas: to64(sigmas), w: to64(w), u_t: vec![], m: vec![], a: vec![], b: to64(b) }
            }
            LinearMaps::Basis { sigmas, u_t, m, a, b } => Self {
                k: Some(u_t.len() / p.shape.dim()),
                sigmas: to64(sigmas),
                w: vec![],
                u_t: to64(u_t),
                m: to64(m),
                a: to64(a),
                b: to64(b),
            },
        }
    }

    fn from_blob(blob: &Blob<'_>) -> Self {
        let get = |id| blob.section(id).map(|t| decoded(&t)).unwrap_or_default();
        Self {
            k: (blob.kind() == Kind::LinearBasis).then(|| blob.rank()),
            sigmas: get(section::SIGMAS),
            w: get(section::W),
            u_t: get(section::U_T),
            m: get(section::M),
            a: get(section::A),
            b: get(section::B),
        }
    }

    /// The documented interpolation: linear in ln sigma between neighbouring levels, clamped outside.
    fn denoise(&self, d: usize, x: &[f32], sigma: f64) -> Vec<f64> {
        let s = &self.sigmas;
        let l = s.len();
        if sigma >= s[0] {
            return linear_level_ref(self, d, 0, x);
        }
        if sigma <= s[l - 1] {
            return linear_level_ref(self, d, l - 1, x);
        }
        let i = (0..l - 1).find(|&i| s[i] >= sigma && sigma >= s[i + 1]).unwrap();
        let t = (s[i].ln() - sigma.ln()) / (s[i].ln() - s[i + 1].ln());
        let (d0, d1) = (linear_level_ref(self, d, i, x), linear_level_ref(self, d, i + 1, x));
        d0.iter().zip(&d1).map(|(a, b)| (1.0 - t) * a + t * b).collect()
    }
}

impl Maps64 {
    /// Per-output error bound of a dense level for input `x`: `sum_c beta(W_rc) |x_c|` for the storage
    /// rounding (beta as in `assert_storage_close`) plus `1e-5 (sum_c |W_rc x_c| + |b_r|)` for f32
    /// arithmetic, blended between levels exactly like the outputs.
    fn dense_bound(&self, d: usize, x: &[f32], sigma: f64, dtype: DType) -> Vec<f64> {
        let level = |i: usize| -> Vec<f64> {
            (0..d)
                .map(|r| {
                    let w = &self.w[(i * d + r) * d..(i * d + r + 1) * d];
                    let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs())) / 127.0;
                    let mut storage = 0.0;
                    let mut mag = self.b[i * d + r].abs();
                    for (&wc, &xc) in w.iter().zip(x) {
                        let beta = match dtype {
                            DType::F32 => 0.0,
                            DType::F16 => wc.abs() * 2f64.powi(-11) + 2f64.powi(-25),
                            DType::I8 => scale / 2.0 * (1.0 + 1e-6),
                        };
                        storage += beta * f64::from(xc.abs());
                        mag += (wc * f64::from(xc)).abs();
                    }
                    storage + 1e-5 * mag
                })
                .collect()
        };
        let s = &self.sigmas;
        let l = s.len();
        if sigma >= s[0] {
            return level(0);
        }
        if sigma <= s[l - 1] {
            return level(l - 1);
        }
        let i = (0..l - 1).find(|&i| s[i] >= sigma && sigma >= s[i + 1]).unwrap();
        let t = (s[i].ln() - sigma.ln()) / (s[i].ln() - s[i + 1].ln());
        level(i).iter().zip(level(i + 1)).map(|(a, b)| (1.0 - t) * a + t * b).collect()
    }
}

/// Denoiser-output tolerance (relative L2) against the reference built from the ORIGINAL weights.
fn storage_tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F16 => 2e-3,
        DType::I8 => 3e-2,
    }
}

/// Tolerance against the reference built from the DECODED weights: f32 arithmetic only.
const ARITH_TOL: f64 = 1e-5;

fn run(model: &impl Denoiser, x: &[f32], sigma: f32) -> Vec<f32> {
    let mut out = vec![0.0; model.dim()];
    let mut scratch = vec![0.0; model.scratch_len()];
    model.denoise(x, sigma, &mut out, &mut scratch);
    out
}

fn check_header_and_metadata(blob: &Blob<'_>, kind: Kind) {
    assert_eq!(blob.version(), 1);
    assert_eq!(blob.kind(), kind);
    assert_eq!(blob.pixel_map(), PixelMap::EDM);
    assert!(blob.checksum_ok());
    let md = blob.metadata();
    assert_eq!(md.get("dataset"), Some("unit-test"));
    assert_eq!(md.get("n_train"), Some("1000"));
    assert_eq!(md.get("tool_version"), Some("gaussdiff 0.1.0"));
    assert_eq!(md.get("missing"), None);
    let keys: Vec<&str> = md.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["dataset", "n_train", "tool_version"]);
    assert_eq!(blob.total_len(), blob.bytes().len());
    // The writer's layout: every tensor on a WRITER_ALIGN boundary, after table and metadata.
    let table_end = HEADER_SIZE + SECTION_ENTRY_SIZE * blob.sections().count();
    for s in blob.sections() {
        assert_eq!(s.offset % WRITER_ALIGN, 0, "{}", s.name());
        assert!(s.offset >= table_end + md.bytes().len());
        assert_eq!(s.len, s.dtype.storage_bytes(s.rows, s.cols));
    }
}

/// The same blob copied to offsets 1..3 of a buffer parses to identical values and identical outputs.
fn check_misaligned(bytes: &[u8], x: &[f32], sigmas: &[f32]) {
    let aligned = Blob::parse(bytes).unwrap();
    let model = aligned.model().unwrap();
    for shift in 1..=3 {
        let mut buf = vec![0xA5u8; shift];
        buf.extend_from_slice(bytes);
        let blob = Blob::parse(&buf[shift..]).unwrap();
        for s in aligned.sections() {
            let (a, b) = (aligned.section(s.id).unwrap(), blob.section(s.id).unwrap());
            let bits = |t: &Tensor<'_>| decoded(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "section {} at shift {shift}", s.name());
        }
        let m = blob.model().unwrap();
        for &sigma in sigmas {
            let (o1, o2) = (run(&model, x, sigma), run(&m, x, sigma));
            assert_eq!(
                o1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                o2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}

fn gaussian_case(dtype: DType, p: &GaussianParams) {
    let bytes = write_gaussian(p, &opts(dtype)).unwrap();
    assert_eq!(bytes, write_gaussian(p, &opts(dtype)).unwrap(), "writer is deterministic");
    let blob = Blob::parse(&bytes).unwrap();
    let (d, k) = (p.shape.dim(), p.lambda.len());
    check_header_and_metadata(&blob, Kind::Gaussian);
    assert_eq!((blob.shape(), blob.dim(), blob.rank(), blob.num_sigmas(), blob.floor()), (p.shape, d, k, 0, p.floor));

    let mu = blob.section(section::MU).unwrap();
    let u_t = blob.section(section::U_T).unwrap();
    let lambda = blob.section(section::LAMBDA).unwrap();
    assert_eq!((mu.dtype(), u_t.dtype(), lambda.dtype()), (DType::F32, dtype, DType::F32));
    assert_eq!((u_t.rows(), u_t.cols()), (k, d));
    assert_storage_close("mu", &mu, &p.mu);
    assert_storage_close("u_t", &u_t, &p.u_t);
    assert_storage_close("lambda", &lambda, &p.lambda);

    let model = blob.model().unwrap();
    assert!(model.as_gaussian().is_some());
    assert_eq!((model.dim(), model.scratch_len(), model.macs_per_eval()), (d, k, (2 * d * k + d) as u64));
    let orig = (to64(&p.mu), to64(&p.u_t), to64(&p.lambda));
    let dec = (decoded(&mu), decoded(&u_t), decoded(&lambda));
    let sigmas = [0.0f32, 0.01, 0.3, 1.0, 5.0, 80.0];
    for (j, &sigma) in sigmas.iter().enumerate() {
        let x: Vec<f32> = normals(100 + j as u64, d).iter().map(|v| v * (1.0 + sigma)).collect();
        let out = run(&model, &x, sigma);
        let s = f64::from(sigma);
        let c = f64::from(p.floor);
        let e_dec = rel_err(&out, &gaussian_ref(&dec.0, &dec.1, &dec.2, c, &x, s));
        let e_orig = rel_err(&out, &gaussian_ref(&orig.0, &orig.1, &orig.2, c, &x, s));
        assert!(e_dec < ARITH_TOL, "{dtype:?} sigma {sigma}: {e_dec} vs decoded-weight reference");
        assert!(e_orig < storage_tol(dtype), "{dtype:?} sigma {sigma}: {e_orig} vs original-weight reference");
    }
    check_misaligned(&bytes, &normals(7, d), &sigmas);
}

#[test]
fn gaussian_round_trip_every_dtype() {
    for dtype in DTYPES {
        gaussian_case(dtype, &gaussian(11, shape(1, 4, 5), 6, 0.05));
        // Full rank (k = d, the floor is irrelevant) and an RGB shape.
        gaussian_case(dtype, &gaussian(12, shape(3, 2, 2), 12, 0.0));
        // Rank 0: the isotropic Gaussian N(mu, c I).
        gaussian_case(dtype, &gaussian(13, shape(1, 3, 3), 0, 0.5));
    }
}

fn linear_case(dtype: DType, p: &LinearParams) {
    let bytes = write_linear(p, &opts(dtype)).unwrap();
    assert_eq!(bytes, write_linear(p, &opts(dtype)).unwrap(), "writer is deterministic");
    let blob = Blob::parse(&bytes).unwrap();
    let d = p.shape.dim();
    let orig = Maps64::from_params(p);
    let kind = if orig.k.is_some() { Kind::LinearBasis } else { Kind::LinearDense };
    check_header_and_metadata(&blob, kind);
    assert_eq!(
        (blob.shape(), blob.dim(), blob.rank(), blob.num_sigmas()),
        (p.shape, d, orig.k.unwrap_or(0), orig.sigmas.len())
    );
    assert_eq!(blob.floor(), 0.0);
    match &p.maps {
        LinearMaps::Dense { sigmas, w, b } => {
            assert_storage_close("sigmas", &blob.section(section::SIGMAS).unwrap(), sigmas);
            assert_eq!(blob.section(section::W).unwrap().dtype(), dtype);
            assert_storage_close("w", &blob.section(section::W).unwrap(), w);
            assert_storage_close("b", &blob.section(section::B).unwrap(), b);
        }
        LinearMaps::Basis { sigmas, u_t, m, a, b } => {
            assert_storage_close("sigmas", &blob.section(section::SIGMAS).unwrap(), sigmas);
            assert_eq!(blob.section(section::U_T).unwrap().dtype(), dtype);
            assert_eq!(blob.section(section::M).unwrap().dtype(), dtype);
            assert_storage_close("u_t", &blob.section(section::U_T).unwrap(), u_t);
            assert_storage_close("m", &blob.section(section::M).unwrap(), m);
            assert_storage_close("a", &blob.section(section::A).unwrap(), a);
            assert_storage_close("b", &blob.section(section::B).unwrap(), b);
        }
    }
    let model = blob.model().unwrap();
    assert!(model.as_linear().is_some());
    let dec = Maps64::from_blob(&blob);
    // On the grid, between grid points, and outside it on both sides.
    let grid = &orig.sigmas;
    let mut sigmas: Vec<f32> = grid.iter().map(|&s| s as f32).collect();
    sigmas.extend(grid.windows(2).map(|w| (w[0] * w[1]).sqrt() as f32));
    sigmas.extend([200.0, (grid[grid.len() - 1] / 3.0) as f32, 0.0]);
    for (j, &sigma) in sigmas.iter().enumerate() {
        let x = normals(200 + j as u64, d);
        let out = run(&model, &x, sigma);
        let e_dec = rel_err(&out, &dec.denoise(d, &x, f64::from(sigma)));
        let reference = orig.denoise(d, &x, f64::from(sigma));
        assert!(e_dec < ARITH_TOL, "{kind:?} {dtype:?} sigma {sigma}: {e_dec} vs decoded-weight reference");
        if orig.k.is_some() {
            let e_orig = rel_err(&out, &reference);
            assert!(e_orig < storage_tol(dtype), "{kind:?} {dtype:?} sigma {sigma}: {e_orig} vs original reference");
        } else {
            // Dense maps of tiny d cancel a lot, so bound each output by the storage error it can carry.
            let bound = orig.dense_bound(d, &x, f64::from(sigma), dtype);
            for (r, ((&o, y), b)) in out.iter().zip(&reference).zip(&bound).enumerate() {
                assert!((f64::from(o) - y).abs() <= *b, "{dtype:?} sigma {sigma} out[{r}] {o} vs {y}, bound {b}");
            }
        }
    }
    check_misaligned(&bytes, &normals(8, d), &sigmas);
}

#[test]
fn linear_dense_round_trip_every_dtype() {
    for dtype in DTYPES {
        linear_case(dtype, &linear_dense(21, shape(1, 2, 3), 4));
        linear_case(dtype, &linear_dense(22, shape(1, 1, 1), 1));
    }
}

#[test]
fn linear_basis_round_trip_every_dtype() {
    for dtype in DTYPES {
        linear_case(dtype, &linear_basis(31, shape(3, 2, 2), 4, 3));
        linear_case(dtype, &linear_basis(32, shape(1, 4, 4), 16, 5));
    }
}

#[test]
fn quantization_report_matches_decoded_blob() {
    let p = gaussian(41, shape(1, 8, 8), 10, 0.1);
    for dtype in DTYPES {
        let report = p.quantization_report(dtype).unwrap();
        assert_eq!(report.iter().map(|q| q.name).collect::<Vec<_>>(), ["mu", "u_t", "lambda"]);
        let bytes = write_gaussian(&p, &opts(dtype)).unwrap();
        let blob = Blob::parse(&bytes).unwrap();
        for q in &report {
            let t = blob.section(q.section).unwrap();
            assert_eq!(t.dtype(), q.dtype);
            let orig = to64(match q.section {
                section::MU => &p.mu,
                section::U_T => &p.u_t,
                _ => &p.lambda,
            });
            let dec = decoded(&t);
            let num: f64 = dec.iter().zip(&orig).map(|(a, b)| (a - b).powi(2)).sum();
            let den: f64 = orig.iter().map(|b| b * b).sum();
            assert!((q.rel_frobenius - (num / den).sqrt()).abs() <= 1e-12, "{q:?}");
        }
        let u = report[1].rel_frobenius;
        match dtype {
            DType::F32 => assert_eq!(u, 0.0),
            // f16 keeps 11 significant bits; int8 with per-row scales about 7.
            DType::F16 => assert!(u > 0.0 && u < 5e-4, "{u}"),
            DType::I8 => assert!(u > 1e-4 && u < 2e-2, "{u}"),
        }
    }
    assert_eq!(quantize_roundtrip_error(&[0.0; 6], 3, DType::I8), 0.0);
    assert_eq!(quantize_roundtrip_error(&[], 3, DType::F16), 0.0);
    // A row that is all zeros next to a normal one: zeros stay exact.
    let e = quantize_roundtrip_error(&[0.0, 0.0, 1.0, -0.5], 2, DType::I8);
    assert!(e > 0.0 && e < 0.01, "{e}");
}

#[test]
fn int8_rows_use_their_own_scale() {
    // Row 0 is tiny, row 1 huge: per-row scales keep row 0's relative accuracy.
    let p = GaussianParams {
        shape: shape(1, 1, 4),
        mu: vec![0.0; 4],
        u_t: vec![1e-3, -2e-3, 5e-4, 0.0, 1e3, 2e3, -3e3, 4e3],
        lambda: vec![2.0, 1.0],
        floor: 0.0,
    };
    let bytes = write_gaussian(&p, &opts(DType::I8)).unwrap();
    let blob = Blob::parse(&bytes).unwrap();
    let u = blob.section(section::U_T).unwrap();
    assert_eq!(u.row_scale(0), 2e-3 / 127.0);
    assert_eq!(u.row_scale(1), 4e3 / 127.0);
    assert_eq!(u.get(0, 1), -2e-3 / 127.0 * 127.0);
    assert_storage_close("u_t", &u, &p.u_t);
}

/// Blob sizes for the MNIST shape (d = 784, k = 64), per storage type; the layout arithmetic is the spec's.
#[test]
fn mnist_shaped_blob_sizes() {
    let p = gaussian(51, shape(1, 28, 28), 64, 0.01);
    let o = opts(DType::F32);
    let meta: usize = o.metadata.iter().map(|(k, v)| 3 + k.len() + v.len()).sum();
    for (dtype, u_bytes) in [(DType::F32, 64 * 784 * 4), (DType::F16, 64 * 784 * 2), (DType::I8, 64 * 784 + 64 * 4)] {
        let bytes = write_gaussian(&p, &opts(dtype)).unwrap();
        let align = |n: usize| n.div_ceil(WRITER_ALIGN) * WRITER_ALIGN;
        let mut end = HEADER_SIZE + 3 * SECTION_ENTRY_SIZE + meta;
        for len in [784 * 4, u_bytes, 64 * 4] {
            end = align(end) + len;
        }
        assert_eq!(bytes.len(), end, "{dtype:?}");
        println!("d=784 k=64 {}: {} bytes", dtype.name(), bytes.len());
    }
}
