//! The CLI's limits on option values (the one home; `docs/cli-limits` in the README lists them). Each is
//! checked before anything is allocated from it, so no option value makes the CLI allocate more than its
//! output needs.

/// Most EDM steps (`sample --steps`, `inspect --steps`, `demo --steps`); Heun then makes `2 * 10,000 - 1`
/// evaluations per sample.
pub const MAX_STEPS: usize = 10_000;
/// Most samples of one `sample` or `demo` run (`--n`).
pub const MAX_SAMPLES: u64 = 1_000_000;
/// Largest pixel magnification (`sample --scale`).
pub const MAX_SCALE: u32 = 64;
/// Largest width or height of a PNG grid in pixels.
pub const MAX_GRID_SIDE: u64 = 16_384;
/// Most pixels of a PNG grid (at 4 bytes a pixel: 256 MiB).
pub const MAX_GRID_PIXELS: u64 = 1 << 26;

/// `--steps N` within `1..=MAX_STEPS`.
pub fn check_steps(flag: &str, steps: usize) -> anyhow::Result<()> {
    if steps == 0 {
        anyhow::bail!("{flag} 0: expected at least 1 step");
    }
    if steps > MAX_STEPS {
        anyhow::bail!("{flag} {steps}: expected at most {MAX_STEPS} steps");
    }
    Ok(())
}

/// `--n N` within `1..=MAX_SAMPLES`.
pub fn check_samples(n: u64) -> anyhow::Result<()> {
    if n == 0 {
        anyhow::bail!("--n 0: expected at least 1 sample");
    }
    if n > MAX_SAMPLES {
        anyhow::bail!("--n {n}: expected at most {MAX_SAMPLES} samples");
    }
    Ok(())
}
