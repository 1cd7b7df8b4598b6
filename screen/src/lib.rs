//! The board demo's screen, in one place for the firmware and the host: a sample's pixels upscaled
//! (nearest neighbour) over a 240 x 240 RGB565 screen with a two-line caption (sampler, seed, time), drawn
//! through `embedded-graphics` on any [`DrawTarget`]: an SPI panel on a board (`mipidsi`), the
//! [`Framebuffer`] under QEMU (sent as a screen frame, `docs/frame-protocol.md`) and on the host
//! (`gaussdiff capture` renders the same screen from the same sample and compares).
//!
//! Every screen pixel is written once except the caption's glyph cells (twice): on a panel the SPI
//! transfer is the cost, so the background is drawn as the bars around the image, never as a full clear.
#![no_std]

use core::convert::Infallible;
use core::fmt::{self, Write as _};

use embedded_graphics::mono_font::ascii::FONT_7X13;
use embedded_graphics::mono_font::MonoTextStyleBuilder;
use embedded_graphics::pixelcolor::raw::RawU16;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Baseline, Text};
use gaussdiff_core::frame::LineBuf;
use gaussdiff_core::pixel::ImageShape;
use gaussdiff_core::sampler::SampleSpec;

/// What a panel driver needs to take the screen (re-exported so users match this crate's
/// `embedded-graphics` version).
pub use embedded_graphics::{draw_target::DrawTarget, pixelcolor::Rgb565};

/// Screen width in pixels (a 240 x 240 ST7789 panel).
pub const WIDTH: u16 = 240;
/// Screen height in pixels.
pub const HEIGHT: u16 = 240;
/// Pixels of the screen (`WIDTH * HEIGHT`), the length of a [`Framebuffer`]'s buffer.
pub const PIXELS: usize = WIDTH as usize * HEIGHT as usize;
/// Height of the caption band at the bottom: two lines of the 7 x 13 font and a margin.
pub const CAPTION_HEIGHT: u16 = 2 * 13 + 6;
/// The background around the image and behind the caption.
pub const BACKGROUND: Rgb565 = Rgb565::BLACK;
/// The caption's text colour.
pub const TEXT: Rgb565 = Rgb565::WHITE;

/// How long the sample took, as the caption shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elapsed {
    /// Instructions (QEMU `-icount`): `948320 instr`.
    Instructions(u64),
    /// Microseconds (a board's cycle counter over its clock): `9.48 ms`.
    Micros(u64),
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Instructions(n) => write!(f, "{n} instr"),
            Self::Micros(us) => write!(f, "{}.{:02} ms", us / 1000, us % 1000 / 10),
        }
    }
}

/// What the caption says: the run and how long it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caption {
    /// Sampler, steps and seed.
    pub spec: SampleSpec,
    /// Time of the sampling.
    pub elapsed: Elapsed,
}

impl Caption {
    /// The first line: `heun-18  seed 1` (`exact  seed 0` without steps).
    fn first_line(&self, line: &mut LineBuf) {
        line.clear();
        let SampleSpec { sampler, steps, seed } = self.spec;
        // Fits: 5 + 11 + 7 + 20 characters < LINE_CAPACITY.
        let _ = if steps > 0 {
            write!(line, "{sampler}-{steps}  seed {seed}")
        } else {
            write!(line, "{sampler}  seed {seed}")
        };
    }
}

/// The screen rectangle of a `shape`-sized image: the largest integer upscaling that leaves room for the
/// caption (at least 1), centred above it; the scale is returned with it.
pub fn image_area(shape: ImageShape) -> (Rectangle, u32) {
    let (w, h) = (u32::from(shape.width.max(1)), u32::from(shape.height.max(1)));
    let room = (u32::from(WIDTH), u32::from(HEIGHT - CAPTION_HEIGHT));
    let scale = (room.0 / w).min(room.1 / h).max(1);
    let size = Size::new(w * scale, h * scale);
    let x = (room.0.saturating_sub(size.width) / 2) as i32;
    let y = (room.1.saturating_sub(size.height) / 2) as i32;
    (Rectangle::new(Point::new(x, y), size), scale)
}

