//! The DWT cycle counter of the boards on a debug probe, as the application's [`Counter`].

use cortex_m::peripheral::{DCB, DWT};

use crate::app::Counter;

/// DWT cycle counter, widened to 64 bits (samples take far less than one 2^32-cycle wrap).
pub struct Cycles {
    last: u32,
    total: u64,
}

impl Cycles {
    /// Enables tracing and the cycle counter, and starts counting from zero.
    pub fn start(dcb: &mut DCB, dwt: &mut DWT) -> Self {
        dcb.enable_trace();
        dwt.enable_cycle_counter();
        Self { last: DWT::cycle_count(), total: 0 }
    }
}

impl Counter for Cycles {
    const KEY: &'static str = "cycles";
    fn now(&mut self) -> u64 {
        let c = DWT::cycle_count();
        self.total += u64::from(c.wrapping_sub(self.last));
        self.last = c;
        self.total
    }
}
