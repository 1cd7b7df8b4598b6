//! The matrix-vector block kernels ([`BlockKernels`]) in Cortex-M4F assembly.
//!
//! The arithmetic is exactly that of `gaussdiff_core::kernels::Portable` (the host's kernels), so samples stay
//! bit-identical to the host (`tests/tests/qemu_firmware.rs` compares them, and the benchmark (`src/bench.rs`)
//! compares these kernels with the portable ones on every run). What assembly reaches and LLVM does not:
//!
//! * `vldmia`/`vstmia` load or store 4 to 16 consecutive `s` registers in one instruction (LLVM allocates
//!   the even `s` registers first and never gets the consecutive runs these need);
//! * `vmla.f32` is the M4F's *chained* multiply-accumulate (product rounded, then the sum: the same bits as
//!   Rust's `acc += a * b`; the fused one is `vfma`), which LLVM avoids for `target-cpu=cortex-m4`;
//! * `vcvtb`/`vcvtt.f32.f16` convert a binary16 exactly in one instruction (Rust 1.95 has no stable `f16`).
//!
//! Each kernel handles pairs of 4-element chunks (8 columns) per loop iteration and an odd last chunk with the
//! one-chunk form of the same step, continuing the same lane sums (or the same `y` chunk) in the same order,
//! so the firmware links none of the portable kernels (their f16 forms are 2.5 KB). The
//! one-row axpys (`axpy_row_*`) serve the denoiser's passes over the mean.
//!
//! Register use: the caller-saved `s0..s15` and the callee-saved `s16..s31` are all declared clobbered, so
//! the compiler saves what it needs; FPSCR is left alone (round to nearest, no flush-to-zero, IEEE
//! half-precision: the reset values, which Rust code relies on too).

use core::arch::asm;

use gaussdiff_core::kernels::BlockKernels;

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

/// `assert!` whose message is kept only with the feature `messages` (the lean build reports a panic's file and
/// line only, so it stores no message), as core's `contract!`. These length checks guard the assembly's reads.
macro_rules! contract {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            #[cfg(feature = "messages")]
            panic!($($msg)+);
            #[cfg(not(feature = "messages"))]
            panic!();
        }
    };
}

/// `vldmia {w}!, {regs}`: loads consecutive `s` registers from the pointer operand `w`, advancing it.
macro_rules! vldmia {
    ($w:literal, $regs:literal) => {
        concat!("vldmia {", $w, "}!, {{", $regs, "}}\n")
    };
}

/// `vmla.f32 a, x, w` (`a += x * w`, the product rounded, then the sum) for each listed triple of `s`
/// register numbers, in order, one instruction a line.
macro_rules! vmla {
    ([$($a:literal),+], [$($x:literal),+], [$($w:literal),+]) => {
        concat!($("vmla.f32 s", $a, ", s", $x, ", s", $w, "\n"),+)
    };
}

/// Exact binary16 to f32 conversions: for each `[lo, hi] <- h`, the low half of `s<h>` into `s<lo>`
/// (`vcvtb`), then the high half into `s<hi>` (`vcvtt`).
macro_rules! cvt {
    ($([$lo:literal, $hi:literal] <- $h:literal),+) => {
        concat!($("vcvtb.f32.f16 s", $lo, ", s", $h, "\n", "vcvtt.f32.f16 s", $hi, ", s", $h, "\n"),+)
    };
}

/// Dot step of one row, f32: loads 8 weights of row `{w}` into `s8..s15` and adds `x` (`s0..s7`) times
/// them to the row's four lane sums `a` (columns 0..3, then 4..7 into the same lanes).
#[cfg(feature = "every-blob")]
macro_rules! dot8_f32 {
    ($w:literal, $a:tt) => {
        concat!(
            vldmia!($w, "s8-s15"),
            vmla!($a, [0, 1, 2, 3], [8, 9, 10, 11]),
            vmla!($a, [4, 5, 6, 7], [12, 13, 14, 15]),
        )
    };
}

/// Dot step of one row, f16: loads 8 binary16 weights of row `{w}` into `s8..s11`, decodes them four at a
/// time into `s12..s15` and adds `x` (`s0..s7`) times them to the row's four lane sums `a`.
macro_rules! dot8_f16 {
    ($w:literal, $a:tt) => {
        concat!(
            vldmia!($w, "s8-s11"),
            cvt!([12, 13] <- 8, [14, 15] <- 9),
            vmla!($a, [0, 1, 2, 3], [12, 13, 14, 15]),
            cvt!([12, 13] <- 10, [14, 15] <- 11),
            vmla!($a, [4, 5, 6, 7], [12, 13, 14, 15]),
        )
    };
}

