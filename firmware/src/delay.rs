//! A busy-wait [`DelayNs`] for any core clock, so SysTick and DWT stay free for counting.

use embedded_hal::delay::DelayNs;

/// Busy-waits with `cortex_m::asm::delay` at a known core clock.
#[derive(Debug, Clone, Copy)]
pub struct SpinDelay {
    /// Core clock in Hz.
    pub hz: u32,
}

impl DelayNs for SpinDelay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = (u64::from(ns) * u64::from(self.hz)).div_ceil(1_000_000_000);
        cortex_m::asm::delay(u32::try_from(cycles).unwrap_or(u32::MAX));
    }
}
