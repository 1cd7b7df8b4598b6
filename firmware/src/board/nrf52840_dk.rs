//! Nordic nRF52840-DK: LED1 (P0.13, active low) toggles once per sampler step, frames go out as defmt
//! lines over RTT (`probe-rs run` prints them), the DWT cycle counter times each sample at 64 MHz.

use defmt_rtt as _;
use nrf52840_hal::gpio::{p0, Level};
use nrf52840_hal::pac;
use panic_probe as _;

use crate::app::{self, Counter};
use crate::defmt_sink::DefmtLines;
use crate::delay::SpinDelay;
use crate::stack;

/// `ORIGIN(RAM)` in memory/nrf52840-dk.x: the bottom of the stack under flip-link.
const RAM_ORIGIN: usize = 0x2000_0000;
/// The nRF52840 core always runs at 64 MHz.
const CORE_HZ: u32 = 64_000_000;
/// Pause between frames so the LED pattern is visible.
const FRAME_GAP_MS: u32 = 500;

/// DWT cycle counter, widened to 64 bits (samples take far less than one 2^32-cycle wrap).
pub struct Cycles {
    last: u32,
    total: u64,
}

impl Counter for Cycles {
    const KEY: &'static str = "cycles";
    fn now(&mut self) -> u64 {
        let c = cortex_m::peripheral::DWT::cycle_count();
        self.total += u64::from(c.wrapping_sub(self.last));
        self.last = c;
        self.total
    }
}

pub fn main() -> ! {
    let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take()) else {
        defmt::panic!("peripherals taken twice");
    };
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();
    let port0 = p0::Parts::new(dp.P0);
    let mut led = port0.p0_13.into_push_pull_output(Level::High);
    let mut out = DefmtLines::new();
    let mut counter = Cycles { last: cortex_m::peripheral::DWT::cycle_count(), total: 0 };
    let mut delay = SpinDelay { hz: CORE_HZ };

    let _ = app::bench(&mut out, &mut counter);
    stack::paint(RAM_ORIGIN);
    match app::run(&mut led, &mut delay, &mut out, &mut counter, FRAME_GAP_MS) {
        Ok(frames) => {
            let _ = app::finish(&mut out, frames, stack::peak(RAM_ORIGIN));
        }
        Err(e) => app::report_error(&mut out, &e),
    }
    loop {
        cortex_m::asm::wfi();
    }
}
