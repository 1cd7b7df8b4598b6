//! `gaussdiff-train bench`: arguments and the run (prints Markdown).

use anyhow::Result;
use candle_core::Device;
use gaussdiff_fit::dataset::{self, LoadOptions};
use std::path::PathBuf;

/// Arguments of `gaussdiff-train bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// d = 784 dataset.
    #[arg(long, default_value = "data/mnist/t10k-images-idx3-ubyte.gz")]
    pub dataset: PathBuf,
    /// Small dataset for the d = 64 row (skipped if missing).
    #[arg(long, default_value = "data/sklearn_digits/digits.csv.gz")]
    pub digits: PathBuf,
    /// Timed steps per configuration.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
}

/// Run `bench` with `threads` worker threads.
///
/// # Errors
/// If the main dataset cannot be read or a timing fails.
pub fn run(a: &BenchArgs, threads: usize, device: &Device) -> Result<()> {
    let opts = LoadOptions::default();
    let d = dataset::load(&a.dataset, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dg = dataset::load(&a.digits, &opts).ok();
    let md = crate::bench::run(&d, dg.as_ref(), a.steps, threads, device)?;
    println!("{md}");
    Ok(())
}
