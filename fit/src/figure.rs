//! Labelled image grids: the one drawing of every gallery the CLI (`gaussdiff demo`) and the trainer's
//! experiments write, so that a figure says what each row and block is.
//!
//! A [`Figure`] is a title, then [`Block`]s (a header such as "digits, N = 1,697 training images"), each a
//! stack of [`Row`]s: a label on the left ("exact", "Heun-18", "nearest training image", "N = 64") and the
//! row's 8-bit CHW tiles to its right, scaled up by the block's zoom. Text is drawn with the public-domain
//! 8x8 bitmap font of `font8x8` (printable ASCII; anything else shows as `?`), so the PNG is the same on
//! every machine and needs no system font.
//!
//! Layout (pixels): margin [`MARGIN`] around everything; the title at text scale 2 (16 px high); per block
//! its header at scale 2, then its rows, one tile plus [`GAP`] high (at least the label's height); one label
//! column as wide as the longest row label of the figure; [`BLOCK_GAP`] between blocks.

use gaussdiff_core::pixel::ImageShape;

/// Space around the figure (pixels).
pub const MARGIN: u32 = 8;
/// Space between tiles (pixels).
pub const GAP: u32 = 2;
/// Space between blocks (pixels).
pub const BLOCK_GAP: u32 = 12;
/// Largest side of a figure (pixels), the PNG limit the CLI's grids use too.
pub const MAX_SIDE: u64 = 16_384;
/// Largest figure (pixels in all).
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;
/// Glyph cell of the bitmap font at scale 1 (pixels, square).
pub const GLYPH: u32 = 8;

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FigureError {
    /// The figure would exceed [`MAX_SIDE`] or [`MAX_PIXELS`].
    #[error(
        "the PNG grid would be {width} x {height} pixels: expected at most {MAX_SIDE} a side and {MAX_PIXELS} in all"
    )]
    TooLarge {
        /// Width it would have.
        width: u64,
        /// Height it would have.
        height: u64,
    },
    /// A tile's length does not match its block's shape.
    #[error(
        "block {block:?}, row {row:?}, tile {tile}: {found} bytes, expected {expected} (channels x height x width)"
    )]
    TileSize {
        /// Block header.
        block: String,
        /// Row label.
        row: String,
        /// Tile index in the row.
        tile: usize,
        /// Its length.
        found: usize,
        /// `shape.dim()`.
        expected: usize,
    },
    /// A block's shape has no pixels or zoom 0.
    #[error("block {block:?}: empty shape {height}x{width}x{channels} or zoom 0")]
    EmptyShape {
        /// Block header.
        block: String,
        /// Channels.
        channels: u16,
        /// Height.
        height: u16,
        /// Width.
        width: u16,
    },
    /// PNG encoding failed.
    #[error("encoding the figure as PNG: {0}")]
    Png(#[from] image::ImageError),
}

/// One labelled row: CHW 8-bit tiles (1 channel gray; 3 or more: the first three as RGB; 2: the first as
/// gray).
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Left of the row ("exact", "nearest training image", "N = 64"...).
    pub label: String,
    /// Tiles, each `shape.dim()` bytes.
    pub tiles: Vec<Vec<u8>>,
}

impl Row {
    /// A row from its label and tiles.
    pub fn new(label: impl Into<String>, tiles: Vec<Vec<u8>>) -> Self {
        Self { label: label.into(), tiles }
    }
}

/// A header and rows of images of one shape.
#[derive(Clone, Debug)]
pub struct Block {
    /// Drawn above the rows (empty: no header line).
    pub label: String,
    /// Shape of every tile.
    pub shape: ImageShape,
    /// Each image pixel becomes `zoom x zoom` figure pixels (at least 1).
    pub zoom: u32,
    /// Rows, top to bottom.
    pub rows: Vec<Row>,
}

/// A titled stack of blocks; see the module docs for the layout.
#[derive(Clone, Debug, Default)]
pub struct Figure {
    /// Top line (empty: none).
    pub title: String,
    /// Blocks, top to bottom.
    pub blocks: Vec<Block>,
}

/// Width of `text` at `scale` (pixels).
pub fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * GLYPH * scale
}

/// Draws `text` into `img` with its top-left corner at `(x, y)`, each font pixel `scale x scale`, in `color`
/// (clipped at the image border).
pub fn draw_text(img: &mut image::RgbImage, (x, y): (u32, u32), text: &str, scale: u32, color: [u8; 3]) {
    let s = scale.max(1);
    for (k, ch) in text.chars().enumerate() {
        let code = if ch.is_ascii() && !ch.is_ascii_control() { ch as usize } else { '?' as usize };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let x0 = x + k as u32 * GLYPH * s;
        for (r, bits) in glyph.iter().enumerate() {
            for c in 0..GLYPH {
                if bits & (1 << c) == 0 {
                    continue;
                }
                for dy in 0..s {
                    for dx in 0..s {
                        let (px, py) = (x0 + c * s + dx, y + r as u32 * s + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, image::Rgb(color));
                        }
                    }
                }
            }
        }
    }
}

