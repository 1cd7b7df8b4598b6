//! The gaussdiff weight-blob format v1 (specified in `docs/blob-format.md`).
//!
//! * [`format`]: the single source of truth: magic, version, header layout, codes, `MAX_*` limits.
//! * [`read`]: the zero-copy reader over `&[u8]` of any alignment; sections are [`crate::tensor::Tensor`]
//!   views. The denoiser a blob holds is built by [`crate::denoiser::Model`] (`Blob::model`).
//! * `write`: the writer (behind `std`).

pub mod format;
pub mod read;
#[cfg(feature = "std")]
pub mod write;

pub use format::{Header, Kind};
pub use read::{Blob, Metadata, SectionInfo};
