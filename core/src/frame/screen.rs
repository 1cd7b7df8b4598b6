//! The screen frame (`docs/frame-protocol.md`): what a target's display shows, as raw RGB565 values, so a
//! host can turn it into a PNG and compare it with its own rendering of the same sample. The drawing itself
//! lives in the `gaussdiff-screen` crate (embedded-graphics); this is only its transport.

use super::{push_extras, push_spec, start, start_chunk, valid_key, LineBuf, CRC, MAX_EXTRAS};
use crate::sampler::SampleSpec;

/// RGB565 pixels per `s` line (four hex digits each).
pub const SCREEN_PIXELS_PER_LINE: usize = 48;

/// CRC-32 of raw RGB565 values as little-endian bytes (`v.to_le_bytes()` for each, in order).
pub fn screen_crc(rgb565: &[u16]) -> u32 {
    let mut digest = CRC.digest();
    for v in rgb565 {
        digest.update(&v.to_le_bytes());
    }
    digest.finalize()
}

/// One screen: its size, the run it shows and its raw RGB565 values, row-major. Borrowed, so encoding
/// allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct ScreenFrame<'a> {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// The run whose sample the screen shows (the caption's sampler, steps and seed).
    pub spec: SampleSpec,
    /// `width * height` raw RGB565 values (`0bRRRRRGGGGGGBBBBB`), row-major.
    pub rgb565: &'a [u16],
    /// Extra `key=value` pairs for the `screen` line: the caption's time (`instr` or `us`).
    pub extras: &'a [(&'a str, u64)],
}

impl ScreenFrame<'_> {
    /// Encodes the screen line by line (`screen`, `s` lines, `screen_end`), calling `emit` with each line
    /// (without its newline).
    ///
    /// # Errors
    /// The first error `emit` returns.
    ///
    /// # Panics
    /// If `rgb565.len()` is not `width * height`, a side is zero, or the extras break [`MAX_EXTRAS`] /
    /// [`valid_key`] (caller contract).
    pub fn encode<E>(&self, emit: &mut impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        let (w, h) = (usize::from(self.width), usize::from(self.height));
        contract!(w > 0 && h > 0 && self.rgb565.len() == w * h, "ScreenFrame::encode: size");
        contract!(
            self.extras.len() <= MAX_EXTRAS && self.extras.iter().all(|(k, _)| valid_key(k)),
            "ScreenFrame::encode: bad extras"
        );
        let mut line = LineBuf::new();
        // As in `Frame::encode`, the lengths below fit LINE_CAPACITY: screen < 80 + MAX_EXTRAS * 34,
        // s lines 5 + 3 + 2 * 6 + 4 * SCREEN_PIXELS_PER_LINE = 212.
        start(&mut line, "screen");
        let _ = line.push_pair("w", self.width.into());
        let _ = line.push_pair("h", self.height.into());
        let _ = push_spec(&mut line, &self.spec);
        let _ = push_extras(&mut line, self.extras);
        emit(line.as_str())?;
        for (r, row) in self.rgb565.chunks(w).enumerate() {
            for (k, chunk) in row.chunks(SCREEN_PIXELS_PER_LINE).enumerate() {
                start_chunk(&mut line, "s", r, k * SCREEN_PIXELS_PER_LINE);
                for &v in chunk {
                    let [hi, lo] = v.to_be_bytes();
                    let _ = line.push_hex_u8(hi);
                    let _ = line.push_hex_u8(lo);
                }
                emit(line.as_str())?;
            }
        }
        start(&mut line, "screen_end crc=");
        let _ = line.push_hex_u32(screen_crc(self.rgb565));
        emit(line.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::LINE_CAPACITY;
    use crate::sampler::Sampler;

    #[test]
    fn encodes_known_text() {
        let rgb565 = [0xf800u16, 0x07e0, 0x001f, 0xffff, 0x0000, 0x1234];
        let screen = ScreenFrame {
            width: 3,
            height: 2,
            spec: SampleSpec { sampler: Sampler::Exact, steps: 0, seed: 4 },
            rgb565: &rgb565,
            extras: &[("instr", 948_320)],
        };
        let mut text = [[0u8; LINE_CAPACITY]; 4];
        let mut lens = [0usize; 4];
        let mut n = 0;
        screen
            .encode::<()>(&mut |l| {
                text[n][..l.len()].copy_from_slice(l.as_bytes());
                lens[n] = l.len();
                n += 1;
                Ok(())
            })
            .unwrap();
        let line = |i: usize| core::str::from_utf8(&text[i][..lens[i]]).unwrap();
        assert_eq!(n, 4);
        assert_eq!(line(0), "@GDF1 screen w=3 h=2 sampler=exact steps=0 seed=4 instr=948320");
        assert_eq!(line(1), "@GDF1 s 0 0 f80007e0001f");
        assert_eq!(line(2), "@GDF1 s 1 0 ffff00001234");
        // CRC-32 of 00 f8 e0 07 1f 00 ff ff 00 00 34 12 (Python: zlib.crc32).
        assert_eq!(line(3), "@GDF1 screen_end crc=d8feed86");
    }
}
