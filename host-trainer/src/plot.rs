//! Figures: line plots and histograms with plotters, labelled image grids through
//! [`gaussdiff_fit::figure`] (the one grid drawing the CLI's demo uses too). Everything is rendered in
//! memory, PNG-encoded, and written atomically.
//!
//! Every plot: tick values on both axes at positions chosen here ([`ticks`]: 1-2-5 steps, on a log axis
//! powers of ten or, inside a decade or two, 1-2-5 multiples), integers printed without ".0"
//! ([`fmt_tick`]), at most [`MAX_TICKS`] per axis so labels never collide, and the legend below the data
//! area, one entry per line, so it covers nothing.

use anyhow::{Context, Result};
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_fit::figure::{Block, Figure, Row};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

use gaussdiff_fit::io::write_atomic;

/// Plot width (pixels).
const W: u32 = 800;
/// Height of the data area plus axes and title (pixels); the legend adds [`LEGEND_LINE`] per entry.
const H: u32 = 480;
/// Height of one legend line (pixels).
const LEGEND_LINE: u32 = 22;
/// Most tick labels per axis.
pub const MAX_TICKS: usize = 8;

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

/// A tick label: integers without a decimal point ("100000", not "100000.0"), very large or small values
/// as `1e-4` / `2.5e6`, everything else with up to 4 significant digits and no trailing zeros.
pub fn fmt_tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        let m = trim(&format!("{m:.2}"));
        return if m == "1" || m == "-1" {
            format!("{}1e{e}", if v < 0.0 { "-" } else { "" })
        } else {
            format!("{m}e{e}")
        };
    }
    if (v - v.round()).abs() <= 1e-9 * a.max(1.0) {
        return format!("{}", v.round() as i64);
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    trim(&format!("{v:.decimals$}"))
}

fn trim(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// "Nice" linear ticks (steps 1, 2 or 5 x 10^k) inside `[lo, hi]`, at most `max` of them.
fn linear_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let raw = (hi - lo) / max.saturating_sub(1).max(1) as f64;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|&s| s >= raw).unwrap_or(10.0 * p);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v }).collect()
}

/// Tick positions for an axis over `[lo, hi]`: linear 1-2-5 steps, or on a log axis powers of ten
/// (every k-th decade when there are many), 1-2-5 multiples when that gives too few, 1..9 multiples inside a
/// decade, and linear ticks as the last resort; always at least two ticks on a non-empty range, at most
/// [`MAX_TICKS`].
pub fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if !log {
        return linear_ticks(lo, hi, MAX_TICKS);
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let inside = |v: &f64| *v >= lo * (1.0 - 1e-12) && *v <= hi * (1.0 + 1e-12);
    for mult in
        [&[1.0][..], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 5.0, 7.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]]
    {
        let t: Vec<f64> = (a..=b).flat_map(|e| mult.iter().map(move |m| m * 10f64.powi(e))).filter(inside).collect();
        if t.len() >= 3 || (t.len() >= 2 && mult.len() == 9) {
            let stride = t.len().div_ceil(MAX_TICKS);
            return t.into_iter().step_by(stride).collect();
        }
    }
    linear_ticks(lo, hi, 5)
}

/// How a [`Series`] is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Solid line with a marker at each point (measurements).
    Markers,
    /// Solid line without markers (exact theory, histograms).
    Line,
    /// Dashed line without markers (asymptotic guides, references).
    Dashed,
}

/// One curve of an [`xy_plot`].
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points `(x, y)`; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    /// Line style.
    pub style: Style,
}

impl Series {
    /// A solid curve with markers.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), points, style: Style::Markers }
    }
    /// A dashed reference curve.
    pub fn reference(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), points, style: Style::Dashed }
    }
    /// A solid curve without markers.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), points, style: Style::Line }
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

