//! Figures: line plots against sigma (log axis) and histograms with plotters, image grids with `image`.
//! Everything is rendered in memory, PNG-encoded, and written atomically.

use anyhow::{Context, Result};
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use plotters::prelude::*;
use std::path::Path;

use gaussdiff_fit::io::write_atomic;

const W: u32 = 800;
const H: u32 = 500;

fn encode_png(rgb: Vec<u8>, w: u32, h: u32, path: &Path) -> Result<()> {
    let img = image::RgbImage::from_raw(w, h, rgb).context("image buffer size")?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .with_context(|| format!("encoding {}", path.display()))?;
    Ok(write_atomic(path, &bytes)?)
}

/// Series colours (matplotlib's tab10 order), shared by every plot of the crate.
pub(crate) const COLORS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

/// The legend of the sigma plots and the histograms: the series labels on a translucent white box with a
/// black border.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// One or more curves `y(sigma)` on a log-sigma axis.
pub fn sigma_plot(
    path: &Path,
    title: &str,
    y_label: &str,
    sigmas: &[f64],
    series: &[(String, Vec<f64>)],
    log_y: bool,
) -> Result<()> {
    let mut buf = vec![0u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let xs = (
            sigmas.iter().cloned().fold(f64::INFINITY, f64::min) * 0.8,
            sigmas.iter().cloned().fold(0.0, f64::max) * 1.25,
        );
        let vals: Vec<f64> = series.iter().flat_map(|s| s.1.iter().cloned()).filter(|v| v.is_finite()).collect();
        let mut lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
        let mut hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            lo = 0.0;
            hi = 1.0;
        }
        if log_y {
            lo = lo.max(1e-6) * 0.8;
            hi = hi.max(lo * 10.0) * 1.25;
        } else {
            let pad = ((hi - lo) * 0.08).max(1e-3);
            lo -= pad;
            hi += pad;
        }
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 22)).margin(12).x_label_area_size(40).y_label_area_size(60);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart.configure_mesh().x_desc("sigma").y_desc(y_label).draw().map_err(|e| anyhow::anyhow!("{e}"))?;
                for (k, (name, ys)) in series.iter().enumerate() {
                    let c = COLORS[k % COLORS.len()];
                    let pts: Vec<(f64, f64)> =
                        sigmas.iter().cloned().zip(ys.iter().cloned()).filter(|p| p.1.is_finite()).collect();
                    chart
                        .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .label(name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                draw_legend(&mut chart)?;
            }};
        }
        if log_y {
            draw!(b
                .build_cartesian_2d((xs.0..xs.1).log_scale(), (lo..hi).log_scale())
                .map_err(|e| anyhow::anyhow!("{e}"))?);
        } else {
            draw!(b.build_cartesian_2d((xs.0..xs.1).log_scale(), lo..hi).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    encode_png(buf, W, H, path)
}

/// Overlaid histograms of several value lists.
pub fn histogram(path: &Path, title: &str, x_label: &str, series: &[(String, Vec<f64>)]) -> Result<()> {
    let mut buf = vec![0u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let all: Vec<f64> = series.iter().flat_map(|s| s.1.iter().cloned()).filter(|v| v.is_finite()).collect();
        let lo = all.iter().cloned().fold(f64::INFINITY, f64::min).min(0.0);
        let hi = all.iter().cloned().fold(0.0, f64::max).max(1e-6) * 1.05;
        let bins = 30usize;
        let width = (hi - lo) / bins as f64;
        let counts: Vec<Vec<f64>> = series
            .iter()
            .map(|(_, v)| {
                let mut c = vec![0.0; bins];
                for &x in v {
                    let k = (((x - lo) / width) as usize).min(bins - 1);
                    c[k] += 1.0 / v.len().max(1) as f64;
                }
                c
            })
            .collect();
        let top = counts.iter().flatten().cloned().fold(0.0, f64::max).max(1e-6) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart.configure_mesh().x_desc(x_label).y_desc("fraction").draw().map_err(|e| anyhow::anyhow!("{e}"))?;
        for (k, ((name, _), c)) in series.iter().zip(&counts).enumerate() {
            let col = COLORS[k % COLORS.len()];
            let pts: Vec<(f64, f64)> = c
                .iter()
                .enumerate()
                .flat_map(|(i, &v)| [(lo + i as f64 * width, v), (lo + (i + 1) as f64 * width, v)])
                .collect();
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
        }
        draw_legend(&mut chart)?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    encode_png(buf, W, H, path)
}

/// A grid of images (rows of `samples`, model space) as a PNG, `cols` per row, 1-pixel gaps,
/// each image scaled up by `zoom`.
pub fn image_grid(
    path: &Path,
    samples: &[f32],
    shape: ImageShape,
    pixel: PixelMap,
    cols: usize,
    zoom: u32,
) -> Result<()> {
    let d = shape.dim();
    let n = samples.len() / d;
    let (h, w) = (shape.height as usize, shape.width as usize);
    let cols = cols.max(1).min(n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let z = zoom.max(1) as usize;
    let gw = cols * (w * z + 1) + 1;
    let gh = rows * (h * z + 1) + 1;
    let mut rgb = vec![64u8; gw * gh * 3];
    for k in 0..n {
        let (gr, gc) = (k / cols, k % cols);
        let origin = (gc * (w * z + 1) + 1, gr * (h * z + 1) + 1);
        paint_tile(&mut rgb, gw, origin, &samples[k * d..(k + 1) * d], shape, pixel, z);
    }
    encode_png(rgb, gw as u32, gh as u32, path)
}

/// Paints one image (model space, CHW; gray or the first three channels as RGB) scaled by `z` into the RGB
/// buffer `rgb` of width `gw`, its top-left pixel at `origin = (x, y)`.
fn paint_tile(
    rgb: &mut [u8],
    gw: usize,
    origin: (usize, usize),
    s: &[f32],
    shape: ImageShape,
    pixel: PixelMap,
    z: usize,
) {
    let (c, h, w) = (shape.channels as usize, shape.height as usize, shape.width as usize);
    for y in 0..h * z {
        for x in 0..w * z {
            let (sy, sx) = (y / z, x / z);
            let px = |ch: usize| pixel.to_pixel(s[(ch * h + sy) * w + sx]);
            let (r, g, b) = if c >= 3 { (px(0), px(1), px(2)) } else { (px(0), px(0), px(0)) };
            let o = ((origin.1 + y) * gw + origin.0 + x) * 3;
            rgb[o..o + 3].copy_from_slice(&[r, g, b]);
        }
    }
}

/// One curve of an [`xy_plot`].
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points `(x, y)`; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    /// Dashed line without markers (for reference curves).
    pub dashed: bool,
}

impl Series {
    /// A solid curve with markers.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), points, dashed: false }
    }
    /// A dashed reference curve.
    pub fn reference(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), points, dashed: true }
    }
}

