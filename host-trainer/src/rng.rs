//! The trainer's own seeded random numbers (every random draw of training, distillation and metrics).
//!
//! candle's CPU backend cannot be seeded (`Device::Cpu.set_seed` returns an error), so nothing in this
//! crate calls candle's random functions: all draws come from [`TrainRng`], whose whole state is four
//! `u64` words that a checkpoint stores and restores exactly.
//!
//! * Generator: xoshiro256++ (Blackman & Vigna 2019; the step is core's `xoshiro_plus_plus`), state seeded from a `u64` by core's SplitMix64
//!   (`gaussdiff_core::rng::SplitMix64`, the one implementation).
//! * Uniform `f64` in `[0, 1)`: the top 53 bits of one output times 2^-53.
//! * Normal: Box-Muller in f64 (`sqrt(-2 ln u1) cos(2 pi u2)`, `u1` in `(0, 1]`), one output per two
//!   uniforms (no cached spare, so the state alone determines the stream), rounded to f32 where asked.
//!
//! It is a few lines and its state must be serialisable word for word, which is why it is written here
//! rather than taken from `rand_xoshiro` (whose state is private).

use gaussdiff_core::rng::{xoshiro_plus_plus, SplitMix64, XOSHIRO256PP};

/// xoshiro256++ with a fully exposed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainRng {
    s: [u64; 4],
}

impl TrainRng {
    /// Seed the four state words with SplitMix64 from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Self { s }
    }

    /// An independent stream for a named purpose (e.g. `stream(seed, 1)` for distillation noise).
    pub fn stream(seed: u64, id: u64) -> Self {
        Self::new(seed ^ id.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// Restore from a saved state (see [`TrainRng::state`]).
    pub fn from_state(s: [u64; 4]) -> Self {
        Self { s }
    }

    /// The full generator state.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// Next 64 random bits (core's xoshiro++ step with u64 words and xoshiro256++'s constants).
    pub fn next_u64(&mut self) -> u64 {
        xoshiro_plus_plus(&mut self.s, XOSHIRO256PP)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift; bias below 2^-32 for the sizes used here).
    ///
    /// # Panics
    /// If `n == 0`.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "TrainRng::below(0)");
        ((self.next_u64() >> 32).wrapping_mul(n as u64) >> 32) as usize
    }

    /// Standard normal in f64 (Box-Muller, cosine branch).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fill `out` with standard normals rounded to f32.
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        for v in out {
            *v = self.normal() as f32;
        }
    }

    /// A vector of `n` standard normals (f32).
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        let mut v = vec![0.0; n];
        self.fill_normal(&mut v);
        v
    }

    /// A uniformly random permutation of `0..n` (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            p.swap(i, j);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro256pp_reference_vector() {
        // Reference output of xoshiro256++ for state {1, 2, 3, 4} (from the authors' C code).
        let mut r = TrainRng::from_state([1, 2, 3, 4]);
        let want = [41943041u64, 58720359, 3588806011781223, 3591011842654386];
        for w in want {
            assert_eq!(r.next_u64(), w);
        }
    }

    #[test]
    fn normal_moments_and_state_roundtrip() {
        let mut r = TrainRng::new(7);
        let n = 200_000;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let z = r.normal();
            s1 += z;
            s2 += z * z;
        }
        let mean = s1 / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
        let saved = r.state();
        let a: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
        let mut r2 = TrainRng::from_state(saved);
        let b: Vec<u64> = (0..5).map(|_| r2.next_u64()).collect();
        assert_eq!(a, b);
        let p = r.permutation(10);
        let mut q = p.clone();
        q.sort_unstable();
        assert_eq!(q, (0..10).collect::<Vec<_>>());
    }
}
