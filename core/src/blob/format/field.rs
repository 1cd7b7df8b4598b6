//! Field ids used in [`crate::BlobError::BadField`], [`crate::BlobError::LimitExceeded`] and
//! [`crate::BlobError::NonFinite`] payloads (documented in `docs/blob-format.md`).

id_table! {
    /// A short name for a field id (`"?"` for unknown ids), for error messages.
    fn name {}

    /// Data dimension d.
    DIM = 1 => "dim",
    /// Rank k of the eigenbasis.
    RANK = 2 => "rank",
    /// Eigenvalues lambda (must be finite, >= 0, descending).
    LAMBDA = 3 => "lambda",
    /// Isotropic floor c (finite, >= 0).
    FLOOR = 4 => "floor",
    /// Sigma grid (finite, > 0, strictly descending).
    SIGMAS = 5 => "sigmas",
    /// Number of sigma levels L.
    NUM_SIGMAS = 6 => "num_sigmas",
    /// Per-level complement scale a_i (finite).
    COMPLEMENT = 7 => "complement scale a",
    /// Image shape (channels, height, width); its product must equal d.
    SHAPE = 8 => "image shape",
    /// Pixel mapping (scale, offset): finite, scale != 0.
    PIXEL_MAP = 9 => "pixel map",
    /// Denoiser kind.
    KIND = 10 => "kind",
    /// Number of sections.
    NUM_SECTIONS = 11 => "section count",
    /// Metadata area length / entry count.
    METADATA = 12 => "metadata",
    /// A tensor's shape in the section table.
    TENSOR_SHAPE = 13 => "tensor shape",
    /// A reserved header or section-table byte that must be zero.
    RESERVED = 14 => "reserved",
    /// The total length recorded in the header (too small to hold header and section table).
    TOTAL_LEN = 15 => "total length",
    /// Tensor values (mean, eigenvectors, weights, offsets) must be finite.
    TENSOR_VALUES = 16 => "tensor values",
    /// Number of mixture components K (the header's L field for kind 4).
    COMPONENTS = 17 => "components",
    /// Mixture weights (finite, `>= 0`, at least one `> 0`).
    WEIGHTS = 18 => "weights",
}
