//! Fitting the Gaussian `N(mu, Sigma)` of a dataset (feature `fit`): streaming f64 moments, the symmetric
//! eigendecomposition `Sigma = U diag(lambda) U^T`, rank and floor selection, and the conversion to
//! [`GaussianParams`] for the blob writer.
//!
//! # Moments (one pass, memory `O(d^2)`)
//! Images are consumed in chunks of `m` rows. For a chunk `B` with mean `mu_B` and centred rows,
//! `M2_B = sum_i (x_i - mu_B)(x_i - mu_B)^T` is one matrix product (faer, lower triangle only), and the
//! running totals `A` are merged with the pairwise update of Chan, Golub & LeVeque (1979):
//! ```text
//! n = n_A + n_B,   delta = mu_B - mu_A
//! mu = mu_A + delta n_B / n
//! M2 = M2_A + M2_B + delta delta^T n_A n_B / n
//! ```
//! so chunks, or [`Moments`] built on different machines, merge in any grouping. The covariance is the
//! empirical `Sigma = M2 / n` ([`DDOF`] = 0, as in Li et al.; `np.cov(x, bias=True)`).
//!
//! # Two paths for a chunk
//! - **8-bit data** (every value exactly a reader's `(l - 127.5) / 127.5`; MNIST, Frey, CIFAR-10, image
//!   folders), on CPUs with AVX-512 VNNI: the chunk's sums and Gram product of the integer levels, exact,
//!   from the `gaussdiff-gram` crate, and `mu_B`, `M2_B` from them with one rounding each (`fit/levels.rs`;
//!   [`LevelPath`]). Chunks of up to eight f64 chunks (MNIST's test set is one).
//! - **Anything else** (or [`LevelPath::Off`]): the chunk mean in f64, then `M2_B` as one f64 product of
//!   the centred chunk (below).
//!
//! The 8-bit path gives the moments of the exact pixel values, which the f32 values approximate to 2^-24;
//! the two paths agree to that precision (tested), and a dataset mixing both kinds of chunk merges as usual.
//!
//! # Determinism
//! Results are bit-identical for the same input regardless of the number of threads (tested through the
//! CLI with `RAYON_NUM_THREADS` = 1, 2, 3). The 8-bit path is integer arithmetic up to one rounding per
//! entry, so neither threads nor kernel (VNNI or portable) change a bit. On the f64 path each chunk's
//! product is one faer triangular product on the current rayon pool, and faer splits a product over
//! threads by output tiles while summing every entry in the same order, so the thread count changes who
//! computes an entry, not how. The eigendecomposition uses
//! the threads for its divide-and-conquer and back-transformation (likewise thread-count independent); its
//! tridiagonal reduction, whose parallel path sums per-thread partial vectors, runs sequentially.
//! The partial solver of fixed-rank fits (`fit/partial.rs`) is sequential up to faer's Householder
//! application, which is thread-count independent like the back-transformation above.
//! Eigenvalues are re-sorted descending (faer returns them ascending) and each eigenvector's sign is fixed
//! so that its largest-magnitude component (the first one on a tie) is positive, so exported blobs are
//! byte-reproducible.
//!
//! Across machines bits can differ: a CPU without AVX-512 VNNI takes the f64 path for 8-bit data (results
//! within ~2^-24 relative of the 8-bit path's), and faer's and pulp's kernels sum in an order that depends
//! on the SIMD width the CPU offers.
//!
//! # Speed
//! On the 8-bit path `vpdpbusd` does 64 byte multiply-adds per instruction (`cargo bench -p
//! gaussdiff-gram`: about 4x faster than the f64 product for an MNIST chunk). On the f64 path the chunk is
//! transposed to pixel-major (`m x d` column-major) before the product `A^T A`, so both
//! operands are read along their contiguous dimension; only the lower triangle is computed (half the
//! multiply-adds of a full Gram product).
//!
//! # Eigenpairs
//! [`Rank::Full`] and [`Rank::Variance`] take faer's full decomposition ([`eigh_descending`]);
//! [`Rank::Fixed`] `k` takes [`eigh_top`], which computes only the top `k` pairs when `8 k <= d` (after
//! deflation), with the trace as the total variance.
//!
//! # Rank and floor
//! [`Rank::Fixed`] `k` must satisfy `1 <= k <= min(d, n - 1)` (a sample covariance has rank at most
//! `n - 1`); [`Rank::Variance`] `f` picks the smallest `k` whose eigenvalues explain a fraction `>= f` of
//! the trace, capped at `min(d, n - 1)`. [`Floor::Auto`] sets `c` to the mean of the discarded eigenvalues
//! `lambda_{k+1..d}`, the maximum-likelihood isotropic variance of the complement (0 when `k = d`).

