//! The text frame protocol v1 (`docs/frame-protocol.md`): how a sample travels from a target (serial, RTT,
//! semihosting) or the host as plain ASCII lines, with a checksum of its f32 bits.
//!
//! A frame is a `begin` line (image shape and the [`SampleSpec`] that produced the sample; the recipe itself
//! is [`crate::sampler::recipe`]), one `p` line per
//! chunk of at most [`PIXELS_PER_LINE`] pixels (two hex digits each), optionally one `v` line per chunk of at
//! most [`VALUES_PER_LINE`] f32 bit patterns (eight hex digits each) and an `end` line with two CRC-32s:
//! `pixels` over the pixel bytes and `sample` over the little-endian bytes of the f32 sample. Every line
//! starts with [`PREFIX`], so frames can be picked out of a log that carries other text.
//!
//! The encoder is `no_std` and allocation-free: [`Frame::encode`] formats each line into a fixed
//! [`LINE_CAPACITY`]-byte buffer and hands it to a callback, which the firmware forwards to its byte sink
//! and the host appends to a `String`, so both produce the identical text. The decoder (`decode`) is
//! behind the `std` feature. A screen frame ([`ScreenFrame`]) carries what a target's display shows.

use core::fmt;

use crate::pixel::ImageShape;
use crate::sampler::SampleSpec;

/// Every protocol line starts with this token (the `1` is the protocol version).
pub const PREFIX: &str = "@GDF1";
/// Pixels per `p` line.
pub const PIXELS_PER_LINE: usize = 64;
/// f32 values per `v` line.
pub const VALUES_PER_LINE: usize = 16;
/// The longest line the encoder writes, in bytes, without the newline (extras included, see
/// [`MAX_EXTRAS`] and [`MAX_KEY_LEN`]).
pub const LINE_CAPACITY: usize = 256;
/// At most this many extra `key=value` pairs on a `begin`, `end` or `stat` line.
pub const MAX_EXTRAS: usize = 6;
/// Extra keys are 1 to this many characters of `[a-z0-9_]`.
pub const MAX_KEY_LEN: usize = 12;

/// The CRC-32 used by the protocol: the blob format's CRC-32/ISO-HDLC (the zlib/PNG/Ethernet CRC, check value
/// `0xcbf43926`), one definition for both.
pub const CRC: crc::Crc<u32, crate::blob::format::CrcImpl> = crate::blob::format::CRC32;

/// CRC-32 of the pixel bytes, in order.
pub fn pixel_crc(pixels: &[u8]) -> u32 {
    CRC.checksum(pixels)
}

/// CRC-32 of the sample's f32 values as little-endian bytes (`v.to_le_bytes()` for each value, in order):
/// identical samples give identical checksums, and any differing bit changes it.
pub fn sample_crc(sample: &[f32]) -> u32 {
    let mut digest = CRC.digest();
    for v in sample {
        digest.update(&v.to_le_bytes());
    }
    digest.finalize()
}

