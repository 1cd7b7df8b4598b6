//! Helpers shared by the experiments: outputs (JSON, CSV, x-y plots), data loading, training one network.

use anyhow::{Context, Result};
use candle_core::Device;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::network::Arch;
use crate::train::{self, RunOptions, Start, TrainConfig};
use gaussdiff_fit::io::write_atomic;

/// Write `v` as pretty JSON (atomically).
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    Ok(write_atomic(path, serde_json::to_string_pretty(v)?.as_bytes())?)
}

/// Write an experiment's summary, `OUT/summary.json` (pretty JSON, atomically).
pub fn write_summary<T: Serialize>(out: &Path, summary: &T) -> Result<()> {
    write_json(&out.join("summary.json"), summary)
}

/// Write a CSV with a header and rows of numbers (atomically).
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<f64>]) -> Result<()> {
    let mut s = header.join(",");
    s.push('\n');
    for r in rows {
        let line: Vec<String> = r.iter().map(|v| format!("{v}")).collect();
        let _ = writeln!(s, "{}", line.join(","));
    }
    Ok(write_atomic(path, s.as_bytes())?)
}

/// Load a dataset with core's readers (any format core detects), with a seeded hold-out.
pub fn load_core(path: &Path, hold_out: usize, seed: u64) -> Result<gaussdiff_fit::dataset::Dataset> {
    let opts = gaussdiff_fit::dataset::LoadOptions { hold_out, seed, ..Default::default() };
    gaussdiff_fit::dataset::load(path, &opts).map_err(|e| anyhow::anyhow!("loading dataset {}: {e}", path.display()))
}

/// Train one MLP (EDM loss) into `dir` unless a finished checkpoint with the same config is there.
/// Returns the checkpoint path.
pub fn train_mlp(dir: &Path, cfg: TrainConfig, device: &Device, progress: bool) -> Result<PathBuf> {
    let ck = dir.join(train::CHECKPOINT);
    let cfg_path = dir.join(train::CONFIG);
    if ck.exists() {
        if let Ok(text) = std::fs::read_to_string(&cfg_path) {
            if toml::from_str::<TrainConfig>(&text).ok().as_ref() == Some(&cfg) {
                if let Ok(c) = train::load_checkpoint(&ck, device) {
                    if c.step >= cfg.steps {
                        if progress {
                            eprintln!("reusing finished run {}", dir.display());
                        }
                        return Ok(ck);
                    }
                }
            }
        }
    }
    let opts = RunOptions { out: dir.to_path_buf(), resume: false, progress, gaussian_blob: None };
    train::run(Start::Fresh(cfg), &opts, device)?;
    Ok(ck)
}

/// The training config every experiment starts from: the MLP on `dataset`.
pub fn mlp_config(
    dataset: &Path,
    width: usize,
    depth: usize,
    steps: usize,
    limit: Option<usize>,
    hold_out: usize,
    seed: u64,
) -> TrainConfig {
    TrainConfig {
        dataset: dataset.to_path_buf(),
        limit,
        hold_out,
        arch: Arch::Mlp { width, depth },
        batch: 128,
        steps,
        lr: 1e-3,
        warmup: (steps / 20).clamp(1, 500),
        ema_decay: if steps < 2000 { 0.99 } else { 0.999 },
        seed,
        save_every: steps.max(1),
        keep_snapshots: false,
        ..TrainConfig::default()
    }
}

/// The digits MLP that experiments 2 and 6 study: the `--checkpoint` if one is given, otherwise a fresh
/// run trained into `OUT/train`, of the same size in both experiments (width x depth, steps) for each
/// setting. Returns the checkpoint path, its config, its EMA network and its training data.
pub fn digits_network(
    a: &super::ExperimentArgs,
    device: &Device,
    progress: bool,
) -> Result<(PathBuf, TrainConfig, crate::network::Network, gaussdiff_fit::dataset::Dataset)> {
    let (width, depth, steps) = match a.setting() {
        super::Setting::Quick => (128, 2, 300),
        super::Setting::Medium => (256, 3, 6000),
        super::Setting::Full => (512, 3, 20000),
    };
    let ck = match &a.checkpoint {
        Some(p) => p.clone(),
        None => train_mlp(
            &a.out.join("train"),
            mlp_config(&a.digits, width, depth, steps, None, 297, a.seed),
            device,
            progress,
        )?,
    };
    let (cfg, net) = train::load_network(&ck, true, device)?;
    let data = cfg.load_data()?;
    Ok((ck, cfg, net, data))
}

