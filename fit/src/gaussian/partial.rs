//! The top `k` eigenpairs of a symmetric matrix without the full decomposition, for fits of a fixed small
//! rank (`--rank K`), the way LAPACK's `dsyevx` does it:
//! 1. Householder tridiagonalisation `A = Q T Q^T` (faer, sequential: thread-count independent bits);
//! 2. the `k` largest eigenvalues of `T` by bisection on Sturm counts (eight eigenvalues at a time, so
//!    their independent recurrences overlap), to an absolute accuracy of a few `eps ||T||`;
//! 3. their eigenvectors of `T` by inverse iteration (`dstein`): an LU factorisation of `T - lambda I` with
//!    partial pivoting, four solves from a fixed pseudo-random start, each vector re-orthogonalised against
//!    the earlier ones of its cluster (eigenvalues closer than `1e-3 ||T||`);
//! 4. `Q z` by faer's blocked Householder application (`2 d^2 k` multiply-adds instead of `2 d^3`).
//!
//! Steps 2-4 cost `O(d k)` to `O(d^2 k)`, so for `k <= d / 8` the fit skips most of the
//! divide-and-conquer and back-transformation of a full decomposition. Accuracy is checked against the
//! full decomposition in the tests (eigenvalues to `1e-13 ||A||`, eigenvectors to `1e-10`).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::{evd, householder};
use faer::{Conj, Mat, MatRef, Par};

/// Eigenvalues bisected together.
const LANES: usize = 8;

/// Inverse-iteration solves per eigenvector.
const SOLVES: usize = 4;

/// Eigenvalues closer than this times `||T||` form a cluster whose vectors are orthogonalised.
const CLUSTER: f64 = 1e-3;

/// Whether the partial solver pays off for `k` of `n` eigenpairs.
pub(super) fn worthwhile(k: usize, n: usize) -> bool {
    k >= 1 && 8 * k <= n
}

/// The `k` largest eigenvalues of the symmetric `a` (lower triangle read), descending, and their
/// eigenvectors as the columns of an `n x k` matrix (signs not yet fixed).
pub(super) fn top_eigenpairs(a: MatRef<'_, f64>, k: usize) -> (Vec<f64>, Mat<f64>) {
    let n = a.nrows();
    let k = k.min(n);
    // 1. T = Q^T A Q, with Q as Householder reflectors below T's subdiagonal and block factors in `h`.
    let mut trid = Mat::<f64>::zeros(n, n);
    trid.copy_from_triangular_lower(a);
    let bs = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(n, n);
    let mut h = Mat::<f64>::zeros(bs, n.saturating_sub(1));
    let params = super::sequential_tridiag();
    let mut mem = MemBuffer::new(evd::tridiag::tridiag_in_place_scratch::<f64>(n, Par::Seq, params.into()));
    evd::tridiag::tridiag_in_place(trid.as_mut(), h.as_mut(), Par::Seq, MemStack::new(&mut mem), params.into());
    let d: Vec<f64> = (0..n).map(|i| trid[(i, i)]).collect();
    let e: Vec<f64> = (0..n.saturating_sub(1)).map(|i| trid[(i + 1, i)]).collect();
    // 2. Eigenvalues n-1, n-2, ... (ascending indices) = the k largest, descending.
    let idx: Vec<usize> = (0..k).map(|j| n - 1 - j).collect();
    let (values, norm) = bisect(&d, &e, &idx);
    // 3. Eigenvectors of T.
    let mut z = Mat::<f64>::zeros(n, k);
    let mut cluster_start = 0;
    for j in 0..k {
        if j > 0 && values[j - 1] - values[j] > CLUSTER * norm {
            cluster_start = j;
        }
        let x = inverse_iteration(&d, &e, values[j], norm, z.as_ref().subcols(cluster_start, j - cluster_start), j);
        z.col_mut(j).iter_mut().zip(&x).for_each(|(o, &v)| *o = v);
    }
    // 4. Q z (Q's first row and column are e_1).
    if n > 1 {
        let req = householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(n - 1, bs, k);
        let mut mem = MemBuffer::new(req);
        householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            trid.as_ref().submatrix(1, 0, n - 1, n - 1),
            h.as_ref(),
            Conj::No,
            z.as_mut().subrows_mut(1, n - 1),
            super::par(),
            MemStack::new(&mut mem),
        );
    }
    (values, z)
}

