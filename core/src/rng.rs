//! Deterministic randomness: xoshiro128++ seeded by SplitMix64, and Gaussian samples by Box-Muller.
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
//! * [`Rng::normal_pair`]: Box-Muller on two outputs: `u1 = (top24 + 1) * 2^-24` in `(0, 1]` (so `ln(u1)` is
//!   finite: `u = 0` cannot occur), `u2 = top24 * 2^-24` in `[0, 1)`, `r = sqrt(-2 ln u1)`,
//!   `theta = 2 pi u2`, result `(r cos theta, r sin theta)`. `|z| <= sqrt(48 ln 2) ~ 5.77`, the tail cut
//!   by the 24-bit grid (probability ~ 8e-9).
//! * [`Rng::normal`]: the cosine half of a fresh pair (two outputs per normal, no hidden cached value, so the
//!   whole state is [`Rng::state`]).
//! * [`Rng::fill_normal`]: pairs in order (cosine then sine), the last element of an odd-length slice from
//!   [`Rng::normal`].
//!
//! The transcendental functions go through [`crate::math`] (libm, pure software; `ln`, `sqrt`, `sin` and
//! `cos` stay on libm even under `fast-math`), so the same seed gives the same bits on every platform and in
//! every build.

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
        let s = [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32];
        if s == [0; 4] {
            // Unreachable for SplitMix64 outputs in practice; kept so `new` can never return a stuck generator.
            return Self { s: [1, 0, 0, 0] };
        }
        Self { s }
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
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(7).wrapping_add(s[0]);
        let t = s[1] << 9;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(11);
        result
    }

    /// Uniform in `[0, 1)` on the grid `m * 2^-24` (`m` = top 24 bits of one output).
    #[inline]
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * INV_2_24
    }

    /// Two independent standard normals from two outputs (Box-Muller; see the module docs).
    pub fn normal_pair(&mut self) -> (f32, f32) {
        let u1 = ((self.next_u32() >> 8) + 1) as f32 * INV_2_24; // (0, 1]
        let u2 = self.uniform_f32(); // [0, 1)
        let r = math::sqrt(-2.0 * math::ln(u1));
        let theta = core::f32::consts::TAU * u2;
        (r * math::cos(theta), r * math::sin(theta))
    }

    /// One standard normal (the cosine half of [`Rng::normal_pair`]).
    #[inline]
    pub fn normal(&mut self) -> f32 {
        self.normal_pair().0
    }

    /// Fills `out` with standard normals: pairs in order, an odd tail from [`Rng::normal`].
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        let mut pairs = out.chunks_exact_mut(2);
        for p in &mut pairs {
            let (a, b) = self.normal_pair();
            p[0] = a;
            p[1] = b;
        }
        if let [last] = pairs.into_remainder() {
            *last = self.normal();
        }
    }
}

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
