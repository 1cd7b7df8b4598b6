//! The boards. Each board module sets up its hardware (an output pin, a delay, a byte sink and a
//! [`Counter`]) and hands them to [`run`], the one entry shared by all boards; the two boards on a debug
//! probe share the rest of their entry too (`run_on_probe`: defmt over RTT, the DWT cycle counter of
//! `dwt.rs`).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;

use crate::app::{self, Counter};
use crate::screen::Screen;
use crate::stack;

#[cfg(feature = "qemu")]
mod qemu;
#[cfg(feature = "qemu")]
pub use qemu::main;

#[cfg(feature = "nucleo-f411re")]
mod nucleo_f411re;
#[cfg(feature = "nucleo-f411re")]
pub use nucleo_f411re::main;

#[cfg(feature = "nrf52840-dk")]
mod nrf52840_dk;
#[cfg(feature = "nrf52840-dk")]
pub use nrf52840_dk::main;

#[cfg(not(feature = "qemu"))]
mod dwt;
// The probe boards' defmt transport (RTT) and panic handler (prints the panic over defmt).
#[cfg(not(feature = "qemu"))]
use {defmt_rtt as _, panic_probe as _};

/// Runs the kernel benchmark (feature `bench`), the application with a pause of `frame_gap_ms` between
/// frames and reports the stack peak since reset (the stack is painted before `main`, `stack.rs`) and the
/// `done` line, or the error. Returns whether all of it succeeded; the board then signals the result (exit
/// code) or waits.
pub fn run<P: OutputPin, D: DelayNs, W: embedded_io::Write, C: Counter, S: Screen>(
    frame_gap_ms: u32,
    pin: &mut P,
    delay: &mut D,
    out: &mut W,
    counter: &mut C,
    screen: &mut S,
) -> bool {
    #[cfg(feature = "bench")]
    if crate::bench::bench(out, counter).is_err() {
        return false;
    }
    let result = app::run(pin, delay, out, counter, screen, frame_gap_ms);
    test_fault();
    match result {
        Ok(frames) => app::finish(out, frames, stack::peak()).is_ok(),
        Err(e) => {
            app::report_error(out, &e);
            #[cfg(not(feature = "qemu"))]
            defmt::error!("the run stopped with an error (see the @GDF1 error line)");
            false
        }
    }
}

/// The QEMU tests' hooks (features `test-panic`, `test-hardfault`): fault on purpose after the runs, to
/// check that a panic or a HardFault becomes a readable `@GDF1 error` line and a non-zero exit code. A
/// function of its own, so that the code after its call does not read as unreachable.
#[inline(always)]
fn test_fault() {
    #[cfg(feature = "test-panic")]
    panic!("test-panic feature: deliberate panic after the runs");
    #[cfg(feature = "test-hardfault")]
    cortex_m::asm::udf();
    #[cfg(feature = "test-stack-overflow")]
    overflow(0);
}

/// Recurses with 1 KiB frames until the stack runs into the bottom of RAM (feature `test-stack-overflow`).
#[cfg(feature = "test-stack-overflow")]
#[inline(never)]
fn overflow(depth: u32) -> u32 {
    if depth == u32::MAX {
        return 0;
    }
    let mut frame = [depth; 256];
    core::hint::black_box(&mut frame);
    overflow(depth + 1).wrapping_add(frame[(depth % 256) as usize])
}

/// The entry of the boards on a debug probe, after their own set-up: frames go out as defmt lines over
/// RTT (`probe-rs run` prints them), `led` toggles once per sampler step, the DWT cycle counter times each
/// sample, a spin delay at `core_hz` paces the frames, `screen` shows each sample; then the core sleeps.
#[cfg(not(feature = "qemu"))]
fn run_on_probe<P: OutputPin, S: Screen>(
    scb: &mut cortex_m::peripheral::SCB,
    core_hz: u32,
    mut led: P,
    mut counter: dwt::Cycles,
    mut screen: S,
) -> ! {
    /// Pause between frames so the LED pattern is visible.
    const FRAME_GAP_MS: u32 = 500;
    stack::Fault::enable_handlers(scb);
    let mut out = crate::defmt_sink::DefmtLines::new();
    let mut delay = crate::delay::SpinDelay { hz: core_hz };
    // The outcome is already reported on the output; there is nobody else to tell.
    let _ = run(FRAME_GAP_MS, &mut led, &mut delay, &mut out, &mut counter, &mut screen);
    loop {
        cortex_m::asm::wfi();
    }
}

/// The probe boards' end of a fault: the `@GDF1 error` line goes out over defmt, then the core waits.
#[cfg(not(feature = "qemu"))]
fn end_fault(fault: stack::Fault) -> ! {
    app::report_error(&mut crate::defmt_sink::DefmtLines::new(), &fault);
    loop {
        cortex_m::asm::wfi();
    }
}
#[cfg(feature = "qemu")]
use qemu::end_fault;

/// Every board's fault handlers: the fault is classified (`stack::Fault`: a stack overflow, or the stacked
/// registers) and handed to the board's `end_fault` (QEMU: report on stdout and exit with a failure code;
/// probe boards: report over defmt and wait).
mod faults {
    use cortex_m_rt::exception;

    fn report() -> ! {
        // SAFETY: called from the fault handlers below only, after `stack::use_process_stack`.
        super::end_fault(unsafe { crate::stack::Fault::classify() })
    }

    // No trampoline: the stacked frame may lie below RAM (a stack overflow); `Fault::classify` checks first.
    #[exception(trampoline = false)]
    unsafe fn HardFault() -> ! {
        report()
    }
    #[exception]
    unsafe fn BusFault() {
        report()
    }
    #[exception]
    unsafe fn MemoryManagement() {
        report()
    }
    #[exception]
    unsafe fn UsageFault() {
        report()
    }
}
