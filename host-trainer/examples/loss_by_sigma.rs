//! The EDM loss of a checkpoint's EMA network per noise level, beside the skip-path floor `c_skip` and the
//! loss at initialisation (`F = 0`), on its training images with seeded noise. The diagnosis behind the
//! residual MLP (`docs/trainer.md`, "Why the plain MLP stalls on MNIST").
//!
//! `cargo run --release -p gaussdiff-trainer --example loss_by_sigma -- RUN/checkpoint.safetensors`

use anyhow::{Context, Result};
use candle_core::Device;
use gaussdiff_trainer::edm::{self, Precond};
use gaussdiff_trainer::rng::TrainRng;
use gaussdiff_trainer::train::{self, Batch};

fn main() -> Result<()> {
    let path = std::env::args().nth(1).context("usage: loss_by_sigma CHECKPOINT")?;
    let dev = Device::Cpu;
    let (cfg, net) = train::load_network(path.as_ref(), true, &dev)?;
    let data = cfg.load_data()?;
    let d = data.dim();
    let n = data.len().min(256);
    let y: Vec<f32> = data.images[..n * d].to_vec();
    let mean_sq = y.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / y.len() as f64;
    println!("{} ({}), N = {}, E[y^2] = {mean_sq:.4}", cfg.arch.label(), path, data.len());
    println!("sigma,loss,floor_c_skip,initial_loss");
    let mut rng = TrainRng::new(7);
    for sigma in [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 20.0] {
        let z = rng.normals(n * d);
        let x: Vec<f32> = y.iter().zip(&z).map(|(&a, &b)| a + sigma as f32 * b).collect();
        let b = Batch {
            y: candle_core::Tensor::from_vec(y.clone(), (n, d), &dev)?,
            x: candle_core::Tensor::from_vec(x, (n, d), &dev)?,
            sigmas: vec![sigma; n],
        };
        let loss = train::batch_loss(&net, &b)?.to_scalar::<f32>()?;
        let p = Precond::new(sigma);
        let init = edm::loss_weight(sigma) * ((1.0 - p.c_skip).powi(2) * mean_sq + p.c_skip.powi(2) * sigma * sigma);
        println!("{sigma},{loss:.4},{:.4},{init:.4}", p.c_skip);
    }
    Ok(())
}
