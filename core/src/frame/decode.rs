//! The frame decoder (host side, `std`): picks protocol lines out of any text (serial captures, `probe-rs`
//! output with defmt prefixes, semihosting logs), rebuilds each frame and checks its CRCs.

use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use super::{pixel_crc, sample_crc, PREFIX};

mod screen;
use crate::pixel::ImageShape;
use crate::sampler::{SampleSpec, Sampler};
pub use screen::DecodedScreen;

/// Frames larger than this many values are rejected as corrupt rather than allocated.
pub const MAX_DIM: usize = 1 << 24;

/// Why part of a stream is not a valid frame: the 1-based line number and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// 1-based line of the stream where the problem was found.
    pub line: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for FrameError {}

/// A frame read back from a stream, its CRCs already checked.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedFrame {
    /// 1-based line of its `begin` line.
    pub line: usize,
    /// Image shape.
    pub shape: ImageShape,
    /// How the sample was produced.
    pub spec: SampleSpec,
    /// Extra `key=value` pairs of the `begin` line, in order.
    pub begin_extras: Vec<(String, String)>,
    /// Extra `key=value` pairs of the `end` line, in order.
    pub end_extras: Vec<(String, String)>,
    /// Pixels in CHW order; their CRC matched the `end` line's `pixels`.
    pub pixels: Vec<u8>,
    /// The exact f32 sample when the frame carried `v` lines; their CRC matched the `end` line's `sample`.
    pub values: Option<Vec<f32>>,
    /// CRC-32 of the pixels (as sent and as recomputed).
    pub pixel_crc: u32,
    /// CRC-32 of the f32 sample's little-endian bytes, as sent.
    pub sample_crc: u32,
}

impl DecodedFrame {
    /// The value of an extra key from the `begin` or the `end` line.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.begin_extras.iter().chain(&self.end_extras).find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// True when `sample` has exactly the bits the frame's `sample` CRC was computed from.
    pub fn matches_sample(&self, sample: &[f32]) -> bool {
        sample.len() == self.shape.dim() && sample_crc(sample) == self.sample_crc
    }
}

/// One thing found in a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A complete frame whose checksums matched.
    Frame(DecodedFrame),
    /// A `stat` line: measurements (`key=value` pairs) that belong to no frame.
    Stat {
        /// 1-based line number.
        line: usize,
        /// The pairs, in order.
        pairs: Vec<(String, String)>,
    },
    /// An `error` line: the target reported a failure (bad blob, panic, fault).
    TargetError {
        /// 1-based line number.
        line: usize,
        /// The target's message.
        message: String,
    },
    /// A complete screen frame whose checksum matched: what the target's display shows.
    Screen(DecodedScreen),
    /// A `done` line: the target finished its runs.
    Done {
        /// 1-based line number.
        line: usize,
        /// The pairs, in order.
        pairs: Vec<(String, String)>,
    },
}

struct Open {
    line: usize,
    shape: ImageShape,
    spec: SampleSpec,
    begin_extras: Vec<(String, String)>,
    pixels: Vec<u8>,
    have_pixel: Vec<bool>,
    values: Vec<f32>,
    have_value: Vec<bool>,
    any_value: bool,
}

fn err(line: usize, message: impl Into<String>) -> FrameError {
    FrameError { line, message: message.into() }
}

