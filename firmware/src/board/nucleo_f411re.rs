//! ST Nucleo-F411RE: the green user LED LD2 (PA5) toggles once per sampler step, frames go out as defmt
//! lines over RTT (`probe-rs run` prints them), the DWT cycle counter times each sample. The core runs on
//! the 16 MHz HSI (reset clock; no PLL set up, to keep the board layer minimal).

use defmt_rtt as _;
use panic_probe as _;
use stm32f4xx_hal::{pac, prelude::*};

use crate::app::{self, Counter};
use crate::defmt_sink::DefmtLines;
use crate::delay::SpinDelay;
use crate::stack;

/// `ORIGIN(RAM)` in memory/nucleo-f411re.x: the bottom of the stack under flip-link.
const RAM_ORIGIN: usize = 0x2000_0000;
/// HSI, the reset clock.
const CORE_HZ: u32 = 16_000_000;
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
    let mut rcc = dp.RCC.constrain();
    let gpioa = dp.GPIOA.split(&mut rcc);
    let mut led = gpioa.pa5.into_push_pull_output();
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
