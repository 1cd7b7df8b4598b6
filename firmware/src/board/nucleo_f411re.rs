//! ST Nucleo-F411RE: the green user LED LD2 (PA5) toggles once per sampler step; the rest is the probe
//! boards' entry ([`super::run_on_probe`]: defmt over RTT, DWT cycles). The core runs at its maximum,
//! 100 MHz, from the 16 MHz HSI through the PLL, with 3 flash wait states, prefetch and the ART caches
//! ([`clock_100mhz`]; with the panel, stm32f4xx-hal's `freeze` sets the same clock tree and hands the SPI
//! driver its `Clocks`).
//!
//! Feature `display-st7789`: a 240 x 240 ST7789 panel on SPI1 at 50 MHz (APB2 100 MHz / 2, the F411's
//! fastest SPI clock), through mipidsi: SCK PB3 (Arduino D3), MOSI PA7 (D11), CS PB6 (D10), DC PA9 (D8),
//! RST PC7 (D9); backlight to 3V3. PA5 (D13, SPI1's usual SCK) stays the LED.

#[cfg(feature = "display-st7789")]
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
    #[cfg(feature = "display-st7789")]
    let mut rcc = dp.RCC.freeze(Config::hsi().sysclk(CORE_HZ.Hz()));
    #[cfg(not(feature = "display-st7789"))]
    let mut rcc = {
        clock_100mhz(&dp.RCC, &dp.FLASH, &dp.PWR);
        dp.RCC.constrain()
    };
    let core_hz = CORE_HZ;
    let gpioa = dp.GPIOA.split(&mut rcc);
    let led = gpioa.pa5.into_push_pull_output();

    #[cfg(not(feature = "display-st7789"))]
    let screen = crate::screen::NoScreen;
    #[cfg(feature = "display-st7789")]
    let mut buffer = [0u8; 512];
    #[cfg(feature = "display-st7789")]
    let screen = {
        use embedded_hal::spi::MODE_3;
        use embedded_hal_bus::spi::ExclusiveDevice;
        use mipidsi::interface::SpiInterface;
        use mipidsi::options::ColorInversion;
        use stm32f4xx_hal::spi::SpiExt as _;

        let (gpiob, gpioc) = (dp.GPIOB.split(&mut rcc), dp.GPIOC.split(&mut rcc));
        let spi =
            dp.SPI1.spi((Some(gpiob.pb3.into_input()), pac::SPI1::NoMiso, Some(gpioa.pa7)), MODE_3, 50.MHz(), &mut rcc);
        let mut delay = crate::delay::SpinDelay { hz: core_hz };
        // The chip select is a push-pull output: setting it cannot fail (Infallible).
        let Ok(device) = ExclusiveDevice::new(spi, gpiob.pb6.into_push_pull_output(), delay);
        let interface = SpiInterface::new(device, gpioa.pa9.into_push_pull_output(), &mut buffer);
        let display = mipidsi::Builder::new(mipidsi::models::ST7789, interface)
            .display_size(gaussdiff_screen::WIDTH, gaussdiff_screen::HEIGHT)
            .invert_colors(ColorInversion::Inverted)
            .reset_pin(gpioc.pc7.into_push_pull_output())
            .init(&mut delay);
        let Ok(display) = display else { defmt::panic!("display: ST7789 initialisation failed") };
        crate::screen::Panel { display, core_hz }
    };
    super::run_on_probe(&mut cp.SCB, core_hz, led, counter, screen)
}

/// Sets the core clock to 100 MHz from the 16 MHz HSI, register by register (RM0383 §3.4, §5.4, §6.3):
/// voltage scale 1, 3 flash wait states with prefetch and the instruction and data caches, AHB / 1,
/// APB1 / 2 (50 MHz, its maximum), APB2 / 1, PLL `M = 8` (2 MHz VCO input), `N = 100` (200 MHz VCO),
/// `P = 2` (100 MHz), `Q = 4`; then switches the system clock to the PLL. The HAL's `freeze` computes any
/// clock tree at run time (2.6 KB of code the lean build does not need for this one).
#[cfg(not(feature = "display-st7789"))]
fn clock_100mhz(rcc: &pac::RCC, flash: &pac::FLASH, pwr: &pac::PWR) {
    rcc.apb1enr().modify(|_, w| w.pwren().set_bit());
    pwr.cr().modify(|_, w| w.vos().scale1());
    flash.acr().modify(|_, w| w.latency().ws3().prften().set_bit().icen().set_bit().dcen().set_bit());
    rcc.cfgr().modify(|_, w| w.hpre().div1().ppre1().div2().ppre2().div1());
    // SAFETY: M = 8, N = 100 and Q = 4 are inside the ranges RM0383 §6.3.2 allows (2..=63, 50..=432, 2..=15).
    rcc.pllcfgr().write(|w| unsafe { w.pllsrc().hsi().pllm().bits(8).plln().bits(100).pllp().div2().pllq().bits(4) });
    rcc.cr().modify(|_, w| w.pllon().set_bit());
    while rcc.cr().read().pllrdy().bit_is_clear() {}
    rcc.cfgr().modify(|_, w| w.sw().pll());
    while !rcc.cfgr().read().sws().is_pll() {}
}