fn pairs(line: usize, words: &[&str]) -> Result<Vec<(String, String)>, FrameError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(err(line, format!("expected key=value, found {w:?}")));
        };
        if k.is_empty() || out.iter().any(|(o, _)| o == k) {
            return Err(err(line, format!("empty or repeated key {k:?}")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn take<T: core::str::FromStr>(
    line: usize,
    kv: &mut Vec<(String, String)>,
    key: &str,
    what: &str,
) -> Result<T, FrameError> {
    let Some(i) = kv.iter().position(|(k, _)| k == key) else {
        return Err(err(line, format!("begin line lacks {key}= ({what})")));
    };
    let (_, v) = kv.remove(i);
    v.parse().map_err(|_| err(line, format!("{key}={v:?} is not {what}")))
}

fn hex_u32(line: usize, s: &str, what: &str) -> Result<u32, FrameError> {
    if s.len() != 8 {
        return Err(err(line, format!("{what} {s:?} is not 8 hex digits")));
    }
    u32::from_str_radix(s, 16).map_err(|_| err(line, format!("{what} {s:?} is not 8 hex digits")))
}

/// The `sampler=`, `steps=` and `seed=` keys of a `begin` or `screen` line.
fn spec(line: usize, kv: &mut Vec<(String, String)>) -> Result<SampleSpec, FrameError> {
    let name: String = take(line, kv, "sampler", "a sampler name")?;
    let sampler = Sampler::from_name(&name)
        .ok_or_else(|| err(line, format!("sampler={name:?} is not one of exact, euler, heun")))?;
    let steps: u32 = take(line, kv, "steps", "a step count")?;
    let seed: u64 = take(line, kv, "seed", "a u64 seed")?;
    Ok(SampleSpec { sampler, steps, seed })
}

fn begin(line: usize, words: &[&str]) -> Result<Open, FrameError> {
    let mut kv = pairs(line, words)?;
    let channels: u16 = take(line, &mut kv, "c", "a channel count 1..65535")?;
    let height: u16 = take(line, &mut kv, "h", "a height 1..65535")?;
    let width: u16 = take(line, &mut kv, "w", "a width 1..65535")?;
    let spec = spec(line, &mut kv)?;
    let shape = ImageShape { channels, height, width };
    let d = shape.dim();
    if d == 0 || d > MAX_DIM {
        return Err(err(line, format!("image {channels}x{height}x{width} has {d} values, expected 1..={MAX_DIM}")));
    }
    Ok(Open {
        line,
        shape,
        spec,
        begin_extras: kv,
        pixels: vec![0; d],
        have_pixel: vec![false; d],
        values: vec![0.0; d],
        have_value: vec![false; d],
        any_value: false,
    })
}

/// The words `ROW COL HEX` of a chunk line (`usage` is its documented form, `what` names its values): the row,
/// the first column and the hex digits, checked to hold a whole, non-zero number of `digits`-wide values that
/// fit in row `ROW` of a `rows x cols` image.
pub(super) fn chunk<'w>(
    line: usize,
    words: &[&'w str],
    (usage, what): (&str, &str),
    digits: usize,
    (rows, cols): (usize, usize),
) -> Result<(usize, usize, &'w str), FrameError> {
    let [r, x0, hex] = words else {
        return Err(err(line, format!("expected `{usage}`")));
    };
    let r: usize = r.parse().map_err(|_| err(line, format!("row {r:?} is not a number")))?;
    let x0: usize = x0.parse().map_err(|_| err(line, format!("column {x0:?} is not a number")))?;
    if !hex.is_ascii() {
        return Err(err(line, format!("{what} chunk: expected hex digits")));
    }
    let n = hex.len() / digits;
    if hex.len() % digits != 0 || n == 0 || r >= rows || x0 >= cols || x0 + n > cols {
        return Err(err(line, format!("{what} chunk row {r} col {x0} len {n} outside {rows} rows x {cols} columns")));
    }
    Ok((r, x0, hex))
}

fn pixel_line(line: usize, f: &mut Open, words: &[&str]) -> Result<(), FrameError> {
    let (w, rows) = (usize::from(f.shape.width), usize::from(f.shape.channels) * usize::from(f.shape.height));
    let (r, x0, hex) = chunk(line, words, ("p ROW COL HEX", "pixel"), 2, (rows, w))?;
    let n = hex.len() / 2;
    for i in 0..n {
        let v = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| err(line, format!("bad hex pixel {:?}", &hex[2 * i..2 * i + 2])))?;
        let at = r * w + x0 + i;
        if f.have_pixel[at] {
            return Err(err(line, format!("pixel row {r} col {} sent twice", x0 + i)));
        }
        f.pixels[at] = v;
        f.have_pixel[at] = true;
    }
    Ok(())
}

fn value_line(line: usize, f: &mut Open, words: &[&str]) -> Result<(), FrameError> {
    let [i0, hex] = words else {
        return Err(err(line, "expected `v INDEX HEX`"));
    };
    let d = f.shape.dim();
    let i0: usize = i0.parse().map_err(|_| err(line, format!("index {i0:?} is not a number")))?;
    if !hex.is_ascii() {
        return Err(err(line, "value chunk: expected hex digits"));
    }
    let n = hex.len() / 8;
    if hex.len() % 8 != 0 || n == 0 || i0 >= d || i0 + n > d {
        return Err(err(line, format!("value chunk at {i0} with {} hex digits outside 0..{d}", hex.len())));
    }
    for i in 0..n {
        let bits = hex_u32(line, &hex[8 * i..8 * i + 8], "value")?;
        if f.have_value[i0 + i] {
            return Err(err(line, format!("value {} sent twice", i0 + i)));
        }
        f.values[i0 + i] = f32::from_bits(bits);
        f.have_value[i0 + i] = true;
    }
    f.any_value = true;
    Ok(())
}

fn end(line: usize, f: Open, words: &[&str]) -> Result<DecodedFrame, FrameError> {
    let mut kv = pairs(line, words)?;
    let pix: String = take(line, &mut kv, "pixels", "the pixels CRC")?;
    let smp: String = take(line, &mut kv, "sample", "the sample CRC")?;
    let (sent_pixel_crc, sent_sample_crc) = (hex_u32(line, &pix, "pixels CRC")?, hex_u32(line, &smp, "sample CRC")?);
    if let Some(missing) = f.have_pixel.iter().position(|h| !h) {
        let w = usize::from(f.shape.width);
        return Err(err(
            line,
            format!("frame from line {} lacks pixel row {} col {}", f.line, missing / w, missing % w),
        ));
    }
    let computed = pixel_crc(&f.pixels);
    if computed != sent_pixel_crc {
        return Err(err(
            line,
            format!(
                "frame from line {}: pixels CRC {computed:08x} != sent {sent_pixel_crc:08x} (corrupted stream)",
                f.line
            ),
        ));
    }
    let values = if f.any_value {
        if let Some(missing) = f.have_value.iter().position(|h| !h) {
            return Err(err(line, format!("frame from line {} lacks value {missing}", f.line)));
        }
        let computed = sample_crc(&f.values);
        if computed != sent_sample_crc {
            return Err(err(
                line,
                format!("frame from line {}: sample CRC {computed:08x} != sent {sent_sample_crc:08x}", f.line),
            ));
        }
        Some(f.values)
    } else {
        None
    };
    Ok(DecodedFrame {
        line: f.line,
        shape: f.shape,
        spec: f.spec,
        begin_extras: f.begin_extras,
        end_extras: kv,
        pixels: f.pixels,
        values,
        pixel_crc: sent_pixel_crc,
        sample_crc: sent_sample_crc,
    })
}

/// Decodes every protocol item in `text`, in order. Lines without [`PREFIX`] are skipped, and the prefix
/// may appear after other text on a line (timestamps, log levels), so captures need no cleaning.
///
/// A problem with one frame (a missing chunk, a CRC mismatch, a malformed line, a frame cut off by the
/// next `begin` or by the end of the text) yields an `Err` in its place; decoding goes on with the next
/// frame.
pub fn decode(text: &str) -> Vec<Result<Item, FrameError>> {
    let mut out = Vec::new();
    let mut open: Option<Open> = None;
    // A frame that hit an error is dropped until its `end` (or the next `begin`).
    let mut skipping = false;
    let mut screens = screen::Screens::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(at) = raw.find(PREFIX) else { continue };
        let rest = &raw[at + PREFIX.len()..];
        if !rest.is_empty() && !rest.starts_with(' ') {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let Some((&kind, args)) = words.split_first() else {
            out.push(Err(err(line, "protocol line without a kind")));
            continue;
        };
        match kind {
            "begin" => {
                if let Some(f) = open.take() {
                    out.push(Err(err(line, format!("frame from line {} has no end line", f.line))));
                }
                skipping = false;
                match begin(line, args) {
                    Ok(f) => open = Some(f),
                    Err(e) => {
                        out.push(Err(e));
                        skipping = true;
                    }
                }
            }
            "p" | "v" => {
                if let Some(f) = open.as_mut() {
                    let r = if kind == "p" { pixel_line(line, f, args) } else { value_line(line, f, args) };
                    if let Err(e) = r {
                        out.push(Err(e));
                        open = None;
                        skipping = true;
                    }
                } else if !skipping {
                    out.push(Err(err(line, format!("`{kind}` line outside a frame"))));
                }
            }
            "end" => {
                if let Some(f) = open.take() {
                    out.push(end(line, f, args).map(Item::Frame));
                } else if !skipping {
                    out.push(Err(err(line, "`end` line outside a frame")));
                }
                skipping = false;
            }
            "stat" | "done" => match pairs(line, args) {
                Ok(pairs) if kind == "stat" => out.push(Ok(Item::Stat { line, pairs })),
                Ok(pairs) => out.push(Ok(Item::Done { line, pairs })),
                Err(e) => out.push(Err(e)),
            },
            "error" => out.push(Ok(Item::TargetError { line, message: args.join(" ") })),
            "screen" | "s" | "screen_end" => {
                if let Some(item) = screens.line(line, kind, args) {
                    out.push(item);
                }
            }
            other => out.push(Err(err(line, format!("unknown line kind {other:?}")))),
        }
    }
    let n = text.lines().count();
    if let Some(f) = open {
        out.push(Err(err(n, format!("stream ends inside the frame from line {}", f.line))));
    }
    if let Some(e) = screens.finish(n) {
        out.push(Err(e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Frame, LINE_CAPACITY};
    use super::*;

    fn encode(frame: &Frame<'_>, values: bool) -> String {
        let mut s = String::new();
        frame
            .encode::<()>(values, &mut |l| {
                assert!(l.len() <= LINE_CAPACITY);
                s.push_str(l);
                s.push('\n');
                Ok(())
            })
            .unwrap();
        s
    }

    fn sample_frame(shape: ImageShape, seed: u64) -> (Vec<u8>, Vec<f32>) {
        let d = shape.dim();
        let sample: Vec<f32> = (0..d).map(|i| ((i as f32 + seed as f32) * 0.37).sin()).collect();
        let pixels: Vec<u8> = sample.iter().map(|v| crate::pixel::PixelMap::EDM.to_pixel(*v)).collect();
        (pixels, sample)
    }

    #[test]
    fn round_trip_with_and_without_values_in_noise() {
        for shape in [
            ImageShape { channels: 1, height: 28, width: 20 },
            ImageShape { channels: 3, height: 5, width: 130 },
            ImageShape { channels: 1, height: 1, width: 1 },
        ] {
            let (pixels, sample) = sample_frame(shape, 3);
            let frame = Frame {
                shape,
                spec: SampleSpec { sampler: Sampler::Euler, steps: 18, seed: u64::MAX },
                pixels: &pixels,
                sample: &sample,
                begin_extras: &[("blob_crc", 7)],
                end_extras: &[("evals", 18), ("instr", 123_456_789)],
            };
            for values in [false, true] {
                // Interleave foreign text and prefixes such as a defmt/probe-rs log adds.
                let text: String = encode(&frame, values)
                    .lines()
                    .map(|l| format!("0.000123 INFO  {l}\r\nsome other log line\n"))
                    .collect();
                let items = decode(&text);
                assert_eq!(items.len(), 1, "{items:?}");
                let Ok(Item::Frame(f)) = &items[0] else { panic!("{items:?}") };
                assert_eq!(f.shape, shape);
                assert_eq!(f.spec, frame.spec);
                assert_eq!(f.pixels, pixels);
                assert_eq!(f.extra("blob_crc"), Some("7"));
                assert_eq!(f.extra("instr"), Some("123456789"));
                assert!(f.matches_sample(&sample));
                assert_eq!(
                    f.values.as_deref().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
                    values.then(|| sample.iter().map(|x| x.to_bits()).collect())
                );
            }
        }
    }

    #[test]
    fn detects_corruption_and_truncation() {
        let shape = ImageShape { channels: 1, height: 4, width: 3 };
        let (pixels, sample) = sample_frame(shape, 1);
        let frame = Frame {
            shape,
            spec: SampleSpec { sampler: Sampler::Exact, steps: 0, seed: 0 },
            pixels: &pixels,
            sample: &sample,
            begin_extras: &[],
            end_extras: &[],
        };
        let good = encode(&frame, true);
        // A flipped pixel digit.
        let lines: Vec<&str> = good.lines().collect();
        let mut bad = lines.clone();
        let flipped =
            lines[1].replacen(&lines[1][lines[1].len() - 1..], if lines[1].ends_with('0') { "1" } else { "0" }, 1);
        let flipped = format!("{}{}", &lines[1][..lines[1].len() - 1], &flipped[flipped.len() - 1..]);
        bad[1] = &flipped;
        let items = decode(&bad.join("\n"));
        assert!(matches!(&items[..], [Err(e)] if e.message.contains("pixels CRC")), "{items:?}");
        // A changed value bit.
        let mut bad = lines.clone();
        let vline = lines.iter().position(|l| l.contains(" v ")).unwrap();
        let changed = lines[vline].replacen(" v 0 ", " v 0 0", 1);
        let changed = changed[..changed.len() - 1].to_string();
        bad[vline] = &changed;
        let items = decode(&bad.join("\n"));
        assert!(matches!(&items[..], [Err(e)] if e.message.contains("sample CRC")), "{items:?}");
        // A missing row, a truncated stream, a frame cut by the next one.
        let mut bad = lines.clone();
        bad.remove(2);
        assert!(matches!(&decode(&bad.join("\n"))[..], [Err(e)] if e.message.contains("lacks pixel row 1")));
        let cut = lines[..3].join("\n");
        assert!(matches!(&decode(&cut)[..], [Err(e)] if e.message.contains("stream ends")));
        let twice = format!("{}\n{}", lines[..3].join("\n"), good);
        let items = decode(&twice);
        assert!(matches!(&items[..], [Err(e), Ok(Item::Frame(_))] if e.message.contains("no end line")), "{items:?}");
        // Bad begin lines name the field.
        for (text, needle) in [
            ("@GDF1 begin c=1 h=2 sampler=heun steps=1 seed=0", "lacks w="),
            ("@GDF1 begin c=1 h=2 w=2 sampler=ddim steps=1 seed=0", "ddim"),
            ("@GDF1 begin c=1 h=0 w=2 sampler=heun steps=1 seed=0", "expected 1..="),
            ("@GDF1 begin c=1 h=2 w=2 sampler=heun steps=x seed=0", "steps=\"x\""),
            ("@GDF1 p 0 0 00", "outside a frame"),
            ("@GDF1 bogus", "unknown line kind"),
        ] {
            let items = decode(text);
            assert!(matches!(&items[..], [Err(e), ..] if e.message.contains(needle)), "{text}: {items:?}");
        }
    }

    #[test]
    fn stat_error_done_lines() {
        let mut l = super::super::LineBuf::new();
        let stat = super::super::stat_line(&mut l, &[("kernel", 1), ("instr", 99)]).to_string();
        let text = format!("{stat}\n@GDF1 error blob: checksum mismatch\n@GDF1 done frames=0 status=1\n@GDF1x junk\n");
        let items = decode(&text);
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(matches!(&items[0], Ok(Item::Stat { line: 1, pairs }) if pairs[1] == ("instr".into(), "99".into())));
        assert!(
            matches!(&items[1], Ok(Item::TargetError { line: 2, message }) if message == "blob: checksum mismatch")
        );
        assert!(matches!(&items[2], Ok(Item::Done { line: 3, .. })));
    }

    #[test]
    fn non_ascii_hex_is_an_error_not_a_panic() {
        // Found by `cargo fuzz run decode_frames`: a multi-byte character inside a hex chunk.
        for body in ["@GDF1 p 0 0 0\u{e9}f\n", "@GDF1 v 0 bf80\u{e9}000\n"] {
            let text = std::format!("@GDF1 begin c=1 h=1 w=2 sampler=heun steps=18 seed=7\n{body}");
            let items = decode(&text);
            assert!(items.iter().any(|i| i.is_err()), "{body}");
        }
    }
}