/// Draws the legend entries (line sample and label) one per line into `area`.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, series: &[Series]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |x: &dyn std::fmt::Display| anyhow::anyhow!("legend: {x}");
    for (k, s) in series.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        let y = (k as u32 * LEGEND_LINE + LEGEND_LINE / 2) as i32;
        let (x0, x1) = (80, 110);
        if s.style == Style::Dashed {
            for seg in (x0..x1).step_by(10) {
                area.draw(&PathElement::new(vec![(seg, y), (seg + 6, y)], c.stroke_width(2))).map_err(|x| e(&x))?;
            }
        } else {
            area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2))).map_err(|x| e(&x))?;
        }
        if s.style == Style::Markers {
            area.draw(&Circle::new(((x0 + x1) / 2, y), 3, c.filled())).map_err(|x| e(&x))?;
        }
        area.draw(&Text::new(s.label.clone(), (x1 + 10, y - 8), ("sans-serif", 16).into_font())).map_err(|x| e(&x))?;
    }
    Ok(())
}

/// A line plot of several series (800 pixels wide; the legend below the data area; written atomically).
pub fn xy_plot(path: &Path, title: &str, axes: &Axes, series: &[Series]) -> Result<()> {
    let ok =
        |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!axes.log_x || p.0 > 0.0) && (!axes.log_y || p.1 > 0.0);
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).filter(ok).collect();
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
    // Log axes get the ticks of [`ticks`]; linear ones plotters' own 1-2-5 steps (at most MAX_TICKS).
    let log_ticks = |lo, hi, log| if log { ticks(lo, hi, true) } else { Vec::new() };
    let (xt, yt) = (log_ticks(x0, x1, axes.log_x), log_ticks(y0, y1, axes.log_y));
    let legend_h = LEGEND_LINE * series.len() as u32 + 8;
    let total_h = H + legend_h;
    let mut buf = vec![0u8; (W * total_h * 3) as usize];
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting {}: {e}", path.display());
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, total_h)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let (plot_area, legend_area) = root.split_vertically(H);
        // The title, one line per '\n' (the first larger), centred above the data area.
        let lines: Vec<&str> = title.lines().collect();
        for (k, line) in lines.iter().enumerate() {
            let size = if k == 0 { 20 } else { 16 };
            let style =
                ("sans-serif", size).into_font().into_text_style(&plot_area).pos(Pos::new(HPos::Center, VPos::Top));
            plot_area.draw_text(line, &style, ((W / 2) as i32, 8 + 22 * k as i32)).map_err(|x| e(&x))?;
        }
        let mut b = ChartBuilder::on(&plot_area);
        b.margin(14).margin_top(14 + 22 * lines.len() as u32).x_label_area_size(44).y_label_area_size(70);
        let fmt = |v: &f64| fmt_tick(*v);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(|x| e(&x))?;
                chart
                    .configure_mesh()
                    .x_desc(axes.x.as_str())
                    .y_desc(axes.y.as_str())
                    .x_labels(MAX_TICKS)
                    .y_labels(MAX_TICKS)
                    .x_label_formatter(&fmt)
                    .y_label_formatter(&fmt)
                    .label_style(("sans-serif", 15))
                    .axis_desc_style(("sans-serif", 17))
                    .draw()
                    .map_err(|x| e(&x))?;
                for (k, s) in series.iter().enumerate() {
                    let c = COLORS[k % COLORS.len()];
                    let p: Vec<(f64, f64)> = s.points.iter().copied().filter(ok).collect();
                    match s.style {
                        Style::Dashed => {
                            chart
                                .draw_series(DashedLineSeries::new(p.clone(), 8, 5, c.stroke_width(2)))
                                .map_err(|x| e(&x))?;
                        }
                        Style::Line | Style::Markers => {
                            chart.draw_series(LineSeries::new(p.clone(), c.stroke_width(2))).map_err(|x| e(&x))?;
                        }
                    }
                    if s.style == Style::Markers {
                        chart.draw_series(p.iter().map(|&q| Circle::new(q, 3, c.filled()))).map_err(|x| e(&x))?;
                    }
                }
                for (x, label) in &axes.vlines {
                    chart
                        .draw_series(LineSeries::new(vec![(*x, y0), (*x, y1)], BLACK.mix(0.5).stroke_width(1)))
                        .map_err(|q| e(&q))?;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!(" {label}"),
                            (*x, y1),
                            ("sans-serif", 14).into_font(),
                        )))
                        .map_err(|q| e(&q))?;
                }
            }};
        }
        match (axes.log_x, axes.log_y) {
            (true, true) => draw!(b.build_cartesian_2d(
                (x0..x1).log_scale().with_key_points(xt),
                (y0..y1).log_scale().with_key_points(yt)
            )),
            (true, false) => draw!(b.build_cartesian_2d((x0..x1).log_scale().with_key_points(xt), y0..y1)),
            (false, true) => draw!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale().with_key_points(yt))),
            (false, false) => draw!(b.build_cartesian_2d(x0..x1, y0..y1)),
        }
        draw_legend(&legend_area, series)?;
        root.present().map_err(|x| e(&x))?;
    }
    encode_png(buf, W, total_h, path)
}

