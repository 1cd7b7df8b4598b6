//! `gaussdiff-train`: train EDM denoisers with candle, distill them into per-sigma linear maps, and
//! measure how close they are to the Gaussian denoiser of the training data.

use anyhow::Result;
use clap::{Parser, Subcommand};

use gaussdiff_trainer::cmd;

// mimalloc: candle allocates a fresh buffer for every op; with glibc's malloc the MLP step runs
// about half as fast (measured by `gaussdiff-train bench`, see docs/trainer.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "gaussdiff-train",
    version,
    about = "Train EDM denoisers (candle), distill them into linear maps, and measure their Gaussian structure"
)]
// The field docs are clap's help text (`cuda[:N]` is not a doc link).
#[allow(rustdoc::broken_intra_doc_links)]
struct Cli {
    /// Worker threads for candle/rayon (default: all cores). Results do not depend on it.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Compute device: cpu, or cuda[:N] in a build with `--features cuda`.
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
    /// No progress bars or summaries.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train a denoiser (EDM preconditioning and loss). Writes OUT/checkpoint.safetensors, OUT/config.toml, OUT/losses.csv.
    #[command(
        after_help = "Example:\n  gaussdiff-train train --dataset data/sklearn_digits/digits.csv.gz --width 256 --depth 2 --steps 3000 --out runs/digits"
    )]
    Train(cmd::train::TrainArgs),
    /// Fit per-sigma affine maps W x + b to a trained denoiser (closed form and/or gradient descent).
    #[command(
        after_help = "Example:\n  gaussdiff-train distill --checkpoint runs/digits/checkpoint.safetensors --method both --out runs/digits/linear.safetensors"
    )]
    Distill(cmd::distill::DistillArgs),
    /// Compare network, distilled maps, Gaussian and memorising denoisers: JSON, CSV, plots, sample grids.
    #[command(
        after_help = "Example:\n  gaussdiff-train metrics --checkpoint runs/digits/checkpoint.safetensors --distilled runs/digits/linear.safetensors --out runs/digits/metrics"
    )]
    Metrics(cmd::metrics::MetricsArgs),
    /// Time training steps and distillation beside a plain matmul (prints Markdown).
    #[command(after_help = "Example:\n  gaussdiff-train bench")]
    Bench(cmd::bench::BenchArgs),
    /// Reproduce a paper's finding (docs/results.md): data-size, distill, capacity, gaussian-data, gallery, skip-steps, mixtures.
    #[command(after_help = "Example:\n  gaussdiff-train experiment gaussian-data --quick -o runs/exp4q")]
    Experiment(gaussdiff_trainer::experiments::ExperimentArgs),
}

/// mimalloc reads its options from the environment when the process starts. By default it returns
/// freed pages to the OS after 10 ms, and candle allocates a fresh buffer for every op, so each step
/// re-faulted and zeroed megabytes of pages (a quarter of the step time in `perf`). Keep freed pages
/// (`MIMALLOC_PURGE_DELAY=-1`) by re-executing once with the variable set, unless the user set it.
/// `exec` keeps the process id, so signals sent to this process reach the training run.
#[cfg(unix)]
fn tune_allocator() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        if let Ok(exe) = std::env::current_exe() {
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("MIMALLOC_PURGE_DELAY", "-1")
                .exec();
            // exec only returns on failure; carry on untuned.
            eprintln!("note: could not re-execute with MIMALLOC_PURGE_DELAY=-1 ({err}); continuing");
        }
    }
}

#[cfg(not(unix))]
fn tune_allocator() {}

/// Errors are printed as one line (the context chain, `{:#}`) and exit code 1; a backtrace only when
/// `GAUSSDIFF_BACKTRACE=1` (anyhow would print one whenever `RUST_BACKTRACE` is set).
fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        if std::env::var_os("GAUSSDIFF_BACKTRACE").is_some_and(|v| v == "1") {
            eprintln!("{}", e.backtrace());
        }
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    gaussdiff_trainer::set_threads(threads)?;
    let device = gaussdiff_trainer::device(&cli.device)?;
    let progress = !cli.quiet;
    match cli.cmd {
        Cmd::Train(a) => cmd::train::run(&a, &device, progress)?,
        Cmd::Distill(a) => cmd::distill::run(&a, &device, progress)?,
        Cmd::Metrics(a) => cmd::metrics::command(&a, &device, progress)?,
        Cmd::Experiment(a) => gaussdiff_trainer::experiments::run(&a, &device, progress)?,
        Cmd::Bench(a) => cmd::bench::run(&a, threads, &device)?,
    }
    Ok(())
}