use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use gaussdiff_core::blob::write::GaussianParams;
pub use levels::LevelPath;

mod levels;
mod partial;
mod randomized;
mod thin;
use gaussdiff_core::pixel::ImageShape;

/// Why a fit failed. Messages name the value and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// No images.
    #[error("empty dataset: expected at least 2 images to estimate a covariance, found {n}")]
    TooFewImages {
        /// Number of images.
        n: usize,
    },
    /// The data length is not a multiple of `d`, or `d` is 0.
    #[error("data of {len} values is not a whole number of images of dimension {d}")]
    Shape {
        /// Number of values.
        len: usize,
        /// Dimension.
        d: usize,
    },
    /// A NaN or infinity in the data.
    #[error("non-finite value {value} at image {image}, pixel {pixel}: expected finite data")]
    NonFinite {
        /// Image index (in the order pushed).
        image: usize,
        /// Pixel index.
        pixel: usize,
        /// The value.
        value: f32,
    },
    /// `--rank` out of range.
    #[error("rank {k} is out of range: expected 1 <= rank <= min(d = {d}, n - 1 = {})", n.saturating_sub(1))]
    Rank {
        /// Requested rank.
        k: usize,
        /// Dimension.
        d: usize,
        /// Number of images.
        n: usize,
    },
    /// `--variance` out of range.
    #[error("variance fraction {0} is out of range: expected 0 < fraction <= 1")]
    Variance(f64),
    /// `--floor` out of range.
    #[error("floor {0} is out of range: expected a finite value >= 0")]
    Floor(f64),
    /// Two [`Moments`] of different dimension.
    #[error("cannot merge moments of dimension {0} and {1}")]
    DimMismatch(usize, usize),
    /// The eigensolver did not converge.
    #[error("eigendecomposition failed: {0}")]
    Eigen(String),
}

/// The covariance's normalisation, `Sigma = M2 / (n - DDOF)`: 0, the empirical covariance of the data as a
/// distribution (the maximum-likelihood estimate, and the Gaussian whose optimal denoiser Li et al. compare
/// trained networks with). One normalisation for the whole project: blobs, the trainer and the docs.
pub const DDOF: u64 = 0;

/// Running count, mean and centred second moment `M2` of `d`-dimensional data, in f64.
#[derive(Clone, Debug)]
pub struct Moments {
    n: u64,
    mean: Vec<f64>,
    /// `d x d` column-major; only the lower triangle is maintained.
    m2: Mat<f64>,
}

/// Buffers of [`Moments::add_rows`]: the centred chunk and its Gram product (f64 path), the
/// levels and their Gram product (8-bit path).
#[derive(Default)]
struct ChunkScratch {
    a: Vec<f64>,
    m2: Vec<f64>,
    levels: levels::LevelScratch,
}

/// Images per tile of the chunk transpose in [`Moments::add_chunk`].
const TILE: usize = 32;

/// Pixels per parallel task of the chunk's mean pass and transpose.
const PIXEL_BLOCK: usize = 64;

/// Parallelism for the Gram product and the eigensolver: all threads of the current rayon pool
/// (`RAYON_NUM_THREADS` caps it). Results do not depend on it (see the module notes on determinism).
fn par() -> Par {
    Par::rayon(0)
}

/// Rows per chunk for [`moments`]: about 16 MiB of f64 per chunk, between 256 and 4096 rows.
pub fn chunk_rows(d: usize) -> usize {
    ((2usize << 20) / d.max(1)).clamp(256, 4096)
}

impl Moments {
    /// Empty moments of dimension `d`.
    pub fn new(d: usize) -> Self {
        Self { n: 0, mean: std::vec![0.0; d], m2: Mat::zeros(d, d) }
    }

    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Number of images seen.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The mean (length `d`).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Add a chunk of `rows.len() / d` images (row-major) with the pairwise update.
    ///
    /// # Errors
    /// [`FitError::Shape`] if `rows.len()` is not a multiple of `d`, [`FitError::NonFinite`] for NaN or
    /// infinite values (the moments are left unchanged).
    pub fn add_chunk(&mut self, rows: &[f32]) -> Result<(), FitError> {
        let rows_per_f64_chunk = rows.len() / self.dim().max(1);
        self.add_rows(rows, LevelPath::Auto, rows_per_f64_chunk, &mut ChunkScratch::default())
    }