/// Axpy step of one row, f32: loads 8 weights of row `{w}` into `s16..s23` and adds `s<a>` times them to
/// the 8 `y` values in `s8..s15`.
macro_rules! axpy8_f32 {
    ($w:literal, $a:literal) => {
        concat!(
            vldmia!($w, "s16-s23"),
            vmla!([8, 9, 10, 11, 12, 13, 14, 15], [$a, $a, $a, $a, $a, $a, $a, $a], [16, 17, 18, 19, 20, 21, 22, 23]),
        )
    };
}

/// Axpy step of one row, f16: loads 8 binary16 weights of row `{w}` into `s16..s19`, decodes them into
/// `s20..s27` and adds `s<a>` times them to the 8 `y` values in `s8..s15`.
macro_rules! axpy8_f16 {
    ($w:literal, $a:literal) => {
        concat!(
            vldmia!($w, "s16-s19"),
            cvt!([20, 21] <- 16, [22, 23] <- 17, [24, 25] <- 18, [26, 27] <- 19),
            vmla!([8, 9, 10, 11, 12, 13, 14, 15], [$a, $a, $a, $a, $a, $a, $a, $a], [20, 21, 22, 23, 24, 25, 26, 27]),
        )
    };
}

/// The one-chunk (4-column) forms of the steps above, for an odd last chunk: [`dot8_f32`] and [`dot8_f16`]
/// on `x` in `s0..s3` (the first half of their 8-column step), [`axpy8_f32`] and [`axpy8_f16`] on the 4 `y`
/// values in `s8..s11`. The same operations in the same order as the portable kernels' last chunk.
#[cfg(feature = "every-blob")]
macro_rules! dot4_f32 {
    ($w:literal, $a:tt) => {
        concat!(vldmia!($w, "s8-s11"), vmla!($a, [0, 1, 2, 3], [8, 9, 10, 11]))
    };
}

/// See [`dot4_f32`].
macro_rules! dot4_f16 {
    ($w:literal, $a:tt) => {
        concat!(vldmia!($w, "s8-s9"), cvt!([12, 13] <- 8, [14, 15] <- 9), vmla!($a, [0, 1, 2, 3], [12, 13, 14, 15]))
    };
}

/// See [`dot4_f32`].
macro_rules! axpy4_f32 {
    ($w:literal, $a:literal) => {
        concat!(vldmia!($w, "s16-s19"), vmla!([8, 9, 10, 11], [$a, $a, $a, $a], [16, 17, 18, 19]))
    };
}

/// See [`dot4_f32`].
macro_rules! axpy4_f16 {
    ($w:literal, $a:literal) => {
        concat!(
            vldmia!($w, "s16-s17"),
            cvt!([20, 21] <- 16, [22, 23] <- 17),
            vmla!([8, 9, 10, 11], [$a, $a, $a, $a], [20, 21, 22, 23]),
        )
    };
}

/// `step` for each of the four rows `w0..w3`, with its lane sums (dot steps) or its alpha register (axpy steps).
macro_rules! four_rows {
    ($step:ident, $a0:tt, $a1:tt, $a2:tt, $a3:tt) => {
        concat!($step!("w0", $a0), $step!("w1", $a1), $step!("w2", $a2), $step!("w3", $a3))
    };
}

/// The loop over the pairs of chunks: `body` once per iteration, `{n}` iterations (at least one).
macro_rules! each_pair {
    ($($body:expr),+ $(,)?) => {
        concat!("2:\n", $($body,)+ "subs {n}, {n}, #1\n", "bne 2b\n")
    };
}

/// `asm!` for the four-row kernels: `template` with the given operands first, then the row pointers
/// `w0..w3` (from `w`, advanced by the template), and all of `s0..s31` declared clobbered.
macro_rules! asm_rows4 {
    ($template:expr, $w:ident, $($operands:tt)*) => {
        asm!(
            $template,
            $($operands)*
            w0 = inout(reg) $w[0].as_ptr() => _,
            w1 = inout(reg) $w[1].as_ptr() => _,
            w2 = inout(reg) $w[2].as_ptr() => _,
            w3 = inout(reg) $w[3].as_ptr() => _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
            out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _, out("s13") _,
            out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _, out("s24") _, out("s25") _,
            out("s26") _, out("s27") _, out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        )
    };
}