/// The eigenvalues of the tridiagonal `(d, e)` with ascending indices `idx`, by bisection, and the bound
/// `||T||` used for the tolerances (Gershgorin).
fn bisect(d: &[f64], e: &[f64], idx: &[usize]) -> (Vec<f64>, f64) {
    let n = d.len();
    let e2: Vec<f64> = e.iter().map(|x| x * x).collect();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..n {
        let r = if i > 0 { e[i - 1].abs() } else { 0.0 } + if i + 1 < n { e[i].abs() } else { 0.0 };
        lo = lo.min(d[i] - r);
        hi = hi.max(d[i] + r);
    }
    let norm = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
    let pivmin = f64::MIN_POSITIVE * e2.iter().fold(1.0f64, |m, &x| m.max(x));
    let tol = 2.0 * f64::EPSILON * norm;
    lo -= tol;
    hi += tol;
    let mut out = Vec::with_capacity(idx.len());
    for batch in idx.chunks(LANES) {
        let (mut a, mut b) = ([lo; LANES], [hi; LANES]);
        let mut target = [0usize; LANES];
        target[..batch.len()].copy_from_slice(batch);
        // Each step halves every interval; ~60 steps reach the tolerance from the Gershgorin interval.
        while (0..batch.len()).any(|l| b[l] - a[l] > tol + 2.0 * f64::EPSILON * a[l].abs().max(b[l].abs())) {
            let mid: [f64; LANES] = core::array::from_fn(|l| 0.5 * (a[l] + b[l]));
            // Sturm count: the number of eigenvalues below mid = the negative pivots of T - mid I = L D L^T.
            let mut q = [0.0f64; LANES];
            let mut below = [0usize; LANES];
            for l in 0..LANES {
                q[l] = d[0] - mid[l];
                if q[l].abs() < pivmin {
                    q[l] = -pivmin;
                }
                below[l] = usize::from(q[l] < 0.0);
            }
            for (&di, &ei) in d[1..].iter().zip(&e2) {
                for l in 0..LANES {
                    let mut v = di - mid[l] - ei / q[l];
                    if v.abs() < pivmin {
                        v = -pivmin;
                    }
                    q[l] = v;
                    below[l] += usize::from(v < 0.0);
                }
            }
            for l in 0..LANES {
                if below[l] > target[l] {
                    b[l] = mid[l];
                } else {
                    a[l] = mid[l];
                }
            }
        }
        out.extend((0..batch.len()).map(|l| 0.5 * (a[l] + b[l])));
    }
    (out, norm)
}

/// The unit eigenvector of the tridiagonal `(d, e)` for the eigenvalue `lambda`, orthogonal to the columns
/// of `cluster` (earlier vectors of nearby eigenvalues). `j` seeds the start vector.
fn inverse_iteration(d: &[f64], e: &[f64], lambda: f64, norm: f64, cluster: MatRef<'_, f64>, j: usize) -> Vec<f64> {
    let n = d.len();
    if n == 1 {
        return std::vec![1.0];
    }
    // P (T - lambda I) = L U with partial pivoting: U has diagonal `a`, superdiagonals `b` and `b2`; L has
    // the multipliers `m`; `swap[k]` when rows k and k + 1 were exchanged (LAPACK's dlagtf). A zero pivot
    // becomes eps ||T||, which only scales the solution.
    let tiny = f64::EPSILON * norm;
    let mut a: Vec<f64> = d.iter().map(|x| x - lambda).collect();
    let mut b = e.to_vec();
    let mut b2 = std::vec![0.0f64; n - 1];
    let mut m = std::vec![0.0f64; n - 1];
    let mut swap = std::vec![false; n - 1];
    for k in 0..n - 1 {
        let c = e[k];
        if a[k].abs() >= c.abs() {
            if a[k] == 0.0 {
                a[k] = tiny;
            }
            m[k] = c / a[k];
            a[k + 1] -= m[k] * b[k];
        } else {
            swap[k] = true;
            m[k] = a[k] / c;
            a[k] = c;
            let t = a[k + 1];
            a[k + 1] = b[k] - m[k] * t;
            if k + 2 < n {
                b2[k] = b[k + 1];
                b[k + 1] = -m[k] * b2[k];
            }
            b[k] = t;
        }
    }
    if a[n - 1] == 0.0 {
        a[n - 1] = tiny;
    }
    // A fixed pseudo-random start (xorshift), so results are reproducible.
    let mut s = (j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut x: Vec<f64> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    for _ in 0..SOLVES {
        orthogonalise(&mut x, cluster);
        for k in 0..n - 1 {
            if swap[k] {
                x.swap(k, k + 1);
            }
            x[k + 1] -= m[k] * x[k];
        }
        x[n - 1] /= a[n - 1];
        x[n - 2] = (x[n - 2] - b[n - 2] * x[n - 1]) / a[n - 2];
        for k in (0..n - 2).rev() {
            x[k] = (x[k] - b[k] * x[k + 1] - b2[k] * x[k + 2]) / a[k];
        }
        normalise(&mut x);
    }
    orthogonalise(&mut x, cluster);
    normalise(&mut x);
    x
}

/// `x -= (x . c) c` for each column `c` in turn (modified Gram-Schmidt).
fn orthogonalise(x: &mut [f64], cols: MatRef<'_, f64>) {
    for c in cols.col_iter() {
        let dot: f64 = c.iter().zip(x.iter()).map(|(a, b)| a * b).sum();
        x.iter_mut().zip(c.iter()).for_each(|(v, &cv)| *v -= dot * cv);
    }
}

fn normalise(x: &mut [f64]) {
    let s = 1.0 / x.iter().map(|v| v * v).sum::<f64>().sqrt();
    x.iter_mut().for_each(|v| *v *= s);
}
