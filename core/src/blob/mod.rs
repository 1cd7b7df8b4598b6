//! The gaussdiff weight-blob format v1 (specified in `docs/blob-format.md`).
//!
//! * [`format`]: the single source of truth: magic, version, header layout, codes, `MAX_*` limits.
//! * [`read`]: the zero-copy reader over `&[u8]` of any alignment.
//! * `write`: the writer (behind `std`).
//! * [`tensor`]: typed matrix views (f32, f16, int8 with per-row scales).

pub mod format;
pub mod read;
pub mod tensor;
#[cfg(feature = "std")]
pub mod write;

pub use format::{Header, Kind};
pub use read::{Blob, Metadata, Model, SectionInfo};
pub use tensor::{DType, Tensor};
