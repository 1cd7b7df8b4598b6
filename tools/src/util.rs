//! Shared helpers: atomic output files and nearest neighbours (re-exported from `gaussdiff_fit`), dataset arguments, blob loading, PNG grids, the noise convention.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_fit::dataset::{self, Dataset, Format, LoadOptions};

/// The one atomic file write (temporary file + rename), shared with the trainer.
pub use gaussdiff_fit::io::write_atomic;
/// The one nearest-neighbour search, shared with the trainer.
pub use gaussdiff_fit::nearest::{dist_sq, nearest};

/// Write a command's report to stdout. A reader that closed the pipe early (`gaussdiff inspect m.gdn | head`)
/// ends the output quietly instead of a panic.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut so = std::io::stdout().lock();
    match so.write_all(text.as_bytes()).and_then(|()| so.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to stdout"),
    }
}

/// Fail early (before any work) if the output's directory is missing.
pub fn check_output_dir(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() && !p.is_dir() => {
            bail!(
                "{}: output directory {} does not exist (expected an existing directory)",
                path.display(),
                p.display()
            )
        }
        _ => Ok(()),
    }
}

/// Dataset selection shared by `export`, `sample --nearest` and the benchmarks.
#[derive(clap::Args, Debug, Clone)]
pub struct DatasetArgs {
    /// Dataset file or directory (MNIST IDX, CIFAR-10 batches, image folder, digits CSV, Frey MAT). A folder is
    /// read recursively: images directly in it in name order, then its subfolders in natural order (s2 before
    /// s10); when every image sits in a subfolder, the subfolder's name is the image's label.
    #[arg(long, value_name = "PATH", required_unless_present = "linear")]
    pub dataset: Option<PathBuf>,
    /// Dataset format: auto (by content), idx, cifar10, folder, digits-csv, frey-mat.
    #[arg(long, default_value = "auto", value_name = "FORMAT")]
    pub format: Format,
    /// Use a random subset of at most N training images (chosen with --seed).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Seed of the --limit / --hold-out selection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Convert colour images to gray.
    #[arg(long)]
    pub grayscale: bool,
    /// Resize every image to WxH.
    #[arg(long, value_name = "WxH", value_parser = dataset::parse_wxh)]
    pub resize: Option<(u16, u16)>,
    /// Keep N random images out of the fit.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub hold_out: usize,
}

impl DatasetArgs {
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            format: self.format,
            limit: self.limit,
            seed: self.seed,
            grayscale: self.grayscale,
            resize: self.resize,
            hold_out: self.hold_out,
        }
    }

    pub fn load(&self) -> Result<Dataset> {
        let path = self.dataset.as_deref().ok_or_else(|| anyhow::anyhow!("expected --dataset PATH"))?;
        let pb = stage(format!("reading {}", path.display()));
        let ds = load_dataset(path, &self.options());
        pb.finish_and_clear();
        ds
    }
}

pub fn load_dataset(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    dataset::load(path, opts).map_err(|e| anyhow::anyhow!("dataset {e}"))
}

/// Read a blob file fully.
pub fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}: cannot read {what}", path.display()))
}

/// Parse and verify a blob (CRC checked).
pub fn parse_blob<'a>(path: &Path, bytes: &'a [u8]) -> Result<Blob<'a>> {
    Blob::parse(bytes).map_err(|e| anyhow::anyhow!("{}: invalid gaussdiff blob: {e}", path.display()))
}

/// Model values (CHW) to 8-bit pixels.
pub fn to_pixels(map: &PixelMap, sample: &[f32]) -> Vec<u8> {
    let mut px = vec![0u8; sample.len()];
    map.to_pixels(sample, &mut px);
    px
}

/// A grid of CHW 8-bit tiles (`rows x cols`, row-major order of `tiles`), each scaled up by `scale`,
/// with a 1-pixel gray gap (scaled), encoded as PNG. Gray images give an 8-bit gray PNG, colour an RGB one.
pub fn grid_png(tiles: &[Vec<u8>], shape: ImageShape, cols: usize, scale: u32) -> Result<Vec<u8>> {
    let (h, w) = (u32::from(shape.height), u32::from(shape.width));
    let cols = cols.max(1).min(tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let gap = scale.max(1);
    let (tw, th) = (w * scale + gap, h * scale + gap);
    let (iw, ih) = (cols as u32 * tw + gap, rows as u32 * th + gap);
    let mut img = image::RgbImage::from_pixel(iw, ih, image::Rgb([96, 96, 96]));
    let plane = (h * w) as usize;
    for (t, tile) in tiles.iter().enumerate() {
        let (r, c) = ((t / cols) as u32, (t % cols) as u32);
        for y in 0..h * scale {
            for x in 0..w * scale {
                let p = ((y / scale) * w + x / scale) as usize;
                let px = if shape.channels >= 3 {
                    image::Rgb([tile[p], tile[plane + p], tile[2 * plane + p]])
                } else {
                    image::Rgb([tile[p]; 3])
                };
                img.put_pixel(gap + c * tw + x, gap + r * th + y, px);
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    if shape.channels >= 3 {
        img.write_to(&mut out, image::ImageFormat::Png)?;
    } else {
        image::DynamicImage::ImageRgb8(img).into_luma8().write_to(&mut out, image::ImageFormat::Png)?;
    }
    Ok(out.into_inner())
}

/// One image as PNG bytes (gray or RGB).
pub fn image_png(pixels: &[u8], shape: ImageShape) -> Result<Vec<u8>> {
    grid_png_single(pixels, shape)
}

fn grid_png_single(pixels: &[u8], shape: ImageShape) -> Result<Vec<u8>> {
    let (w, h) = (u32::from(shape.width), u32::from(shape.height));
    let mut out = std::io::Cursor::new(Vec::new());
    if shape.channels >= 3 {
        let plane = (w * h) as usize;
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let p = (y * w + x) as usize;
            image::Rgb([pixels[p], pixels[plane + p], pixels[2 * plane + p]])
        });
        img.write_to(&mut out, image::ImageFormat::Png)?;
    } else {
        let img = image::GrayImage::from_raw(w, h, pixels.to_vec()).context("pixel buffer does not match the shape")?;
        img.write_to(&mut out, image::ImageFormat::Png)?;
    }
    Ok(out.into_inner())
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
/// `--quiet`: no progress bars or spinners (they are also hidden when stderr is not a terminal).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by `--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// A spinner on stderr for work without a count (reading a dataset, a fit): the message and the elapsed
/// time, ticking while the work runs; hidden with `--quiet` or when stderr is not a terminal. Finish it with
/// `finish_and_clear`.
pub fn stage(msg: impl Into<String>) -> indicatif::ProgressBar {
    if quiet() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        pb.set_style(style);
    }
    pb.set_message(msg.into());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// A progress bar on stderr (`len` steps); hidden with `--quiet` or when stderr is not a terminal.
pub fn progress(len: u64, msg: &str) -> indicatif::ProgressBar {
    if quiet() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg.to_string());
    pb
}
