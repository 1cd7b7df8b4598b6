//! The stack: painted before anything runs, measured after, and an overflow reported instead of a lockup.
//!
//! * **Painting.** cortex-m-rt's `paint-stack` feature fills `[_stack_end, _stack_start)` with
//!   [`cortex_m_rt::STACK_PAINT_VALUE`] in the reset handler, before `.data`/`.bss` are set up and before
//!   `main`; [`peak`] finds the lowest word that changed, so every build (with or without the `bench`
//!   feature) reports the true peak of everything it ran. flip-link puts the stack at the bottom of RAM:
//!   `_stack_end = ORIGIN(RAM)`, `_stack_start` just below `.data`.
//! * **Overflow.** The lowest [`GUARD_BYTES`] of the stack are an MPU region without access ([`guard`]):
//!   the stack runs into it before it leaves RAM (QEMU's MPS2 ignores writes below `ORIGIN(RAM)`, and on
//!   the boards that address range is system memory), and the access faults (MemManage). The application
//!   runs on the process stack (PSP, [`use_process_stack`]); exception handlers run on a small main stack
//!   of their own ([`HANDLER_STACK`], in `.bss`). The exception entry cannot push its frame into the guard
//!   either (a stacking error, escalated to HardFault), but the handler runs on the main stack, so it can
//!   still report ([`Fault::classify`]) instead of the core locking up.

use cortex_m_rt::STACK_PAINT_VALUE;

extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

/// Bytes at the bottom of the stack that the MPU guards (a power of two, at least 32; `ORIGIN(RAM)` is
/// aligned to it).
pub const GUARD_BYTES: usize = 1024;

/// Bytes of the exception handlers' own stack (the fault reports format one protocol line).
const HANDLER_STACK_BYTES: usize = 4096;

/// The main stack (MSP) of the exception handlers after [`use_process_stack`].
struct HandlerStack(core::cell::UnsafeCell<[u64; HANDLER_STACK_BYTES / 8]>);
// SAFETY: only the hardware uses this memory, as the MSP stack; no Rust reference to it is ever formed.
unsafe impl Sync for HandlerStack {}
static HANDLER_STACK: HandlerStack = HandlerStack(core::cell::UnsafeCell::new([0; HANDLER_STACK_BYTES / 8]));

/// Top of the application stack (the initial stack pointer).
fn top() -> usize {
    // Only the address of the linker symbol is taken; it is never read.
    core::ptr::addr_of!(_stack_start) as usize
}

/// Bottom of the application stack: `ORIGIN(RAM)` under flip-link.
pub fn bottom() -> usize {
    // As above.
    core::ptr::addr_of!(_stack_end) as usize
}

/// Moves thread mode onto the process stack (PSP = the current stack pointer, so nothing moves) and gives
/// the exception handlers [`HANDLER_STACK`] as their main stack. Call first thing in `main`.
#[inline(always)]
pub fn use_process_stack() {
    let handler_top = HANDLER_STACK.0.get() as usize + HANDLER_STACK_BYTES;
    // SAFETY: PSP takes the current MSP value and CONTROL.SPSEL switches thread mode to it, so `sp` keeps
    // its value across the switch; the MSP then points at the top of a static buffer that nothing else
    // uses (8-byte aligned: an array of u64). No exception can be active yet (interrupts are not enabled).
    unsafe {
        core::arch::asm!(
            "mrs {t}, msp",
            "msr psp, {t}",
            "mrs {t}, control",
            "orr {t}, {t}, #2",
            "msr control, {t}",
            "isb",
            "msr msp, {h}",
            t = out(reg) _,
            h = in(reg) handler_top,
            options(nostack),
        );
    }
}

/// MPU registers (ARMv7-M PMSAv7): control, region number, region base address, region attribute and size.
const MPU_CTRL: usize = 0xE000_ED94;
const MPU_RNR: usize = 0xE000_ED98;
const MPU_RBAR: usize = 0xE000_ED9C;
const MPU_RASR: usize = 0xE000_EDA0;

