//! A mixture blob (kind 4, int8 block storage) runs on the firmware under QEMU bit-for-bit like the host's
//! core: unconditionally (the mixture ODE with Heun, and "pick a component by weight, then exact") and
//! class-conditionally (`GAUSSDIFF_CLASS`, the component's exact closed form). Skips locally without
//! qemu-system-arm/flip-link.

mod firmware_support;

use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::blob::write::{write_mixture, GaussianParams, MixtureParams};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::{Denoiser, Model};
use gaussdiff_core::tensor::DType;

/// Three components from the default blob's Gaussian: the same basis (rows rotated per component), the
/// mean shifted, eigenvalues scaled, different floors; labels `a`, `b`, `c`.
fn mixture_params(gauss_blob: &[u8]) -> MixtureParams {
    let blob = Blob::parse(gauss_blob).expect("default blob parses");
    let Model::Gaussian(g) = blob.model().expect("default blob has a model") else {
        panic!("default blob is Gaussian")
    };
    let (d, k) = (g.dim(), g.rank().min(16));
    let components = (0..3)
        .map(|j| GaussianParams {
            shape: blob.shape(),
            mu: (0..d).map(|t| g.mu().get(0, t) + 0.3 * (j as f32 - 1.0)).collect(),
            u_t: (0..k).flat_map(|r| (0..d).map(move |t| (r, t))).map(|(r, t)| g.u_t().get((r + j) % k, t)).collect(),
            lambda: (0..k).map(|r| g.lambda(r) * (1.0 + 0.5 * j as f32)).collect(),
            floor: g.floor() * (j as f32 + 1.0),
        })
        .collect();
    MixtureParams { components, weights: vec![0.5, 0.2, 0.3], labels: vec!["a".into(), "b".into(), "c".into()] }
}

/// The frames of a run (`expect` of them) carry bit for bit the host's samples of the mixture, or of its
/// component `class`.
fn check(bytes: &[u8], class: Option<usize>, stdout: &str, expect: usize) {
    let blob = Blob::parse(bytes).unwrap();
    let model = blob.model().unwrap();
    let model = class.map_or(model, |j| model.component(j).unwrap());
    let frames = fw::frames(stdout);
    for f in &frames {
        fw::assert_frame_values(f, &fw::host_sample(&model, &f.spec));
    }
    assert_eq!(frames.len(), expect, "{class:?}: {stdout}");
}

#[test]
fn qemu_mixture_blob_is_bit_identical_to_the_host() {
    if fw::qemu_missing() {
        return;
    }
    let (bytes, path) = fw::derived_test_blob("mixture-i8.gdn", DType::I8, mixture_params, write_mixture);
    let p = path.to_str().unwrap();

    let envs = [("GAUSSDIFF_BLOB", p), ("GAUSSDIFF_RUNS", "exact,heun:8"), ("GAUSSDIFF_SEEDS", "0,1,2")];
    let run = fw::qemu_ok(&fw::build("qemu", &envs, "qemu-mixture").elf, Duration::from_secs(180));
    check(&bytes, None, &run.stdout, 6);

    let envs =
        [("GAUSSDIFF_BLOB", p), ("GAUSSDIFF_RUNS", "exact"), ("GAUSSDIFF_SEEDS", "0,1"), ("GAUSSDIFF_CLASS", "c")];
    let run = fw::qemu_ok(&fw::build("qemu", &envs, "qemu-mixture-class").elf, Duration::from_secs(120));
    check(&bytes, Some(2), &run.stdout, 2);
}