/// Axes of an [`xy_plot`].
#[derive(Clone, Debug, Default)]
pub struct Axes {
    /// x-axis label.
    pub x: String,
    /// y-axis label.
    pub y: String,
    /// Logarithmic x.
    pub log_x: bool,
    /// Logarithmic y.
    pub log_y: bool,
    /// Vertical marker lines `(x, label)`.
    pub vlines: Vec<(f64, String)>,
}

fn pad_range(lo: f64, hi: f64, log: bool) -> (f64, f64) {
    if log {
        let lo = lo.max(1e-12);
        (lo / 1.3, hi.max(lo * 1.01) * 1.3)
    } else {
        let pad = ((hi - lo) * 0.06).max(1e-3);
        (lo - pad, hi + pad)
    }
}

/// A line plot of several series (800 x 500 PNG, written atomically).
pub fn xy_plot(path: &Path, title: &str, axes: &Axes, series: &[Series]) -> Result<()> {
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|p| p.0.is_finite() && p.1.is_finite() && (!axes.log_x || p.0 > 0.0) && (!axes.log_y || p.1 > 0.0))
        .collect();
    let fold = |f: fn(&(f64, f64)) -> f64| {
        let v: Vec<f64> = pts.iter().map(f).collect();
        (v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max))
    };
    let (mut x0, mut x1) = fold(|p| p.0);
    let (mut y0, mut y1) = fold(|p| p.1);
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
    }
    for (x, _) in &axes.vlines {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
    }
    let (x0, x1) = pad_range(x0, x1, axes.log_x);
    let (y0, y1) = pad_range(y0, y1, axes.log_y);
    let mut buf = vec![0u8; (W * H * 3) as usize];
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting {}: {e}", path.display());
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 20)).margin(12).x_label_area_size(40).y_label_area_size(70);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(|x| e(&x))?;
                chart.configure_mesh().x_desc(axes.x.as_str()).y_desc(axes.y.as_str()).draw().map_err(|x| e(&x))?;
                for (k, s) in series.iter().enumerate() {
                    let c = COLORS[k % COLORS.len()];
                    let p: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|p| {
                            p.0.is_finite()
                                && p.1.is_finite()
                                && (!axes.log_x || p.0 > 0.0)
                                && (!axes.log_y || p.1 > 0.0)
                        })
                        .collect();
                    if s.dashed {
                        chart
                            .draw_series(DashedLineSeries::new(p.clone(), 8, 5, c.stroke_width(2)))
                            .map_err(|x| e(&x))?
                            .label(s.label.as_str())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                    } else {
                        chart
                            .draw_series(LineSeries::new(p.clone(), c.stroke_width(2)))
                            .map_err(|x| e(&x))?
                            .label(s.label.as_str())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                        chart.draw_series(p.iter().map(|&q| Circle::new(q, 3, c.filled()))).map_err(|x| e(&x))?;
                    }
                }
                for (x, label) in &axes.vlines {
                    chart
                        .draw_series(LineSeries::new(vec![(*x, y0), (*x, y1)], BLACK.mix(0.5).stroke_width(1)))
                        .map_err(|q| e(&q))?;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            label.clone(),
                            (*x, y1),
                            ("sans-serif", 14).into_font(),
                        )))
                        .map_err(|q| e(&q))?;
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|x| e(&x))?;
            }};
        }
        match (axes.log_x, axes.log_y) {
            (true, true) => draw!(b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())),
            (true, false) => draw!(b.build_cartesian_2d((x0..x1).log_scale(), y0..y1)),
            (false, true) => draw!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())),
            (false, false) => draw!(b.build_cartesian_2d(x0..x1, y0..y1)),
        }
        root.present().map_err(|x| e(&x))?;
    }
    encode_png(buf, W, H, path)
}

