//! # gaussdiff-trainer
//!
//! Host-side training and analysis for gaussdiff (binary `gaussdiff-train`):
//!
//! * [`train`]: EDM-preconditioned denoisers ([`model`]: noise-conditioned MLP, small conv U-Net)
//!   trained with candle, Adam with warm-up and EMA ([`optim`]), atomic safetensors checkpoints,
//!   bit-exact `--resume`, all randomness from [`rng::TrainRng`].
//! * [`distill`]: per-sigma affine maps fitted to a trained denoiser by gradient descent (Li et al.
//!   2024) and by closed-form ridge least squares on the same samples.
//! * [`metrics`] / [`report`]: denoiser differences, linearity scores, distance to the Gaussian's
//!   closed form, sample agreement and memorisation, with plots ([`plot`]).
//! * [`bench`]: training-step and distillation timings against a plain matmul in the same run.

pub mod bench;
pub mod blob;
pub mod data;
pub mod denoisers;
pub mod distill;
pub mod edm;
pub mod experiments;
pub mod gauss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod report;
pub mod rng;
pub mod st;
pub mod train;

/// The compute device from a `--device` name (`cpu`, or `cuda` / `cuda:N` with the `cuda` feature).
///
/// # Errors
/// For an unknown name, or `cuda` in a build without the `cuda` feature.
pub fn device(name: &str) -> anyhow::Result<candle_core::Device> {
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        n if n == "cuda" || n.starts_with("cuda:") => {
            #[cfg(feature = "cuda")]
            {
                let ord: usize = n.strip_prefix("cuda:").map(|s| s.parse()).transpose()?.unwrap_or(0);
                Ok(candle_core::Device::new_cuda(ord)?)
            }
            #[cfg(not(feature = "cuda"))]
            {
                anyhow::bail!("--device {n}: this gaussdiff-train was built without the `cuda` feature (cargo build --release -p gaussdiff-trainer --features cuda)")
            }
        }
        other => anyhow::bail!("--device {other:?}: expected cpu, cuda or cuda:N"),
    }
}

/// Use `threads` worker threads for candle's matrix products (gemm on rayon's pool).
///
/// candle 0.11 has two pools: rayon's (`RAYON_NUM_THREADS`, used by gemm) and its own spinning
/// "barrier pool" (`CANDLE_NUM_THREADS`, used by elementwise and broadcast ops). On 2 cores `perf` showed
/// the main thread spending about half of a training step spinning on that barrier while its one
/// worker waited for a core, so elementwise ops run on the calling thread (`CANDLE_NUM_THREADS=1`)
/// unless the user sets `CANDLE_NUM_THREADS` himself; they are memory-bound anyway.
/// Call before any other candle work.
pub fn set_threads(threads: usize) -> anyhow::Result<()> {
    let t = threads.max(1);
    std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build_global()
        .map_err(|e| anyhow::anyhow!("building the rayon thread pool: {e}"))
}