/// A fixed-capacity line buffer implementing [`fmt::Write`]; writing past [`LINE_CAPACITY`] is an error.
#[derive(Clone, Debug)]
pub struct LineBuf {
    buf: [u8; LINE_CAPACITY],
    len: usize,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuf {
    /// An empty line.
    pub const fn new() -> Self {
        Self { buf: [0; LINE_CAPACITY], len: 0 }
    }
    /// Forget the contents.
    pub fn clear(&mut self) {
        self.len = 0;
    }
    /// The text written so far (always ASCII: only `push_str` and `push_byte` add to it).
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s and ASCII bytes are ever appended, so this cannot fail; fall back to "" anyway.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
    /// Append `s` (the same as [`fmt::Write::write_str`]).
    ///
    /// # Errors
    /// [`fmt::Error`] (and nothing appended) when `s` does not fit.
    pub fn push_str(&mut self, s: &str) -> fmt::Result {
        let b = s.as_bytes();
        if self.len + b.len() > LINE_CAPACITY {
            return Err(fmt::Error);
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
        Ok(())
    }
    /// Append one ASCII byte.
    fn push_byte(&mut self, b: u8) -> fmt::Result {
        if self.len >= LINE_CAPACITY || !b.is_ascii() {
            return Err(fmt::Error);
        }
        self.buf[self.len] = b;
        self.len += 1;
        Ok(())
    }
    /// Append `v` as two lowercase hex digits.
    fn push_hex_u8(&mut self, v: u8) -> fmt::Result {
        self.push_byte(HEX[(v >> 4) as usize])?;
        self.push_byte(HEX[(v & 15) as usize])
    }
    /// Append `v` as eight lowercase hex digits, most significant first (`{v:08x}`).
    ///
    /// # Errors
    /// [`fmt::Error`] when the line is full (the digits that fit are kept).
    pub fn push_hex_u32(&mut self, v: u32) -> fmt::Result {
        for b in v.to_be_bytes() {
            self.push_hex_u8(b)?;
        }
        Ok(())
    }
    /// Append `v` in decimal (`{v}`). The protocol's numbers go through this and [`LineBuf::push_hex_u32`],
    /// not `core::fmt`, so a build that formats nothing else (the firmware's lean build) links no `core::fmt`.
    ///
    /// # Errors
    /// [`fmt::Error`] when the line is full (the digits that fit are kept).
    pub fn push_u64(&mut self, mut v: u64) -> fmt::Result {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            let (q, digit) = div10(v);
            digits[n] = b'0' + digit;
            n += 1;
            v = q;
            if v == 0 {
                break;
            }
        }
        digits[..n].iter().rev().try_for_each(|&d| self.push_byte(d))
    }
    /// Append ` key=value` (decimal value).
    ///
    /// # Errors
    /// [`fmt::Error`] when the line is full.
    pub fn push_pair(&mut self, key: &str, value: u64) -> fmt::Result {
        self.push_byte(b' ')?;
        self.push_str(key)?;
        self.push_byte(b'=')?;
        self.push_u64(value)
    }
}

impl fmt::Write for LineBuf {
    /// [`LineBuf::push_str`].
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s)
    }
}

const HEX: [u8; 16] = *b"0123456789abcdef";

/// `(v / 10, v % 10)` by long division in 16-bit steps: only 32-bit divisions by a constant (a multiply), so
/// a 32-bit target links no 64-bit division routine for the protocol's numbers (about 0.9 KB on Cortex-M).
fn div10(v: u64) -> (u64, u8) {
    let (mut q, mut rem) = (0u64, 0u32);
    for shift in [48, 32, 16, 0] {
        let cur = (rem << 16) | ((v >> shift) as u32 & 0xffff);
        q |= u64::from(cur / 10) << shift;
        rem = cur % 10;
    }
    (q, rem as u8)
}

/// True for a valid extra key: 1 to [`MAX_KEY_LEN`] characters of `[a-z0-9_]`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Append ` key=value` pairs.
fn push_extras(line: &mut LineBuf, extras: &[(&str, u64)]) -> fmt::Result {
    extras.iter().try_for_each(|&(k, v)| line.push_pair(k, v))
}

/// Append ` sampler=<name> steps=<steps> seed=<seed>` (the spec of a `begin` or `screen` line).
fn push_spec(line: &mut LineBuf, spec: &SampleSpec) -> fmt::Result {
    line.push_str(" sampler=")?;
    line.push_str(spec.sampler.name())?;
    line.push_pair("steps", spec.steps.into())?;
    line.push_pair("seed", spec.seed)
}

/// Append ` n ` (a row or element index and the space before the data).
fn push_index(line: &mut LineBuf, n: usize) -> fmt::Result {
    line.push_byte(b' ')?;
    line.push_u64(n as u64)?;
    line.push_byte(b' ')
}

/// Start a chunk line of a frame: `{PREFIX} {what} {row} {column} ` (`p` and a screen's `s` lines).
fn start_chunk(line: &mut LineBuf, what: &str, row: usize, column: usize) {
    start(line, what);
    // Cannot overflow: a row and a column index are at most 2 * 20 digits.
    let _ = push_index(line, row);
    let _ = line.push_u64(column as u64);
    let _ = line.push_byte(b' ');
}

/// Start a line: [`PREFIX`], a space and `what` (`begin`, `p`, ...), on a cleared `line`.
fn start(line: &mut LineBuf, what: &str) {
    line.clear();
    // Cannot overflow: a cleared line has room for both.
    let _ = line.push_str(PREFIX);
    let _ = line.push_byte(b' ');
    let _ = line.push_str(what);
}

/// Formats one `stat` line (`@GDF1 stat key=value ...`) for measurements that belong to no frame.
///
/// # Panics
/// If there are more than [`MAX_EXTRAS`] pairs or a key is not [`valid_key`] (caller contract).
pub fn stat_line<'b>(line: &'b mut LineBuf, extras: &[(&str, u64)]) -> &'b str {
    try_stat_line(line, extras).expect("stat_line: bad extras")
}

