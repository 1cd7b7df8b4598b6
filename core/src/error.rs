//! Errors are values: small, `Copy`, numeric payloads, `Display`, `core::error::Error`, optional `defmt`.

use core::fmt;

/// Why a byte slice is not a valid gaussdiff blob (or a tensor view over it is inconsistent).
///
/// Payloads are numbers so the type stays `Copy` and `no_std`; the host tools add file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlobError {
    /// Fewer bytes than the structure being read needs.
    Truncated { needed: u32, available: u32 },
    /// The first four bytes are not the gaussdiff magic.
    BadMagic { found: u32 },
    /// The format version is newer (or older) than this reader supports.
    UnsupportedVersion { found: u16 },
    /// The header size field disagrees with the layout of this version.
    BadHeaderSize { found: u32 },
    /// The CRC-32 over everything after the header does not match the stored one.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// An element-type code that is not f32 (0), f16 (1) or int8 (2).
    UnknownDType { code: u8 },
    /// A denoiser-kind code this reader does not know.
    UnknownKind { code: u8 },
    /// Section-table entry `index` points (partly) outside `[end of table, total_len)` or overlaps another
    /// section or the metadata area.
    BadSection { index: u8 },
    /// A tensor's byte length does not match rows x cols of its element type (plus per-row scales for int8).
    BadTensorLength { expected: u32, found: u32 },
    /// A numeric field is out of its allowed range (field id as in `docs/blob-format.md`, value as bits).
    BadField { field: u8, value: u32 },
    /// A limit from `blob::format::MAX_*` is exceeded.
    LimitExceeded { field: u8, value: u32, max: u32 },
    /// A required section is missing for the declared denoiser kind.
    MissingSection { id: u8 },
    /// The metadata area is malformed (bad length, or not UTF-8).
    BadMetadata { offset: u32 },
    /// A float that must be finite (and, where stated, positive) is not.
    NonFinite { field: u8 },
    /// The CRC-32 over the header's first 60 bytes does not match the one stored in bytes 60..64.
    HeaderChecksumMismatch { stored: u32, computed: u32 },
    /// The slice is longer than the total length recorded in the header.
    TrailingBytes { declared: u32, available: u32 },
    /// A section's `rows x cols` disagrees with the shape its kind needs for the header's d, k, L.
    BadShape { id: u8, rows: u32, cols: u32, expected_rows: u32, expected_cols: u32 },
    /// A section is stored in an element type it may not use (lambda, sigmas and a must be f32).
    DTypeNotAllowed { id: u8, code: u8 },
    /// Two section-table entries share an id.
    DuplicateSection { id: u8 },
    /// A section id (below the extension range 0x80..) that the blob's kind does not use.
    UnexpectedSection { id: u8 },
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
            Self::UnknownDType { code } => write!(f, "unknown element type code {code} (expected 0=f32, 1=f16, 2=i8)"),
            Self::UnknownKind { code } => write!(f, "unknown denoiser kind code {code}"),
            Self::BadSection { index } => {
                write!(f, "section-table entry {index} lies outside the payload or overlaps other data")
            }
            Self::BadTensorLength { expected, found } => {
                write!(f, "tensor has {found} bytes, its shape needs {expected}")
            }
            Self::BadField { field, value } => write!(
                f,
                "field {field} ({}) has invalid value {value} (0x{value:08x})",
                crate::blob::format::field::name(field)
            ),
            Self::LimitExceeded { field, value, max } => write!(
                f,
                "field {field} ({}) = {value} exceeds the limit {max}",
                crate::blob::format::field::name(field)
            ),
            Self::MissingSection { id } => {
                write!(f, "required section {id} ({}) is missing", crate::blob::format::section::name(id))
            }
            Self::BadMetadata { offset } => write!(f, "malformed metadata at byte {offset}"),
            Self::NonFinite { field } => {
                write!(f, "field {field} ({}) must be finite", crate::blob::format::field::name(field))
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
                crate::blob::format::section::name(id)
            ),
            Self::DTypeNotAllowed { id, code } => write!(
                f,
                "section {id} ({}) has element type code {code}; it must be f32 (0)",
                crate::blob::format::section::name(id)
            ),
            Self::DuplicateSection { id } => {
                write!(f, "section {id} ({}) appears twice", crate::blob::format::section::name(id))
            }
            Self::UnexpectedSection { id } => write!(f, "section id {id} is not used by this denoiser kind"),
        }
    }
}

impl core::error::Error for BlobError {}