    /// The 8-bit path for all of `rows` if `path` allows it and they are 8-bit levels, else the f64 path in
    /// chunks of `rows_per_f64_chunk` images. Buffers are kept across calls in `scratch`.
    fn add_rows(
        &mut self,
        rows: &[f32],
        path: LevelPath,
        rows_per_f64_chunk: usize,
        scratch: &mut ChunkScratch,
    ) -> Result<(), FitError> {
        let d = self.dim();
        if d == 0 || !rows.len().is_multiple_of(d) {
            return Err(FitError::Shape { len: rows.len(), d });
        }
        if let Some(kernel) = path.kernel() {
            if self.add_levels(rows, kernel, scratch) {
                return Ok(());
            }
        }
        for chunk in rows.chunks(rows_per_f64_chunk.max(1) * d) {
            self.add_f64_chunk(chunk, scratch)?;
        }
        Ok(())
    }

    /// The f64 path for one chunk (`rows` a whole number of images, at least one).
    fn add_f64_chunk(&mut self, rows: &[f32], scratch: &mut ChunkScratch) -> Result<(), FitError> {
        let d = self.dim();
        let m = rows.len() / d;
        // Chunk mean, summed in image order (one pass over the f32 rows, vectorised across pixels). A NaN
        // or infinity makes its pixel's sum non-finite (f32 values cannot overflow an f64 sum), and only
        // then is the data searched for the first bad value.
        let mut mean_b = std::vec![0.0f64; d];
        let first = &rows[..d];
        let mut differs = std::vec![0u8; d];
        // Pixel blocks in parallel; every pixel's sum still runs over the images in order, so the bits do
        // not depend on the thread count.
        mean_b.par_chunks_mut(PIXEL_BLOCK).zip(differs.par_chunks_mut(PIXEL_BLOCK)).enumerate().for_each(
            |(blk, (sums, diff))| {
                let p0 = blk * PIXEL_BLOCK;
                let f = &first[p0..p0 + sums.len()];
                for img in rows.chunks_exact(d) {
                    let seg = &img[p0..p0 + sums.len()];
                    for (((s, v), f), x) in sums.iter_mut().zip(seg).zip(f).zip(diff.iter_mut()) {
                        *s += f64::from(*v);
                        *x |= u8::from(v != f);
                    }
                }
            },
        );
        if mean_b.iter().any(|s| !s.is_finite()) {
            if let Some(pos) = rows.iter().position(|v| !v.is_finite()) {
                return Err(FitError::NonFinite { image: self.n as usize + pos / d, pixel: pos % d, value: rows[pos] });
            }
        }
        let inv_m = 1.0 / m as f64;
        mean_b.iter_mut().for_each(|s| *s *= inv_m);
        // The mean of a constant pixel is its value, exactly (sum * (1/m) can be off by an ulp), so a pixel
        // constant over every chunk keeps delta = 0 in the merge and an exactly zero covariance row.
        for ((mu, &f), &x) in mean_b.iter_mut().zip(first).zip(&differs) {
            if x == 0 {
                *mu = f64::from(f);
            }
        }
        // Pixels constant over the chunk (an image border) have an exactly zero row and column in M2_B:
        // they are left out of the product (MNIST: about 150 of 784 pixels per chunk, a third of the
        // multiply-adds). Without such pixels nothing changes.
        let idx: Vec<usize> = (0..d).filter(|&p| differs[p] != 0).collect();
        let dv = idx.len();
        // The centred chunk pixel-major: an m x dv column-major matrix, column c = pixel idx[c] of every
        // image, so the Gram product below reads both operands along their contiguous dimension (about
        // 1.3x faster than the image-major layout). The transpose goes in tiles of TILE images.
        scratch.a.resize(m * dv, 0.0);
        // Column blocks in parallel (disjoint outputs; no arithmetic but the subtraction).
        scratch.a[..m * dv].par_chunks_mut(m * PIXEL_BLOCK).enumerate().for_each(|(blk, cols)| {
            let c0 = blk * PIXEL_BLOCK;
            let pixels = &idx[c0..c0 + cols.len() / m];
            let mut i0 = 0;
            while i0 < m {
                let h = TILE.min(m - i0);
                let tile = &rows[i0 * d..(i0 + h) * d];
                for (col, &p) in cols.chunks_exact_mut(m).zip(pixels) {
                    let mu = mean_b[p];
                    for (v, img) in col[i0..i0 + h].iter_mut().zip(tile.chunks_exact(d)) {
                        *v = f64::from(img[p]) - mu;
                    }
                }
                i0 += h;
            }
        });
        let a = MatRef::from_column_major_slice(&scratch.a[..m * dv], m, dv);
        // M2_B (lower triangle) = A^T A. faer's product splits the output over the threads but sums every
        // entry in the same order whatever the thread count, so the bits do not depend on it (tested).
        // Only the lower triangle of the buffer is written and read.
        scratch.m2.resize(dv * dv, 0.0);
        let mut m2_b = MatMut::from_column_major_slice_mut(&mut scratch.m2[..dv * dv], dv, dv);
        triangular::matmul(
            m2_b.rb_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            a.transpose(),
            BlockStructure::Rectangular,
            a,
            BlockStructure::Rectangular,
            1.0,
            par(),
        );
        let varying = if dv == d { None } else { Some(idx.as_slice()) };
        self.merge_parts(m as u64, &mean_b, m2_b.rb(), varying);
        Ok(())
    }

