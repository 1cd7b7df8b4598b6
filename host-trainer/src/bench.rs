//! `bench`: training-step and distillation timings, beside a plain candle matmul in the same run.
//!
//! FLOPs of a training step are counted as `6 x macs_per_sample x batch` (forward 2, backward 4
//! per multiply-add of the dense layers and convolutions; elementwise work is not counted).

use anyhow::Result;
use candle_core::{Device, Tensor};
use std::fmt::Write as _;
use std::time::Instant;

use crate::distill::{distill, DistillConfig, Method};
use crate::network::{Arch, Network};
use crate::optim::{Adam, AdamConfig};
use crate::rng::TrainRng;
use crate::train::{batch_loss, draw_batch, train_step, State};
use gaussdiff_fit::dataset::Dataset;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// GFLOP/s of `(m x k) @ (k x n)` in f32 (median of `reps`).
pub fn matmul_gflops(m: usize, k: usize, n: usize, reps: usize, device: &Device) -> Result<f64> {
    let mut rng = TrainRng::new(1);
    let a = Tensor::from_vec(rng.normals(m * k), (m, k), device)?;
    let b = Tensor::from_vec(rng.normals(k * n), (k, n), device)?;
    let _ = a.matmul(&b)?;
    let mut ts = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let c = a.matmul(&b)?;
        let _ = c.dims();
        ts.push(t0.elapsed().as_secs_f64());
    }
    Ok(2.0 * (m * k * n) as f64 / median(ts) / 1e9)
}

/// Median seconds per training step of `arch` on `data` at batch `batch`, and the macs per sample,
/// and the medians of the phases (batch drawing, forward, backward, Adam+EMA).
pub fn step_time(
    arch: Arch,
    data: &Dataset,
    batch: usize,
    steps: usize,
    device: &Device,
) -> Result<(f64, usize, [f64; 4])> {
    let s = data.shape;
    let mut rng = TrainRng::new(3);
    let net = Network::new(arch, (s.channels as usize, s.height as usize, s.width as usize), &mut rng, device)?;
    let macs = net.macs_per_sample();
    let opt = Adam::new(&net, AdamConfig { lr: 1e-4, warmup: 10, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, 0.999)?;
    let mut st = State { net, opt, rng };
    train_step(&mut st, data, batch)?;
    let mut ts = Vec::new();
    let mut ph: [Vec<f64>; 4] = Default::default();
    for _ in 0..steps {
        let t0 = Instant::now();
        let b = draw_batch(&mut st, data, batch)?;
        let t1 = Instant::now();
        let loss = batch_loss(&st.net, &b)?;
        let t2 = Instant::now();
        let grads = loss.backward()?;
        let t3 = Instant::now();
        st.opt.step(&st.net, &grads)?;
        let t4 = Instant::now();
        ts.push((t4 - t0).as_secs_f64());
        for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4)].iter().enumerate() {
            ph[k].push((*b - *a).as_secs_f64());
        }
    }
    let [a, b, c, d] = ph;
    Ok((median(ts), macs, [median(a), median(b), median(c), median(d)]))
}