/// One or more curves `y(sigma)` on a log-sigma axis (an [`xy_plot`] with markers).
pub fn sigma_plot(
    path: &Path,
    title: &str,
    y_label: &str,
    sigmas: &[f64],
    series: &[(String, Vec<f64>)],
    log_y: bool,
) -> Result<()> {
    let curves: Vec<Series> = series
        .iter()
        .map(|(name, ys)| Series::new(name.clone(), sigmas.iter().copied().zip(ys.iter().copied()).collect()))
        .collect();
    let axes = Axes { x: "sigma (noise level)".into(), y: y_label.into(), log_x: true, log_y, vlines: vec![] };
    xy_plot(path, title, &axes, &curves)
}

/// Overlaid histograms (fraction of each list per bin, 30 bins) drawn as step lines on an [`xy_plot`].
pub fn histogram(path: &Path, title: &str, x_label: &str, series: &[(String, Vec<f64>)]) -> Result<()> {
    let all: Vec<f64> = series.iter().flat_map(|s| s.1.iter().cloned()).filter(|v| v.is_finite()).collect();
    let lo = all.iter().cloned().fold(f64::INFINITY, f64::min).min(0.0);
    let hi = all.iter().cloned().fold(0.0, f64::max).max(1e-6) * 1.05;
    let bins = 30usize;
    let width = (hi - lo) / bins as f64;
    let curves: Vec<Series> = series
        .iter()
        .map(|(name, v)| {
            let mut c = vec![0.0; bins];
            for &x in v.iter().filter(|x| x.is_finite()) {
                let k = (((x - lo) / width) as usize).min(bins - 1);
                c[k] += 1.0 / v.len().max(1) as f64;
            }
            let pts = c
                .iter()
                .enumerate()
                .flat_map(|(i, &f)| [(lo + i as f64 * width, f), (lo + (i + 1) as f64 * width, f)])
                .collect();
            Series::line(format!("{name} ({} values)", v.len()), pts)
        })
        .collect();
    let axes = Axes { x: x_label.into(), y: "fraction per bin".into(), log_x: false, log_y: false, vlines: vec![] };
    xy_plot(path, title, &axes, &curves)
}

/// One labelled row of model-space images (row-major, `shape.dim()` values each).
pub type GridRow = (String, Vec<f32>);

/// One block of a [`labelled_grid`]: a header ("" for none) and its rows.
pub type GridBlock = (String, Vec<GridRow>);

/// A [`labelled_grid`] of one block of rows made from `data` (its shape and pixel map), headed by the
/// dataset's name and size (`"{name}, N = {n} training images{note}"`).
pub fn dataset_grid(
    path: &Path,
    title: &str,
    data: &gaussdiff_fit::dataset::Dataset,
    note: &str,
    rows: Vec<GridRow>,
    (cols, zoom): (usize, u32),
) -> Result<()> {
    let block = format!("{}, N = {} training images{note}", data.name, data.len());
    labelled_grid(path, title, &[(block, rows)], data.shape, data.pixel, cols, zoom)
}

