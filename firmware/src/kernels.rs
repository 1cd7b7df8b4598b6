//! The matrix-vector block kernels ([`BlockKernels`]) in Cortex-M4F assembly.
//!
//! The arithmetic is exactly that of `gaussdiff_core::kernels::Portable` (the host's kernels), so samples stay
//! bit-identical to the host (`tests/tests/qemu_firmware.rs` compares them, and [`crate::app::bench`]
//! compares these kernels with the portable ones on every run). What assembly reaches and LLVM does not:
//!
//! * `vldmia`/`vstmia` load or store 4 to 16 consecutive `s` registers in one instruction (LLVM allocates
//!   the even `s` registers first and never gets the consecutive runs these need);
//! * `vmla.f32` is the M4F's *chained* multiply-accumulate (product rounded, then the sum: the same bits as
//!   Rust's `acc += a * b`; the fused one is `vfma`), which LLVM avoids for `target-cpu=cortex-m4`;
//! * `vcvtb`/`vcvtt.f32.f16` convert a binary16 exactly in one instruction (Rust 1.95 has no stable `f16`).
//!
//! Each kernel handles pairs of 4-element chunks (8 columns) per loop iteration and leaves an odd last chunk
//! to the portable kernel, continuing the same lane sums (or the same `y` chunk) in the same order. The
//! one-row axpys (`axpy_row_*`) serve the denoiser's passes over the mean.
//!
//! Register use: the caller-saved `s0..s15` and the callee-saved `s16..s31` are all declared clobbered, so
//! the compiler saves what it needs; FPSCR is left alone (round to nearest, no flush-to-zero, IEEE
//! half-precision: the reset values, which Rust code relies on too).

use core::arch::asm;

use gaussdiff_core::kernels::{BlockKernels, PORTABLE};

/// The Cortex-M4F block kernels.
#[derive(Debug)]
pub struct M4f;

/// The shared instance.
pub static M4F: M4f = M4f;

/// Splits chunk slices into the 8-column pairs the assembly loops take and the odd last chunk.
#[inline(always)]
fn pairs<T>(v: &[T]) -> (usize, &[T]) {
    let n = v.len() / 2;
    (n, &v[2 * n..])
}

impl BlockKernels for M4f {
    fn dot_rows4_f32(&self, x: &[[f32; 4]], w: [&[[f32; 4]]; 4], s: &mut [[f32; 4]; 4]) {
        assert!(w.iter().all(|r| r.len() == x.len()), "dot_rows4_f32: length mismatch");
        let (n, x_rest) = pairs(x);
        if n > 0 {
            // SAFETY: reads 8n f32 from x and from each row (all at least 8n long: asserted above), reads and
            // writes the 16 f32 of `s`; all pointers are 4-byte aligned (f32 slices). Registers are declared.
            unsafe {
                asm!(
                    "vldmia {s}, {{s16-s31}}",
                    "2:",
                    "vldmia {x}!, {{s0-s7}}",
                    "vldmia {w0}!, {{s8-s15}}",
                    "vmla.f32 s16, s0, s8",
                    "vmla.f32 s17, s1, s9",
                    "vmla.f32 s18, s2, s10",
                    "vmla.f32 s19, s3, s11",
                    "vmla.f32 s16, s4, s12",
                    "vmla.f32 s17, s5, s13",
                    "vmla.f32 s18, s6, s14",
                    "vmla.f32 s19, s7, s15",
                    "vldmia {w1}!, {{s8-s15}}",
                    "vmla.f32 s20, s0, s8",
                    "vmla.f32 s21, s1, s9",
                    "vmla.f32 s22, s2, s10",
                    "vmla.f32 s23, s3, s11",
                    "vmla.f32 s20, s4, s12",
                    "vmla.f32 s21, s5, s13",
                    "vmla.f32 s22, s6, s14",
                    "vmla.f32 s23, s7, s15",
                    "vldmia {w2}!, {{s8-s15}}",
                    "vmla.f32 s24, s0, s8",
                    "vmla.f32 s25, s1, s9",
                    "vmla.f32 s26, s2, s10",
                    "vmla.f32 s27, s3, s11",
                    "vmla.f32 s24, s4, s12",
                    "vmla.f32 s25, s5, s13",
                    "vmla.f32 s26, s6, s14",
                    "vmla.f32 s27, s7, s15",
                    "vldmia {w3}!, {{s8-s15}}",
                    "vmla.f32 s28, s0, s8",
                    "vmla.f32 s29, s1, s9",
                    "vmla.f32 s30, s2, s10",
                    "vmla.f32 s31, s3, s11",
                    "vmla.f32 s28, s4, s12",
                    "vmla.f32 s29, s5, s13",
                    "vmla.f32 s30, s6, s14",
                    "vmla.f32 s31, s7, s15",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    "vstmia {s}, {{s16-s31}}",
                    s = in(reg) s.as_mut_ptr(),
                    x = inout(reg) x.as_ptr() => _,
                    w0 = inout(reg) w[0].as_ptr() => _,
                    w1 = inout(reg) w[1].as_ptr() => _,
                    w2 = inout(reg) w[2].as_ptr() => _,
                    w3 = inout(reg) w[3].as_ptr() => _,
                    n = inout(reg) n => _,
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
                    out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _, out("s13") _,
                    out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _, out("s24") _, out("s25") _,
                    out("s26") _, out("s27") _, out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                    options(nostack),
                );
            }
        }
        let m = 2 * n;
        if !x_rest.is_empty() {
            PORTABLE.dot_rows4_f32(x_rest, w.map(|r| &r[m..]), s);
        }
    }