    /// The 8-bit path (see [`levels`]): `false`, with nothing changed, if the chunk is not 8-bit levels.
    fn add_levels(&mut self, rows: &[f32], kernel: gaussdiff_gram::Kernel, scratch: &mut ChunkScratch) -> bool {
        let d = self.dim();
        let (mut mean_b, mut idx) = (Vec::new(), Vec::new());
        if rows.is_empty()
            || !levels::chunk_moments(rows, d, kernel, &mut scratch.levels, &mut mean_b, &mut idx, &mut scratch.m2)
        {
            return false;
        }
        let dv = idx.len();
        let m2_b = MatRef::from_row_major_slice(&scratch.m2[..dv * dv], dv, dv);
        let varying = if dv == d { None } else { Some(idx.as_slice()) };
        self.merge_parts((rows.len() / d) as u64, &mean_b, m2_b, varying);
        true
    }

    /// Merge another set of moments into this one (Chan et al.'s pairwise update).
    ///
    /// # Errors
    /// [`FitError::DimMismatch`] if the dimensions differ.
    pub fn merge(&mut self, other: &Moments) -> Result<(), FitError> {
        if other.dim() != self.dim() {
            return Err(FitError::DimMismatch(self.dim(), other.dim()));
        }
        self.merge_parts(other.n, &other.mean, other.m2.as_ref(), None);
        Ok(())
    }

    /// Chan's update with `M2_B` given for the pixels `varying` (all pixels if `None`; `M2_B` rows and
    /// columns of the others are exactly 0).
    fn merge_parts(&mut self, n_b: u64, mean_b: &[f64], m2_b: MatRef<'_, f64>, varying: Option<&[usize]>) {
        if n_b == 0 {
            return;
        }
        let d = self.dim();
        let n_a = self.n;
        let n = n_a + n_b;
        let delta: Vec<f64> = mean_b.iter().zip(&self.mean).map(|(b, a)| b - a).collect();
        let w = n_a as f64 * n_b as f64 / n as f64;
        let frac_b = n_b as f64 / n as f64;
        // Columns in parallel: every entry is updated once, by the same expression, whatever the threads.
        match varying {
            None => self.m2.par_col_iter_mut().enumerate().for_each(|(j, col)| {
                let wj = w * delta[j];
                let dst = col.subrows_mut(j, d - j);
                let src = m2_b.col(j).subrows(j, d - j);
                for ((a, b), dl) in dst.iter_mut().zip(src.iter()).zip(&delta[j..]) {
                    *a += *b + wj * dl;
                }
            }),
            Some(idx) => {
                // pos[p] = row/column of pixel p in the compact M2_B.
                let mut pos = std::vec![usize::MAX; d];
                for (c, &p) in idx.iter().enumerate() {
                    pos[p] = c;
                }
                self.m2.par_col_iter_mut().enumerate().for_each(|(j, mut col)| {
                    let wj = w * delta[j];
                    let pj = pos[j];
                    for i in j..d {
                        let b = if pj == usize::MAX || pos[i] == usize::MAX { 0.0 } else { m2_b[(pos[i], pj)] };
                        col[i] += b + wj * delta[i];
                    }
                });
            }
        }
        for (mu, dl) in self.mean.iter_mut().zip(&delta) {
            *mu += dl * frac_b;
        }
        self.n = n;
    }

    /// The empirical covariance `M2 / n` (the project's one normalisation, see [`DDOF`]) as a full
    /// symmetric `d x d` matrix (column-major).
    ///
    /// # Errors
    /// [`FitError::TooFewImages`] if fewer than 2 images were seen.
    pub fn covariance(&self) -> Result<Mat<f64>, FitError> {
        self.scaled_m2(DDOF)
    }

    /// The covariance's lower triangle (the upper one is zero): all the eigensolver reads.
    fn covariance_lower(&self) -> Result<Mat<f64>, FitError> {
        let s = self.scale(DDOF)?;
        let d = self.dim();
        let mut c = Mat::<f64>::zeros(d, d);
        c.par_col_iter_mut().enumerate().for_each(|(j, col)| {
            for (o, &v) in col.subrows_mut(j, d - j).iter_mut().zip(self.m2.col(j).subrows(j, d - j).iter()) {
                *o = v * s;
            }
        });
        Ok(c)
    }