/// Text scale of a block's row labels: 2 when a tile row is at least that tall, else 1.
fn row_scale(b: &Block) -> u32 {
    if u32::from(b.shape.height) * b.zoom.max(1) >= 2 * GLYPH {
        2
    } else {
        1
    }
}

impl Figure {
    /// A figure with a title and no blocks yet.
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), blocks: Vec::new() }
    }

    /// Width and height of the drawn figure (checked against the limits; nothing allocated).
    ///
    /// # Errors
    /// [`FigureError::TooLarge`] or [`FigureError::EmptyShape`].
    pub fn size(&self) -> Result<(u32, u32), FigureError> {
        let label_w = self.label_column();
        let mut w = u64::from(text_width(&self.title, 2));
        let mut h = u64::from(2 * MARGIN);
        if !self.title.is_empty() {
            h += u64::from(2 * GLYPH + MARGIN);
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let (tw, th) = tile_cell(b)?;
            w = w.max(u64::from(text_width(&b.label, 2)));
            let cols = b.rows.iter().map(|r| r.tiles.len()).max().unwrap_or(0) as u64;
            w = w.max(u64::from(label_w) + cols * u64::from(tw));
            if !b.label.is_empty() {
                h += u64::from(2 * GLYPH + GAP + 2);
            }
            h += b.rows.len() as u64 * u64::from(th.max(row_scale(b) * GLYPH + GAP));
            if i + 1 < self.blocks.len() {
                h += u64::from(BLOCK_GAP);
            }
        }
        let w = w + u64::from(2 * MARGIN);
        if w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS {
            return Err(FigureError::TooLarge { width: w, height: h });
        }
        Ok((w as u32, h as u32))
    }

    /// Width of the row-label column: the longest label at its block's scale, plus a gap.
    fn label_column(&self) -> u32 {
        self.blocks
            .iter()
            .flat_map(|b| b.rows.iter().map(move |r| text_width(&r.label, row_scale(b))))
            .max()
            .map_or(0, |w| if w > 0 { w + 2 * GLYPH } else { 0 })
    }

    /// The figure as an RGB image (white background, black text).
    ///
    /// # Errors
    /// See [`Figure::size`]; [`FigureError::TileSize`] for a tile of the wrong length.
    pub fn render(&self) -> Result<image::RgbImage, FigureError> {
        let (w, h) = self.size()?;
        let mut img = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
        let label_w = self.label_column();
        let mut y = MARGIN;
        if !self.title.is_empty() {
            draw_text(&mut img, (MARGIN, y), &self.title, 2, [0, 0, 0]);
            y += 2 * GLYPH + MARGIN;
        }
        for b in &self.blocks {
            let (tw, th) = tile_cell(b)?;
            let scale = row_scale(b);
            if !b.label.is_empty() {
                draw_text(&mut img, (MARGIN, y), &b.label, 2, [0, 0, 0]);
                y += 2 * GLYPH + GAP + 2;
            }
            let row_h = th.max(scale * GLYPH + GAP);
            for r in &b.rows {
                let text_y = y + (row_h.saturating_sub(scale * GLYPH)) / 2;
                draw_text(&mut img, (MARGIN, text_y), &r.label, scale, [0, 0, 0]);
                for (k, t) in r.tiles.iter().enumerate() {
                    if t.len() != b.shape.dim() {
                        return Err(FigureError::TileSize {
                            block: b.label.clone(),
                            row: r.label.clone(),
                            tile: k,
                            found: t.len(),
                            expected: b.shape.dim(),
                        });
                    }
                    paint(&mut img, (MARGIN + label_w + k as u32 * tw, y), t, b.shape, b.zoom.max(1));
                }
                y += row_h;
            }
            y += BLOCK_GAP;
        }
        Ok(img)
    }

    /// The figure as PNG bytes.
    ///
    /// # Errors
    /// See [`Figure::render`]; [`FigureError::Png`].
    pub fn png(&self) -> Result<Vec<u8>, FigureError> {
        let img = self.render()?;
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)?;
        Ok(out.into_inner())
    }
}