/// The four-row dot kernel `$name` (`BlockKernels::dot_rows4_*`) over weight chunks of type `$chunk`, with
/// `$row` ([`dot8_f32`] or [`dot8_f16`]) as the step per row: the lane sums of the four rows in `s16..s31`
/// (loaded from and stored to `s`), 8 columns of `x` (`s0..s7`) per iteration; an odd last chunk goes to
/// `$row4` ([`dot4_f32`] or [`dot4_f16`]), continuing the same lane sums.
macro_rules! dot_rows4 {
    ($name:ident, $chunk:ty, $row:ident, $row4:ident) => {
        fn $name(&self, x: &[[f32; 4]], w: [&[$chunk]; 4], s: &mut [[f32; 4]; 4]) {
            contract!(w.iter().all(|r| r.len() == x.len()), concat!(stringify!($name), ": length mismatch"));
            let (n, x_rest) = pairs(x);
            if n > 0 {
                // SAFETY: reads 8n f32 from x and 8n weights from each row (as many chunks as x: asserted
                // above), reads and writes the 16 f32 of `s`; all pointers are 4-byte aligned (f32 and u32
                // slices). Registers are declared.
                unsafe {
                    asm_rows4!(
                        concat!(
                            "vldmia {s}, {{s16-s31}}\n",
                            each_pair!(
                                "vldmia {x}!, {{s0-s7}}\n",
                                four_rows!($row, [16, 17, 18, 19], [20, 21, 22, 23], [24, 25, 26, 27], [28, 29, 30, 31]),
                            ),
                            "vstmia {s}, {{s16-s31}}\n",
                        ),
                        w,
                        n = inout(reg) n => _,
                        s = in(reg) s.as_mut_ptr(),
                        x = inout(reg) x.as_ptr() => _,
                    );
                }
            }
            if let [xq] = x_rest {
                let w = w.map(|r| &r[2 * n..]);
                // SAFETY: reads the 4 f32 of `xq` and one chunk of each row (`x_rest` and each row's rest have
                // the same length, 1), reads and writes the 16 f32 of `s`; 4-byte aligned. Registers are declared.
                unsafe {
                    asm_rows4!(
                        concat!(
                            "vldmia {s}, {{s16-s31}}\n",
                            "vldmia {x}, {{s0-s3}}\n",
                            four_rows!($row4, [16, 17, 18, 19], [20, 21, 22, 23], [24, 25, 26, 27], [28, 29, 30, 31]),
                            "vstmia {s}, {{s16-s31}}\n",
                        ),
                        w,
                        s = in(reg) s.as_mut_ptr(),
                        x = in(reg) xq.as_ptr(),
                    );
                }
            }
        }
    };
}

/// The four-row axpy kernel `$name` (`BlockKernels::axpy_rows4_*`) over weight chunks of type `$chunk`,
/// with `$row` ([`axpy8_f32`] or [`axpy8_f16`]) as the step per row: the alphas in `s0..s3`, 8 values of
/// `y` per iteration in `s8..s15`; an odd last chunk takes `$row4` ([`axpy4_f32`] or [`axpy4_f16`]).
macro_rules! axpy_rows4 {
    ($name:ident, $chunk:ty, $row:ident, $row4:ident) => {
        fn $name(&self, alpha: [f32; 4], w: [&[$chunk]; 4], y: &mut [[f32; 4]]) {
            contract!(w.iter().all(|r| r.len() == y.len()), concat!(stringify!($name), ": length mismatch"));
            let n = y.len() / 2;
            if n > 0 {
                // SAFETY: reads and writes 8n f32 of y, reads 8n weights of each row (as many chunks as y:
                // asserted above) and the 4 alphas; all 4-byte aligned. Registers are declared.
                unsafe {
                    asm_rows4!(
                        concat!(
                            "vldmia {a}, {{s0-s3}}\n",
                            each_pair!(
                                "vldmia {y}, {{s8-s15}}\n",
                                four_rows!($row, 0, 1, 2, 3),
                                "vstmia {y}!, {{s8-s15}}\n",
                            ),
                        ),
                        w,
                        n = inout(reg) n => _,
                        a = in(reg) alpha.as_ptr(),
                        y = inout(reg) y.as_mut_ptr() => _,
                    );
                }
            }
            if let [yq] = &mut y[2 * n..] {
                let w = w.map(|r| &r[2 * n..]);
                // SAFETY: reads and writes the 4 f32 of `yq`, reads one chunk of each row (each row's rest has
                // the length of y's, 1) and the 4 alphas; 4-byte aligned. Registers are declared.
                unsafe {
                    asm_rows4!(
                        concat!(
                            "vldmia {a}, {{s0-s3}}\n",
                            "vldmia {y}, {{s8-s11}}\n",
                            four_rows!($row4, 0, 1, 2, 3),
                            "vstmia {y}, {{s8-s11}}\n",
                        ),
                        w,
                        a = in(reg) alpha.as_ptr(),
                        y = in(reg) yq.as_mut_ptr(),
                    );
                }
            }
        }
    };
}