/// Makes `[bottom, bottom + GUARD_BYTES)` an MPU region with no access (region 0, execute-never) and
/// enables the MPU with the default memory map for everything else (PRIVDEFENA). Call before
/// [`use_process_stack`], with nothing on the stack down there yet.
#[inline(always)]
pub fn guard() {
    const { assert!(GUARD_BYTES.is_power_of_two() && GUARD_BYTES >= 32) };
    let size_field = (GUARD_BYTES.trailing_zeros() - 1) << 1;
    let rasr = (1 << 28) | size_field | 1; // XN, AP = 000 (no access), SIZE, ENABLE
                                           // SAFETY: the architectural MPU registers of every ARMv7-M core with an MPU (Cortex-M4 on all our
                                           // machines); `bottom()` is ORIGIN(RAM), aligned to GUARD_BYTES, and the region covers stack memory
                                           // that nothing uses yet. Barriers make the new map effective before the next access.
    unsafe {
        core::ptr::write_volatile(MPU_CTRL as *mut u32, 0);
        core::ptr::write_volatile(MPU_RNR as *mut u32, 0);
        core::ptr::write_volatile(MPU_RBAR as *mut u32, bottom() as u32);
        core::ptr::write_volatile(MPU_RASR as *mut u32, rasr);
        core::ptr::write_volatile(MPU_CTRL as *mut u32, 0b101); // ENABLE | PRIVDEFENA
    }
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
}

/// Peak stack bytes used since reset (painted by cortex-m-rt), and the usable stack size (without the
/// guard).
#[inline(never)]
pub fn peak() -> (usize, usize) {
    let (bottom, top) = (bottom() + GUARD_BYTES, top());
    let mut p = bottom;
    // SAFETY: reads of word-aligned stack memory inside [bottom, top), above the guard (no access).
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == STACK_PAINT_VALUE {
        p += 4;
    }
    (top - p, top - bottom)
}

/// What a fault handler found.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// The application stack ran into the bottom of RAM: `sp` is the process stack pointer.
    StackOverflow { sp: u32 },
    /// Any other fault, with the stacked registers.
    Other { pc: u32, lr: u32, xpsr: u32 },
}

/// SCB Configurable Fault Status Register.
const CFSR: usize = 0xE000_ED28;
/// MMFSR.MSTKERR (bit 4) and BFSR.STKERR (bit 12): the exception entry could not push its frame.
const STACKING_ERRORS: u32 = (1 << 4) | (1 << 12);
/// Bytes of a basic exception frame (r0-r3, r12, lr, pc, xpsr).
const FRAME_BYTES: usize = 32;

impl Fault {
    /// Classifies the fault being handled from the process stack pointer and the fault status: a stack
    /// overflow when the stacking failed or the frame would not lie inside the application stack above
    /// the guard; else
    /// the stacked `pc`, `lr` and `xpsr` (read only when they lie inside RAM's stack).
    ///
    /// # Safety
    /// Call only from a fault handler, after [`use_process_stack`].
    pub unsafe fn classify() -> Self {
        let sp = cortex_m::register::psp::read();
        // SAFETY: CFSR is a read-only-on-read SCB register.
        let cfsr = unsafe { core::ptr::read_volatile(CFSR as *const u32) };
        let at = sp as usize;
        if cfsr & STACKING_ERRORS != 0 || at < bottom() + GUARD_BYTES || at + FRAME_BYTES > top() {
            return Self::StackOverflow { sp };
        }
        // SAFETY: [sp, sp + 32) lies inside the application stack (checked above): the exception frame.
        let word = |i: usize| unsafe { core::ptr::read_volatile((at + 4 * i) as *const u32) };
        Self::Other { pc: word(6), lr: word(5), xpsr: word(7) }
    }

    /// Enables the BusFault and MemManage handlers (SHCSR), so a bad access is taken at priority 0 and a
    /// stacking error during its entry escalates to HardFault, instead of locking up inside HardFault.
    pub fn enable_handlers(scb: &mut cortex_m::peripheral::SCB) {
        scb.enable(cortex_m::peripheral::scb::Exception::BusFault);
        scb.enable(cortex_m::peripheral::scb::Exception::MemoryManagement);
        scb.enable(cortex_m::peripheral::scb::Exception::UsageFault);
    }
}

impl crate::app::Report for Fault {
    /// `stack overflow sp=0x... bottom=0x...` or `hardfault pc=0x... lr=0x... xpsr=0x...` (no `core::fmt`).
    fn report(&self, line: &mut gaussdiff_core::frame::LineBuf) {
        let hex = |line: &mut gaussdiff_core::frame::LineBuf, text: &str, v: u32| {
            let _ = line.push_str(text);
            let _ = line.push_hex_u32(v);
        };
        match *self {
            Self::StackOverflow { sp } => {
                hex(line, "stack overflow sp=0x", sp);
                hex(line, " bottom=0x", bottom() as u32);
            }
            Self::Other { pc, lr, xpsr } => {
                hex(line, "hardfault pc=0x", pc);
                hex(line, " lr=0x", lr);
                hex(line, " xpsr=0x", xpsr);
            }
        }
    }
}
