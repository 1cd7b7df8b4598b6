//! gaussdiff firmware: samples images from the embedded blob and streams them as text frames
//! (`docs/frame-protocol.md`). The application ([`app`]) is generic over embedded-hal 1.0 and
//! embedded-io; each board module is a thin layer that supplies a pin, a delay, a byte sink and a counter.
#![no_std]
#![no_main]

#[cfg(any(
    not(any(feature = "qemu", feature = "nucleo-f411re", feature = "nrf52840-dk")),
    all(feature = "qemu", feature = "nucleo-f411re"),
    all(feature = "qemu", feature = "nrf52840-dk"),
    all(feature = "nucleo-f411re", feature = "nrf52840-dk"),
))]
compile_error!("select exactly one board feature: qemu, nucleo-f411re or nrf52840-dk");

#[cfg(all(any(feature = "test-hardfault", feature = "test-panic"), not(feature = "qemu")))]
compile_error!("the test-hardfault and test-panic features are for the qemu board only");

mod app;
mod config;
mod delay;
mod kernels;
mod stack;

#[cfg(feature = "qemu")]
#[path = "board/qemu.rs"]
mod board;

#[cfg(feature = "nucleo-f411re")]
#[path = "board/nucleo_f411re.rs"]
mod board;

#[cfg(feature = "nrf52840-dk")]
#[path = "board/nrf52840_dk.rs"]
mod board;

#[cfg(not(feature = "qemu"))]
mod defmt_sink;

#[cortex_m_rt::entry]
fn main() -> ! {
    board::main()
}
