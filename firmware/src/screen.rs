//! Where the application shows each sample besides its frame: nowhere ([`NoScreen`], the default), a
//! framebuffer sent as a screen frame (QEMU, feature `screen-frame`) or an ST7789 panel (Nucleo-F411RE,
//! feature `display-st7789`). The drawing is `gaussdiff_screen::draw`, the same code the host renders with.

use gaussdiff_core::pixel::ImageShape;
use gaussdiff_core::sampler::SampleSpec;

use embedded_io::Write;

use crate::app::Counter;

/// One sample as the screen shows it.
// The build without a screen ([`NoScreen`]) reads none of it.
#[cfg_attr(not(any(feature = "screen-frame", feature = "display-st7789")), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    /// The image shape.
    pub shape: ImageShape,
    /// 8-bit pixels in CHW order (the blob's pixel mapping of the sample).
    pub pixels: &'a [u8],
    /// The run that made it.
    pub spec: SampleSpec,
    /// What the sampling took, in the counter's unit (`Counter::KEY`).
    pub count: u64,
}

/// A screen for the application's samples.
pub trait Screen {
    /// Shows `shown`; `out` is the protocol's byte sink, `counter` times the drawing.
    ///
    /// # Errors
    /// An error of the byte sink (a panel's own errors are logged, not fatal).
    fn show<W: Write, C: Counter>(&mut self, out: &mut W, counter: &mut C, shown: &Shown<'_>) -> Result<(), W::Error>;
}

/// No screen: the build without a display.
#[cfg(not(any(feature = "screen-frame", feature = "display-st7789")))]
#[derive(Debug)]
pub struct NoScreen;

#[cfg(not(any(feature = "screen-frame", feature = "display-st7789")))]
impl Screen for NoScreen {
    fn show<W: Write, C: Counter>(&mut self, _: &mut W, _: &mut C, _: &Shown<'_>) -> Result<(), W::Error> {
        Ok(())
    }
}

/// QEMU (feature `screen-frame`): the screen drawn into a framebuffer and sent as a screen frame
/// (`docs/frame-protocol.md`) with the caption's time (`instr=`) and the drawing's own instructions
/// (`draw_instr=`, from the counter around `gaussdiff_screen::draw`).
#[cfg(feature = "screen-frame")]
pub struct FrameScreen<'a> {
    /// The framebuffer's raw RGB565 values.
    pub raw: &'a mut [u16; gaussdiff_screen::PIXELS],
}

#[cfg(feature = "screen-frame")]
impl Screen for FrameScreen<'_> {
    fn show<W: Write, C: Counter>(&mut self, out: &mut W, counter: &mut C, shown: &Shown<'_>) -> Result<(), W::Error> {
        use gaussdiff_core::frame::ScreenFrame;
        use gaussdiff_screen::{Caption, Elapsed, Framebuffer};

        let caption = Caption { spec: shown.spec, elapsed: Elapsed::Instructions(shown.count) };
        let t0 = counter.now();
        let mut fb = Framebuffer::new(self.raw);
        // The framebuffer's error type is Infallible.
        let _ = gaussdiff_screen::draw(&mut fb, shown.shape, shown.pixels, &caption);
        let draw = counter.now() - t0;
        let screen = ScreenFrame {
            width: gaussdiff_screen::WIDTH,
            height: gaussdiff_screen::HEIGHT,
            spec: shown.spec,
            rgb565: fb.raw(),
            extras: &[(C::KEY, shown.count), ("draw_instr", draw)],
        };
        screen.encode(&mut |l| crate::app::write_line(out, l))?;
        out.flush()
    }
}

/// A panel through `embedded-graphics` (feature `display-st7789`: the ST7789 via mipidsi), drawn directly;
/// the caption's time is the cycle count over the core clock. The drawing's cycles (SPI transfer
/// included) go to the defmt log.
#[cfg(feature = "display-st7789")]
pub struct Panel<D> {
    /// The display.
    pub display: D,
    /// Core clock in Hz (cycles to microseconds).
    pub core_hz: u32,
}

#[cfg(feature = "display-st7789")]
impl<D: gaussdiff_screen::DrawTarget<Color = gaussdiff_screen::Rgb565>> Screen for Panel<D> {
    fn show<W: Write, C: Counter>(&mut self, _: &mut W, counter: &mut C, shown: &Shown<'_>) -> Result<(), W::Error> {
        use gaussdiff_screen::{Caption, Elapsed};

        let us = shown.count * 1_000_000 / u64::from(self.core_hz.max(1));
        let caption = Caption { spec: shown.spec, elapsed: Elapsed::Micros(us) };
        let t0 = counter.now();
        match gaussdiff_screen::draw(&mut self.display, shown.shape, shown.pixels, &caption) {
            Ok(()) => defmt::info!("screen: {=u64} {=str}", counter.now() - t0, C::KEY),
            Err(_) => defmt::warn!("screen: the panel failed; the run goes on"),
        }
        Ok(())
    }
}