/// A labelled image grid ([`gaussdiff_fit::figure`]): `title` on top, each block's header, each row's label
/// left of its images (model space, mapped to pixels by `pixel`; at most `cols` per row, each image pixel
/// `zoom x zoom`), written atomically as PNG.
pub fn labelled_grid(
    path: &Path,
    title: &str,
    blocks: &[GridBlock],
    shape: ImageShape,
    pixel: PixelMap,
    cols: usize,
    zoom: u32,
) -> Result<()> {
    let d = shape.dim();
    let to_tiles = |imgs: &[f32]| -> Vec<Vec<u8>> {
        imgs.chunks_exact(d.max(1))
            .take(cols.max(1))
            .map(|s| {
                let mut px = vec![0u8; d];
                pixel.to_pixels(s, &mut px);
                px
            })
            .collect()
    };
    let fig = Figure {
        title: title.into(),
        blocks: blocks
            .iter()
            .map(|(label, rows)| Block {
                label: label.clone(),
                shape,
                zoom: zoom.max(1),
                rows: rows.iter().map(|(l, imgs)| Row::new(l.clone(), to_tiles(imgs))).collect(),
            })
            .collect(),
    };
    let png = fig.png().with_context(|| format!("drawing {}", path.display()))?;
    Ok(write_atomic(path, &png)?)
}

/// Splits `samples` (model space, row-major) into labelled rows of `cols` images: row `i` is labelled
/// `label(i)`.
pub fn rows_of(samples: &[f32], d: usize, cols: usize, label: impl Fn(usize) -> String) -> Vec<GridRow> {
    samples.chunks(d * cols.max(1)).enumerate().map(|(i, c)| (label(i), c.to_vec())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_have_no_trailing_zero() {
        assert_eq!(fmt_tick(100000.0), "100000");
        assert_eq!(fmt_tick(2.0), "2");
        assert_eq!(fmt_tick(0.25), "0.25");
        assert_eq!(fmt_tick(0.0001), "1e-4");
        assert_eq!(fmt_tick(2.5e6), "2.5e6");
        assert_eq!(fmt_tick(0.3), "0.3");
        assert_eq!(fmt_tick(-40.0), "-40");
    }

    #[test]
    fn every_axis_gets_ticks_and_not_too_many() {
        // A log axis inside one decade still gets several ticks.
        let t = ticks(0.13, 0.6, true);
        assert!(t.len() >= 3, "{t:?}");
        assert!(t.iter().all(|&v| (0.13..=0.6).contains(&v)));
        // Narrower than any 1..9 multiple: linear fallback.
        assert!(ticks(0.62, 0.68, true).len() >= 2);
        // Many decades: thinned to at most MAX_TICKS.
        let t = ticks(1e-4, 1e9, true);
        assert!(t.len() >= 3 && t.len() <= MAX_TICKS, "{t:?}");
        let t = ticks(-0.03, 1.07, false);
        assert!(t.len() >= 3 && t.len() <= MAX_TICKS, "{t:?}");
        assert!(t.contains(&0.0));
        // The labels of every tick set are distinct (no two ticks print the same).
        for (lo, hi, log) in [(4.0, 12000.0, true), (0.002, 80.0, true), (0.5, 0.99, false), (0.13, 0.6, true)] {
            let l: Vec<String> = ticks(lo, hi, log).into_iter().map(fmt_tick).collect();
            let mut u = l.clone();
            u.dedup();
            assert_eq!(l, u, "{lo}..{hi}");
        }
    }

    #[test]
    fn plot_and_grid_files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        let s = vec![Series::new("a", vec![(1.0, 0.2), (10.0, 0.3)]), Series::reference("b", vec![(1.0, 0.25)])];
        let axes = Axes { x: "x".into(), y: "y".into(), log_x: true, log_y: true, vlines: vec![(3.0, "m".into())] };
        xy_plot(&p, "t", &axes, &s).unwrap();
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), (W, H + 2 * LEGEND_LINE + 8));
        let shape = ImageShape { channels: 1, height: 4, width: 4 };
        let g = dir.path().join("g.png");
        let rows = rows_of(&[0.0; 48], 16, 2, |i| format!("row {i}"));
        assert_eq!(rows.len(), 2);
        labelled_grid(&g, "grid", &[("block".into(), rows)], shape, PixelMap::EDM, 2, 4).unwrap();
        assert!(image::open(&g).unwrap().width() > 2 * 16);
    }
}