/// [`stat_line`] without the caller contract: `None` (and nothing written) when there are more than
/// [`MAX_EXTRAS`] pairs or a key is not [`valid_key`], e.g. longer than [`MAX_KEY_LEN`] characters. The
/// firmware uses this one, so a bad key becomes an error report, never a panic.
pub fn try_stat_line<'b>(line: &'b mut LineBuf, extras: &[(&str, u64)]) -> Option<&'b str> {
    line.clear();
    if extras.len() > MAX_EXTRAS || !extras.iter().all(|(k, _)| valid_key(k)) {
        return None;
    }
    // Cannot overflow: 5 + 5 + MAX_EXTRAS * (1 + MAX_KEY_LEN + 1 + 20) < LINE_CAPACITY.
    start(line, "stat");
    let _ = push_extras(line, extras);
    Some(line.as_str())
}

/// One sample with everything its frame carries. Borrowed, so encoding allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Image shape; `pixels.len()` and `sample.len()` equal `shape.dim()`.
    pub shape: ImageShape,
    /// How the sample was produced.
    pub spec: SampleSpec,
    /// 8-bit pixels in CHW order (the blob's pixel mapping applied to `sample`).
    pub pixels: &'a [u8],
    /// The f32 sample in CHW order.
    pub sample: &'a [f32],
    /// Extra `key=value` pairs for the `begin` line (e.g. `blob_crc`).
    pub begin_extras: &'a [(&'a str, u64)],
    /// Extra `key=value` pairs for the `end` line (e.g. `evals`, `instr`).
    pub end_extras: &'a [(&'a str, u64)],
}

impl Frame<'_> {
    /// Encodes the frame line by line, calling `emit` with each line (without its newline).
    ///
    /// With `values`, the `v` lines carrying the f32 bit patterns are included, so a reader can recover the
    /// exact sample and check its CRC; without, only pixels and both CRCs are sent.
    ///
    /// # Errors
    /// The first error `emit` returns.
    ///
    /// # Panics
    /// If `pixels.len()` or `sample.len()` differ from `shape.dim()`, the shape has a zero side, or the extras
    /// break [`MAX_EXTRAS`] / [`valid_key`] (caller contract).
    pub fn encode<E>(&self, values: bool, emit: &mut impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        let d = self.shape.dim();
        contract!(d > 0, "Frame::encode: empty shape");
        contract!(self.pixels.len() == d && self.sample.len() == d, "Frame::encode: pixels/sample length != shape");
        for extras in [self.begin_extras, self.end_extras] {
            contract!(
                extras.len() <= MAX_EXTRAS && extras.iter().all(|(k, _)| valid_key(k)),
                "Frame::encode: bad extras"
            );
        }
        let mut line = LineBuf::new();
        let ImageShape { channels, height, width } = self.shape;
        // The capacity arithmetic in the comments below shows none of these writes can overflow the buffer.
        // begin: < 80 fixed chars + MAX_EXTRAS * 34.
        start(&mut line, "begin");
        let _ = line.push_pair("c", channels.into());
        let _ = line.push_pair("h", height.into());
        let _ = line.push_pair("w", width.into());
        let _ = push_spec(&mut line, &self.spec);
        let _ = push_extras(&mut line, self.begin_extras);
        emit(line.as_str())?;
        // p lines: 5 + 3 + 2 * 6 + 2 * PIXELS_PER_LINE < 160.
        let width = usize::from(width);
        for (r, row) in self.pixels.chunks(width).enumerate() {
            for (k, chunk) in row.chunks(PIXELS_PER_LINE).enumerate() {
                start_chunk(&mut line, "p", r, k * PIXELS_PER_LINE);
                for &p in chunk {
                    let _ = line.push_hex_u8(p);
                }
                emit(line.as_str())?;
            }
        }
        // v lines: 5 + 3 + 11 + 8 * VALUES_PER_LINE < 160.
        if values {
            for (k, chunk) in self.sample.chunks(VALUES_PER_LINE).enumerate() {
                start(&mut line, "v");
                let _ = push_index(&mut line, k * VALUES_PER_LINE);
                for v in chunk {
                    let _ = line.push_hex_u32(v.to_bits());
                }
                emit(line.as_str())?;
            }
        }
        start(&mut line, "end pixels=");
        let _ = line.push_hex_u32(pixel_crc(self.pixels));
        let _ = line.push_str(" sample=");
        let _ = line.push_hex_u32(sample_crc(self.sample));
        let _ = push_extras(&mut line, self.end_extras);
        emit(line.as_str())
    }
}

