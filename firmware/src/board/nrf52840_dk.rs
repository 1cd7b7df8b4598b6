//! Nordic nRF52840-DK: LED1 (P0.13, active low) toggles once per sampler step; the rest is the probe
//! boards' entry ([`super::run_on_probe`]: defmt over RTT, DWT cycles at 64 MHz).

use nrf52840_hal::gpio::{p0, Level};
use nrf52840_hal::pac;

use super::dwt::Cycles;

/// The nRF52840 core always runs at 64 MHz.
const CORE_HZ: u32 = 64_000_000;

pub fn main() -> ! {
    let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take()) else {
        defmt::panic!("peripherals taken twice");
    };
    let counter = Cycles::start(&mut cp.DCB, &mut cp.DWT);
    let port0 = p0::Parts::new(dp.P0);
    let led = port0.p0_13.into_push_pull_output(Level::High);
    super::run_on_probe(&mut cp.SCB, CORE_HZ, led, counter, crate::screen::NoScreen)
}
