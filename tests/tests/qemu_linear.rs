//! A linear blob (per-sigma maps in a shared basis, the layout `gaussdiff export --linear --basis-rank K`
//! writes) runs on the firmware under QEMU bit-for-bit like the host's core: the linear denoiser goes through
//! the firmware's assembly block kernels, so this checks them on the second model kind. Skips locally
//! without qemu-system-arm/flip-link; fails when `CI` is set.

mod firmware_support;

use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::blob::write::{write_linear, LinearMaps, LinearParams, WriteOptions};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::denoiser::Model;
use gaussdiff_core::frame::{self, Item};
use gaussdiff_core::sampler::{SampleSpec, Sampler};
use gaussdiff_core::schedule::EdmSchedule;
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
    if fw::require(&["qemu-system-arm", "flip-link"]).is_some() {
        return;
    }
    let gauss = std::fs::read(fw::frey_blob()).expect("reading the Frey blob");
    let opts = WriteOptions { dtype: DType::F16, ..WriteOptions::default() };
    let bytes = write_linear(&linear_params(&gauss), &opts).expect("writing the linear blob");
    let dir = fw::firmware_dir().join("target").join("test-blobs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("frey-linear-basis-f16.gdn");
    std::fs::write(&path, &bytes).unwrap();

    let envs = [
        ("GAUSSDIFF_BLOB", path.to_str().unwrap()),
        ("GAUSSDIFF_RUNS", "euler:18,heun:18"),
        ("GAUSSDIFF_SEEDS", "0,1"),
    ];
    let build = fw::build("qemu", &envs, "qemu-linear");
    let run = fw::qemu(&build.elf, Duration::from_secs(120));
    assert_eq!(run.code, Some(0), "QEMU exit code (None = timeout)\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);

    let blob = Blob::parse(&bytes).unwrap();
    let model = blob.model().unwrap();
    assert!(matches!(model, Model::Linear(_)));
    let mut n = 0;
    for item in frame::decode(&run.stdout) {
        let f = match item.unwrap_or_else(|e| panic!("bad frame: {e}\n{}", run.stdout)) {
            Item::Frame(f) => f,
            Item::TargetError { message, .. } => panic!("target reported an error: {message}"),
            _ => continue,
        };
        assert_eq!(f.extra("blob_crc"), Some(blob.stored_crc().to_string().as_str()), "frame from another blob");
        let mut x = vec![0.0f32; model.dim()];
        let mut scratch = vec![0.0f32; SampleSpec::scratch_len(&model)];
        let mut sigmas = vec![0.0f32; f.spec.steps as usize + 1];
        f.spec.run(&model, &EdmSchedule::EDM, &mut sigmas, &mut x, &mut scratch, |_, _| {}).unwrap();
        assert!(x.iter().all(|v| v.is_finite()), "{:?}: non-finite host sample", f.spec);
        let target = f.values.as_ref().expect("v lines are on by default");
        let differing = x.iter().zip(target).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differing, 0, "{:?}: {differing} of {} f32 values differ from the host", f.spec, x.len());
        assert!(f.matches_sample(&x), "{:?}: sample CRC differs from the host's", f.spec);
        let mut pixels = vec![0u8; x.len()];
        blob.pixel_map().to_pixels(&x, &mut pixels);
        assert_eq!(f.pixels, pixels, "{:?}: pixels differ", f.spec);
        assert!(matches!(f.spec.sampler, Sampler::Euler | Sampler::Heun));
        n += 1;
    }
    assert_eq!(n, 4, "euler and heun for two seeds\n{}", run.stdout);
}
