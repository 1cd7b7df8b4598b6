#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod code_enum;
#[macro_use]
mod contract;

pub mod blob;
pub mod denoiser;
pub mod error;
pub mod frame;
pub mod kernels;
pub mod math;
pub mod pixel;
pub mod rng;
pub mod sampler;
pub mod schedule;
pub mod tensor;

pub use error::BlobError;
