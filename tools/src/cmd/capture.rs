//! `gaussdiff capture`: reads a captured firmware stream (serial log, `probe-rs run` output with defmt
//! prefixes, QEMU semihosting output), decodes the text frames (`docs/frame-protocol.md`), checks their
//! checksums and writes one PNG per frame. With `--blob`, it also recomputes every sample on the host with
//! the same blob, seed, sampler and steps, and checks that the target's f32 bits are identical. Screen frames
//! (a display's contents) become `screen-*.png`, beside the host's rendering of the same sample with the
//! same drawing code (`screen-*-host.png`), which must be identical.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::frame::{self, DecodedFrame, Item};
use gaussdiff_core::sampler::SampleSpec;
use gaussdiff_core::schedule::EdmSchedule;

use crate::util;

mod screen;

/// Arguments of `gaussdiff capture`.
#[derive(clap::Args, Debug)]
pub struct CaptureArgs {
    /// Captured frame stream (serial log, RTT or semihosting output); `-` reads standard input.
    pub input: PathBuf,
    /// Output directory for the PNG files (created if missing; its parent must exist).
    #[arg(short, long, default_value = "capture")]
    pub out: PathBuf,
    /// The blob the firmware ran: recompute every sample on the host and require identical f32 bits.
    #[arg(long, value_name = "MODEL.gdn")]
    pub blob: Option<PathBuf>,
    /// Also write all frames side by side into `grid.png`.
    #[arg(long)]
    pub grid: bool,
    /// Pixel scale of the PNG files (nearest neighbour).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub scale: u32,
}

/// The host's sample for a frame's spec.
fn host_sample(blob: &Blob<'_>, spec: &SampleSpec) -> Result<(Vec<f32>, Vec<u8>)> {
    let model = blob.model().context("building the blob's model")?;
    let mut x = vec![0.0f32; model.dim()];
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(&model)];
    let mut sigmas = vec![0.0f32; spec.steps as usize + 1];
    spec.run(&model, &EdmSchedule::EDM, &mut sigmas, &mut x, &mut scratch, |_, _| {})
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((x.clone(), util::to_pixels(&blob.pixel_map(), &x)))
}

/// A frame's spec as the protocol writes it (`sampler=heun steps=18 seed=7`).
fn spec_text(spec: &SampleSpec) -> String {
    format!("sampler={} steps={} seed={}", spec.sampler, spec.steps, spec.seed)
}

fn file_name(i: usize, f: &DecodedFrame) -> String {
    format!(
        "frame-{i:03}-{}{}-seed{}.png",
        f.spec.sampler,
        if f.spec.steps > 0 { f.spec.steps.to_string() } else { String::new() },
        f.spec.seed
    )
}

