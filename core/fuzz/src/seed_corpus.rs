//! Writes valid blobs (Gaussian, linear dense, linear basis; f32, f16, int8) into `corpus/parse_blob/`, the
//! seed corpus of the `parse_blob` fuzz target. Run from `core/fuzz`: `cargo +nightly run --release --bin seed_corpus`.

use std::path::Path;

use gaussdiff_core::blob::write::{
    write_gaussian, write_linear, GaussianParams, LinearMaps, LinearParams, WriteOptions,
};
use gaussdiff_core::tensor::DType;
use gaussdiff_core::pixel::{ImageShape, PixelMap};

/// Deterministic values in [-1, 1) from a simple LCG (seeds need variety, not quality).
fn values(seed: u32, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new("corpus/parse_blob");
    std::fs::create_dir_all(dir)?;
    let shape = ImageShape { channels: 1, height: 2, width: 3 };
    let d = shape.dim();
    let mut n = 0;
    for dtype in [DType::F32, DType::F16, DType::I8] {
        let opts = WriteOptions {
            dtype,
            pixel: PixelMap::EDM,
            metadata: vec![("dataset".into(), "seed".into()), ("n_train".into(), "6".into())],
        };
        // A unit-vector basis keeps the rows orthonormal.
        let u_t: Vec<f32> = (0..2 * d).map(|i| if i % (d + 1) == 0 { 1.0 } else { 0.0 }).collect();
        let g = GaussianParams { shape, mu: values(1, d), u_t: u_t.clone(), lambda: vec![2.0, 0.5], floor: 0.1 };
        let dense = LinearParams {
            shape,
            maps: LinearMaps::Dense { sigmas: vec![10.0, 1.0, 0.1], w: values(2, 3 * d * d), b: values(3, 3 * d) },
        };
        let basis = LinearParams {
            shape,
            maps: LinearMaps::Basis {
                sigmas: vec![10.0, 1.0, 0.1],
                u_t,
                m: values(4, 3 * 4),
                a: vec![0.1, 0.5, 0.9],
                b: values(5, 3 * d),
            },
        };
        for (name, bytes) in [
            ("gaussian", write_gaussian(&g, &opts)?),
            ("dense", write_linear(&dense, &opts)?),
            ("basis", write_linear(&basis, &opts)?),
        ] {
            std::fs::write(dir.join(format!("{name}-{}.gdn", dtype.name())), bytes)?;
            n += 1;
        }
    }
    println!("wrote {n} seed blobs to {}", dir.display());
    Ok(())
}