/// The colour of image pixel `i` of CHW `pixels`: RGB for three channels, else the first channel as grey.
fn color(pixels: &[u8], shape: ImageShape, i: usize) -> Rgb565 {
    let plane = usize::from(shape.width) * usize::from(shape.height);
    let at = |ch: usize| u32::from(pixels.get(ch * plane + i).copied().unwrap_or(0));
    let (r, g, b) = if shape.channels == 3 { (at(0), at(1), at(2)) } else { (at(0), at(0), at(0)) };
    Rgb565::new((r >> 3) as u8, (g >> 2) as u8, (b >> 3) as u8)
}

/// Draws the screen: the sample's 8-bit CHW `pixels` of `shape` upscaled, the background bars around it and
/// the caption below. Missing pixels (a `pixels` shorter than the shape) draw as black, never a panic.
///
/// # Errors
/// The first error of the draw target.
pub fn draw<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    shape: ImageShape,
    pixels: &[u8],
    caption: &Caption,
) -> Result<(), D::Error> {
    let (area, scale) = image_area(shape);
    let (screen_w, screen_h) = (i32::from(WIDTH), i32::from(HEIGHT));
    let (x0, y0) = (area.top_left.x, area.top_left.y);
    let (x1, y1) = (x0 + area.size.width as i32, y0 + area.size.height as i32);
    let bars = [(0, 0, screen_w, y0), (0, y1, screen_w, screen_h), (0, y0, x0, y1), (x1, y0, screen_w, y1)];
    for (left, top, right, bottom) in bars {
        if right > left && bottom > top {
            let bar = Rectangle::with_corners(Point::new(left, top), Point::new(right - 1, bottom - 1));
            target.fill_solid(&bar, BACKGROUND)?;
        }
    }
    // One contiguous fill in row-major order (on a panel: one address window, one stream of pixels).
    let (w, s) = (usize::from(shape.width), scale as usize);
    let rows = area.size.height as usize;
    let cols = area.size.width as usize;
    // Each source pixel's colour once per screen row, repeated `s` times (no division per screen pixel).
    let colors = (0..rows)
        .flat_map(|y| (0..cols / s).flat_map(move |x| core::iter::repeat_n(color(pixels, shape, (y / s) * w + x), s)));
    target.fill_contiguous(&area, colors)?;

    let style = MonoTextStyleBuilder::new().font(&FONT_7X13).text_color(TEXT).background_color(BACKGROUND).build();
    let mut line = LineBuf::new();
    let top = screen_h - i32::from(CAPTION_HEIGHT) + 3;
    caption.first_line(&mut line);
    Text::with_baseline(line.as_str(), Point::new(4, top), style, Baseline::Top).draw(target)?;
    line.clear();
    let _ = write!(line, "{}", caption.elapsed);
    Text::with_baseline(line.as_str(), Point::new(4, top + 13), style, Baseline::Top).draw(target)?;
    Ok(())
}

/// A 240 x 240 RGB565 framebuffer over a borrowed buffer of [`PIXELS`] raw values (row-major), as a
/// [`DrawTarget`]: the QEMU firmware's screen (then sent as a screen frame) and the host's.
#[derive(Debug)]
pub struct Framebuffer<'a> {
    raw: &'a mut [u16; PIXELS],
}

impl<'a> Framebuffer<'a> {
    /// A framebuffer drawing into `raw`.
    pub fn new(raw: &'a mut [u16; PIXELS]) -> Self {
        Self { raw }
    }

    /// The screen's raw RGB565 values, row-major.
    pub fn raw(&self) -> &[u16; PIXELS] {
        self.raw
    }
}

impl OriginDimensions for Framebuffer<'_> {
    fn size(&self) -> Size {
        Size::new(u32::from(WIDTH), u32::from(HEIGHT))
    }
}

