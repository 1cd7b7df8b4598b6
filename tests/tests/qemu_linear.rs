//! A linear blob (per-sigma maps in a shared basis, the layout `gaussdiff export --linear --basis-rank K`
//! writes) runs on the firmware under QEMU bit-for-bit like the host's core: the linear denoiser goes through
//! the firmware's assembly block kernels, so this checks them on the second model kind. Skips locally
//! without qemu-system-arm/flip-link; fails when `CI` is set.

mod firmware_support;

use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::blob::write::{write_linear, LinearMaps, LinearParams};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::denoiser::Model;
use gaussdiff_core::sampler::Sampler;
use gaussdiff_core::tensor::DType;

/// Per-sigma maps built from the default Frey blob's Gaussian: in its basis `M_i` is the Gaussian's shrinkage
/// `lambda / (lambda + sigma^2)` plus a small off-diagonal coupling (so the k x k products are not diagonal),
/// `a_i` the floor's shrinkage, `b_i = mu - (U M_i U^T + a_i (I - U U^T)) mu` (so `D(mu) = mu`), computed in f64.
fn linear_params(gauss_blob: &[u8]) -> LinearParams {
    let blob = Blob::parse(gauss_blob).expect("default blob parses");
    let Model::Gaussian(g) = blob.model().expect("default blob has a model") else {
        panic!("default blob is Gaussian")
    };
    let (d, k, c) = (g.dim(), g.rank(), f64::from(g.floor()));
    let mu: Vec<f64> = (0..d).map(|j| f64::from(g.mu().get(0, j))).collect();
    let u_t: Vec<f64> = (0..k * d).map(|i| f64::from(g.u_t().get(i / d, i % d))).collect();
    let sigmas = [80.0f32, 20.0, 5.0, 1.5, 0.5, 0.1, 0.02, 0.002];
    let (mut m, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    // U^T mu, once.
    let p: Vec<f64> = (0..k).map(|r| (0..d).map(|j| u_t[r * d + j] * mu[j]).sum()).collect();
    for &s in &sigmas {
        let s2 = f64::from(s) * f64::from(s);
        let mi: Vec<f64> = (0..k * k)
            .map(|i| {
                let (r, q) = (i / k, i % k);
                let l = f64::from(g.lambda(r));
                if r == q {
                    l / (l + s2)
                } else {
                    0.01 * ((r * 7 + q * 3) % 5) as f64 / (1.0 + s2)
                }
            })
            .collect();
        let ai = c / (c + s2);
        // W mu = U M p + a (mu - U p)
        let mp: Vec<f64> = (0..k).map(|r| (0..k).map(|q| mi[r * k + q] * p[q]).sum()).collect();
        for j in 0..d {
            let ump: f64 = (0..k).map(|r| u_t[r * d + j] * mp[r]).sum();
            let up: f64 = (0..k).map(|r| u_t[r * d + j] * p[r]).sum();
            b.push((mu[j] - ump - ai * (mu[j] - up)) as f32);
        }
        m.extend(mi.iter().map(|&v| v as f32));
        a.push(ai as f32);
    }
    let u_t = u_t.iter().map(|&v| v as f32).collect();
    LinearParams { shape: blob.shape(), maps: LinearMaps::Basis { sigmas: sigmas.to_vec(), u_t, m, a, b } }
}

#[test]
fn qemu_linear_blob_is_bit_identical_to_the_host() {
    if fw::qemu_missing() {
        return;
    }
    let (bytes, path) = fw::derived_test_blob("frey-linear-basis-f16.gdn", DType::F16, linear_params, write_linear);

    let envs = [
        ("GAUSSDIFF_BLOB", path.to_str().unwrap()),
        ("GAUSSDIFF_RUNS", "euler:18,heun:18"),
        ("GAUSSDIFF_SEEDS", "0,1"),
    ];
    let run = fw::qemu_ok(&fw::build("qemu", &envs, "qemu-linear").elf, Duration::from_secs(120));

    let blob = Blob::parse(&bytes).unwrap();
    let model = blob.model().unwrap();
    assert!(matches!(model, Model::Linear(_)));
    let frames = fw::frames(&run.stdout);
    for f in &frames {
        assert_eq!(f.extra("blob_crc"), Some(blob.stored_crc().to_string().as_str()), "frame from another blob");
        let x = fw::host_sample(&model, &f.spec);
        assert!(x.iter().all(|v| v.is_finite()), "{:?}: non-finite host sample", f.spec);
        fw::assert_frame_values(f, &x);
        assert_eq!(f.pixels, fw::pixels(&blob, &x), "{:?}: pixels differ from the host", f.spec);
        assert!(matches!(f.spec.sampler, Sampler::Euler | Sampler::Heun));
    }
    assert_eq!(frames.len(), 4, "euler and heun for two seeds\n{}", run.stdout);
}
