//! `gaussdiff capture`'s screen frames: the target's screen as a PNG, and the host's rendering of the same
//! sample with the same drawing code (`gaussdiff_screen::draw`) beside it, required to be identical.

use anyhow::{bail, Result};
use gaussdiff_core::frame::{DecodedFrame, DecodedScreen};
use gaussdiff_core::pixel::ImageShape;
use gaussdiff_screen::{Caption, Elapsed, Framebuffer, HEIGHT, PIXELS, WIDTH};

use crate::util;

/// The caption's time from a screen frame's extras: `instr=` (QEMU) or `us=` (a board's clock).
fn elapsed(s: &DecodedScreen) -> Result<Elapsed> {
    let parse = |key: &str, v: &str| {
        v.parse::<u64>().map_err(|_| anyhow::anyhow!("screen at line {}: {key}={v:?} is not a number", s.line))
    };
    match (s.extra("instr"), s.extra("us")) {
        (Some(v), _) => Ok(Elapsed::Instructions(parse("instr", v)?)),
        (None, Some(v)) => Ok(Elapsed::Micros(parse("us", v)?)),
        (None, None) => bail!("screen at line {}: no instr= or us= (the caption's time)", s.line),
    }
}

/// The host's rendering of the screen `s` from the image `pixels` of `shape`.
pub fn render(s: &DecodedScreen, shape: ImageShape, pixels: &[u8]) -> Result<Vec<u16>> {
    if (s.width, s.height) != (WIDTH, HEIGHT) {
        bail!("screen at line {}: {}x{}, but the host draws {WIDTH}x{HEIGHT}", s.line, s.width, s.height);
    }
    let caption = Caption { spec: s.spec, elapsed: elapsed(s)? };
    let mut raw = vec![0u16; PIXELS];
    let raw_array: &mut [u16; PIXELS] = raw.as_mut_slice().try_into()?;
    let _ = gaussdiff_screen::draw(&mut Framebuffer::new(raw_array), shape, pixels, &caption);
    Ok(raw)
}

/// The image frame a screen shows: the last one before it with the same run.
pub fn frame_for<'a>(s: &DecodedScreen, frames: &'a [DecodedFrame]) -> Option<(usize, &'a DecodedFrame)> {
    frames.iter().enumerate().rfind(|(_, f)| f.line < s.line && f.spec == s.spec)
}

/// Raw RGB565 values of a `width` x `height` screen as PNG bytes (8-bit RGB by embedded-graphics'
/// conversion).
pub fn png(rgb565: &[u16], width: u16, height: u16) -> Result<Vec<u8>> {
    let plane = rgb565.len();
    let mut chw = vec![0u8; 3 * plane];
    for (i, &v) in rgb565.iter().enumerate() {
        for (ch, c) in gaussdiff_screen::to_rgb888(v).into_iter().enumerate() {
            chw[ch * plane + i] = c;
        }
    }
    util::image_png(&chw, ImageShape { channels: 3, height, width })
}

/// `screen-NNN-<run>.png` (and `...-host.png` for the host's rendering).
pub fn file_name(i: usize, s: &DecodedScreen, host: bool) -> String {
    let steps = if s.spec.steps > 0 { s.spec.steps.to_string() } else { String::new() };
    let tail = if host { "-host" } else { "" };
    format!("screen-{i:03}-{}{steps}-seed{}{tail}.png", s.spec.sampler, s.spec.seed)
}
