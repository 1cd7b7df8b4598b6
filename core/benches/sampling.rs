//! Criterion benchmarks of the core hot paths: one denoiser evaluation, and one full sample (Heun with 18
//! EDM steps = 35 evaluations, and the exact flow) for
//! * `g784k64` Gaussian, d = 784 (28 x 28), k = 64, floor 0.01, stored f32 / f16 / i8,
//! * `g64full` Gaussian, d = 64 (8 x 8), full rank, f32,
//! * `lin784k64` linear denoiser in a shared basis (d = 784, k = 64, L = 18 levels, f32), evaluated between
//!   two grid levels (the worst case),
//! * baselines measured in the same run: `baseline-slices`, the same `2 d k` multiply-adds on plain `&[f32]`
//!   slices with `kernels::dot`/`kernels::axpy`; `f32-reference` / `f16-reference`, the same Gaussian evaluation
//!   row by row through the element-wise `Tensor::row_dot_reference`/`row_axpy_reference`; `f32-per-row` /
//!   `f16-per-row`, row by row through the byte-row kernels `Tensor::row_dot`/`row_axpy` (the denoiser's
//!   path before the four-row block kernels `Tensor::rows_dot_with`/`rows_axpy_with`).
//!
//! Throughput is in multiply-adds (`Denoiser::macs_per_eval` times evaluations), so criterion's "elem/s"
//! reads as MAC/s.
//!
//! Run: `cargo bench -p gaussdiff-core --bench sampling -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gaussdiff_core::denoiser::{Denoiser, GaussianDenoiser, LinearDenoiser};
use gaussdiff_core::kernels;
use gaussdiff_core::rng::Rng;
use gaussdiff_core::sampler::{exact_scratch_len, sample, sample_exact, scratch_len, Sampler};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_core::tensor::{DType, Tensor};
use nalgebra::DMatrix;
use std::hint::black_box;

fn encode(dtype: DType, rows: usize, cols: usize, values: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    match dtype {
        DType::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => values.iter().for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
        DType::I8 => {
            let mut scales = Vec::new();
            for row in values.chunks(cols) {
                let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let s = if max > 0.0 { max / 127.0 } else { 1.0 };
                row.iter().for_each(|v| out.push((v / s).round() as i8 as u8));
                scales.push(s);
            }
            scales.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        }
    }
    assert_eq!(out.len(), dtype.storage_bytes(rows, cols));
    out
}

/// Row-major `k x d` orthonormal rows, a mean and a descending spectrum.
struct Params {
    d: usize,
    k: usize,
    mu: Vec<f32>,
    u_t: Vec<f32>,
    lambda: Vec<f32>,
}

fn params(d: usize, k: usize) -> Params {
    let mut rng = Rng::new(2026);
    let a = DMatrix::from_fn(d, k, |_, _| rng.normal() as f64);
    let q = a.qr().q();
    let mut u_t = Vec::with_capacity(k * d);
    for r in 0..k {
        u_t.extend((0..d).map(|c| q[(c, r)] as f32));
    }
    let mu = (0..d).map(|_| 0.3 * rng.normal()).collect();
    let lambda = (0..k).map(|i| 10.0 * 0.93f32.powi(i as i32)).collect();
    Params { d, k, mu, u_t, lambda }
}

struct Stored {
    dtype: DType,
    mu: Vec<u8>,
    u_t: Vec<u8>,
    lambda: Vec<u8>,
}

impl Stored {
    fn new(p: &Params, dtype: DType) -> Self {
        Self {
            dtype,
            mu: encode(dtype, 1, p.d, &p.mu),
            u_t: encode(dtype, p.k, p.d, &p.u_t),
            lambda: encode(DType::F32, 1, p.k, &p.lambda),
        }
    }
    fn gaussian(&self, p: &Params, floor: f32) -> GaussianDenoiser<'_> {
        GaussianDenoiser::new(
            Tensor::new(self.dtype, 1, p.d, &self.mu).unwrap(),
            Tensor::new(self.dtype, p.k, p.d, &self.u_t).unwrap(),
            Tensor::new(DType::F32, 1, p.k, &self.lambda).unwrap(),
            floor,
        )
        .unwrap()
    }
}

fn noisy(d: usize, sigma: f32) -> Vec<f32> {
    let mut rng = Rng::new(7);
    (0..d).map(|_| sigma * rng.normal()).collect()
}