/// One labelled row of a [`labelled_grid`]: its label and its images (model space, row-major).
pub type GridRow = (String, Vec<f32>);

/// An image grid with a title above and a label left of each row (white background, 1-pixel gaps, each
/// image scaled up by `zoom`; a row shows at most `cols` images).
pub fn labelled_grid(
    path: &Path,
    title: &str,
    rows: &[GridRow],
    shape: ImageShape,
    pixel: PixelMap,
    cols: usize,
    zoom: u32,
) -> Result<()> {
    let d = shape.dim();
    let (h, w) = (shape.height as usize, shape.width as usize);
    let z = zoom.max(1) as usize;
    let cols = cols.max(1);
    let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let label_w = 8 * longest + 16;
    let title_h = 30;
    let (cw, ch) = (w * z + 2, h * z + 2);
    let gw = (label_w + cols * cw + 4).max(8 * title.chars().count() + 16);
    let gh = title_h + rows.len().max(1) * ch + 4;
    let mut rgb = vec![255u8; gw * gh * 3];
    for (r, (_, imgs)) in rows.iter().enumerate() {
        for (k, s) in imgs.chunks_exact(d).take(cols).enumerate() {
            paint_tile(&mut rgb, gw, (label_w + k * cw + 1, title_h + r * ch + 1), s, shape, pixel, z);
        }
    }
    {
        let e = |x: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {x}", path.display());
        let root = BitMapBackend::with_buffer(&mut rgb, (gw as u32, gh as u32)).into_drawing_area();
        root.draw(&Text::new(title.to_string(), (8, 6), ("sans-serif", 18).into_font())).map_err(|x| e(&x))?;
        for (r, (label, _)) in rows.iter().enumerate() {
            let y = (title_h + r * ch + ch / 2) as i32 - 7;
            root.draw(&Text::new(label.clone(), (6, y), ("sans-serif", 14).into_font())).map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    encode_png(rgb, gw as u32, gh as u32, path)
}
