//! The skip-path floor on MNIST (issue 17): the residual MLP leaves it within a few hundred steps, the
//! plain MLP of the same budget does not, and the floor watch flags a run that sits there.

use candle_core::Device;
use gaussdiff_trainer::edm;
use gaussdiff_trainer::floor::FloorWatch;
use gaussdiff_trainer::network::{Arch, Network};
use gaussdiff_trainer::optim::{Adam, AdamConfig};
use gaussdiff_trainer::rng::TrainRng;
use gaussdiff_trainer::train::{self, State};

const DEV: Device = Device::Cpu;

fn mnist(n: usize) -> gaussdiff_fit::dataset::Dataset {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist/t10k-images-idx3-ubyte.gz");
    let opts = gaussdiff_fit::dataset::LoadOptions { limit: Some(n), seed: 3, ..Default::default() };
    gaussdiff_fit::dataset::load(&path, &opts).unwrap()
}

/// Mean losses of the first and the last 50 of `steps` steps of `arch` on `data`.
fn train(arch: Arch, data: &gaussdiff_fit::dataset::Dataset, steps: usize, lr: f64) -> (f32, f32) {
    let mut rng = TrainRng::new(5);
    let net = Network::new(arch, (1, 28, 28), &mut rng, &DEV).unwrap();
    let opt = Adam::new(&net, AdamConfig { lr, warmup: 20, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, 0.99).unwrap();
    let mut st = State { net, opt, rng };
    let losses: Vec<f32> = (0..steps).map(|_| train::train_step(&mut st, data, 32).unwrap()).collect();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    (mean(&losses[..50]), mean(&losses[steps - 50..]))
}

#[test]
fn residual_mlp_leaves_the_skip_path_floor_on_mnist_and_the_plain_mlp_does_not() {
    let data = mnist(64);
    let floor = edm::skip_floor(edm::P_MEAN, edm::P_STD) as f32;
    let (_, res) = train(Arch::Resmlp { width: 256, blocks: 1 }, &data, STEPS, 3e-3);
    let (_, plain) = train(Arch::Mlp { width: 256, depth: 2 }, &data, STEPS, 3e-3);
    eprintln!("floor {floor:.4}: residual MLP {res:.4}, plain MLP {plain:.4}");
    // Measured: residual 0.551, plain 0.816 (64 MNIST images, batch 32, 400 steps; floor 0.634).
    assert!(res < 0.9 * floor, "residual MLP: {res} (floor {floor})");
    assert!(plain > 0.95 * floor, "plain MLP: {plain} (floor {floor})");
}

const STEPS: usize = 400;

#[test]
fn floor_watch_fires_on_a_denoiser_that_passes_the_noise() {
    // The losses a denoiser D(y + sigma z) = y + c_skip sigma z has on real training draws (EDM's sigma
    // distribution, batch 128, 784 pixels): per sample lambda c_skip^2 sigma^2 |z|^2 / d.
    let floor = edm::skip_floor(edm::P_MEAN, edm::P_STD);
    let mut rng = TrainRng::new(11);
    let mut watch = FloorWatch::new(floor, train::FLOOR_WINDOW);
    let mut fired = None;
    for step in 1..=3 * train::FLOOR_WINDOW {
        let mut loss = 0.0;
        for _ in 0..128 {
            let sigma = (edm::P_MEAN + edm::P_STD * rng.normal()).exp();
            let p = edm::Precond::new(sigma);
            let z2: f64 = rng.normals(784).iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 784.0;
            loss += edm::loss_weight(sigma) * (p.c_skip * sigma).powi(2) * z2 / 128.0;
        }
        if let Some(w) = watch.push(step, loss as f32) {
            assert!(w.contains("skip-path floor") && w.contains("0.6339"), "{w}");
            fired.get_or_insert(step);
        }
    }
    assert_eq!(fired, Some(2 * train::FLOOR_WINDOW));
}
