//! Section ids. Ids `0x80..=0xFF` are *optional extension sections* that a v1 reader skips (after checking
//! their bounds); any other id must be one the blob's kind uses.

/// Mean `mu`, `1 x d`.
pub const MU: u8 = 1;
/// Eigenvectors as rows, `k x d` (`U^T`).
pub const U_T: u8 = 2;
/// Eigenvalues `lambda`, `1 x k`, f32, descending.
pub const LAMBDA: u8 = 3;
/// Sigma grid, `1 x L`, f32, strictly descending.
pub const SIGMAS: u8 = 4;
/// Dense per-level weights, `(L*d) x d` (level i occupies rows `i*d .. (i+1)*d`).
pub const W: u8 = 5;
/// Per-level offsets `b_i`, `L x d`.
pub const B: u8 = 6;
/// Per-level basis matrices `M_i`, `(L*k) x k` (level i occupies rows `i*k .. (i+1)*k`).
pub const M: u8 = 7;
/// Per-level complement scales `a_i`, `1 x L`, f32.
pub const A: u8 = 8;
/// Mixture weights `pi_j`, `1 x K`, f32, finite, `>= 0`, at least one `> 0` (kind 4).
pub const WEIGHTS: u8 = 9;
/// Per-component floors `c_j`, `1 x K`, f32, finite, `>= 0` (kind 4).
pub const FLOORS: u8 = 10;
/// First id of the optional extension range.
pub const FIRST_EXTENSION: u8 = 0x80;

/// A short name for a section id, for `inspect` and error messages.
pub const fn name(id: u8) -> &'static str {
    match id {
        MU => "mu",
        U_T => "u_t",
        LAMBDA => "lambda",
        SIGMAS => "sigmas",
        W => "w",
        B => "b",
        M => "m",
        A => "a",
        WEIGHTS => "weights",
        FLOORS => "floors",
        FIRST_EXTENSION..=u8::MAX => "extension",
        _ => "?",
    }
}

/// Whether a section id must be stored as f32 (small vectors used in divisions and interpolation).
pub const fn requires_f32(id: u8) -> bool {
    matches!(id, LAMBDA | SIGMAS | A | WEIGHTS | FLOORS)
}
