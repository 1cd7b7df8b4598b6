//! `gaussdiff-train experiment`: the papers' findings as one command each (issue 6, `docs/results.md`).
//!
//! | name | what | paper |
//! |---|---|---|
//! | `data-size` | memorisation -> generalisation against the number of training images N | Li et al. 2024 Fig. 1 |
//! | `distill` | distilled linear maps vs the Gaussian denoiser, per sigma | Li et al. 2024 Fig. 2 |
//! | `capacity` | network width and training time at fixed small N | Li et al. 2024 Fig. 3 |
//! | `gaussian-data` | KL of a Gaussian fitted on N images from the held-out Gaussian | Merger & Goldt 2025 |
//! | `gallery` | samples of the Gaussian alone (exact, Heun-18, firmware) and a rank sweep | -- |
//! | `skip-steps` | start the network's sampler from the Gaussian's exact solution | Wang & Vastola 2024 |
//! | `mixtures` | Gaussian vs class / unsupervised mixtures, judged by a classifier (FLD, KID, copies) | Wang et al. 2024 |
//!
//! Every experiment has a `--quick` setting (a test runs it) and a full one; each writes `summary.json`,
//! CSV tables and PNG figures into `--out`, and prints the setting it ran.

pub mod capacity;
pub mod common;
pub mod data_size;
pub mod distill;
pub mod gallery;
pub mod gaussian_data;
pub mod kl_expectation;
pub mod mixtures;
pub mod skip_steps;

use anyhow::Result;
use candle_core::Device;
use std::path::PathBuf;

/// Which experiment.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// 1. memorisation -> generalisation against dataset size (trains one network per N).
    DataSize,
    /// 2. distilled linear maps vs the Gaussian denoiser per sigma (trains one network).
    Distill,
    /// 3. width sweep and checkpoints over training at fixed small N.
    Capacity,
    /// 4. KL divergence of Gaussians fitted on N images (no training).
    GaussianData,
    /// 5. Gaussian sample gallery, nearest training images, rank sweep (no training).
    Gallery,
    /// 6. skipping the network's first sampling steps with the Gaussian's exact flow (trains one network).
    SkipSteps,
    /// 7. Gaussian vs class and unsupervised mixtures on MNIST, judged by a small classifier; Olivetti faces.
    Mixtures,
}

/// A dataset of the data-size sweep.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepData {
    /// sklearn digits (d = 64).
    Digits,
    /// MNIST (d = 784).
    Mnist,
}

/// Options shared by all experiments.
#[derive(clap::Args, Clone, Debug)]
pub struct ExperimentArgs {
    /// Which experiment.
    #[arg(value_enum)]
    pub which: Which,
    /// Small setting (seconds to a few minutes on 2 cores; what the tests run).
    #[arg(long)]
    pub quick: bool,
    /// Medium setting (about 10-20 minutes on 2 cores); the default is the full setting.
    #[arg(long, conflicts_with = "quick")]
    pub medium: bool,
    /// Output directory.
    #[arg(long, short, default_value = "runs/experiment")]
    pub out: PathBuf,
    /// sklearn digits CSV (d = 64).
    #[arg(long, default_value = "data/sklearn_digits/digits.csv.gz")]
    pub digits: PathBuf,
    /// MNIST IDX images (d = 784).
    #[arg(long, default_value = "data/mnist/t10k-images-idx3-ubyte.gz")]
    pub mnist: PathBuf,
    /// Frey faces MAT file (d = 560).
    #[arg(long, default_value = "data/frey_faces/frey_rawface.mat")]
    pub frey: PathBuf,
    /// Olivetti faces IDX images (labels beside them; d = 4096).
    #[arg(long, default_value = "data/olivetti/olivetti-images-idx3-ubyte.gz")]
    pub olivetti: PathBuf,
    /// gallery: a captured firmware stream (QEMU semihosting output with text frames) to show beside the host samples.
    #[arg(long)]
    pub capture: Option<PathBuf>,
    /// skip-steps / distill: reuse this trained checkpoint instead of training one.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Seed of all random draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// data-size / capacity: which datasets to sweep (comma-separated; capacity's quick setting is digits only).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "digits,mnist")]
    pub datasets: Vec<SweepData>,
    /// data-size: train only these N (comma-separated) instead of the setting's grid, with the setting's
    /// network and steps (so the runs are reused by a later full sweep).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(usize))]
    pub sizes: Vec<usize>,
    /// data-size / capacity: train and measure this many networks at once (for machines with many cores;
    /// the numbers do not depend on it). Finished runs are reused, so an interrupted sweep resumes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,
}

/// The three sizes of every experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Setting {
    /// `--quick`.
    Quick,
    /// `--medium`.
    Medium,
    /// default.
    Full,
}

impl ExperimentArgs {
    /// The setting the flags select.
    pub fn setting(&self) -> Setting {
        if self.quick {
            Setting::Quick
        } else if self.medium {
            Setting::Medium
        } else {
            Setting::Full
        }
    }
}

/// Run the selected experiment.
///
/// # Errors
/// Missing or bad dataset files, training failures, write failures.
pub fn run(a: &ExperimentArgs, device: &Device, progress: bool) -> Result<()> {
    std::fs::create_dir_all(&a.out)
        .map_err(|e| anyhow::anyhow!("creating output directory {}: {e}", a.out.display()))?;
    let t0 = std::time::Instant::now();
    match a.which {
        Which::DataSize => data_size::run(a, device, progress)?,
        Which::Distill => distill::run(a, device, progress)?,
        Which::Capacity => capacity::run(a, device, progress)?,
        Which::GaussianData => gaussian_data::run(a, progress)?,
        Which::Gallery => gallery::run(a, device, progress)?,
        Which::SkipSteps => skip_steps::run(a, device, progress)?,
        Which::Mixtures => mixtures::run(a, device, progress)?,
    }
    if progress {
        eprintln!(
            "experiment {:?} ({:?}) finished in {:.1} s; outputs in {}",
            a.which,
            a.setting(),
            t0.elapsed().as_secs_f64(),
            a.out.display()
        );
    }
    Ok(())
}
