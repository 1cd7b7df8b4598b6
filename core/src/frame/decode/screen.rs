//! Decoding screen frames (`screen`, `s`, `screen_end` lines): a target's display contents as raw RGB565.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::{chunk, err, hex_u32, pairs, spec, take, FrameError, Item, MAX_DIM};
use crate::frame::screen::screen_crc;
use crate::sampler::SampleSpec;

/// A screen frame read back from a stream, its CRC already checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedScreen {
    /// 1-based line of its `screen` line.
    pub line: usize,
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// The run whose sample the screen shows.
    pub spec: SampleSpec,
    /// Extra `key=value` pairs of the `screen` line (the caption's time: `instr` or `us`), in order.
    pub extras: Vec<(String, String)>,
    /// `width * height` raw RGB565 values, row-major; their CRC matched the `screen_end` line's.
    pub rgb565: Vec<u16>,
}

impl DecodedScreen {
    /// The value of an extra key of the `screen` line.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extras.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

struct Open {
    screen: DecodedScreen,
    have: Vec<bool>,
}

/// The decoder's state for screen frames, beside the image frames'.
#[derive(Default)]
pub(super) struct Screens {
    open: Option<Open>,
    /// A screen that hit an error is dropped until its `screen_end` (or the next `screen`).
    skipping: bool,
}

impl Screens {
    /// One `screen`, `s` or `screen_end` line; returns an item when one is complete or wrong.
    pub(super) fn line(&mut self, line: usize, kind: &str, args: &[&str]) -> Option<Result<Item, FrameError>> {
        match kind {
            "screen" => {
                let cut = self
                    .open
                    .take()
                    .map(|o| err(line, format!("screen from line {} has no screen_end", o.screen.line)));
                self.skipping = false;
                match begin(line, args) {
                    Ok(o) => self.open = Some(o),
                    Err(e) => {
                        self.skipping = true;
                        return Some(Err(e));
                    }
                }
                cut.map(Err)
            }
            "s" => {
                let Some(o) = self.open.as_mut() else {
                    return (!self.skipping).then(|| Err(err(line, "`s` line outside a screen")));
                };
                let r = row(line, o, args);
                if r.is_err() {
                    self.open = None;
                    self.skipping = true;
                }
                r.err().map(Err)
            }
            _ => {
                let skipping = std::mem::replace(&mut self.skipping, false);
                match self.open.take() {
                    Some(o) => Some(end(line, o, args).map(Item::Screen)),
                    None => (!skipping).then(|| Err(err(line, "`screen_end` line outside a screen"))),
                }
            }
        }
    }