/// Run the benchmark suite on `data`; returns a Markdown section.
pub fn run(data: &Dataset, digits: Option<&Dataset>, steps: usize, threads: usize, device: &Device) -> Result<String> {
    let mut md = String::new();
    let d = data.dim();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let _ = writeln!(
        md,
        "Machine: {cpu}, {threads} thread(s), device {device:?}. Data: {} ({} x {d}).\n",
        data.name,
        data.len()
    );
    let _ = writeln!(md, "| what | time | GFLOP/s | vs matmul |");
    let _ = writeln!(md, "|---|---|---|---|");
    let mm = matmul_gflops(128, 1024, 1024, 20, device)?;
    let _ = writeln!(
        md,
        "| candle matmul 128x1024 @ 1024x1024 (baseline) | {:.2} ms | {mm:.1} | 1.00 |",
        2.0 * 128.0 * 1024.0 * 1024.0 / mm / 1e6
    );
    for (label, ta, tb) in [("A^T B (weight gradient)", true, false), ("A B^T (input gradient)", false, true)] {
        let mut rng = TrainRng::new(2);
        let (m, k, n) = (1024usize, 128usize, 1024usize);
        let a = if ta {
            Tensor::from_vec(rng.normals(m * k), (k, m), device)?.t()?
        } else {
            Tensor::from_vec(rng.normals(m * k), (m, k), device)?
        };
        let b = if tb {
            Tensor::from_vec(rng.normals(k * n), (n, k), device)?.t()?
        } else {
            Tensor::from_vec(rng.normals(k * n), (k, n), device)?
        };
        let _ = a.matmul(&b)?;
        let mut ts = Vec::new();
        for _ in 0..20 {
            let t0 = Instant::now();
            let _ = a.matmul(&b)?;
            ts.push(t0.elapsed().as_secs_f64());
        }
        let t = median(ts);
        let gf = 2.0 * (m * k * n) as f64 / t / 1e9;
        let _ = writeln!(
            md,
            "| candle matmul {label} 1024x128 @ 128x1024 | {:.2} ms | {gf:.1} | {:.2} |",
            t * 1e3,
            gf / mm
        );
    }
    let mm2 = matmul_gflops(128, 784, 1024, 20, device)?;
    let _ = writeln!(
        md,
        "| candle matmul 128x784 @ 784x1024 | {:.2} ms | {mm2:.1} | {:.2} |",
        2.0 * 128.0 * 784.0 * 1024.0 / mm2 / 1e6,
        mm2 / mm
    );
    for (arch, batch) in [
        (Arch::Mlp { width: 1024, depth: 3 }, 128),
        (Arch::Mlp { width: 512, depth: 3 }, 128),
        (Arch::Unet { channels: 16 }, 32),
    ] {
        let label = arch.label();
        let (t, macs, ph) = step_time(arch, data, batch, steps, device)?;
        let gf = 6.0 * macs as f64 * batch as f64 / t / 1e9;
        let _ = writeln!(
            md,
            "| train step {label}, batch {batch} (draw {:.1} / fwd {:.1} / bwd {:.1} / Adam+EMA {:.1} ms) | {:.1} ms | {gf:.1} | {:.2} |",
            ph[0] * 1e3,
            ph[1] * 1e3,
            ph[2] * 1e3,
            ph[3] * 1e3,
            t * 1e3,
            gf / mm
        );
    }
    // Distillation at d = 784 with an untrained default MLP (width 512, depth 3) (timing does not depend on the weights).
    let mut rng = TrainRng::new(5);
    let s = data.shape;
    let net = Network::new(
        Arch::Mlp { width: 512, depth: 3 },
        (s.channels as usize, s.height as usize, s.width as usize),
        &mut rng,
        device,
    )?;
    for (method, batches) in [(Method::Closed, 8usize), (Method::Gd, 8)] {
        let cfg = DistillConfig {
            sigmas: crate::edm::default_grid(),
            method,
            batch: 256,
            batches,
            // A timing bench: 2 GD epochs per sigma (the default runs up to 100).
            epochs: 2,
            tol: 1e-4,
            lr0: 1e-3,
            ridge: 1e-6,
            seed: 0,
        };
        let t0 = Instant::now();
        let r = distill(&net, data, &cfg, false)?;
        let total = t0.elapsed().as_secs_f64();
        let net_s: f64 = r.report.iter().map(|x| x.secs_network).sum();
        let cf_s: f64 = r.report.iter().map(|x| x.secs_closed).sum();
        let gd_s: f64 = r.report.iter().map(|x| x.secs_gd).sum();
        let _ = writeln!(
            md,
            "| distill {method:?}, d={d}, 10 sigmas x {batches} batches of 256 (GD: 2 epochs) | {total:.2} s (network {net_s:.2} s, closed form {cf_s:.2} s, GD {gd_s:.2} s) | | |"
        );
    }
    if let Some(dg) = digits {
        let (t, macs, _) = step_time(Arch::Mlp { width: 256, depth: 2 }, dg, 128, steps, device)?;
        let _ = writeln!(
            md,
            "| train step mlp-w256-d2 on digits (d=64), batch 128 | {:.2} ms | {:.1} | {:.2} |",
            t * 1e3,
            6.0 * macs as f64 * 128.0 / t / 1e9,
            6.0 * macs as f64 * 128.0 / t / 1e9 / mm
        );
    }
    Ok(md)
}
