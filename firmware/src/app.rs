//! The application, generic over the board: an [`OutputPin`] toggled once per sampler step, a [`DelayNs`]
//! between frames, an [`embedded_io::Write`] byte sink for the text frames and a [`Counter`] for timing.
//!
//! For every [`config::RUNS`] entry it draws the initial noise from the seed, runs the sampler through
//! [`SampleSpec::run`] (the same function the host uses), maps the sample to pixels with the blob's pixel
//! mapping, sends one frame (`docs/frame-protocol.md`) and shows it on the board's [`Screen`].

use core::fmt;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::{Denoiser, Model};
use gaussdiff_core::error::BlobError;
use gaussdiff_core::frame::{self, Frame, LineBuf};
use gaussdiff_core::sampler::{SampleSpec, SpecError};
use gaussdiff_core::schedule::EdmSchedule;

use crate::config::{self, DIM, SCRATCH};
use crate::kernels;
use crate::screen::{Screen, Shown};

/// A monotonic counter for measurements.
pub trait Counter {
    /// The key measurements are reported under: `instr` (QEMU `-icount`) or `cycles` (DWT on a board).
    const KEY: &'static str;
    /// The current count.
    fn now(&mut self) -> u64;
}

/// Why the application stopped.
#[derive(Debug)]
pub enum AppError<E> {
    /// The embedded blob is invalid.
    Blob(BlobError),
    /// A run does not fit the model.
    Spec(SpecError),
    /// The model needs larger buffers than the build sized (the blob changed after the build script ran).
    Capacity { dim: usize, scratch: usize },
    /// The byte sink failed.
    Io(E),
}

/// The message of an `@GDF1 error` line.
pub trait Report {
    /// Appends the message to `line` (what does not fit is cut).
    fn report(&self, line: &mut LineBuf);
}

impl<E: fmt::Debug> Report for AppError<E> {
    fn report(&self, line: &mut LineBuf) {
        match self {
            Self::Blob(e) => {
                let _ = line.push_str("blob");
                push_detail(line, e);
            }
            Self::Spec(e) => {
                let _ = line.push_str("run");
                push_detail(line, e);
            }
            Self::Capacity { dim, scratch } => {
                let sizes = [
                    ("blob needs d = ", dim),
                    (", scratch = ", scratch),
                    ("; the build sized d = ", &DIM),
                    (", scratch = ", &SCRATCH),
                ];
                for (text, &n) in sizes {
                    let _ = line.push_str(text);
                    let _ = line.push_u64(n as u64);
                }
            }
            Self::Io(e) => {
                let _ = line.push_str("output");
                push_detail(line, format_args!("{e:?}"));
            }
        }
    }
}

/// Appends `: <detail>` on one line (newlines become spaces) with the `messages` feature (core::fmt: the
/// error texts of core and the sink); without it (the lean build) nothing, so the line names only what
/// failed and no `core::fmt` is linked.
#[cfg_attr(not(feature = "messages"), allow(unused_variables))]
pub fn push_detail(line: &mut LineBuf, detail: impl fmt::Display) {
    #[cfg(feature = "messages")]
    {
        let _ = line.push_str(": ");
        let _ = fmt::Write::write_fmt(&mut OneLine(line), format_args!("{detail}"));
    }
}

/// Writes one protocol line and its newline.
pub fn write_line<W: embedded_io::Write>(out: &mut W, line: &str) -> Result<(), W::Error> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")
}

/// Keeps a message on one protocol line: newlines become spaces, and text past the line's capacity is cut.
#[cfg(feature = "messages")]
struct OneLine<'a>(&'a mut LineBuf);

#[cfg(feature = "messages")]
impl fmt::Write for OneLine<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            let ch = if ch == '\n' || ch == '\r' { ' ' } else { ch };
            // Out of room: drop the rest rather than fail the whole report.
            let _ = fmt::Write::write_char(self.0, ch);
        }
        Ok(())
    }
}

/// Writes `@GDF1 error <message>` on one line (best effort: the sink may be what failed).
pub fn report_error<W: embedded_io::Write>(out: &mut W, message: &impl Report) {
    let mut line = LineBuf::new();
    let _ = line.push_str(frame::PREFIX);
    let _ = line.push_str(" error ");
    message.report(&mut line);
    let _ = write_line(out, line.as_str());
    let _ = out.flush();
}

/// The report of a `stat` line the protocol cannot carry.
struct BadStat<'a> {
    pairs: usize,
    bad_key: &'a str,
}

impl Report for BadStat<'_> {
    fn report(&self, line: &mut LineBuf) {
        let _ = line.push_str("stat: ");
        let _ = line.push_u64(self.pairs as u64);
        let _ = line.push_str(" pairs (at most ");
        let _ = line.push_u64(frame::MAX_EXTRAS as u64);
        let _ = line.push_str("), bad key '");
        let _ = line.push_str(self.bad_key);
        let _ = line.push_str("'");
    }
}