/// Log-spaced integers from `lo` to `hi` (inclusive, deduplicated), `per_decade` per factor 10.
pub fn log_grid(lo: usize, hi: usize, per_decade: usize) -> Vec<usize> {
    let (a, b) = ((lo.max(1) as f64).ln(), (hi.max(lo.max(1)) as f64).ln());
    let steps = (((b - a) / std::f64::consts::LN_10) * per_decade as f64).ceil().max(1.0) as usize;
    let mut v: Vec<usize> =
        (0..=steps).map(|i| (a + (b - a) * i as f64 / steps as f64).exp().round() as usize).collect();
    v.dedup();
    v
}

/// `f` applied to every item on `jobs` worker threads at once (items are taken in order; results come
/// back in item order). The networks' arithmetic does not depend on how many run at once: candle's
/// matrix products split over output blocks only (docs/trainer.md, "Determinism"), so `--jobs` changes
/// the wall time, never a number. The first error stops the remaining items and is returned.
pub fn par_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let slots: Vec<std::sync::Mutex<Option<Result<R>>>> = items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if failed.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                if r.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    for (i, slot) in slots.into_iter().enumerate() {
        match slot.into_inner().map_err(|_| anyhow::anyhow!("worker for item {i} panicked"))? {
            Some(r) => out.push(r?),
            None => anyhow::bail!("item {i} was not run because an earlier item failed"),
        }
    }
    Ok(out)
}

/// A measured result cached beside its run: `dir/<name>` holds the result and a copy of the training
/// config; it is reused only when that config equals `cfg` (so a sweep can be resumed, or assembled from
/// runs made elsewhere, without the checkpoints).
pub fn cached<R: Serialize + serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
    cfg: &TrainConfig,
    compute: impl FnOnce() -> Result<R>,
) -> Result<R> {
    #[derive(Serialize, serde::Deserialize)]
    struct Cache<R> {
        config: TrainConfig,
        result: R,
    }
    let path = dir.join(name);
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(c) = serde_json::from_str::<Cache<R>>(&text) {
            if &c.config == cfg {
                return Ok(c.result);
            }
        }
    }
    let result = compute()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_json(&path, &Cache { config: cfg.clone(), result: &result })?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_keeps_order_and_reports_errors() {
        let items: Vec<usize> = (0..37).collect();
        for jobs in [1, 2, 5, 64] {
            let out = par_map(&items, jobs, |&i| Ok(i * i)).unwrap();
            assert_eq!(out, items.iter().map(|i| i * i).collect::<Vec<_>>(), "jobs {jobs}");
            let err = par_map(&items, jobs, |&i| if i == 11 { anyhow::bail!("item eleven") } else { Ok(i) });
            assert!(err.is_err(), "jobs {jobs}");
        }
        assert!(par_map(&Vec::<usize>::new(), 4, |&i| Ok(i)).unwrap().is_empty());
    }

    #[test]
    fn cached_reuses_only_for_the_same_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TrainConfig::default();
        let a: u32 = cached(dir.path(), "r.json", &cfg, || Ok(7)).unwrap();
        assert_eq!(a, 7);
        let b: u32 = cached(dir.path(), "r.json", &cfg, || anyhow::bail!("must not recompute")).unwrap();
        assert_eq!(b, 7);
        let other = TrainConfig { steps: cfg.steps + 1, ..cfg.clone() };
        let c: u32 = cached(dir.path(), "r.json", &other, || Ok(9)).unwrap();
        assert_eq!(c, 9);
    }
}
