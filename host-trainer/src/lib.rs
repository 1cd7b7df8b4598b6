//! # gaussdiff-trainer
//!
//! Host-side training and analysis for gaussdiff (binary `gaussdiff-train`; [`cmd`] holds one module per
//! command with its arguments):
//!
//! * [`train`]: EDM-preconditioned denoisers ([`network`]: residual MLP with FiLM noise conditioning (the
//!   default), plain noise-conditioned MLP, small conv U-Net) trained with candle, Adam with warm-up and
//!   EMA ([`optim`]), atomic safetensors checkpoints ([`st`]), bit-exact `--resume`, all randomness from
//!   [`rng::TrainRng`]; [`edm`] holds the preconditioning, the f64 reference of core's EDM schedule and
//!   the skip-path floor, which [`floor`] warns about when a run sits there.
//! * [`distill`]: per-sigma affine maps ([`distill::DistilledMaps`]) fitted to a trained denoiser by
//!   gradient descent (Li et al. 2024) and by closed-form ridge least squares on the same samples.
//! * [`measures`] / [`cmd::metrics`]: denoiser differences, linearity scores, distance to the closed
//!   form of the training data's Gaussian ([`training_gaussian`]), sample agreement and memorisation,
//!   over the batched denoisers of [`denoisers`], with plots ([`plot`]).
//! * [`experiments`]: the papers' findings reproduced (`gaussdiff-train experiment`).
//! * [`bench`](mod@bench): training-step and distillation timings against a plain matmul in the same run.
//!
//! Blobs, atomic writes, nearest neighbours and dataset reading are `gaussdiff_fit`'s (`export`, `io`,
//! `nearest`, `dataset`), shared with the `gaussdiff` CLI.

pub mod bench;
pub mod classifier;
pub mod cmd;
pub mod denoisers;
pub mod distill;
pub mod distill_gd;
pub mod edm;
pub mod experiments;
pub mod floor;
pub mod measures;
pub mod network;
pub mod optim;
pub mod plot;
pub mod rng;
pub mod st;
pub mod train;
pub mod training_gaussian;

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
