//! QEMU `-machine mps2-an386` (Cortex-M4F): output and exit code through semihosting, the FPGA I/O LED
//! register as the step pin, and SysTick for counting. Under `-icount shift=0` QEMU advances virtual time
//! by exactly 1 ns per instruction, so SysTick counts are exactly repeatable; a calibration loop of known
//! length converts ticks to instructions.

use core::convert::Infallible;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use cortex_m_semihosting::{debug, hio};
use embedded_hal::digital::{ErrorType, OutputPin};
use gaussdiff_core::frame::LINE_CAPACITY;

use crate::app::{self, Counter};
use crate::delay::SpinDelay;

/// MPS2 FPGA I/O block: LED register (bit 0 = LED0).
const FPGAIO_LED: usize = 0x4002_8000;
/// SysTick counts the 25 MHz MPS2 system clock.
const SYSCLK_HZ: u32 = 25_000_000;
const RELOAD: u32 = 0x00FF_FFFF;
/// Iterations of the two-instruction calibration loop.
const CALIBRATION_LOOPS: u32 = 1_000_000;

/// LED0 of the MPS2 FPGA I/O block as an [`OutputPin`].
struct FpgaLed;

impl ErrorType for FpgaLed {
    type Error = Infallible;
}

impl OutputPin for FpgaLed {
    fn set_low(&mut self) -> Result<(), Infallible> {
        // SAFETY: FPGAIO_LED is the memory-mapped MPS2 LED register; a 32-bit write has no other effect.
        unsafe { core::ptr::write_volatile(FPGAIO_LED as *mut u32, 0) };
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(FPGAIO_LED as *mut u32, 1) };
        Ok(())
    }
}

/// Semihosting stdout as an [`embedded_io::Write`], one host call per line.
struct Semihosting {
    out: hio::HostStream,
    buf: heapless::Vec<u8, { LINE_CAPACITY + 1 }>,
}

#[derive(Debug)]
struct HostError;

impl embedded_io::Error for HostError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl embedded_io::ErrorType for Semihosting {
    type Error = HostError;
}

