//! `gaussdiff inspect`: header, metadata, sections, checksum, and what the model needs on a target.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::sampler;

use crate::{limits, util};

/// Arguments of `gaussdiff inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The blob.
    pub blob: PathBuf,
    /// Sampler steps used for the per-sample cost figures (1 to 10,000).
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
}

/// Target costs of running a blob.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    pub flash_bytes: usize,
    /// f32 state + scratch for Euler/Heun (`x` plus `sampler::scratch_len`).
    pub ram_ode_bytes: usize,
    /// f32 state + scratch for the exact sampler (Gaussian only).
    pub ram_exact_bytes: Option<usize>,
    pub macs_per_eval: u64,
    pub macs_heun: u64,
    pub macs_euler: u64,
    pub macs_exact: Option<u64>,
}

/// Costs for `steps` EDM steps (Heun: `2 steps - 1` evaluations, Euler: `steps`).
pub fn costs(blob: &Blob<'_>, steps: usize) -> Result<Costs> {
    limits::check_steps("--steps", steps)?;
    let model = blob.model().map_err(|e| anyhow!("{e}"))?;
    let d = model.dim();
    let per_eval = model.macs_per_eval();
    let steps = steps as u64;
    let component = model.as_mixture().map(|m| m.component(0));
    let g = model.as_gaussian().or(component.as_ref());
    Ok(Costs {
        flash_bytes: blob.total_len(),
        ram_ode_bytes: 4 * (d + sampler::scratch_len(d, model.scratch_len())),
        ram_exact_bytes: g.map(|g| 4 * (d + sampler::exact_scratch_len(g))),
        macs_per_eval: per_eval,
        macs_heun: per_eval * (2 * steps - 1),
        macs_euler: per_eval * steps,
        // The exact flow costs one projection and one reconstruction, like one evaluation.
        macs_exact: g.map(|g| g.macs_per_eval()),
    })
}

pub fn run(args: &InspectArgs) -> Result<()> {
    // The report is built first and written once, so a closed pipe (`| head`) ends it quietly.
    let mut out = String::new();
    limits::check_steps("--steps", args.steps)?;
    let bytes = util::read_blob_file(&args.blob)?;
    let blob =
        Blob::parse_unverified(&bytes).map_err(|e| anyhow!("{}: invalid gaussdiff blob: {e}", args.blob.display()))?;
    let h = blob.header();
    writeln!(out, "file          {}", args.blob.display())?;
    writeln!(out, "format        GDN1 version {}", h.version)?;
    writeln!(out, "kind          {}", h.kind.name())?;
    writeln!(out, "shape         {} x {} x {} (d = {})", h.shape.channels, h.shape.height, h.shape.width, blob.dim())?;
    writeln!(out, "pixel map     pixel = value * {} + {}", h.pixel.scale, h.pixel.offset)?;
    if h.kind == gaussdiff_core::blob::Kind::LinearDense {
        writeln!(out, "rank          {} (dense maps: no basis)", blob.rank())?;
    } else {
        writeln!(out, "rank          {}", blob.rank())?;
    }
    writeln!(out, "sigma levels  {}", blob.num_sigmas())?;
    writeln!(out, "floor         {:e}", blob.floor())?;
    writeln!(out, "total bytes   {}", blob.total_len())?;
    let header_ok = blob.header_checksum_ok();
    let payload_ok = blob.computed_crc() == blob.stored_crc();
    let hb = blob.bytes();
    let crc_at = |o: usize| u32::from_le_bytes([hb[o], hb[o + 1], hb[o + 2], hb[o + 3]]);
    let (stored_h, computed_h) = (
        crc_at(gaussdiff_core::blob::format::header::HEADER_CRC),
        gaussdiff_core::blob::format::CRC32.checksum(&hb[..gaussdiff_core::blob::format::header::HEADER_CRC]),
    );
    writeln!(out, "checksum      {}", if header_ok && payload_ok { "ok" } else { "MISMATCH" })?;
    writeln!(
        out,
        "header CRC    {} (stored {stored_h:08x}, computed {computed_h:08x}, bytes 0..60)",
        if header_ok { "ok" } else { "MISMATCH" }
    )?;
    writeln!(
        out,
        "payload CRC   {} (stored {:08x}, computed {:08x}, bytes 64..{})",
        if payload_ok { "ok" } else { "MISMATCH" },
        blob.stored_crc(),
        blob.computed_crc(),
        blob.total_len()
    )?;
    if h.kind == gaussdiff_core::blob::Kind::Mixture {
        if let Ok(model) = blob.model() {
            if let Some(m) = model.as_mixture() {
                writeln!(out, "components    {} (rank {} each)", m.components(), m.rank())?;
                for j in 0..m.components() {
                    let g = m.component(j);
                    let top = if g.rank() > 0 { format!("{:.4e}", g.lambda(0)) } else { "-".into() };
                    writeln!(
                        out,
                        "  {j:>3} {:<12} weight {:.4}  floor {:.4e}  lambda_1 {top}",
                        blob.component_label(j).unwrap_or("-"),
                        m.weight(j),
                        g.floor()
                    )?;
                }
            }
        }
    }
    writeln!(out, "metadata")?;
    for (k, v) in blob.metadata().iter() {
        writeln!(out, "  {k:<20} {v}")?;
    }
    writeln!(out, "sections")?;
    writeln!(out, "  {:<8} {:>5} {:>7} {:>7} {:>9} {:>9}", "name", "dtype", "rows", "cols", "offset", "bytes")?;
    for s in blob.sections() {
        writeln!(
            out,
            "  {:<8} {:>5} {:>7} {:>7} {:>9} {:>9}",
            s.name(),
            s.dtype.name(),
            s.rows,
            s.cols,
            s.offset,
            s.len
        )?;
    }
    if !header_ok {
        anyhow::bail!(
            "{}: header checksum mismatch: the header is corrupt (expected CRC-32 {stored_h:08x} of bytes 0..60, \
             computed {computed_h:08x})",
            args.blob.display()
        );
    }
    if !payload_ok {
        anyhow::bail!(
            "{}: checksum mismatch: the blob is corrupt (expected CRC-32 {:08x}, computed {:08x})",
            args.blob.display(),
            blob.stored_crc(),
            blob.computed_crc()
        );
    }
    let c = costs(&blob, args.steps).map_err(|e| anyhow!("{}: {e:#}", args.blob.display()))?;
    writeln!(out, "on a target")?;
    writeln!(out, "  flash bytes               {}", c.flash_bytes)?;
    writeln!(out, "  RAM bytes (Euler/Heun)    {} (state x + sampler scratch, f32)", c.ram_ode_bytes)?;
    if let Some(r) = c.ram_exact_bytes {
        writeln!(out, "  RAM bytes (exact)         {r}")?;
    }
    writeln!(out, "  MACs per evaluation       {}", c.macs_per_eval)?;
    writeln!(
        out,
        "  MACs per sample, Heun-{}  {} ({} evaluations)",
        args.steps,
        c.macs_heun,
        2 * args.steps as u64 - 1
    )?;
    writeln!(out, "  MACs per sample, Euler-{} {}", args.steps, c.macs_euler)?;
    if let Some(m) = c.macs_exact {
        writeln!(out, "  MACs per sample, exact    {m}")?;
    }
    util::write_stdout(&out)
}