    fn axpy_rows4_f32(&self, alpha: [f32; 4], w: [&[[f32; 4]]; 4], y: &mut [[f32; 4]]) {
        assert!(w.iter().all(|r| r.len() == y.len()), "axpy_rows4_f32: length mismatch");
        let n = y.len() / 2;
        if n > 0 {
            // SAFETY: reads and writes 8n f32 of y, reads 8n f32 of each row (asserted long enough) and the 4
            // alphas; 4-byte aligned f32 data. Registers are declared.
            unsafe {
                asm!(
                    "vldmia {a}, {{s0-s3}}",
                    "2:",
                    "vldmia {y}, {{s8-s15}}",
                    "vldmia {w0}!, {{s16-s23}}",
                    "vmla.f32 s8, s0, s16",
                    "vmla.f32 s9, s0, s17",
                    "vmla.f32 s10, s0, s18",
                    "vmla.f32 s11, s0, s19",
                    "vmla.f32 s12, s0, s20",
                    "vmla.f32 s13, s0, s21",
                    "vmla.f32 s14, s0, s22",
                    "vmla.f32 s15, s0, s23",
                    "vldmia {w1}!, {{s16-s23}}",
                    "vmla.f32 s8, s1, s16",
                    "vmla.f32 s9, s1, s17",
                    "vmla.f32 s10, s1, s18",
                    "vmla.f32 s11, s1, s19",
                    "vmla.f32 s12, s1, s20",
                    "vmla.f32 s13, s1, s21",
                    "vmla.f32 s14, s1, s22",
                    "vmla.f32 s15, s1, s23",
                    "vldmia {w2}!, {{s16-s23}}",
                    "vmla.f32 s8, s2, s16",
                    "vmla.f32 s9, s2, s17",
                    "vmla.f32 s10, s2, s18",
                    "vmla.f32 s11, s2, s19",
                    "vmla.f32 s12, s2, s20",
                    "vmla.f32 s13, s2, s21",
                    "vmla.f32 s14, s2, s22",
                    "vmla.f32 s15, s2, s23",
                    "vldmia {w3}!, {{s16-s23}}",
                    "vmla.f32 s8, s3, s16",
                    "vmla.f32 s9, s3, s17",
                    "vmla.f32 s10, s3, s18",
                    "vmla.f32 s11, s3, s19",
                    "vmla.f32 s12, s3, s20",
                    "vmla.f32 s13, s3, s21",
                    "vmla.f32 s14, s3, s22",
                    "vmla.f32 s15, s3, s23",
                    "vstmia {y}!, {{s8-s15}}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    a = in(reg) alpha.as_ptr(),
                    y = inout(reg) y.as_mut_ptr() => _,
                    w0 = inout(reg) w[0].as_ptr() => _,
                    w1 = inout(reg) w[1].as_ptr() => _,
                    w2 = inout(reg) w[2].as_ptr() => _,
                    w3 = inout(reg) w[3].as_ptr() => _,
                    n = inout(reg) n => _,
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
                    out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _, out("s13") _,
                    out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _, out("s24") _, out("s25") _,
                    out("s26") _, out("s27") _, out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                    options(nostack),
                );
            }
        }
        let m = 2 * n;
        if m < y.len() {
            PORTABLE.axpy_rows4_f32(alpha, w.map(|r| &r[m..]), &mut y[m..]);
        }
    }

