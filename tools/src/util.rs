//! Shared helpers: atomic output files and nearest neighbours (re-exported from `gaussdiff_fit`), dataset arguments, blob loading, PNG grids, the noise convention.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_fit::dataset::{self, Dataset, Format, LoadOptions};

use crate::limits;

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

/// Fail early (before any work) if an output path cannot be written: its directory is missing, it is a
/// directory, FIFO or device, or it is one of `inputs` (`gaussdiff_fit::io::check_output`).
pub fn check_output(path: &Path, inputs: &[&Path]) -> Result<()> {
    Ok(gaussdiff_fit::io::check_output(path, inputs)?)
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

    /// [`DatasetArgs::load`] with the labels of `labels` (`gaussdiff export --labels`) in place of the
    /// dataset's own.
    pub fn load_with_labels(&self, labels: &str) -> Result<Dataset> {
        let path = self.dataset.as_deref().ok_or_else(|| anyhow::anyhow!("expected --dataset PATH"))?;
        let pb = stage(format!("reading {} with the labels of {labels}", path.display()));
        let ds = dataset::load_with_labels(path, &self.options(), labels).map_err(|e| anyhow::anyhow!("dataset {e}"));
        pb.finish_and_clear();
        ds
    }
}

pub fn load_dataset(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    dataset::load(path, opts).map_err(|e| anyhow::anyhow!("dataset {e}"))
}

/// Read a blob file: its length is checked against the header's `total_len` (read from the first 64
/// bytes) before the file is read whole, so a padded or truncated file costs no more than its header.
pub fn read_blob_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).with_context(|| format!("{}: cannot read blob", path.display()))?;
    let len = f.metadata().with_context(|| format!("{}: cannot read blob", path.display()))?.len();
    let mut head = Vec::with_capacity(gaussdiff_core::blob::format::HEADER_SIZE);
    (&mut f)
        .take(gaussdiff_core::blob::format::HEADER_SIZE as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("{}: cannot read blob", path.display()))?;
    let declared =
        Blob::declared_len(&head).map_err(|e| anyhow::anyhow!("{}: invalid gaussdiff blob: {e}", path.display()))?;
    if len != declared as u64 {
        bail!(
            "{}: invalid gaussdiff blob: the file has {len} bytes, its header declares total_len = {declared} \
             (expected equal; {} bytes)",
            path.display(),
            if len > declared as u64 { "trailing" } else { "truncated" }
        );
    }
    let mut bytes = head;
    bytes.reserve_exact(declared - bytes.len());
    (&mut f)
        .take((declared - bytes.len()) as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read blob", path.display()))?;
    if bytes.len() != declared {
        bail!("{}: invalid gaussdiff blob: the file changed while it was read", path.display());
    }
    Ok(bytes)
}

/// Read a whole input file (not a blob), naming it on failure.
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

/// PNG colour type of `channels` interleaved 8-bit channels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA, so
/// every channel a blob can hold (`MAX_CHANNELS` = 4) is written faithfully.
fn color_type(channels: u16) -> Result<image::ExtendedColorType> {
    Ok(match channels {
        1 => image::ExtendedColorType::L8,
        2 => image::ExtendedColorType::La8,
        3 => image::ExtendedColorType::Rgb8,
        4 => image::ExtendedColorType::Rgba8,
        c => bail!("{c} channels: expected 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) for a PNG"),
    })
}

fn encode_png(buf: &[u8], w: u32, h: u32, channels: u16) -> Result<Vec<u8>> {
    use image::ImageEncoder as _;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(buf, w, h, color_type(channels)?)?;
    Ok(out)
}

/// A PNG grid of CHW 8-bit tiles (row-major), each scaled up by `scale`, with a 1-pixel gray gap (scaled).
/// Its size is checked against [`limits::MAX_GRID_SIDE`] and [`limits::MAX_GRID_PIXELS`] before the
/// image is allocated; tiles are painted as they come ([`Grid::put`]) so callers can stream samples.
#[derive(Debug)]
pub struct Grid {
    shape: ImageShape,
    cols: u32,
    scale: u32,
    width: u32,
    height: u32,
    buf: Vec<u8>,
}