/// A tile's cell (tile plus gap) in figure pixels.
fn tile_cell(b: &Block) -> Result<(u32, u32), FigureError> {
    let z = b.zoom;
    if b.shape.dim() == 0 || z == 0 {
        return Err(FigureError::EmptyShape {
            block: b.label.clone(),
            channels: b.shape.channels,
            height: b.shape.height,
            width: b.shape.width,
        });
    }
    Ok((u32::from(b.shape.width) * z + GAP, u32::from(b.shape.height) * z + GAP))
}

/// Paints one CHW tile at `(x, y)` scaled by `z`.
fn paint(img: &mut image::RgbImage, (x, y): (u32, u32), t: &[u8], shape: ImageShape, z: u32) {
    let (c, h, w) = (usize::from(shape.channels), usize::from(shape.height), usize::from(shape.width));
    let plane = h * w;
    for sy in 0..h {
        for sx in 0..w {
            let p = sy * w + sx;
            let rgb = if c >= 3 { [t[p], t[plane + p], t[2 * plane + p]] } else { [t[p]; 3] };
            for dy in 0..z {
                for dx in 0..z {
                    img.put_pixel(x + sx as u32 * z + dx, y + sy as u32 * z + dy, image::Rgb(rgb));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: ImageShape = ImageShape { channels: 1, height: 8, width: 8 };

    fn figure() -> Figure {
        let tile = |v: u8| vec![v; 64];
        Figure {
            title: "title".into(),
            blocks: vec![
                Block {
                    label: "digits, N = 10".into(),
                    shape: SHAPE,
                    zoom: 3,
                    rows: vec![
                        Row::new("exact", vec![tile(128), tile(128)]),
                        Row::new("nearest training image", vec![tile(128), tile(128)]),
                    ],
                },
                Block { label: String::new(), shape: SHAPE, zoom: 1, rows: vec![Row::new("x", vec![tile(7)])] },
            ],
        }
    }

    /// Dark (text) pixels in the rectangle `x0..x1, y0..y1`.
    fn ink(img: &image::RgbImage, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> usize {
        (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y))).filter(|&(x, y)| img.get_pixel(x, y).0[0] < 64).count()
    }

    #[test]
    fn layout_has_title_header_and_label_rows() {
        let f = figure();
        let img = f.render().unwrap();
        let label_w = text_width("nearest training image", 2) + 2 * GLYPH;
        // Width: margin, label column, two tiles of 8 * 3 + gap, margin (wider than the header).
        assert_eq!(img.width(), 2 * MARGIN + label_w + 2 * (24 + GAP));
        // Height: title, header, two rows of 26 px, block gap, one row at least a glyph plus gap, margins.
        let expected_h = 2 * MARGIN + (16 + MARGIN) + (16 + GAP + 2) + 2 * 26 + BLOCK_GAP + (GLYPH + GAP);
        assert_eq!(img.height(), expected_h);
        let y_title = MARGIN;
        let y_header = y_title + 16 + MARGIN;
        let y_rows = y_header + 16 + GAP + 2;
        assert!(ink(&img, (MARGIN, MARGIN + text_width("title", 2)), (y_title, y_title + 16)) > 20);
        assert!(ink(&img, (MARGIN, MARGIN + text_width("digits", 2)), (y_header, y_header + 16)) > 20);
        for r in 0..2 {
            let y = y_rows + r * 26;
            assert!(ink(&img, (MARGIN, MARGIN + label_w - 2 * GLYPH), (y, y + 26)) > 20, "row {r} has no label");
            // The tiles sit right of the label column with their gray value.
            assert_eq!(img.get_pixel(MARGIN + label_w + 5, y + 5).0, [128; 3]);
        }
        // Nothing drawn between the label text and the tiles.
        assert_eq!(ink(&img, (MARGIN + text_width("exact", 2), MARGIN + label_w), (y_rows, y_rows + 26)), 0);
    }

    #[test]
    fn bad_tiles_and_oversize_are_errors() {
        let mut f = figure();
        f.blocks[0].rows[0].tiles[1].pop();
        assert!(matches!(f.render(), Err(FigureError::TileSize { tile: 1, found: 63, .. })));
        let mut f = figure();
        f.blocks[0].zoom = 2000;
        assert!(matches!(f.size(), Err(FigureError::TooLarge { .. })));
        let mut f = figure();
        f.blocks[1].zoom = 0;
        assert!(matches!(f.size(), Err(FigureError::EmptyShape { .. })));
    }

    #[test]
    fn non_ascii_is_a_question_mark() {
        let mut a = image::RgbImage::from_pixel(16, 8, image::Rgb([255; 3]));
        let mut b = a.clone();
        draw_text(&mut a, (0, 0), "σ", 1, [0; 3]);
        draw_text(&mut b, (0, 0), "?", 1, [0; 3]);
        assert_eq!(a, b);
        assert!(ink(&a, (0, 8), (0, 8)) > 5);
    }
}