    fn dot_rows4_f16(&self, x: &[[f32; 4]], w: [&[[u32; 2]]; 4], s: &mut [[f32; 4]; 4]) {
        assert!(w.iter().all(|r| r.len() == x.len()), "dot_rows4_f16: length mismatch");
        let (n, x_rest) = pairs(x);
        if n > 0 {
            // SAFETY: reads 8n f32 from x and 8n binary16 (16n bytes) from each row (asserted long enough),
            // reads and writes the 16 f32 of `s`; all 4-byte aligned. Registers are declared.
            unsafe {
                asm!(
                    "vldmia {s}, {{s16-s31}}",
                    "2:",
                    "vldmia {x}!, {{s0-s7}}",
                    // Row 0: 8 halves in s8..s11, decoded four at a time into s12..s15.
                    "vldmia {w0}!, {{s8-s11}}",
                    "vcvtb.f32.f16 s12, s8",
                    "vcvtt.f32.f16 s13, s8",
                    "vcvtb.f32.f16 s14, s9",
                    "vcvtt.f32.f16 s15, s9",
                    "vmla.f32 s16, s0, s12",
                    "vmla.f32 s17, s1, s13",
                    "vmla.f32 s18, s2, s14",
                    "vmla.f32 s19, s3, s15",
                    "vcvtb.f32.f16 s12, s10",
                    "vcvtt.f32.f16 s13, s10",
                    "vcvtb.f32.f16 s14, s11",
                    "vcvtt.f32.f16 s15, s11",
                    "vmla.f32 s16, s4, s12",
                    "vmla.f32 s17, s5, s13",
                    "vmla.f32 s18, s6, s14",
                    "vmla.f32 s19, s7, s15",
                    "vldmia {w1}!, {{s8-s11}}",
                    "vcvtb.f32.f16 s12, s8",
                    "vcvtt.f32.f16 s13, s8",
                    "vcvtb.f32.f16 s14, s9",
                    "vcvtt.f32.f16 s15, s9",
                    "vmla.f32 s20, s0, s12",
                    "vmla.f32 s21, s1, s13",
                    "vmla.f32 s22, s2, s14",
                    "vmla.f32 s23, s3, s15",
                    "vcvtb.f32.f16 s12, s10",
                    "vcvtt.f32.f16 s13, s10",
                    "vcvtb.f32.f16 s14, s11",
                    "vcvtt.f32.f16 s15, s11",
                    "vmla.f32 s20, s4, s12",
                    "vmla.f32 s21, s5, s13",
                    "vmla.f32 s22, s6, s14",
                    "vmla.f32 s23, s7, s15",
                    "vldmia {w2}!, {{s8-s11}}",
                    "vcvtb.f32.f16 s12, s8",
                    "vcvtt.f32.f16 s13, s8",
                    "vcvtb.f32.f16 s14, s9",
                    "vcvtt.f32.f16 s15, s9",
                    "vmla.f32 s24, s0, s12",
                    "vmla.f32 s25, s1, s13",
                    "vmla.f32 s26, s2, s14",
                    "vmla.f32 s27, s3, s15",
                    "vcvtb.f32.f16 s12, s10",
                    "vcvtt.f32.f16 s13, s10",
                    "vcvtb.f32.f16 s14, s11",
                    "vcvtt.f32.f16 s15, s11",
                    "vmla.f32 s24, s4, s12",
                    "vmla.f32 s25, s5, s13",
                    "vmla.f32 s26, s6, s14",
                    "vmla.f32 s27, s7, s15",
                    "vldmia {w3}!, {{s8-s11}}",
                    "vcvtb.f32.f16 s12, s8",
                    "vcvtt.f32.f16 s13, s8",
                    "vcvtb.f32.f16 s14, s9",
                    "vcvtt.f32.f16 s15, s9",
                    "vmla.f32 s28, s0, s12",
                    "vmla.f32 s29, s1, s13",
                    "vmla.f32 s30, s2, s14",
                    "vmla.f32 s31, s3, s15",
                    "vcvtb.f32.f16 s12, s10",
                    "vcvtt.f32.f16 s13, s10",
                    "vcvtb.f32.f16 s14, s11",
                    "vcvtt.f32.f16 s15, s11",
                    "vmla.f32 s28, s4, s12",
                    "vmla.f32 s29, s5, s13",
                    "vmla.f32 s30, s6, s14",
                    "vmla.f32 s31, s7, s15",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    "vstmia {s}, {{s16-s31}}",
                    s = in(reg) s.as_mut_ptr(),
                    x = inout(reg) x.as_ptr() => _,
                    w0 = inout(reg) w[0].as_ptr() => _,
                    w1 = inout(reg) w[1].as_ptr() => _,
                    w2 = inout(reg) w[2].as_ptr() => _,
                    w3 = inout(reg) w[3].as_ptr() => _,
                    n = inout(reg) n => _,
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
                    out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _, out("s13") _,
                    out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _, out("s24") _, out("s25") _,
                    out("s26") _, out("s27") _, out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                    options(nostack),
                );
            }
        }
        let m = 2 * n;
        if !x_rest.is_empty() {
            PORTABLE.dot_rows4_f16(x_rest, w.map(|r| &r[m..]), s);
        }
    }

