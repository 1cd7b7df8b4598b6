//! Peak stack use by painting: fill the unused stack with a pattern, run, then find the lowest word that
//! changed. flip-link places the stack at the bottom of RAM, from `ORIGIN(RAM)` up to `_stack_start`.

const PAINT: u32 = 0xC0FF_EE55;
/// Bytes below the current stack pointer left alone while painting (the painter's own frame).
const MARGIN: usize = 256;

extern "C" {
    static _stack_start: u32;
}

/// Top of the stack (the initial stack pointer).
fn top() -> usize {
    // Only the address of the linker symbol is taken; it is never read.
    core::ptr::addr_of!(_stack_start) as usize
}

/// Paints the free stack `[bottom, sp - MARGIN)`. Call with interrupts that could use the stack masked or
/// not yet enabled.
#[inline(never)]
pub fn paint(bottom: usize) {
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = bottom;
    while p + 4 <= sp.saturating_sub(MARGIN) {
        // SAFETY: [bottom, sp - MARGIN) is stack memory below the live frames (flip-link layout), word
        // aligned (bottom is ORIGIN(RAM)), and nothing else uses it while we paint.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Peak stack bytes used since [`paint`], and the stack size.
#[inline(never)]
pub fn peak(bottom: usize) -> (usize, usize) {
    let top = top();
    let mut p = bottom;
    // SAFETY: reads of word-aligned stack memory inside [bottom, top).
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    (top - p, top - bottom)
}
