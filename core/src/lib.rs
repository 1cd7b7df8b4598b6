//! # gaussdiff-core
//!
//! `no_std`, heap-free, `unsafe`-free building blocks for running diffusion models whose denoisers are
//! Gaussian (low rank with an isotropic floor) or per-noise-level linear maps:
//!
//! * [`blob`]: the versioned, checksummed weight-blob format v1 (zero-copy reader; writer behind `std`).
//! * [`denoiser`]: the [`Denoiser`](denoiser::Denoiser) trait, the Gaussian and the linear denoiser.
//! * [`schedule`]: the EDM noise schedule (Karras et al. 2022).
//! * [`sampler`]: Euler, Heun (with optional stochastic churn) and the exact probability-flow solution.
//! * [`rng`]: a documented PRNG and Gaussian sampler that gives the same bits on every platform.
//! * [`pixel`]: model values to 8-bit pixels through the blob's pixel mapping.
//! * [`math`]: the one path for transcendental functions and the f32 kernels (fixed summation order).
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

pub mod blob;
pub mod denoiser;
pub mod error;
pub mod frame;
pub mod math;
pub mod pixel;
pub mod rng;
pub mod sampler;
pub mod schedule;

#[cfg(feature = "dataset")]
pub mod dataset;
#[cfg(feature = "fit")]
pub mod fit;

pub use error::BlobError;
