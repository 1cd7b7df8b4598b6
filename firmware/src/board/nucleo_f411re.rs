//! ST Nucleo-F411RE: the green user LED LD2 (PA5) toggles once per sampler step; the rest is the probe
//! boards' entry ([`super::run_on_probe`]: defmt over RTT, DWT cycles). The core runs at its maximum,
//! 100 MHz, from the 16 MHz HSI through the PLL (stm32f4xx-hal sets 3 flash wait states, prefetch and the
//! ART caches).

use stm32f4xx_hal::rcc::Config;
use stm32f4xx_hal::{pac, prelude::*};

use super::dwt::Cycles;

/// The F411's maximum core clock.
const CORE_HZ: u32 = 100_000_000;

pub fn main() -> ! {
    let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take()) else {
        defmt::panic!("peripherals taken twice");
    };
    let counter = Cycles::start(&mut cp.DCB, &mut cp.DWT);
    let mut rcc = dp.RCC.freeze(Config::hsi().sysclk(CORE_HZ.Hz()));
    let gpioa = dp.GPIOA.split(&mut rcc);
    let led = gpioa.pa5.into_push_pull_output();
    super::run_on_probe(&mut cp.SCB, rcc.clocks.sysclk().raw(), led, counter)
}