    /// `1 / (n - ddof)`, the factor from `M2` to a covariance.
    fn scale(&self, ddof: u64) -> Result<f64, FitError> {
        if self.n < 2 {
            return Err(FitError::TooFewImages { n: self.n as usize });
        }
        Ok(1.0 / (self.n - ddof) as f64)
    }

    /// `M2 / (n - ddof)`, mirrored from the maintained lower triangle.
    fn scaled_m2(&self, ddof: u64) -> Result<Mat<f64>, FitError> {
        let s = self.scale(ddof)?;
        let d = self.dim();
        Ok(Mat::from_fn(d, d, |i, j| if i >= j { self.m2[(i, j)] * s } else { self.m2[(j, i)] * s }))
    }
}

/// Stream `images` (`n x d`, row-major) through [`Moments`] in chunks of [`chunk_rows`]`(d)`.
///
/// # Errors
/// As [`Moments::add_chunk`].
pub fn moments(images: &[f32], d: usize) -> Result<Moments, FitError> {
    moments_with(images, d, LevelPath::Auto)
}

/// [`moments`] with the choice of the 8-bit path made explicit (tests and benchmarks compare the paths).
///
/// # Errors
/// As [`Moments::add_chunk`].
pub fn moments_with(images: &[f32], d: usize, path: LevelPath) -> Result<Moments, FitError> {
    if d == 0 || !images.len().is_multiple_of(d) {
        return Err(FitError::Shape { len: images.len(), d });
    }
    let mut m = Moments::new(d);
    let mut scratch = ChunkScratch::default();
    // Chunks of the 8-bit path; one that is not 8-bit goes through the f64 path in chunks of
    // `chunk_rows(d)` (a whole number of them, so the f64 path's chunks are the same as without it).
    for big in images.chunks(levels::chunk_rows(d) * d) {
        m.add_rows(big, path, chunk_rows(d), &mut scratch)?;
    }
    Ok(m)
}

/// Eigenvalues (descending) and eigenvectors (rows) of a symmetric matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Eigen {
    /// Eigenvalues, descending.
    pub values: Vec<f64>,
    /// Eigenvectors as rows, `d x d` row-major, row `i` belongs to `values[i]`; sign fixed so the
    /// largest-magnitude component is positive.
    pub vectors: Vec<f64>,
}

/// Symmetric eigendecomposition (faer, lower triangle read), re-sorted descending, signs fixed.
///
/// # Errors
/// [`FitError::Eigen`] if the solver does not converge.
pub fn eigh_descending(sym: MatRef<'_, f64>) -> Result<Eigen, FitError> {
    eigh(sym, None)
}

/// The `k` largest eigenpairs of a symmetric matrix (lower triangle read), as [`eigh_descending`] orders and
/// signs them: by the partial solver of `fit/partial.rs` when `8 k` is at most the dimension left after
/// deflation, else by the full decomposition, truncated.
///
/// # Errors
/// [`FitError::Eigen`] if the full solver does not converge.
pub fn eigh_top(sym: MatRef<'_, f64>, k: usize) -> Result<Eigen, FitError> {
    eigh(sym, Some(k))
}

/// [`eigh_descending`] (`top = None`) or [`eigh_top`].
fn eigh(sym: MatRef<'_, f64>, top: Option<usize>) -> Result<Eigen, FitError> {
    let d = sym.nrows();
    // Exact deflation: a row (and column) of exact zeros, such as a pixel that never changes in the data,
    // is an eigenvector e_p with eigenvalue 0; only the other rows go to the eigensolver (MNIST: 116 of 784
    // pixels, about 40 % of the eigensolver's work), and the kept eigenvectors are exactly 0 there.
    let zero_row = |p: usize| (0..=p).all(|j| sym[(p, j)] == 0.0) && (p..d).all(|i| sym[(i, p)] == 0.0);
    let keep: Vec<usize> = (0..d).filter(|&p| !zero_row(p)).collect();
    let dk = keep.len();
    let reduced;
    let solve_on = if dk == d {
        sym
    } else {
        reduced = Mat::from_fn(dk, dk, |i, j| if i >= j { sym[(keep[i], keep[j])] } else { 0.0 });
        reduced.as_ref()
    };
    // The solver's eigenpairs (faer's full decomposition: ascending; the partial one: descending).
    let (sv, u) = match top {
        Some(k) if k <= dk && partial::worthwhile(k, dk) => partial::top_eigenpairs(solve_on, k),
        _ => evd_lower(solve_on)?,
    };
    // Candidates: the solver's eigenpairs (index j < len), then the deflated e_p (index len + q). Sort
    // descending explicitly (stable on ties, by index).
    let len = sv.len();
    let deflated: Vec<usize> = (0..d).filter(|&p| zero_row(p)).collect();
    let value = |j: usize| if j < len { sv[j] } else { 0.0 };
    let mut order: Vec<usize> = (0..len + deflated.len()).collect();
    order.sort_by(|&a, &b| value(b).total_cmp(&value(a)).then(a.cmp(&b)));
    order.truncate(top.unwrap_or(d).min(d));
    let values: Vec<f64> = order.iter().map(|&j| value(j)).collect();
    // Rows in parallel (each written once, the same way whatever the threads).
    let mut vectors = std::vec![0.0f64; order.len() * d];
    vectors.par_chunks_mut(d.max(1)).zip(&order).for_each(|(row, &j)| {
        if j >= len {
            row[deflated[j - len]] = 1.0;
            return;
        }
        let col = u.col(j);
        let mut arg = 0;
        for i in 1..dk {
            if col[i].abs() > col[arg].abs() {
                arg = i;
            }
        }
        let sign = if col[arg] < 0.0 { -1.0 } else { 1.0 };
        for (i, &p) in keep.iter().enumerate() {
            row[p] = sign * col[i];
        }
    });
    Ok(Eigen { values, vectors })
}