impl Grid {
    /// A grid for `count` tiles of `shape`, `cols` per row.
    pub fn new(shape: ImageShape, count: u64, cols: usize, scale: u32) -> Result<Self> {
        let (w, h, cols) = Self::check(shape, count, cols, scale)?;
        let c = usize::from(shape.channels);
        let mut buf = vec![96u8; w as usize * h as usize * c];
        if c == 2 || c == 4 {
            for px in buf.chunks_exact_mut(c) {
                px[c - 1] = 255;
            }
        }
        Ok(Self { shape, cols, scale, width: w, height: h, buf })
    }

    /// The grid's width, height and columns, after checking the limits (nothing allocated).
    pub fn check(shape: ImageShape, count: u64, cols: usize, scale: u32) -> Result<(u32, u32, u32)> {
        color_type(shape.channels)?;
        if cols == 0 {
            bail!("--cols 0: expected at least 1 column");
        }
        if scale == 0 || scale > limits::MAX_SCALE {
            bail!("--scale {scale}: expected 1 <= scale <= {}", limits::MAX_SCALE);
        }
        let count = count.max(1);
        let cols = (cols as u64).min(count);
        let rows = count.div_ceil(cols);
        let gap = u64::from(scale);
        let tw = u64::from(shape.width) * u64::from(scale) + gap;
        let th = u64::from(shape.height) * u64::from(scale) + gap;
        let (w, h) = (cols.saturating_mul(tw).saturating_add(gap), rows.saturating_mul(th).saturating_add(gap));
        if w > limits::MAX_GRID_SIDE || h > limits::MAX_GRID_SIDE || w.saturating_mul(h) > limits::MAX_GRID_PIXELS {
            bail!(
                "the PNG grid would be {w} x {h} pixels ({count} images of {}x{} at --scale {scale}, {cols} per row): \
                 expected at most {} pixels a side and {} pixels in all (use a smaller --n, --scale or --cols)",
                shape.width,
                shape.height,
                limits::MAX_GRID_SIDE,
                limits::MAX_GRID_PIXELS
            );
        }
        Ok((w as u32, h as u32, cols as u32))
    }

    /// Paint tile `t` (CHW 8-bit, `shape.dim()` bytes).
    pub fn put(&mut self, t: u64, tile: &[u8]) {
        let (h, w, s) = (u32::from(self.shape.height), u32::from(self.shape.width), self.scale);
        let c = usize::from(self.shape.channels);
        let plane = (h * w) as usize;
        let (tw, th) = (w * s + s, h * s + s);
        let (r, col) = ((t / u64::from(self.cols)) as u32, (t % u64::from(self.cols)) as u32);
        for y in 0..h * s {
            let gy = (s + r * th + y) as usize;
            for x in 0..w * s {
                let p = ((y / s) * w + x / s) as usize;
                let gx = (s + col * tw + x) as usize;
                let o = (gy * self.width as usize + gx) * c;
                for ch in 0..c {
                    self.buf[o + ch] = tile[ch * plane + p];
                }
            }
        }
    }

    /// The grid as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        encode_png(&self.buf, self.width, self.height, self.shape.channels)
    }
}

/// A grid of CHW 8-bit tiles (see [`Grid`]) encoded as PNG.
pub fn grid_png(tiles: &[Vec<u8>], shape: ImageShape, cols: usize, scale: u32) -> Result<Vec<u8>> {
    let mut g = Grid::new(shape, tiles.len() as u64, cols.max(1), scale.max(1))?;
    for (t, tile) in tiles.iter().enumerate() {
        g.put(t as u64, tile);
    }
    g.png()
}

/// One CHW 8-bit image as PNG bytes (1 to 4 channels, see [`Grid`]).
pub fn image_png(pixels: &[u8], shape: ImageShape) -> Result<Vec<u8>> {
    let c = usize::from(shape.channels);
    let plane = usize::from(shape.width) * usize::from(shape.height);
    if pixels.len() != c * plane {
        bail!("pixel buffer of {} bytes does not match the shape {c}x{}x{}", pixels.len(), shape.height, shape.width);
    }
    let mut buf = vec![0u8; pixels.len()];
    for p in 0..plane {
        for ch in 0..c {
            buf[p * c + ch] = pixels[ch * plane + p];
        }
    }
    encode_png(&buf, u32::from(shape.width), u32::from(shape.height), shape.channels)
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
