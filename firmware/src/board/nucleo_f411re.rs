//! ST Nucleo-F411RE: the green user LED LD2 (PA5) toggles once per sampler step; the rest is the probe
//! boards' entry ([`super::run_on_probe`]: defmt over RTT, DWT cycles). The core runs on the 16 MHz HSI
//! (reset clock; no PLL set up, to keep the board layer minimal).

use stm32f4xx_hal::{pac, prelude::*};

use super::dwt::Cycles;

/// HSI, the reset clock.
const CORE_HZ: u32 = 16_000_000;

pub fn main() -> ! {
    let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take()) else {
        defmt::panic!("peripherals taken twice");
    };
    let counter = Cycles::start(&mut cp.DCB, &mut cp.DWT);
    let mut rcc = dp.RCC.constrain();
    let gpioa = dp.GPIOA.split(&mut rcc);
    let led = gpioa.pa5.into_push_pull_output();
    super::run_on_probe(&mut cp.SCB, CORE_HZ, led, counter)
}