/// faer's tridiagonal reduction, kept sequential: its parallel path sums per-thread partial vectors, so
/// its bits would depend on the thread count (and it measured slower on 2 cores than the sequential one).
fn sequential_tridiag() -> faer::linalg::evd::tridiag::TridiagParams {
    let mut params: faer::linalg::evd::tridiag::TridiagParams = faer::Auto::<f64>::auto();
    params.par_threshold = usize::MAX;
    params
}

/// faer's symmetric eigendecomposition of the lower triangle of `sym`: eigenvalues ascending, eigenvectors
/// as columns.
fn evd_lower(sym: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>), FitError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd;
    let d = sym.nrows();
    if d == 0 {
        // Everything deflated (zero-variance data): faer's scratch size would underflow on 0 x 0.
        return Ok((Vec::new(), Mat::<f64>::zeros(0, 0)));
    }
    let mut s = faer::diag::Diag::<f64>::zeros(d);
    let mut u = Mat::<f64>::zeros(d, d);
    let par = par();
    // The divide-and-conquer and the back-transformation use the threads and give the same bits for any
    // thread count (tested); the tridiagonal reduction is sequential (`sequential_tridiag`).
    let mut params: evd::SelfAdjointEvdParams = faer::Auto::<f64>::auto();
    params.tridiag = sequential_tridiag();
    let req = evd::self_adjoint_evd_scratch::<f64>(d, evd::ComputeEigenvectors::Yes, par, params.into());
    let mut mem = MemBuffer::new(req);
    evd::self_adjoint_evd(sym, s.as_mut(), Some(u.as_mut()), par, MemStack::new(&mut mem), params.into())
        .map_err(|e| FitError::Eigen(std::format!("{e:?}")))?;
    let sv = s.column_vector();
    Ok(((0..d).map(|j| sv[j]).collect(), u))
}

/// How many eigenvectors to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rank {
    /// All `d`.
    Full,
    /// Exactly `k`.
    Fixed(usize),
    /// The smallest `k` explaining at least this fraction of the total variance.
    Variance(f64),
}

/// The isotropic floor `c` for the complement of the kept eigenvectors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Floor {
    /// `c = 0`: the truncated denoiser.
    None,
    /// `c` = mean of the discarded eigenvalues.
    Auto,
    /// A given `c >= 0`.
    Value(f64),
}

impl core::str::FromStr for Floor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "auto" => Ok(Self::Auto),
            v => match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(Self::Value(x)),
                _ => Err(std::format!("invalid floor '{v}': expected none, auto or a finite number >= 0")),
            },
        }
    }
}

/// Options for [`fit`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// Rank selection.
    pub rank: Rank,
    /// Floor selection.
    pub floor: Floor,
}

impl Default for FitOptions {
    /// 99 % of the variance, no floor.
    fn default() -> Self {
        Self { rank: Rank::Variance(0.99), floor: Floor::None }
    }
}

/// A fitted Gaussian in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianFit {
    /// Number of images fitted.
    pub n: usize,
    /// Mean, length `d`.
    pub mean: Vec<f64>,
    /// Eigenvalues of the covariance, descending, negative round-off clamped to 0: all `d` of them, or for
    /// [`Rank::Fixed`] `k` only the top `k` (the partial solver computes no others).
    pub eigenvalues: Vec<f64>,
    /// The total variance: the sum of all `d` eigenvalues, or for [`Rank::Fixed`] the trace of the
    /// covariance (the same sum, without the eigenvalues).
    pub total_variance: f64,
    /// The kept eigenvectors as rows, `rank x d` row-major.
    pub u_t: Vec<f64>,
    /// Number of kept eigenvectors `k`.
    pub rank: usize,
    /// The floor `c`.
    pub floor: f64,
    /// How the eigenpairs were computed.
    pub method: FitMethod,
}