    fn axpy_rows4_f16(&self, alpha: [f32; 4], w: [&[[u32; 2]]; 4], y: &mut [[f32; 4]]) {
        assert!(w.iter().all(|r| r.len() == y.len()), "axpy_rows4_f16: length mismatch");
        let n = y.len() / 2;
        if n > 0 {
            // SAFETY: reads and writes 8n f32 of y, reads 8n binary16 of each row (asserted long enough) and
            // the 4 alphas; all 4-byte aligned. Registers are declared.
            unsafe {
                asm!(
                    "vldmia {a}, {{s0-s3}}",
                    "2:",
                    "vldmia {y}, {{s8-s15}}",
                    "vldmia {w0}!, {{s16-s19}}",
                    "vcvtb.f32.f16 s20, s16",
                    "vcvtt.f32.f16 s21, s16",
                    "vcvtb.f32.f16 s22, s17",
                    "vcvtt.f32.f16 s23, s17",
                    "vcvtb.f32.f16 s24, s18",
                    "vcvtt.f32.f16 s25, s18",
                    "vcvtb.f32.f16 s26, s19",
                    "vcvtt.f32.f16 s27, s19",
                    "vmla.f32 s8, s0, s20",
                    "vmla.f32 s9, s0, s21",
                    "vmla.f32 s10, s0, s22",
                    "vmla.f32 s11, s0, s23",
                    "vmla.f32 s12, s0, s24",
                    "vmla.f32 s13, s0, s25",
                    "vmla.f32 s14, s0, s26",
                    "vmla.f32 s15, s0, s27",
                    "vldmia {w1}!, {{s16-s19}}",
                    "vcvtb.f32.f16 s20, s16",
                    "vcvtt.f32.f16 s21, s16",
                    "vcvtb.f32.f16 s22, s17",
                    "vcvtt.f32.f16 s23, s17",
                    "vcvtb.f32.f16 s24, s18",
                    "vcvtt.f32.f16 s25, s18",
                    "vcvtb.f32.f16 s26, s19",
                    "vcvtt.f32.f16 s27, s19",
                    "vmla.f32 s8, s1, s20",
                    "vmla.f32 s9, s1, s21",
                    "vmla.f32 s10, s1, s22",
                    "vmla.f32 s11, s1, s23",
                    "vmla.f32 s12, s1, s24",
                    "vmla.f32 s13, s1, s25",
                    "vmla.f32 s14, s1, s26",
                    "vmla.f32 s15, s1, s27",
                    "vldmia {w2}!, {{s16-s19}}",
                    "vcvtb.f32.f16 s20, s16",
                    "vcvtt.f32.f16 s21, s16",
                    "vcvtb.f32.f16 s22, s17",
                    "vcvtt.f32.f16 s23, s17",
                    "vcvtb.f32.f16 s24, s18",
                    "vcvtt.f32.f16 s25, s18",
                    "vcvtb.f32.f16 s26, s19",
                    "vcvtt.f32.f16 s27, s19",
                    "vmla.f32 s8, s2, s20",
                    "vmla.f32 s9, s2, s21",
                    "vmla.f32 s10, s2, s22",
                    "vmla.f32 s11, s2, s23",
                    "vmla.f32 s12, s2, s24",
                    "vmla.f32 s13, s2, s25",
                    "vmla.f32 s14, s2, s26",
                    "vmla.f32 s15, s2, s27",
                    "vldmia {w3}!, {{s16-s19}}",
                    "vcvtb.f32.f16 s20, s16",
                    "vcvtt.f32.f16 s21, s16",
                    "vcvtb.f32.f16 s22, s17",
                    "vcvtt.f32.f16 s23, s17",
                    "vcvtb.f32.f16 s24, s18",
                    "vcvtt.f32.f16 s25, s18",
                    "vcvtb.f32.f16 s26, s19",
                    "vcvtt.f32.f16 s27, s19",
                    "vmla.f32 s8, s3, s20",
                    "vmla.f32 s9, s3, s21",
                    "vmla.f32 s10, s3, s22",
                    "vmla.f32 s11, s3, s23",
                    "vmla.f32 s12, s3, s24",
                    "vmla.f32 s13, s3, s25",
                    "vmla.f32 s14, s3, s26",
                    "vmla.f32 s15, s3, s27",
                    "vstmia {y}!, {{s8-s15}}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    a = in(reg) alpha.as_ptr(),
                    y = inout(reg) y.as_mut_ptr() => _,
                    w0 = inout(reg) w[0].as_ptr() => _,
                    w1 = inout(reg) w[1].as_ptr() => _,
                    w2 = inout(reg) w[2].as_ptr() => _,
                    w3 = inout(reg) w[3].as_ptr() => _,
                    n = inout(reg) n => _,
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
                    out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _, out("s13") _,
                    out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _, out("s24") _, out("s25") _,
                    out("s26") _, out("s27") _, out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                    options(nostack),
                );
            }
        }
        let m = 2 * n;
        if m < y.len() {
            PORTABLE.axpy_rows4_f16(alpha, w.map(|r| &r[m..]), &mut y[m..]);
        }
    }