mod screen;
pub use screen::{screen_crc, ScreenFrame, SCREEN_PIXELS_PER_LINE};

#[cfg(feature = "std")]
mod decode;
#[cfg(feature = "std")]
pub use decode::{decode, DecodedFrame, DecodedScreen, FrameError, Item};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::Sampler;

    #[test]
    fn crc_is_iso_hdlc() {
        assert_eq!(CRC.checksum(b"123456789"), 0xcbf4_3926);
        assert_eq!(sample_crc(&[1.0, -2.5]), CRC.checksum(&[0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]));
        assert_ne!(sample_crc(&[0.0]), sample_crc(&[-0.0]));
    }

    #[test]
    fn line_buf_rejects_overflow() {
        let mut l = LineBuf::new();
        let long = [b'a'; LINE_CAPACITY];
        assert!(l.push_str(core::str::from_utf8(&long).unwrap()).is_ok());
        assert!(l.push_str("b").is_err());
        assert!(l.push_byte(b'c').is_err());
        assert_eq!(l.as_str().len(), LINE_CAPACITY);
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut l = LineBuf::new();
        for v in [0, 7, 10, 4_294_967_296, u64::MAX] {
            let _ = l.push_u64(v);
            let _ = l.push_byte(b' ');
        }
        let _ = l.push_hex_u32(0x00ab_cdef);
        assert_eq!(l.as_str(), "0 7 10 4294967296 18446744073709551615 00abcdef");
    }

    #[test]
    fn div10_is_division_by_ten() {
        let mut v = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            for x in [v, v >> 17, v >> 40, u64::MAX - (v >> 50)] {
                assert_eq!(div10(x), (x / 10, (x % 10) as u8));
            }
            v = v.rotate_left(7).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ 1;
        }
    }

    #[test]
    fn keys() {
        assert!(valid_key("instr") && valid_key("blob_crc") && valid_key("a1"));
        assert!(!valid_key("") && !valid_key("Bad") && !valid_key("a=b") && !valid_key("toolongkey_xyz"));
        // A key over MAX_KEY_LEN characters, or too many pairs: no line, no panic.
        let mut line = LineBuf::new();
        assert!(try_stat_line(&mut line, &[("thirteen_char", 1)]).is_none());
        assert!(try_stat_line(&mut line, &[("k", 1); MAX_EXTRAS + 1]).is_none());
        assert_eq!(try_stat_line(&mut line, &[("twelve_chars", 7)]), Some("@GDF1 stat twelve_chars=7"));
    }

    #[test]
    fn encodes_known_text() {
        let shape = ImageShape { channels: 1, height: 2, width: 3 };
        let pixels = [0u8, 1, 255, 16, 128, 7];
        let sample = [-1.0f32, 0.5, 1.0, 0.0, -0.0, 2.0];
        let frame = Frame {
            shape,
            spec: SampleSpec { sampler: Sampler::Heun, steps: 18, seed: 7 },
            pixels: &pixels,
            sample: &sample,
            begin_extras: &[("blob_crc", 42)],
            end_extras: &[("evals", 35)],
        };
        let mut lines: [([u8; LINE_CAPACITY], usize); 8] = [([0; LINE_CAPACITY], 0); 8];
        let mut n = 0;
        frame
            .encode::<()>(true, &mut |l| {
                lines[n].0[..l.len()].copy_from_slice(l.as_bytes());
                lines[n].1 = l.len();
                n += 1;
                Ok(())
            })
            .unwrap();
        let text = |i: usize| core::str::from_utf8(&lines[i].0[..lines[i].1]).unwrap();
        assert_eq!(n, 5);
        assert_eq!(text(0), "@GDF1 begin c=1 h=2 w=3 sampler=heun steps=18 seed=7 blob_crc=42");
        assert_eq!(text(1), "@GDF1 p 0 0 0001ff");
        assert_eq!(text(2), "@GDF1 p 1 0 108007");
        assert_eq!(text(3), "@GDF1 v 0 bf8000003f0000003f800000000000008000000040000000");
        // CRCs computed independently (Python zlib.crc32), so the example in docs/frame-protocol.md is real.
        assert_eq!(text(4), "@GDF1 end pixels=eb66207a sample=d59610fe evals=35");
    }
}