/// How [`fit`] computed the eigenpairs, chosen by the data's shape and the requested rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitMethod {
    /// The `d x d` covariance from streaming moments, then faer's eigensolver (all pairs, or the top `k`
    /// by the partial solver): for `n >= d`, or [`Rank::Full`].
    Covariance,
    /// The `n x n` Gram matrix of the centred data (`thin.rs`): for `n < d`; all nonzero eigenpairs exact.
    Gram,
    /// Randomized subspace iteration streaming over the data (`randomized.rs`): for `n >= d` and a fixed
    /// rank `k` with `16 (k + 16) <= d`; memory `O((m + d) (k + 16))`.
    Randomized {
        /// Passes over the data until the top `k` Ritz values settled.
        passes: usize,
    },
}

impl FitMethod {
    /// A short description for reports.
    pub fn describe(self) -> String {
        match self {
            Self::Covariance => "d x d covariance".into(),
            Self::Gram => "n x n Gram matrix of the centred data (n < d)".into(),
            Self::Randomized { passes } => std::format!("randomized subspace iteration ({passes} passes)"),
        }
    }
}

impl GaussianFit {
    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Fraction of the total variance the kept eigenvalues explain (1 for zero total variance).
    pub fn explained_variance(&self) -> f64 {
        explained(&self.eigenvalues, self.rank, self.total_variance)
    }

    /// The kept eigenvalues (`lambda_1 >= ... >= lambda_k`).
    pub fn lambda(&self) -> &[f64] {
        &self.eigenvalues[..self.rank]
    }

    /// Convert to the writer's f32 parameters.
    ///
    /// # Panics
    /// If `shape.dim() != self.dim()` (caller contract).
    pub fn to_params(&self, shape: ImageShape) -> GaussianParams {
        assert_eq!(shape.dim(), self.dim(), "to_params: shape does not match the fitted dimension");
        GaussianParams {
            shape,
            mu: self.mean.iter().map(|&v| v as f32).collect(),
            u_t: self.u_t.iter().map(|&v| v as f32).collect(),
            lambda: self.lambda().iter().map(|&v| v as f32).collect(),
            floor: self.floor as f32,
        }
    }
}

fn explained(values: &[f64], k: usize, total: f64) -> f64 {
    if total > 0.0 {
        values[..k].iter().sum::<f64>() / total
    } else {
        1.0
    }
}

/// Fit `N(mu, Sigma)` to `images` (`n x d`, row-major) and select rank and floor.
///
/// The method follows the data's shape ([`FitMethod`]): with fewer images than pixels (and a rank other
/// than [`Rank::Full`], which asks for all `d` eigenvectors) the eigenpairs come from the `n x n` Gram
/// matrix, else from the `d x d` covariance.
///
/// # Errors
/// [`FitError`] for a bad shape, fewer than 2 images, non-finite data, or a rank/variance/floor out of range.
pub fn fit(images: &[f32], d: usize, opts: &FitOptions) -> Result<GaussianFit, FitError> {
    if d == 0 || !images.len().is_multiple_of(d) {
        return Err(FitError::Shape { len: images.len(), d });
    }
    let n = images.len() / d;
    if n >= 2 && n < d && opts.rank != Rank::Full {
        return fit_gram(images, d, opts);
    }
    if let Rank::Fixed(k) = opts.rank {
        if n >= d && randomized::worthwhile(k, d) {
            return fit_randomized(images, d, k, opts);
        }
    }
    let m = moments(images, d)?;
    fit_moments(&m, opts)
}

/// Options checked before the expensive part: `1 <= k <= min(d, n - 1)`, `0 < fraction <= 1`, floor `>= 0`.
fn check_options(d: usize, n: usize, opts: &FitOptions) -> Result<(), FitError> {
    let max_k = d.min(n.saturating_sub(1));
    match opts.rank {
        Rank::Fixed(k) if k == 0 || k > max_k => return Err(FitError::Rank { k, d, n }),
        Rank::Variance(f) if !(f > 0.0 && f <= 1.0) => return Err(FitError::Variance(f)),
        _ => {}
    }
    if let Floor::Value(c) = opts.floor {
        if !(c.is_finite() && c >= 0.0) {
            return Err(FitError::Floor(c));
        }
    }
    if n < 2 {
        return Err(FitError::TooFewImages { n });
    }
    Ok(())
}