    /// The end of the stream: an error when a screen is still open.
    pub(super) fn finish(&mut self, last_line: usize) -> Option<FrameError> {
        self.open.take().map(|o| err(last_line, format!("stream ends inside the screen from line {}", o.screen.line)))
    }
}

fn begin(line: usize, words: &[&str]) -> Result<Open, FrameError> {
    let mut kv = pairs(line, words)?;
    let width: u16 = take(line, &mut kv, "w", "a width 1..65535")?;
    let height: u16 = take(line, &mut kv, "h", "a height 1..65535")?;
    let spec = spec(line, &mut kv)?;
    let n = usize::from(width) * usize::from(height);
    if n == 0 || n > MAX_DIM {
        return Err(err(line, format!("screen {width}x{height} has {n} pixels, expected 1..={MAX_DIM}")));
    }
    let screen = DecodedScreen { line, width, height, spec, extras: kv, rgb565: vec![0; n] };
    Ok(Open { screen, have: vec![false; n] })
}

fn row(line: usize, o: &mut Open, words: &[&str]) -> Result<(), FrameError> {
    let (w, h) = (usize::from(o.screen.width), usize::from(o.screen.height));
    let (r, x0, hex) = chunk(line, words, ("s ROW COL HEX", "screen"), 4, (h, w))?;
    let n = hex.len() / 4;
    for i in 0..n {
        let digits = &hex[4 * i..4 * i + 4];
        let v = u16::from_str_radix(digits, 16).map_err(|_| err(line, format!("bad hex RGB565 {digits:?}")))?;
        let at = r * w + x0 + i;
        if o.have[at] {
            return Err(err(line, format!("screen row {r} col {} sent twice", x0 + i)));
        }
        o.screen.rgb565[at] = v;
        o.have[at] = true;
    }
    Ok(())
}

fn end(line: usize, o: Open, words: &[&str]) -> Result<DecodedScreen, FrameError> {
    let mut kv = pairs(line, words)?;
    let crc: String = take(line, &mut kv, "crc", "the screen CRC")?;
    let sent = hex_u32(line, &crc, "screen CRC")?;
    if let Some(missing) = o.have.iter().position(|h| !h) {
        let w = usize::from(o.screen.width);
        return Err(err(
            line,
            format!("screen from line {} lacks row {} col {}", o.screen.line, missing / w, missing % w),
        ));
    }
    let computed = screen_crc(&o.screen.rgb565);
    if computed != sent {
        return Err(err(
            line,
            format!("screen from line {}: CRC {computed:08x} != sent {sent:08x} (corrupted stream)", o.screen.line),
        ));
    }
    Ok(o.screen)
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;
    use crate::frame::ScreenFrame;
    use crate::sampler::Sampler;

    fn text(rgb565: &[u16], w: u16, h: u16) -> String {
        let mut s = String::new();
        let screen = ScreenFrame {
            width: w,
            height: h,
            spec: SampleSpec { sampler: Sampler::Euler, steps: 4, seed: 9 },
            rgb565,
            extras: &[("instr", 12)],
        };
        screen
            .encode::<()>(&mut |l| {
                s.push_str("INFO ");
                s.push_str(l);
                s.push('\n');
                Ok(())
            })
            .unwrap();
        s
    }

    #[test]
    fn round_trip_and_corruption() {
        let (w, h) = (100u16, 3u16);
        let rgb565: Vec<u16> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 16) as u16).collect();
        let good = text(&rgb565, w, h);
        let items = decode(&good);
        let [Ok(Item::Screen(s))] = &items[..] else { panic!("{items:?}") };
        assert_eq!((s.width, s.height, s.rgb565.as_slice(), s.extra("instr")), (w, h, rgb565.as_slice(), Some("12")));
        assert_eq!(s.spec, SampleSpec { sampler: Sampler::Euler, steps: 4, seed: 9 });
        // 100 columns in chunks of 48: 3 lines per row.
        assert_eq!(good.lines().count(), 1 + 3 * 3 + 1);

        let lines: Vec<&str> = good.lines().collect();
        let mut flipped = lines.clone();
        let l = lines[2].replacen(" s 0 48 ", " s 0 48 f", 1);
        let l = &l[..l.len() - 1];
        flipped[2] = l;
        assert!(matches!(&decode(&flipped.join("\n"))[..], [Err(e)] if e.message.contains("CRC")));
        let mut missing = lines.clone();
        missing.remove(4);
        assert!(matches!(&decode(&missing.join("\n"))[..], [Err(e)] if e.message.contains("lacks row 1")));
        assert!(matches!(&decode(&lines[..5].join("\n"))[..], [Err(e)] if e.message.contains("stream ends inside")));
        assert!(matches!(&decode("@GDF1 s 0 0 ffff")[..], [Err(e)] if e.message.contains("outside a screen")));
        assert!(
            matches!(&decode("@GDF1 screen w=0 h=2 sampler=exact steps=0 seed=0")[..], [Err(e)] if e.message.contains("0x2"))
        );
        // A screen and an image frame in one stream are both found.
        let both = format!("{good}@GDF1 begin c=1 h=1 w=1 sampler=exact steps=0 seed=0\n@GDF1 p 0 0 00\n@GDF1 end pixels=d202ef8d sample=00000000\n");
        let items = decode(&both);
        assert!(matches!(&items[..], [Ok(Item::Screen(_)), Ok(Item::Frame(_))]), "{items:?}");
    }
}
