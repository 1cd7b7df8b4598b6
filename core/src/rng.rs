//! Deterministic randomness: xoshiro128++ seeded by SplitMix64, and Gaussian samples by a ziggurat.
//!
//! # Generator
//! [`Rng`] is **xoshiro128++ 1.0** (Blackman & Vigna, <https://prng.di.unimi.it/xoshiro128plusplus.c>):
//! 128 bits of state `s[0..4]` (u32), period `2^128 - 1`, 32-bit outputs, only adds, xors, shifts and
//! rotations, so it is fast on a Cortex-M0+ as well as on a Cortex-M4F. One step:
//!
//! ```text
//! result = rotl(s0 + s3, 7) + s0
//! t = s1 << 9
//! s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11)
//! ```
//!
//! # Seeding
//! [`Rng::new`] expands a `u64` seed with **SplitMix64** (<https://prng.di.unimi.it/splitmix64.c>, state
//! `x = seed`): its first two outputs `a`, `b` give `s = [lo32(a), hi32(a), lo32(b), hi32(b)]` (the
//! little-endian bytes of `a` then `b`, read as four u32). The all-zero state, which xoshiro never leaves, is
//! rejected by [`Rng::from_state`] (and replaced by `[1, 0, 0, 0]` in [`Rng::new`] should SplitMix64 ever
//! produce it).
//!
//! # Floats
//! * [`Rng::uniform_f32`]: the top 24 bits of one output times `2^-24`, so exactly representable and in
//!   `[0, 1)`.
//! * [`Rng::normal`]: a standard normal by the **ziggurat method** (Marsaglia & Tsang 2000, 128 layers),
//!   with the layer index, the sign and the magnitude taken from disjoint bits of one output (as Doornik
//!   2005 recommends) and f32 tables generated from their recipe by `core/build.rs` ([`ZIG_K`], [`ZIG_W_BITS`], [`ZIG_F_BITS`]).
//!   One draw: `u = next_u32()`, `i = u & 127`, negative when bit 7 of `u` is set, `m = u >> 8` (24 bits),
//!   `x = f32(m) * W[i]` (one f32 product). If `m < K[i]` the result is `x` (or `-x`): about 98.8 % of
//!   draws, no transcendental function. Otherwise:
//!   * `i == 0` (the tail beyond `R = 3.442619855899`, f32 `0x405c53e2`): repeat
//!     `a = -ln(v1) * RINV`, `b = -ln(v2)` until `b + b >= a * a`, where `v = (top24 + 1) * 2^-24` in
//!     `(0, 1]` from one fresh output each (`v1` first) and `RINV` = f32 `0x3e94b954` (`1 / R`); the result
//!     is `R + a` (or `-(R + a)`).
//!   * `i >= 1` (the wedge): with `v = uniform_f32()` from one fresh output, accept `x` (signed) when
//!     `F[i] + v * (F[i-1] - F[i]) < exp((-0.5 * x) * x)`; else start again with a fresh output.
//!
//!   Every operation is one f32 operation rounded to nearest (no fused multiply-add), evaluated in the
//!   order written; `ln` and `exp` are libm's `logf` and `expf` ([`math::ln`], [`math::exp_libm`]; libm in
//!   every build, also under `fast-math`), so the same seed gives the same bits on every platform. The
//!   tables are Marsaglia & Tsang's recipe in f64 rounded once (see [`ZIG_K`]); `zig_tables_match_recipe`
//!   recomputes them.
//! * [`Rng::fill_normal`]: [`Rng::normal`] for each element in order.
//!
//! The generator has no hidden state besides [`Rng::state`] (nothing is cached between draws).

use crate::math;

/// xoshiro128++ state plus the Gaussian sampler (see the module docs for the exact algorithms).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rng {
    s: [u32; 4],
}

/// SplitMix64 (Steele, Lea & Flood 2014; Vigna's <https://prng.di.unimi.it/splitmix64.c>): expands a `u64`
/// seed into the xoshiro state here, and is the workspace's one SplitMix64 (the dataset shuffle, the
/// trainer's generator seeding). See [`splitmix64`] for the step on a bare state.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    x: u64,
}

impl SplitMix64 {
    /// Generator with state `x = seed`.
    pub const fn new(seed: u64) -> Self {
        Self { x: seed }
    }

    /// Next 64-bit output ([`splitmix64`] on the state).
    pub fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.x)
    }
}

/// One SplitMix64 step on a bare state: `state += 0x9e3779b97f4a7c15`, then the output mix of `state`.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `2^-24`: spacing of the 24-bit uniform grid.
const INV_2_24: f32 = 1.0 / 16_777_216.0;