/// The rank the options select from the descending eigenvalues `values` (at least the top `min(d, n-1)`
/// when the rank is not fixed) and the total variance.
fn select_rank(values: &[f64], total: f64, d: usize, n: usize, rank: Rank) -> usize {
    let max_k = d.min(n.saturating_sub(1));
    match rank {
        Rank::Full => d,
        Rank::Fixed(k) => k,
        Rank::Variance(f) => {
            let mut acc = 0.0;
            let mut k = max_k.max(1);
            for (i, v) in values.iter().enumerate() {
                acc += v;
                if acc >= f * total {
                    k = i + 1;
                    break;
                }
            }
            k.min(max_k.max(1))
        }
    }
}

/// The floor `c` for `rank` kept eigenpairs: the mean of the discarded eigenvalues is the total variance
/// less the kept ones, over `d - rank`.
fn select_floor(values: &[f64], total: f64, d: usize, rank: usize, floor: Floor) -> f64 {
    match floor {
        Floor::None => 0.0,
        Floor::Value(c) => c,
        Floor::Auto if rank < d => (total - values[..rank].iter().sum::<f64>()).max(0.0) / (d - rank) as f64,
        Floor::Auto => 0.0,
    }
}

/// [`fit`] by the Gram matrix (`n < d`, see `thin.rs`).
fn fit_gram(images: &[f32], d: usize, opts: &FitOptions) -> Result<GaussianFit, FitError> {
    let n = images.len() / d;
    check_options(d, n, opts)?;
    // A fixed rank needs only the top k eigenpairs of G (the floor comes from the trace).
    let top = match opts.rank {
        Rank::Fixed(k) => Some(k),
        _ => None,
    };
    let gram = thin::ThinGram::new(images, d, DDOF as usize, top)?;
    let values = gram.values();
    let total_variance = gram.trace().max(0.0);
    let rank = select_rank(&values, total_variance, d, n, opts.rank);
    let floor = select_floor(&values, total_variance, d, rank, opts.floor);
    let u_t = gram.vectors(rank);
    let mut eigenvalues = values;
    eigenvalues.resize(eigenvalues.len().max(rank), 0.0);
    Ok(GaussianFit {
        n,
        mean: gram.mean.clone(),
        eigenvalues,
        total_variance,
        u_t,
        rank,
        floor,
        method: FitMethod::Gram,
    })
}

/// [`fit`] by randomized subspace iteration (`n >= d`, small fixed rank `k`, see `randomized.rs`).
fn fit_randomized(images: &[f32], d: usize, k: usize, opts: &FitOptions) -> Result<GaussianFit, FitError> {
    let n = images.len() / d;
    check_options(d, n, opts)?;
    let r = randomized::top_eigenpairs(images, d, k, DDOF as usize)?;
    let total_variance = r.trace.max(0.0);
    let floor = select_floor(&r.values, total_variance, d, k, opts.floor);
    Ok(GaussianFit {
        n,
        mean: r.mean,
        eigenvalues: r.values,
        total_variance,
        u_t: r.u_t,
        rank: k,
        floor,
        method: FitMethod::Randomized { passes: r.iterations },
    })
}

/// [`fit`] from already accumulated moments (the covariance path).
///
/// # Errors
/// As [`fit`].
pub fn fit_moments(m: &Moments, opts: &FitOptions) -> Result<GaussianFit, FitError> {
    let d = m.dim();
    let n = m.count() as usize;
    check_options(d, n, opts)?;
    let cov = m.covariance_lower()?;
    // A fixed rank needs only the top k eigenpairs (the partial solver, where it pays off) and the total
    // variance, the trace; otherwise all d eigenvalues.
    let partial = matches!(opts.rank, Rank::Fixed(_));
    let eig = match opts.rank {
        Rank::Fixed(k) => eigh_top(cov.as_ref(), k)?,
        _ => eigh_descending(cov.as_ref())?,
    };
    let values: Vec<f64> = eig.values.iter().map(|&v| v.max(0.0)).collect();
    let total_variance = if partial { (0..d).map(|i| cov[(i, i)]).sum::<f64>().max(0.0) } else { values.iter().sum() };
    let rank = select_rank(&values, total_variance, d, n, opts.rank);
    let floor = match opts.floor {
        // All d eigenvalues known: the mean of the discarded ones, summed directly (as before the Gram path).
        Floor::Auto if rank < d && !partial => values[rank..].iter().sum::<f64>() / (d - rank) as f64,
        f => select_floor(&values, total_variance, d, rank, f),
    };
    let mut u_t = eig.vectors;
    u_t.truncate(rank * d);
    Ok(GaussianFit {
        n,
        mean: m.mean().to_vec(),
        eigenvalues: values,
        total_variance,
        u_t,
        rank,
        floor,
        method: FitMethod::Covariance,
    })
}

#[cfg(test)]
mod tests;
