//! Section ids. Ids `0x80..=0xFF` are *optional extension sections* that a v1 reader skips (after checking
//! their bounds); any other id must be one the blob's kind uses.

id_table! {
    /// A short name for a section id, for `inspect` and error messages.
    fn name { FIRST_EXTENSION..=u8::MAX => "extension", }

    /// Mean `mu`, `1 x d`.
    MU = 1 => "mu",
    /// Eigenvectors as rows, `k x d` (`U^T`).
    U_T = 2 => "u_t",
    /// Eigenvalues `lambda`, `1 x k`, f32, descending.
    LAMBDA = 3 => "lambda",
    /// Sigma grid, `1 x L`, f32, strictly descending.
    SIGMAS = 4 => "sigmas",
    /// Dense per-level weights, `(L*d) x d` (level i occupies rows `i*d .. (i+1)*d`).
    W = 5 => "w",
    /// Per-level offsets `b_i`, `L x d`.
    B = 6 => "b",
    /// Per-level basis matrices `M_i`, `(L*k) x k` (level i occupies rows `i*k .. (i+1)*k`).
    M = 7 => "m",
    /// Per-level complement scales `a_i`, `1 x L`, f32.
    A = 8 => "a",
    /// Mixture weights `pi_j`, `1 x K`, f32, finite, `>= 0`, at least one `> 0` (kind 4).
    WEIGHTS = 9 => "weights",
    /// Per-component floors `c_j`, `1 x K`, f32, finite, `>= 0` (kind 4).
    FLOORS = 10 => "floors",
}

/// First id of the optional extension range.
pub const FIRST_EXTENSION: u8 = 0x80;

/// Whether a section id must be stored as f32 (small vectors used in divisions and interpolation).
pub const fn requires_f32(id: u8) -> bool {
    matches!(id, LAMBDA | SIGMAS | A | WEIGHTS | FLOORS)
}