impl embedded_io::Write for Semihosting {
    fn write(&mut self, buf: &[u8]) -> Result<usize, HostError> {
        for &b in buf {
            if self.buf.push(b).is_err() {
                // Full: send what there is, then start the next chunk with this byte.
                self.flush()?;
                let _ = self.buf.push(b);
            }
            if b == b'\n' {
                self.flush()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), HostError> {
        let r = self.out.write_all(&self.buf).map_err(|()| HostError);
        self.buf.clear();
        r
    }
}

/// The mps2-an386's external interrupt vectors (its 32 interrupt lines, none enabled): with cortex-m-rt's
/// `device` feature the application supplies them, so the vector table is not cortex-m-rt's generic one of 240
/// (0.8 KB less flash). Every entry is cortex-m-rt's `DefaultHandler`.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];

extern "C" {
    /// cortex-m-rt's default exception and interrupt handler (`link.x`).
    fn DefaultHandler();
}

static OVERFLOWS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    OVERFLOWS.fetch_add(1, Ordering::Relaxed);
}

/// SysTick ticks since start, converted to instructions with the calibration.
struct Icount {
    /// Instructions per `2^16` ticks.
    instr_per_tick_q16: u64,
}

fn ticks() -> u64 {
    loop {
        let hi = OVERFLOWS.load(Ordering::Relaxed);
        let cur = SYST::get_current();
        if OVERFLOWS.load(Ordering::Relaxed) == hi {
            return (u64::from(hi) << 24) + u64::from(RELOAD - cur);
        }
    }
}

impl Counter for Icount {
    const KEY: &'static str = "instr";
    fn now(&mut self) -> u64 {
        (ticks() * self.instr_per_tick_q16 + (1 << 15)) >> 16
    }
}

/// Exactly `2 n` instructions (`subs` + `bne` per iteration).
#[inline(never)]
fn two_instruction_loop(n: u32) {
    // SAFETY: a register-only countdown loop; touches no memory and no stack.
    unsafe {
        core::arch::asm!("1:", "subs {0}, {0}, #1", "bne 1b", inout(reg) n => _, options(nomem, nostack));
    }
}

/// `(a << 16) / b` rounded down (`b > 0`), by binary long division: shifts and subtractions only, so the
/// firmware links no 64-bit division routine (compiler-builtins' `u64_div_rem`, 0.9 KB) for this one use.
fn q16_ratio(a: u32, b: u64) -> u64 {
    let n = u64::from(a) << 16;
    let (mut q, mut r) = (0u64, 0u64);
    for i in (0..48).rev() {
        r = (r << 1) | ((n >> i) & 1);
        if r >= b {
            r -= b;
            q |= 1 << i;
        }
    }
    q
}

fn exit(ok: bool) -> ! {
    debug::exit(if ok { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    // Only reached when not running under a semihosting debugger.
    loop {
        cortex_m::asm::bkpt();
    }
}

fn stdout() -> Semihosting {
    match hio::hstdout() {
        Ok(out) => Semihosting { out, buf: heapless::Vec::new() },
        // No host: nothing can be reported.
        Err(()) => exit(false),
    }
}

pub fn main() -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else { exit(false) };
    crate::stack::Fault::enable_handlers(&mut cp.SCB);
    let mut syst = cp.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    // The cleared counter reads 0 until its first tick reloads it from RELOAD; `ticks` would take that 0 for
    // a full period (the calibration once came out negative when the code up to its first read got shorter).
    while SYST::get_current() == 0 {}

    let mut out = stdout();
    // Calibrate: a loop of exactly 2 * CALIBRATION_LOOPS instructions (plus the two reads).
    let t0 = ticks();
    two_instruction_loop(CALIBRATION_LOOPS);
    let cal_ticks = (ticks() - t0).max(1);
    let mut counter = Icount { instr_per_tick_q16: q16_ratio(2 * CALIBRATION_LOOPS, cal_ticks) };
    let mut delay = SpinDelay { hz: SYSCLK_HZ };
    let mut pin = FpgaLed;

    let calibration = [("calib_instr", 2 * u64::from(CALIBRATION_LOOPS)), ("calib_ticks", cal_ticks)];
    if app::stat(&mut out, &calibration).is_err() {
        exit(false);
    }
    // Feature `screen-frame`: the screen in a framebuffer on the stack (115,200 bytes; QEMU's 4 MiB map).
    #[cfg(feature = "screen-frame")]
    let mut raw = [0u16; gaussdiff_screen::PIXELS];
    #[cfg(feature = "screen-frame")]
    let mut screen = crate::screen::FrameScreen { raw: &mut raw };
    #[cfg(not(feature = "screen-frame"))]
    let mut screen = crate::screen::NoScreen;
    exit(super::run(0, &mut pin, &mut delay, &mut out, &mut counter, &mut screen))
}

/// Reports a fault (from the fault handlers of `board/mod.rs`) and exits with a failure code.
pub(super) fn end_fault(fault: crate::stack::Fault) -> ! {
    app::report_error(&mut stdout(), &fault);
    exit(false)
}

/// A panic's report: `panic at <file>:<line>`, with the `messages` feature `: <message>` too.
struct Panic<'a>(&'a core::panic::PanicInfo<'a>);

impl app::Report for Panic<'_> {
    fn report(&self, line: &mut gaussdiff_core::frame::LineBuf) {
        let _ = line.push_str("panic");
        if let Some(at) = self.0.location() {
            let _ = line.push_str(" at ");
            let _ = line.push_str(at.file());
            let _ = line.push_str(":");
            let _ = line.push_u64(at.line().into());
        }
        // Only with the messages: reading the message would keep core::fmt's integer formatting linked
        // (the panics of slice indexing format their indices).
        #[cfg(feature = "messages")]
        app::push_detail(line, self.0.message());
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    let mut out = stdout();
    app::report_error(&mut out, &Panic(info));
    exit(false)
}