/// The one-row axpy kernel `$name` (`BlockKernels::axpy_row_*`, the denoiser's passes over the mean) over
/// weight chunks of type `$chunk`, with `$row` ([`axpy8_f32`] or [`axpy8_f16`]) as the step: alpha in
/// `s0`, 8 values of `y` per iteration in `s8..s15`; an odd last chunk takes `$row4` ([`axpy4_f32`] or
/// [`axpy4_f16`]). Only the registers used are declared clobbered: `s0`, `s8..s23` and the `$clobber`s.
macro_rules! axpy_row {
    ($name:ident, $chunk:ty, $row:ident, $row4:ident $(, $clobber:tt)*) => {
        fn $name(&self, alpha: f32, w: &[$chunk], y: &mut [[f32; 4]]) {
            contract!(w.len() == y.len(), concat!(stringify!($name), ": length mismatch"));
            let n = y.len() / 2;
            if n > 0 {
                // SAFETY: reads and writes 8n f32 of y, reads 8n weights of w (as many chunks as y: asserted
                // above) and `alpha`; 4-byte aligned. Registers are declared.
                unsafe {
                    asm!(
                        concat!(
                            "vldr s0, [{a}]\n",
                            each_pair!("vldmia {y}, {{s8-s15}}\n", $row!("w", 0), "vstmia {y}!, {{s8-s15}}\n"),
                        ),
                        y = inout(reg) y.as_mut_ptr() => _,
                        w = inout(reg) w.as_ptr() => _,
                        n = inout(reg) n => _,
                        a = in(reg) &alpha,
                        out("s0") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _,
                        out("s13") _, out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _,
                        out("s19") _, out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                        $(out($clobber) _,)*
                        options(nostack),
                    );
                }
            }
            if let ([yq], [wq]) = (&mut y[2 * n..], &w[2 * n..]) {
                // SAFETY: reads and writes the 4 f32 of `yq`, reads the one chunk `wq` and `alpha`; 4-byte
                // aligned. Registers are declared (the one-chunk step uses a subset of the loop's).
                unsafe {
                    asm!(
                        concat!("vldr s0, [{a}]\n", "vldmia {y}, {{s8-s11}}\n", $row4!("w", 0), "vstmia {y}, {{s8-s11}}\n"),
                        y = in(reg) yq.as_mut_ptr(),
                        w = inout(reg) wq.as_ptr() => _,
                        a = in(reg) &alpha,
                        out("s0") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _, out("s12") _,
                        out("s13") _, out("s14") _, out("s15") _, out("s16") _, out("s17") _, out("s18") _,
                        out("s19") _, out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                        $(out($clobber) _,)*
                        options(nostack),
                    );
                }
            }
        }
    };
}

impl BlockKernels for M4f {
    // The four-row f32 kernels with core's `f32-kernels` (feature `every-blob`).
    #[cfg(feature = "every-blob")]
    dot_rows4!(dot_rows4_f32, [f32; 4], dot8_f32, dot4_f32);
    #[cfg(feature = "every-blob")]
    axpy_rows4!(axpy_rows4_f32, [f32; 4], axpy8_f32, axpy4_f32);
    dot_rows4!(dot_rows4_f16, [u32; 2], dot8_f16, dot4_f16);
    axpy_rows4!(axpy_rows4_f16, [u32; 2], axpy8_f16, axpy4_f16);
    // In every build: the mean of a Gaussian blob is f32 whatever its matrices are.
    axpy_row!(axpy_row_f32, [f32; 4], axpy8_f32, axpy4_f32);
    axpy_row!(axpy_row_f16, [u32; 2], axpy8_f16, axpy4_f16, "s24", "s25", "s26", "s27");

    /// `vsqrt.f32`: IEEE 754's correctly rounded square root (round to nearest, FPSCR's reset mode), so the
    /// same bits as libm's software `sqrtf` for every non-negative input (the bench build checks it), and
    /// the firmware links no software square root.
    fn sqrt(&self, x: f32) -> f32 {
        let root: u32;
        // SAFETY: register moves and one FPU instruction; no memory, no stack (the bits go through core
        // registers: Rust's asm! takes `s` registers as operands only with a `vfp2` target feature).
        unsafe {
            asm!(
                "vmov s0, {x}",
                "vsqrt.f32 s0, s0",
                "vmov {r}, s0",
                x = in(reg) x.to_bits(),
                r = lateout(reg) root,
                out("s0") _,
                options(pure, nomem, nostack),
            );
        }
        f32::from_bits(root)
    }
}
