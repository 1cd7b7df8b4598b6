//! gaussdiff firmware: samples images from the embedded blob and streams them as text frames
//! (`docs/frame-protocol.md`). The application ([`app`]) is generic over embedded-hal 1.0 and
//! embedded-io; each board module is a thin layer that supplies a pin, a delay, a byte sink and a counter
//! to the one entry shared by the boards ([`board::run`]). With the `bench` feature (a separate build, off by
//! default) the kernel benchmark and self-checks (`bench.rs`) run before the application.
#![no_std]
#![no_main]

#[cfg(any(
    not(any(feature = "qemu", feature = "nucleo-f411re", feature = "nrf52840-dk")),
    all(feature = "qemu", feature = "nucleo-f411re"),
    all(feature = "qemu", feature = "nrf52840-dk"),
    all(feature = "nucleo-f411re", feature = "nrf52840-dk"),
))]
compile_error!("select exactly one board feature: qemu, nucleo-f411re or nrf52840-dk");

#[cfg(all(
    any(feature = "test-hardfault", feature = "test-panic", feature = "test-stack-overflow"),
    not(feature = "qemu")
))]
compile_error!("the test-hardfault, test-panic and test-stack-overflow features are for the qemu board only");

#[cfg(all(feature = "screen-frame", not(feature = "qemu")))]
compile_error!("the screen-frame feature is for the qemu board (a panel board uses display-st7789)");

mod app;
#[cfg(feature = "bench")]
mod bench;
mod board;
mod config;
#[cfg(not(feature = "qemu"))]
mod defmt_sink;
mod delay;
mod kernels;
mod screen;
mod stack;

#[cortex_m_rt::entry]
fn main() -> ! {
    // The stack was painted by cortex-m-rt (`paint-stack`) before `main`; from here on the application runs
    // on the process stack, so an overflow is reported (`stack.rs`).
    stack::guard();
    stack::use_process_stack();
    board::main()
}