/// Writes one `stat` line; pairs the protocol cannot carry (a key over `frame::MAX_KEY_LEN` characters,
/// too many pairs) are reported as an `@GDF1 error` line instead, never a panic.
pub fn stat<W: embedded_io::Write>(out: &mut W, pairs: &[(&str, u64)]) -> Result<(), W::Error> {
    let mut line = LineBuf::new();
    match frame::try_stat_line(&mut line, pairs) {
        Some(text) => write_line(out, text),
        None => {
            let bad_key = pairs.iter().find(|(k, _)| !frame::valid_key(k)).map_or("", |(k, _)| k);
            report_error(out, &BadStat { pairs: pairs.len(), bad_key });
            Ok(())
        }
    }
}

/// The embedded blob and its model, computing with the Cortex-M4F assembly block kernels ([`kernels::M4F`];
/// same bits as the host's portable kernels, which the firmware then does not link).
pub fn parse(blob: &[u8]) -> Result<(Blob<'_>, Model<'_>), BlobError> {
    let blob = Blob::parse(blob)?;
    let model = Model::from_blob_with(&blob, &kernels::M4F)?;
    Ok((blob, model))
}

/// Runs every configured sample and streams its frame. Returns the number of frames sent.
///
/// # Errors
/// See [`AppError`]; the caller reports it with [`report_error`] and signals failure.
#[inline(never)]
pub fn run<P: OutputPin, D: DelayNs, W: embedded_io::Write, C: Counter, S: Screen>(
    pin: &mut P,
    delay: &mut D,
    out: &mut W,
    counter: &mut C,
    screen: &mut S,
    frame_gap_ms: u32,
) -> Result<u32, AppError<W::Error>> {
    let (blob, model) = parse(&config::BLOB.0).map_err(AppError::Blob)?;
    // Class-conditional: the mixture component build.rs checked (GAUSSDIFF_CLASS).
    let model = config::CLASS.and_then(|j| model.component(j)).unwrap_or(model);
    let need = SampleSpec::scratch_len(&model);
    if model.dim() != DIM || need > SCRATCH {
        return Err(AppError::Capacity { dim: model.dim(), scratch: need });
    }
    // The Gaussian's (or each mixture component's) rank, or a linear blob's basis rank (0 for a dense linear
    // blob: it has none).
    let rank = match &model {
        Model::Gaussian(g) => g.rank(),
        #[cfg(feature = "every-blob")]
        Model::Mixture(m) => m.rank(),
        #[cfg(feature = "every-blob")]
        Model::Linear(l) => l.basis_rank().unwrap_or(0),
    } as u64;
    stat(
        out,
        &[
            ("blob_crc", u64::from(blob.stored_crc())),
            ("blob_bytes", config::BLOB_LEN as u64),
            ("dim", DIM as u64),
            ("rank", rank),
            ("macs", model.macs_per_eval()),
        ],
    )
    .map_err(AppError::Io)?;

    let shape = blob.shape();
    let map = blob.pixel_map();
    let mut x = [0.0f32; DIM];
    let mut scratch = [0.0f32; SCRATCH];
    let mut pixels = [0u8; DIM];
    let mut frames = 0;
    for config::Run { spec, levels } in &config::RUNS {
        let t0 = counter.now();
        let evals = spec
            .run_on_levels(&model, EdmSchedule::EDM.sigma_max, levels, &mut x, &mut scratch, |i, _| {
                let _ = if i % 2 == 0 { pin.set_high() } else { pin.set_low() };
            })
            .map_err(AppError::Spec)?;
        let t1 = counter.now();
        map.to_pixels(&x, &mut pixels);
        let frame = Frame {
            shape,
            spec: *spec,
            pixels: &pixels,
            sample: &x,
            begin_extras: &[("blob_crc", u64::from(blob.stored_crc()))],
            end_extras: &[("evals", u64::from(evals)), (C::KEY, t1 - t0)],
        };
        frame.encode(config::VALUES, &mut |l| write_line(out, l)).map_err(AppError::Io)?;
        // Structured log beside the protocol on the probe boards (defmt over RTT).
        #[cfg(not(feature = "qemu"))]
        defmt::info!(
            "sample {=u32}: {=str}, {=u32} evals, {=u64} {=str}",
            frames,
            spec.sampler.name(),
            evals,
            t1 - t0,
            C::KEY
        );
        out.flush().map_err(AppError::Io)?;
        let shown = Shown { shape, pixels: &pixels, spec: *spec, count: t1 - t0 };
        screen.show(out, counter, &shown).map_err(AppError::Io)?;
        frames += 1;
        let _ = pin.set_low();
        delay.delay_ms(frame_gap_ms);
    }
    Ok(frames)
}

/// Reports the painted-stack peak and the `done` line.
pub fn finish<W: embedded_io::Write>(out: &mut W, frames: u32, stack: (usize, usize)) -> Result<(), W::Error> {
    stat(out, &[("stack_peak", stack.0 as u64), ("stack_size", stack.1 as u64)])?;
    let mut line = LineBuf::new();
    let _ = line.push_str(frame::PREFIX);
    let _ = line.push_str(" done frames=");
    let _ = line.push_u64(frames.into());
    write_line(out, line.as_str())?;
    out.flush()
}