fn bench_denoise(c: &mut Criterion) {
    let mut group = c.benchmark_group("denoise");
    let cases = [("g784k64", 784, 64, 0.01f32), ("g64full", 64, 64, 0.0)];
    for (name, d, k, floor) in cases {
        let p = params(d, k);
        let dtypes: &[DType] = if d == 784 { &[DType::F32, DType::F16, DType::I8] } else { &[DType::F32] };
        for &dtype in dtypes {
            let s = Stored::new(&p, dtype);
            let g = s.gaussian(&p, floor);
            let x = noisy(d, 1.0);
            let mut out = vec![0.0f32; d];
            let mut scratch = vec![0.0f32; g.scratch_len()];
            group.throughput(Throughput::Elements(g.macs_per_eval()));
            group.bench_function(BenchmarkId::new(name, dtype.name()), |b| {
                b.iter(|| g.denoise(black_box(&x), black_box(1.0), &mut out, &mut scratch))
            });
            if d == 784 && dtype != DType::I8 {
                // Baselines: the same evaluation row by row, through the element-wise reference kernels
                // (`Tensor::row_dot_reference` / `row_axpy_reference`) and through the per-row byte kernels
                // (`Tensor::row_dot` / `row_axpy`, the denoiser's path before the four-row block kernels);
                // same summation order and bits as `denoise`.
                let (mu, u_t) = (g.mu(), g.u_t());
                let mut coef = vec![0.0f32; k];
                for (label, reference) in [("reference", true), ("per-row", false)] {
                    group.bench_function(BenchmarkId::new(name, format!("{}-{label}", dtype.name())), |b| {
                        b.iter(|| {
                            out.copy_from_slice(black_box(&x));
                            mu.row_axpy(0, -1.0, &mut out);
                            for (i, ci) in coef.iter_mut().enumerate() {
                                let dot = if reference { u_t.row_dot_reference(i, &out) } else { u_t.row_dot(i, &out) };
                                *ci = 0.5 * dot;
                            }
                            out.iter_mut().for_each(|o| *o *= 0.01);
                            mu.row_axpy(0, 1.0, &mut out);
                            for (i, &ci) in coef.iter().enumerate() {
                                if reference {
                                    u_t.row_axpy_reference(i, ci, &mut out);
                                } else {
                                    u_t.row_axpy(i, ci, &mut out);
                                }
                            }
                            black_box(&out);
                        })
                    });
                }
            }
        }
        // Baseline: the same 2dk MACs on plain slices (projection with dot, update with axpy).
        let x = noisy(d, 1.0);
        let mut coef = vec![0.0f32; k];
        let mut out = vec![0.0f32; d];
        group.throughput(Throughput::Elements((2 * d * k + d) as u64));
        group.bench_function(BenchmarkId::new(name, "baseline-slices"), |b| {
            b.iter(|| {
                for (i, ci) in coef.iter_mut().enumerate() {
                    *ci = 0.5 * kernels::dot(&p.u_t[i * d..(i + 1) * d], black_box(&x));
                }
                out.copy_from_slice(&p.mu);
                for (i, &ci) in coef.iter().enumerate() {
                    kernels::axpy(ci, &p.u_t[i * d..(i + 1) * d], &mut out);
                }
                black_box(&out);
            })
        });
    }

    // Linear denoiser in a shared basis, d = 784, k = 64, L = 18, between two grid levels.
    let p = params(784, 64);
    let (d, k, l) = (784, 64, 18);
    let mut sigmas = vec![0.0f32; l + 1];
    EdmSchedule::default().fill(l, &mut sigmas);
    let mut rng = Rng::new(3);
    let m: Vec<f32> = (0..l * k * k).map(|_| 0.1 * rng.normal()).collect();
    let a: Vec<f32> = (0..l).map(|i| i as f32 / l as f32).collect();
    let bias: Vec<f32> = (0..l * d).map(|_| 0.1 * rng.normal()).collect();
    let (sb, ub, mb, ab, bb) = (
        encode(DType::F32, 1, l, &sigmas[..l]),
        encode(DType::F32, k, d, &p.u_t),
        encode(DType::F32, l * k, k, &m),
        encode(DType::F32, 1, l, &a),
        encode(DType::F32, l, d, &bias),
    );
    let lin = LinearDenoiser::basis(
        Tensor::new(DType::F32, 1, l, &sb).unwrap(),
        Tensor::new(DType::F32, k, d, &ub).unwrap(),
        Tensor::new(DType::F32, l * k, k, &mb).unwrap(),
        Tensor::new(DType::F32, 1, l, &ab).unwrap(),
        Tensor::new(DType::F32, l, d, &bb).unwrap(),
    )
    .unwrap();
    let x = noisy(d, 1.0);
    let mut out = vec![0.0f32; d];
    let mut scratch = vec![0.0f32; lin.scratch_len()];
    let sigma = (sigmas[5] * sigmas[6]).sqrt();
    group.throughput(Throughput::Elements(lin.macs_per_eval()));
    group.bench_function(BenchmarkId::new("lin784k64", "f32"), |b| {
        b.iter(|| lin.denoise(black_box(&x), black_box(sigma), &mut out, &mut scratch))
    });
    group.finish();
}

fn bench_sample(c: &mut Criterion) {
    let mut group = c.benchmark_group("sample");
    let mut sigmas = [0.0f32; 19];
    EdmSchedule::default().fill(18, &mut sigmas);
    let cases = [("g784k64", 784, 64, 0.01f32), ("g64full", 64, 64, 0.0)];
    for (name, d, k, floor) in cases {
        let p = params(d, k);
        let dtypes: &[DType] = if d == 784 { &[DType::F32, DType::F16] } else { &[DType::F32] };
        for &dtype in dtypes {
            let s = Stored::new(&p, dtype);
            let g = s.gaussian(&p, floor);
            let x_t = noisy(d, sigmas[0]);
            let mut x = x_t.clone();
            let mut scratch = vec![0.0f32; scratch_len(d, g.scratch_len())];
            group.throughput(Throughput::Elements(35 * g.macs_per_eval()));
            group.bench_function(BenchmarkId::new(format!("{name}/heun18"), dtype.name()), |b| {
                b.iter(|| {
                    x.copy_from_slice(&x_t);
                    sample(&g, Sampler::Heun, &sigmas, None, &mut x, &mut scratch, |_, _| {})
                })
            });
            let mut scratch = vec![0.0f32; exact_scratch_len(&g)];
            group.throughput(Throughput::Elements(g.macs_per_eval()));
            group.bench_function(BenchmarkId::new(format!("{name}/exact"), dtype.name()), |b| {
                b.iter(|| {
                    x.copy_from_slice(&x_t);
                    sample_exact(&g, sigmas[0], &mut x, &mut scratch)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_denoise, bench_sample);
criterion_main!(benches);