impl Rng {
    /// Generator seeded from a `u64` via SplitMix64 (see the module docs).
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let (a, b) = (sm.next_u64(), sm.next_u64());
        if a == 0 && b == 0 {
            // Unreachable for SplitMix64 outputs in practice; kept so `new` can never return a stuck generator.
            return Self { s: [1, 0, 0, 0] };
        }
        Self { s: [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32] }
    }

    /// Resume from a state saved with [`Rng::state`].
    ///
    /// Returns `None` for the all-zero state, the one state xoshiro never leaves.
    pub const fn from_state(s: [u32; 4]) -> Option<Self> {
        if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
            None
        } else {
            Some(Self { s })
        }
    }

    /// The full generator state (there is no other hidden state).
    pub const fn state(&self) -> [u32; 4] {
        self.s
    }

    /// Next 32-bit output of xoshiro128++.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        xoshiro_plus_plus(&mut self.s, XOSHIRO128PP)
    }

    /// Uniform in `[0, 1)` on the grid `m * 2^-24` (`m` = top 24 bits of one output).
    #[inline]
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * INV_2_24
    }

    /// Uniform in `(0, 1]` on the grid `(m + 1) * 2^-24` (`m` = top 24 bits of one output): `ln` of it is
    /// finite.
    #[inline]
    fn uniform_open_f32(&mut self) -> f32 {
        ((self.next_u32() >> 8) + 1) as f32 * INV_2_24
    }

    /// One standard normal (ziggurat; see the module docs for the exact algorithm).
    #[inline]
    pub fn normal(&mut self) -> f32 {
        loop {
            let u = self.next_u32();
            let i = (u & 127) as usize;
            let negative = u & 128 != 0;
            let m = u >> 8;
            let x = m as f32 * f32::from_bits(ZIG_W_BITS[i]);
            if m < ZIG_K[i] {
                return if negative { -x } else { x };
            }
            if let Some(z) = self.normal_slow(i, x) {
                return if negative { -z } else { z };
            }
        }
    }

    /// The rare part of [`Rng::normal`]: the tail (`i == 0`) or the wedge test of layer `i`; `None` rejects.
    #[inline(never)]
    fn normal_slow(&mut self, i: usize, x: f32) -> Option<f32> {
        if i == 0 {
            loop {
                let a = -math::ln(self.uniform_open_f32()) * ZIG_RINV;
                let b = -math::ln(self.uniform_open_f32());
                if b + b >= a * a {
                    return Some(ZIG_R + a);
                }
            }
        }
        let (f_hi, f_lo) = (f32::from_bits(ZIG_F_BITS[i - 1]), f32::from_bits(ZIG_F_BITS[i]));
        let v = self.uniform_f32();
        (f_lo + v * (f_hi - f_lo) < math::exp_libm((-0.5 * x) * x)).then_some(x)
    }

    /// Fills `out` with standard normals, [`Rng::normal`] for each element in order.
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        for v in out {
            *v = self.normal();
        }
    }
}

/// A word of a xoshiro state: `u32` (xoshiro128++) or `u64` (xoshiro256++, the trainer's generator).
pub trait XoshiroWord: Copy + core::ops::BitXorAssign + core::ops::Shl<u32, Output = Self> {
    /// Addition modulo the word size.
    fn wrapping_add(self, other: Self) -> Self;
    /// Left rotation by `n` bits.
    fn rotate_left(self, n: u32) -> Self;
}

macro_rules! xoshiro_word {
    ($($t:ty),+) => {$(
        impl XoshiroWord for $t {
            #[inline]
            fn wrapping_add(self, other: Self) -> Self {
                <$t>::wrapping_add(self, other)
            }
            #[inline]
            fn rotate_left(self, n: u32) -> Self {
                <$t>::rotate_left(self, n)
            }
        }
    )+};
}
xoshiro_word!(u32, u64);

/// xoshiro128++'s constants `(a, b, c)` for [`xoshiro_plus_plus`].
pub const XOSHIRO128PP: (u32, u32, u32) = (7, 9, 11);
/// xoshiro256++'s constants `(a, b, c)` for [`xoshiro_plus_plus`].
pub const XOSHIRO256PP: (u32, u32, u32) = (23, 17, 45);

/// One step of the xoshiro++ family (Blackman & Vigna 2019) on the four-word state `s` with constants
/// `(a, b, c)`: returns `rotl(s0 + s3, a) + s0`, then `t = s1 << b`, `s2 ^= s0`, `s3 ^= s1`, `s1 ^= s2`,
/// `s0 ^= s3`, `s2 ^= t`, `s3 = rotl(s3, c)`. The one implementation of the step for [`Rng`] (u32 words,
/// [`XOSHIRO128PP`]) and the host trainer's generator (u64 words, [`XOSHIRO256PP`]).
#[inline]
pub fn xoshiro_plus_plus<W: XoshiroWord>(s: &mut [W; 4], (a, b, c): (u32, u32, u32)) -> W {
    let result = s[0].wrapping_add(s[3]).rotate_left(a).wrapping_add(s[0]);
    let t = s[1] << b;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(c);
    result
}

/// The ziggurat's `R = 3.442619855899` (start of the tail; f32 bits `0x405c53e2`).
const ZIG_R: f32 = f32::from_bits(0x405c_53e2);
/// `1 / R` rounded to f32 (bits `0x3e94b954`).
const ZIG_RINV: f32 = f32::from_bits(0x3e94_b954);

// The ziggurat tables `ZIG_K`, `ZIG_W_BITS`, `ZIG_F_BITS` (Marsaglia & Tsang 2000, 128 layers,
// `R = 3.442619855899`, `V = 9.91256303526217e-3`), generated from their f64 recipe by `core/build.rs`
// (recipe in its docs and in docs/noise.md) and pinned bit for bit by `core/tests/rng_vectors.rs`.
include!(concat!(env!("OUT_DIR"), "/ziggurat_tables.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_state_is_rejected_and_state_round_trips() {
        assert!(Rng::from_state([0; 4]).is_none());
        let mut a = Rng::new(7);
        a.next_u32();
        let mut b = Rng::from_state(a.state()).unwrap();
        assert_eq!(a.next_u32(), b.next_u32());
    }

    #[test]
    fn uniform_endpoints() {
        // Output 0 maps to 0.0 and output u32::MAX to the largest value below 1.
        assert_eq!((0u32 >> 8) as f32 * INV_2_24, 0.0);
        let top = (u32::MAX >> 8) as f32 * INV_2_24;
        assert!(top < 1.0 && top > 0.999_999);
    }
}