impl DrawTarget for Framebuffer<'_> {
    type Color = Rgb565;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb565>>>(&mut self, pixels: I) -> Result<(), Infallible> {
        for Pixel(p, c) in pixels {
            if let (Ok(x), Ok(y)) = (u16::try_from(p.x), u16::try_from(p.y)) {
                if x < WIDTH && y < HEIGHT {
                    self.raw[usize::from(y) * usize::from(WIDTH) + usize::from(x)] = c.into_storage();
                }
            }
        }
        Ok(())
    }

    /// Row by row straight into the buffer when `area` lies on the screen (as a panel streams a window).
    fn fill_contiguous<I: IntoIterator<Item = Rgb565>>(
        &mut self,
        area: &Rectangle,
        colors: I,
    ) -> Result<(), Infallible> {
        if area.intersection(&self.bounding_box()) != *area || area.is_zero_sized() {
            return self.draw_iter(area.points().zip(colors).map(|(p, c)| Pixel(p, c)));
        }
        let (x0, y0, w) = (area.top_left.x as usize, area.top_left.y as usize, area.size.width as usize);
        let mut colors = colors.into_iter();
        for y in y0..y0 + area.size.height as usize {
            let start = y * usize::from(WIDTH) + x0;
            for (dst, c) in self.raw[start..start + w].iter_mut().zip(&mut colors) {
                *dst = c.into_storage();
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb565) -> Result<(), Infallible> {
        self.fill_contiguous(area, core::iter::repeat(color))
    }
}

/// A raw RGB565 value as 8-bit RGB, by `embedded-graphics`' conversion (for PNG files of the screen).
pub fn to_rgb888(raw: u16) -> [u8; 3] {
    let c = Rgb888::from(Rgb565::from(RawU16::new(raw)));
    [c.r(), c.g(), c.b()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use gaussdiff_core::sampler::Sampler;

    extern crate std;
    use std::vec;

    fn screen(shape: ImageShape, pixels: &[u8], caption: &Caption) -> std::boxed::Box<[u16; PIXELS]> {
        let mut raw = std::boxed::Box::new([0x1234u16; PIXELS]);
        draw(&mut Framebuffer::new(&mut raw), shape, pixels, caption).unwrap();
        raw
    }

    const CAPTION: Caption =
        Caption { spec: SampleSpec { sampler: Sampler::Heun, steps: 18, seed: 1 }, elapsed: Elapsed::Instructions(7) };

    #[test]
    fn olivetti_is_upscaled_three_times_and_every_pixel_is_drawn() {
        let shape = ImageShape { channels: 1, height: 64, width: 64 };
        let (area, scale) = image_area(shape);
        assert_eq!((scale, area.top_left, area.size), (3, Point::new(24, 8), Size::new(192, 192)));
        let pixels: vec::Vec<u8> = (0..64 * 64).map(|i| (i * 7 % 256) as u8).collect();
        let raw = screen(shape, &pixels, &CAPTION);
        // The fill value 0x1234 is neither black, white nor a grey, so any pixel left undrawn shows.
        assert!(!raw.contains(&0x1234));
        // Image pixel (row 5, col 9) covers screen rows 8 + 15..18, columns 24 + 27..30.
        let g = pixels[5 * 64 + 9];
        let want = Rgb565::new(g >> 3, g >> 2, g >> 3).into_storage();
        for y in 23..26 {
            for x in 51..54 {
                assert_eq!(raw[y * 240 + x], want);
            }
        }
        assert_eq!(raw[0], BACKGROUND.into_storage());
        // The caption writes white glyph pixels into the bottom band.
        let band = &raw[(240 - usize::from(CAPTION_HEIGHT)) * 240..];
        assert!(band.contains(&TEXT.into_storage()));
    }

    #[test]
    fn caption_depends_on_spec_and_time() {
        let shape = ImageShape { channels: 1, height: 28, width: 20 };
        let pixels = [128u8; 560];
        let a = screen(shape, &pixels, &CAPTION);
        let b = screen(shape, &pixels, &Caption { elapsed: Elapsed::Instructions(8), ..CAPTION });
        let c = screen(shape, &pixels, &Caption { spec: SampleSpec { seed: 2, ..CAPTION.spec }, ..CAPTION });
        assert!(a != b && a != c);
        // Same inputs, same screen.
        assert!(a == screen(shape, &pixels, &CAPTION));
        // A short pixel buffer draws black, no panic.
        let _ = screen(shape, &pixels[..10], &CAPTION);
    }

    #[test]
    fn elapsed_and_colours() {
        let mut l = LineBuf::new();
        let _ = write!(l, "{}", Elapsed::Micros(9_481));
        assert_eq!(l.as_str(), "9.48 ms");
        CAPTION.first_line(&mut l);
        assert_eq!(l.as_str(), "heun-18  seed 1");
        assert_eq!(to_rgb888(0xffff), [255, 255, 255]);
        assert_eq!(to_rgb888(0), [0, 0, 0]);
        // RGB images keep their channels.
        let shape = ImageShape { channels: 3, height: 1, width: 1 };
        assert_eq!(color(&[255, 0, 0], shape, 0), Rgb565::RED);
    }
}
