//! The level Gram product on the shape of one MNIST fit chunk (2,674 images x 668 varying pixels): the
//! AVX-512 VNNI kernel against the portable kernel and against faer's f64 lower-triangular product of the
//! same (centred) data, the fit's path for data that are not 8-bit levels. Throughput in multiply-adds of
//! the lower triangle (`m p (p + 1) / 2`).
//!
//! Run: `cargo bench -p gaussdiff-gram --bench gram -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, Par};
use gaussdiff_gram::{vnni_available, Kernel, LevelGram};
use std::hint::black_box;

const M: usize = 2674;
const P: usize = 668;

fn bench(c: &mut Criterion) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let rows: Vec<u8> = (0..M * P)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect();
    let cols: Vec<usize> = (0..P).collect();
    let mut g = c.benchmark_group("gram-2674x668");
    g.throughput(Throughput::Elements((M * P * (P + 1) / 2) as u64));
    let mut lg = LevelGram::new();
    if vnni_available() {
        g.bench_function("levels-vnni", |b| b.iter(|| lg.compute(black_box(&rows), P, &cols, Kernel::Auto)));
    }
    g.bench_function("levels-portable", |b| b.iter(|| lg.compute(black_box(&rows), P, &cols, Kernel::Portable)));
    let a = Mat::<f64>::from_fn(M, P, |k, i| f64::from(rows[k * P + i]) - 127.5);
    let mut out = Mat::<f64>::zeros(P, P);
    g.bench_function("f64-faer-baseline", |b| {
        b.iter(|| {
            triangular::matmul(
                out.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Replace,
                a.transpose(),
                BlockStructure::Rectangular,
                a.as_ref(),
                BlockStructure::Rectangular,
                1.0,
                Par::rayon(0),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