/// Runs `gaussdiff capture`.
pub fn run(args: &CaptureArgs) -> Result<()> {
    let text = if args.input.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the capture from standard input")?
    } else {
        let bytes = util::read_file(&args.input, "the capture")?;
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let blob_bytes = args.blob.as_ref().map(|p| util::read_blob_file(p)).transpose()?;
    let blob = match (&args.blob, &blob_bytes) {
        (Some(p), Some(b)) => Some(util::parse_blob(p, b)?),
        _ => None,
    };

    let mut frames = Vec::new();
    let mut screens = Vec::new();
    let mut problems = Vec::new();
    for item in frame::decode(&text) {
        match item {
            Ok(Item::Frame(f)) => frames.push(f),
            Ok(Item::Screen(s)) => screens.push(s),
            Ok(Item::Stat { pairs, .. }) => {
                let kv: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("stat  {}", kv.join(" "));
            }
            Ok(Item::TargetError { line, message }) => {
                problems.push(format!("{}:{line}: the target reported: {message}", args.input.display()))
            }
            Ok(Item::Done { pairs, .. }) => {
                let kv: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("done  {}", kv.join(" "));
            }
            Err(e) => problems.push(format!("{}: {e}", args.input.display())),
        }
    }
    if frames.is_empty() {
        let why = if problems.is_empty() { String::new() } else { format!(": {}", problems.join("; ")) };
        bail!(
            "{}: no complete frame found (expected lines starting with {}){why}",
            args.input.display(),
            frame::PREFIX
        );
    }

    let out_dir = gaussdiff_fit::io::OutputDir::create(&args.out, false)?;
    // Frames are numbered by their `begin` line's position in the stream, so a corrupt frame keeps its
    // number and the ones after it are not renumbered.
    let begin = format!("{} begin", frame::PREFIX);
    let begins: Vec<usize> = text.lines().enumerate().filter(|(_, l)| l.contains(&begin)).map(|(i, _)| i + 1).collect();
    let mut tiles = Vec::new();
    // The host's pixels for each frame (with --blob), for rendering the screens.
    let mut host_pixels = Vec::new();
    for f in &frames {
        let i = begins.iter().position(|&l| l == f.line).unwrap_or(begins.len());
        let name = file_name(i, f);
        let mut status = format!(
            "pixels crc {:08x} ok, sample crc {:08x} {}",
            f.pixel_crc,
            f.sample_crc,
            if f.values.is_some() { "ok (from the f32 values)" } else { "not checkable without v lines" }
        );
        if let Some(blob) = &blob {
            let stored = blob.stored_crc();
            match f.extra("blob_crc") {
                Some(c) if c.parse::<u32>().ok() != Some(stored) => problems.push(format!(
                    "frame {i} (line {}): made from blob crc {}, but {} has {stored:08x}",
                    f.line,
                    c.parse::<u32>().map_or_else(|_| format!("'{c}'"), |v| format!("{v:08x}")),
                    args.blob.as_ref().map_or(String::new(), |p| p.display().to_string())
                )),
                _ => {}
            }
            let (x, pixels) = host_sample(blob, &f.spec)
                .with_context(|| format!("frame {i} (line {}) {}", f.line, spec_text(&f.spec)))?;
            host_pixels.push(pixels.clone());
            if f.matches_sample(&x) && pixels == f.pixels {
                status.push_str(", bit-identical to the host");
            } else {
                problems.push(format!(
                    "frame {i} (line {}) {}: target sample crc {:08x} != host {:08x}{}",
                    f.line,
                    spec_text(&f.spec),
                    f.sample_crc,
                    frame::sample_crc(&x),
                    if pixels == f.pixels { "" } else { " (pixels differ too)" }
                ));
            }
        }
        let png = util::image_png(&scale_pixels(&f.pixels, f, args.scale), scaled_shape(f, args.scale))?;
        let path = args.out.join(&name);
        util::write_atomic(&out_dir.file(&name)?, &png)?;
        println!(
            "{}  {}x{}x{} {} steps={} seed={}  {status}",
            path.display(),
            f.shape.channels,
            f.shape.height,
            f.shape.width,
            f.spec.sampler,
            f.spec.steps,
            f.spec.seed
        );
        tiles.push(f.pixels.clone());
    }
    for (k, s) in screens.iter().enumerate() {
        let path = args.out.join(screen::file_name(k, s, false));
        util::write_atomic(
            &out_dir.file(&screen::file_name(k, s, false))?,
            &screen::png(&s.rgb565, s.width, s.height)?,
        )?;
        let status = match screen::frame_for(s, &frames) {
            None => {
                problems.push(format!("screen {k} (line {}): no image frame of its run before it", s.line));
                "no image frame to render it from".to_string()
            }
            Some((j, f)) => {
                // The host's own sample with --blob, else the frame's pixels (their CRC checked).
                let pixels = host_pixels.get(j).unwrap_or(&f.pixels);
                let host = screen::render(s, f.shape, pixels)?;
                let host_path = args.out.join(screen::file_name(k, s, true));
                util::write_atomic(
                    &out_dir.file(&screen::file_name(k, s, true))?,
                    &screen::png(&host, s.width, s.height)?,
                )?;
                let differ = host.iter().zip(&s.rgb565).filter(|(a, b)| a != b).count();
                if differ == 0 {
                    format!("identical to the host's rendering {}", host_path.display())
                } else {
                    problems.push(format!(
                        "screen {k} (line {}) {}: {differ} pixels differ from the host's rendering",
                        s.line,
                        spec_text(&s.spec)
                    ));
                    format!("{differ} pixels differ from the host's rendering")
                }
            }
        };
        println!("{}  {}x{} screen {}  {status}", path.display(), s.width, s.height, spec_text(&s.spec));
    }
    if args.grid {
        let shape = frames[0].shape;
        if frames.iter().all(|f| f.shape == shape) {
            let png = util::grid_png(&tiles, shape, tiles.len().min(8), args.scale.max(2))?;
            let path = args.out.join("grid.png");
            util::write_atomic(&out_dir.file("grid.png")?, &png)?;
            println!("{}", path.display());
        } else {
            problems.push("--grid: the frames have different shapes".to_string());
        }
    }
    // The frames that decoded are written and kept even when others were corrupt (they are the evidence).
    out_dir.keep().with_context(|| format!("--out {}", args.out.display()))?;
    if !problems.is_empty() {
        bail!("{} frame(s) written, but:\n  {}", frames.len(), problems.join("\n  "));
    }
    println!(
        "{} frame(s), all checksums verified{}",
        frames.len(),
        if blob.is_some() { " and identical to the host" } else { "" }
    );
    Ok(())
}

fn scaled_shape(f: &DecodedFrame, scale: u32) -> gaussdiff_core::pixel::ImageShape {
    let s = |v: u16| u16::try_from(u32::from(v) * scale).unwrap_or(u16::MAX);
    gaussdiff_core::pixel::ImageShape { channels: f.shape.channels, height: s(f.shape.height), width: s(f.shape.width) }
}

/// Nearest-neighbour upscaling of a CHW image.
fn scale_pixels(pixels: &[u8], f: &DecodedFrame, scale: u32) -> Vec<u8> {
    if scale == 1 {
        return pixels.to_vec();
    }
    let (c, h, w, s) =
        (usize::from(f.shape.channels), usize::from(f.shape.height), usize::from(f.shape.width), scale as usize);
    let mut out = Vec::with_capacity(c * h * w * s * s);
    for ch in 0..c {
        for y in 0..h * s {
            for x in 0..w * s {
                out.push(pixels[(ch * h + y / s) * w + x / s]);
            }
        }
    }
    out
}
