//! Errors are values: small, `Copy`, numeric payloads, `Display`, `core::error::Error`, optional `defmt`.

use core::fmt;

// Only the id tables (leaf files): `blob::format` itself depends on this module, not the other way round.
use crate::blob::format::{field, section};

/// Why a byte slice is not a valid gaussdiff blob (or a tensor view over it is inconsistent).
///
/// Payloads are numbers so the type stays `Copy` and `no_std`; the host tools add file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlobError {
    /// Fewer bytes than the structure being read needs.
    Truncated {
        /// Bytes needed.
        needed: u32,
        /// Bytes available.
        available: u32,
    },
    /// The first four bytes are not the gaussdiff magic.
    BadMagic {
        /// The first four bytes, big-endian.
        found: u32,
    },
    /// The format version is newer (or older) than this reader supports.
    UnsupportedVersion {
        /// The version in the header.
        found: u16,
    },
    /// The header size field disagrees with the layout of this version.
    BadHeaderSize {
        /// The header size in the header.
        found: u32,
    },
    /// The CRC-32 over everything after the header does not match the stored one.
    ChecksumMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// An element-type code that is not f32 (0), f16 (1) or int8 (2), or int8 in a build of core without the
    /// feature `int8` (the lean firmware).
    UnknownDType {
        /// The element-type code.
        code: u8,
    },
    /// A denoiser-kind code this reader does not know, or a kind it was built without (`Model::from_blob`
    /// without core's `linear` or `mixture` feature).
    UnknownKind {
        /// The kind code.
        code: u8,
    },
    /// Section-table entry `index` points (partly) outside `[end of table, total_len)` or overlaps another
    /// section or the metadata area.
    BadSection {
        /// Position in the section table.
        index: u8,
    },
    /// A tensor's byte length does not match rows x cols of its element type (plus per-row scales for int8).
    BadTensorLength {
        /// Bytes the shape and element type need.
        expected: u32,
        /// Bytes present.
        found: u32,
    },
    /// A numeric field is out of its allowed range (field id as in `docs/blob-format.md`, value as bits).
    BadField {
        /// Field id ([`crate::blob::format::field`]).
        field: u8,
        /// The offending value (f32 fields as bits).
        value: u32,
    },
    /// A limit from `blob::format::MAX_*` is exceeded.
    LimitExceeded {
        /// Field id ([`crate::blob::format::field`]).
        field: u8,
        /// The value.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// A required section is missing for the declared denoiser kind.
    MissingSection {
        /// Section id ([`crate::blob::format::section`]).
        id: u8,
    },
    /// The metadata area is malformed (bad length, or not UTF-8).
    BadMetadata {
        /// Absolute byte offset of the bad entry (or of the area).
        offset: u32,
    },
    /// Element `index` (row-major) of section `id` is NaN or infinite (every tensor's values must be finite).
    NonFiniteTensor {
        /// Section id ([`crate::blob::format::section`]).
        id: u8,
        /// Row-major element index.
        index: u32,
    },
    /// A float that must be finite (and, where stated, positive) is not.
    NonFinite {
        /// Field id ([`crate::blob::format::field`]).
        field: u8,
    },
    /// The CRC-32 over the header's first 60 bytes does not match the one stored in bytes 60..64.
    HeaderChecksumMismatch {
        /// CRC stored in bytes 60..64.
        stored: u32,
        /// CRC computed over bytes 0..60.
        computed: u32,
    },
    /// The slice is longer than the total length recorded in the header.
    TrailingBytes {
        /// Total length in the header.
        declared: u32,
        /// Bytes given.
        available: u32,
    },
    /// A section's `rows x cols` disagrees with the shape its kind needs for the header's d, k, L.
    BadShape {
        /// Section id.
        id: u8,
        /// Stored rows.
        rows: u32,
        /// Stored columns.
        cols: u32,
        /// Rows the kind needs.
        expected_rows: u32,
        /// Columns the kind needs.
        expected_cols: u32,
    },
    /// A section is stored in an element type it may not use (lambda, sigmas and a must be f32).
    DTypeNotAllowed {
        /// Section id.
        id: u8,
        /// The stored element-type code.
        code: u8,
    },
    /// Two section-table entries share an id.
    DuplicateSection {
        /// Section id.
        id: u8,
    },
    /// A section id (below the extension range 0x80..) that the blob's kind does not use.
    UnexpectedSection {
        /// Section id.
        id: u8,
    },
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, available } => {
                write!(f, "blob truncated: needs {needed} bytes, has {available}")
            }
            Self::BadMagic { found } => write!(f, "not a gaussdiff blob: magic 0x{found:08x}, expected \"GDN1\""),
            Self::UnsupportedVersion { found } => write!(f, "unsupported blob format version {found}"),
            Self::BadHeaderSize { found } => write!(f, "bad header size {found}"),
            Self::ChecksumMismatch { stored, computed } => {
                write!(f, "checksum mismatch: stored CRC-32 0x{stored:08x}, computed 0x{computed:08x}")
            }
            Self::UnknownDType { code: 2 } if !cfg!(feature = "int8") => {
                f.write_str("int8 storage (element type code 2) is not in this build (gaussdiff-core's feature `int8`)")
            }
            Self::UnknownDType { code } => write!(f, "unknown element type code {code} (expected 0=f32, 1=f16, 2=i8)"),
            Self::UnknownKind { code } => write!(f, "unknown denoiser kind code {code}"),
            Self::BadSection { index } => {
                write!(f, "section-table entry {index} lies outside the payload or overlaps other data")
            }
            Self::BadTensorLength { expected, found } => {
                write!(f, "tensor has {found} bytes, its shape needs {expected}")
            }
            Self::BadField { field, value } => {
                // Float fields carry f32 bits; small values there are counts or element-type codes.
                let float = matches!(
                    field,
                    field::LAMBDA | field::FLOOR | field::SIGMAS | field::PIXEL_MAP | field::COMPLEMENT
                );
                if float && value >= 0x0080_0000 {
                    write!(f, "field {field} ({}) has invalid value ", field::name(field))?;
                    // The decimal value only with `std`: float formatting is about 11 KB of Cortex-M code (the
                    // firmware), and the bits say the same exactly.
                    #[cfg(feature = "std")]
                    write!(f, "{} ", f32::from_bits(value))?;
                    write!(f, "(f32 bits 0x{value:08x})")
                } else {
                    write!(f, "field {field} ({}) has invalid value {value} (0x{value:08x})", field::name(field))
                }
            }
            Self::LimitExceeded { field, value, max } => {
                write!(f, "field {field} ({}) = {value} exceeds the limit {max}", field::name(field))
            }
            Self::MissingSection { id } => {
                write!(f, "required section {id} ({}) is missing", section::name(id))
            }
            Self::BadMetadata { offset } => write!(f, "malformed metadata at byte {offset}"),
            Self::NonFiniteTensor { id, index } => {
                write!(f, "section {id} ({}) element {index} is not finite (expected finite values)", section::name(id))
            }
            Self::NonFinite { field } => {
                write!(f, "field {field} ({}) must be finite", field::name(field))
            }
            Self::HeaderChecksumMismatch { stored, computed } => {
                write!(f, "header checksum mismatch: stored CRC-32 0x{stored:08x}, computed 0x{computed:08x}")
            }
            Self::TrailingBytes { declared, available } => {
                write!(f, "{available} bytes given but the header declares a {declared}-byte blob")
            }
            Self::BadShape { id, rows, cols, expected_rows, expected_cols } => write!(
                f,
                "section {id} ({}) is {rows}x{cols}, expected {expected_rows}x{expected_cols}",
                section::name(id)
            ),
            Self::DTypeNotAllowed { id, code } => {
                write!(f, "section {id} ({}) has element type code {code}; it must be f32 (0)", section::name(id))
            }
            Self::DuplicateSection { id } => {
                write!(f, "section {id} ({}) appears twice", section::name(id))
            }
            Self::UnexpectedSection { id } => write!(f, "section id {id} is not used by this denoiser kind"),
        }
    }
}

impl core::error::Error for BlobError {}

/// A name that is none of a type's names: the [`core::str::FromStr`] error of
/// [`Sampler`](crate::sampler::Sampler) and [`DType`](crate::tensor::DType). Displays what was expected
/// (`expected exact, euler or heun`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseNameError {
    expected: &'static str,
}

impl ParseNameError {
    /// The error of a parser that accepts the names listed in `expected` (`"expected f32, f16 or i8"`).
    pub(crate) const fn new(expected: &'static str) -> Self {
        Self { expected }
    }
}

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }
}

impl core::error::Error for ParseNameError {}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn a_float_field_shows_its_value_and_bits_with_std() {
        let e = BlobError::BadField { field: field::FLOOR, value: (-2.5f32).to_bits() };
        assert_eq!(e.to_string(), "field 4 (floor) has invalid value -2.5 (f32 bits 0xc0200000)");
    }
}
