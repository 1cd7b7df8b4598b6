//! Field ids used in [`crate::BlobError::BadField`], [`crate::BlobError::LimitExceeded`] and
//! [`crate::BlobError::NonFinite`] payloads (documented in `docs/blob-format.md`).

/// Data dimension d.
pub const DIM: u8 = 1;
/// Rank k of the eigenbasis.
pub const RANK: u8 = 2;
/// Eigenvalues lambda (must be finite, >= 0, descending).
pub const LAMBDA: u8 = 3;
/// Isotropic floor c (finite, >= 0).
pub const FLOOR: u8 = 4;
/// Sigma grid (finite, > 0, strictly descending).
pub const SIGMAS: u8 = 5;
/// Number of sigma levels L.
pub const NUM_SIGMAS: u8 = 6;
/// Per-level complement scale a_i (finite).
pub const COMPLEMENT: u8 = 7;
/// Image shape (channels, height, width); its product must equal d.
pub const SHAPE: u8 = 8;
/// Pixel mapping (scale, offset): finite, scale != 0.
pub const PIXEL_MAP: u8 = 9;
/// Denoiser kind.
pub const KIND: u8 = 10;
/// Number of sections.
pub const NUM_SECTIONS: u8 = 11;
/// Metadata area length / entry count.
pub const METADATA: u8 = 12;
/// A tensor's shape in the section table.
pub const TENSOR_SHAPE: u8 = 13;
/// A reserved header or section-table byte that must be zero.
pub const RESERVED: u8 = 14;
/// The total length recorded in the header (too small to hold header and section table).
pub const TOTAL_LEN: u8 = 15;
/// Tensor values (mean, eigenvectors, weights, offsets) must be finite.
pub const TENSOR_VALUES: u8 = 16;
/// Number of mixture components K (the header's L field for kind 4).
pub const COMPONENTS: u8 = 17;
/// Mixture weights (finite, `>= 0`, at least one `> 0`).
pub const WEIGHTS: u8 = 18;

/// A short name for a field id (`"?"` for unknown ids), for error messages.
pub const fn name(id: u8) -> &'static str {
    match id {
        DIM => "dim",
        RANK => "rank",
        LAMBDA => "lambda",
        FLOOR => "floor",
        SIGMAS => "sigmas",
        NUM_SIGMAS => "num_sigmas",
        COMPLEMENT => "complement scale a",
        SHAPE => "image shape",
        PIXEL_MAP => "pixel map",
        KIND => "kind",
        NUM_SECTIONS => "section count",
        METADATA => "metadata",
        TENSOR_SHAPE => "tensor shape",
        RESERVED => "reserved",
        TOTAL_LEN => "total length",
        TENSOR_VALUES => "tensor values",
        COMPONENTS => "components",
        WEIGHTS => "weights",
        _ => "?",
    }
}