    fn axpy_row_f32(&self, alpha: f32, w: &[[f32; 4]], y: &mut [[f32; 4]]) {
        assert_eq!(w.len(), y.len(), "axpy_row_f32: length mismatch");
        let n = y.len() / 2;
        if n > 0 {
            // SAFETY: reads and writes 8n f32 of y, reads 8n f32 of w (asserted as long as y) and `alpha`;
            // 4-byte aligned. Registers are declared.
            unsafe {
                asm!(
                    "vldr s0, [{a}]",
                    "2:",
                    "vldmia {y}, {{s8-s15}}",
                    "vldmia {w}!, {{s16-s23}}",
                    "vmla.f32 s8, s0, s16",
                    "vmla.f32 s9, s0, s17",
                    "vmla.f32 s10, s0, s18",
                    "vmla.f32 s11, s0, s19",
                    "vmla.f32 s12, s0, s20",
                    "vmla.f32 s13, s0, s21",
                    "vmla.f32 s14, s0, s22",
                    "vmla.f32 s15, s0, s23",
                    "vstmia {y}!, {{s8-s15}}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    y = inout(reg) y.as_mut_ptr() => _,
                    w = inout(reg) w.as_ptr() => _,
                    n = inout(reg) n => _,
                    a = in(reg) &alpha,
                    out("s0") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _, out("s13") _,
                    out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                    options(nostack),
                );
            }
        }
        let m = 2 * n;
        if m < y.len() {
            PORTABLE.axpy_row_f32(alpha, &w[m..], &mut y[m..]);
        }
    }

    fn axpy_row_f16(&self, alpha: f32, w: &[[u32; 2]], y: &mut [[f32; 4]]) {
        assert_eq!(w.len(), y.len(), "axpy_row_f16: length mismatch");
        let n = y.len() / 2;
        if n > 0 {
            // SAFETY: reads and writes 8n f32 of y, reads 8n binary16 of w (asserted long enough) and
            // `alpha`; 4-byte aligned. Registers are declared.
            unsafe {
                asm!(
                    "vldr s0, [{a}]",
                    "2:",
                    "vldmia {y}, {{s8-s15}}",
                    "vldmia {w}!, {{s16-s19}}",
                    "vcvtb.f32.f16 s20, s16",
                    "vcvtt.f32.f16 s21, s16",
                    "vcvtb.f32.f16 s22, s17",
                    "vcvtt.f32.f16 s23, s17",
                    "vcvtb.f32.f16 s24, s18",
                    "vcvtt.f32.f16 s25, s18",
                    "vcvtb.f32.f16 s26, s19",
                    "vcvtt.f32.f16 s27, s19",
                    "vmla.f32 s8, s0, s20",
                    "vmla.f32 s9, s0, s21",
                    "vmla.f32 s10, s0, s22",
                    "vmla.f32 s11, s0, s23",
                    "vmla.f32 s12, s0, s24",
                    "vmla.f32 s13, s0, s25",
                    "vmla.f32 s14, s0, s26",
                    "vmla.f32 s15, s0, s27",
                    "vstmia {y}!, {{s8-s15}}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    y = inout(reg) y.as_mut_ptr() => _,
                    w = inout(reg) w.as_ptr() => _,
                    n = inout(reg) n => _,
                    a = in(reg) &alpha,
                    out("s0") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _, out("s13") _,
                    out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _, out("s24") _, out("s25") _,
                    out("s26") _, out("s27") _,
                    options(nostack),
                );
            }
        }
        let m = 2 * n;
        if m < y.len() {
            PORTABLE.axpy_row_f16(alpha, &w[m..], &mut y[m..]);
        }
    }
}
