//! The exact path of [`Moments::add_chunk`](super::Moments::add_chunk) for 8-bit data.
//!
//! When every value of a chunk is exactly what the dataset readers make of an 8-bit pixel level `l`,
//! `v = (l - 127.5) / 127.5` in f32 ([`PixelMap::EDM`](gaussdiff_core::pixel::PixelMap::EDM)), the chunk's moments
//! follow from integers: with `t_i = sum_k l_ki` and `S_ij = sum_k l_ki l_kj` over the chunk's `m` images,
//! ```text
//! mu_i   = (2 t_i - 255 m) / (255 m)
//! M2_ij  = 4 (m S_ij - t_i t_j) / (65025 m)
//! ```
//! Both numerators are exact integers and each formula rounds once, so the chunk's mean and `M2` are the
//! correctly rounded moments of the exact pixel values `(2 l - 255) / 255` (which the f32 values approximate
//! to within 2^-24, relative). `t` and `S` come from [`gaussdiff_gram`]: `S` with AVX-512 VNNI byte
//! products, about 3x faster than the f64 product of the general path on the same cores (`cargo bench -p
//! gaussdiff-gram`). The result is one exact integer computation, so it does not depend on the thread
//! count or the kernel.

use gaussdiff_gram::{Kernel, LevelGram};
use rayon::prelude::*;

/// Images per parallel task of the level pass.
const IMAGE_BLOCK: usize = 64;

/// Most images per chunk of the 8-bit path: `m S_ij` and `t_i t_j` stay below `2^48` and `4 (m S - t t^T)`
/// below `2^53`, so the integer formulas are exact in i64 and the one conversion to f64 is exact too.
pub(super) const MAX_ROWS: usize = 1 << 16;

/// Rows per chunk of the 8-bit path in [`moments`](super::moments): eight f64 chunks (about 16 MiB of
/// levels), so a chunk that is not 8-bit falls back to whole f64 chunks, and MNIST's test set is one chunk.
pub(super) fn chunk_rows(d: usize) -> usize {
    (8 * super::chunk_rows(d)).min(MAX_ROWS)
}

/// When [`Moments`](super::Moments) takes the exact 8-bit path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelPath {
    /// For 8-bit data on CPUs with AVX-512 VNNI (elsewhere the f64 product is faster than the portable
    /// integer kernel).
    Auto,
    /// Never: every chunk takes the f64 path.
    Off,
    /// For 8-bit data on any CPU, with the portable integer kernel (tests: it gives the same bits as VNNI).
    Portable,
}

impl LevelPath {
    /// The kernel to use, or `None` for the f64 path.
    pub(super) fn kernel(self) -> Option<Kernel> {
        match self {
            LevelPath::Auto if gaussdiff_gram::vnni_available() => Some(Kernel::Auto),
            LevelPath::Auto | LevelPath::Off => None,
            LevelPath::Portable => Some(Kernel::Portable),
        }
    }
}

/// The level whose model value is `v` and whether `v` is exactly that value: `v * 127.5 + 127.5` rounded to
/// an integer by adding `1.5 * 2^23`, whose sum's low mantissa byte is then the level (for a sum in
/// `[2^23, 2^24)` one unit is one ulp, and `1.5 * 2^23` has a zero low byte). Pure float arithmetic and a bit
/// cast, so the pass over a chunk vectorises (a saturating `f32 as u8` was compiled one lane at a time).
#[inline(always)]
fn level_of(v: f32) -> (u8, bool) {
    const ROUND: f32 = 12_582_912.0;
    let r = v * 127.5 + 127.5 + ROUND;
    let l = r - ROUND;
    let exact = ((l - 127.5) / 127.5 == v) & (0.0..=255.0).contains(&l);
    (r.to_bits() as u8, exact)
}

/// One block of images (`block`, image-major) as levels (`out`), marking in `differs` the pixels that
/// differ from `first`; the output is nonzero if some value is not a level. pulp's SIMD operation, so that
/// its body is compiled for the CPU's widest SIMD (a closure passed to `dispatch` is not inlined into it).
struct LevelBlock<'a> {
    out: &'a mut [u8],
    block: &'a [f32],
    first: &'a [f32],
    differs: &'a mut [u8],
}

impl pulp::WithSimd for LevelBlock<'_> {
    type Output = u8;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> u8 {
        let Self { out, block, first, differs } = self;
        let d = first.len();
        let mut bad = 0u8;
        for (o_img, img) in out.chunks_exact_mut(d).zip(block.chunks_exact(d)) {
            for (o, &v) in o_img.iter_mut().zip(img) {
                let (l, exact) = level_of(v);
                *o = l;
                bad |= u8::from(!exact);
            }
            for ((x, &v), &f) in differs.iter_mut().zip(img).zip(first) {
                *x |= u8::from(v != f);
            }
        }
        bad
    }
}

/// Buffers of the 8-bit path, kept across chunks.
#[derive(Debug, Default)]
pub(super) struct LevelScratch {
    levels: Vec<u8>,
    gram: LevelGram,
}

/// The chunk's moments by the 8-bit path: `mean` (length `d`), the pixels that vary in the chunk (`idx`)
/// and their `M2` (`m2`, `idx.len()` square, row-major, lower triangle), or `false` (buffers
/// unspecified) if some value of `rows` is not an 8-bit level (NaN included) or `rows` holds more than
/// [`MAX_ROWS`] images.
pub(super) fn chunk_moments(
    rows: &[f32],
    d: usize,
    kernel: Kernel,
    scratch: &mut LevelScratch,
    mean: &mut Vec<f64>,
    idx: &mut Vec<usize>,
    m2: &mut Vec<f64>,
) -> bool {
    let m = rows.len() / d;
    if m > MAX_ROWS {
        return false;
    }
    // Levels image-major, and which pixels differ from the first image, in image blocks; stops at the first
    // block with a value that is not a level.
    scratch.levels.resize(m * d, 0);
    let first = &rows[..d];
    let differs = scratch
        .levels
        .par_chunks_mut(IMAGE_BLOCK * d)
        .zip(rows.par_chunks(IMAGE_BLOCK * d))
        .map(|(out, block)| {
            let mut differs = std::vec![0u8; d];
            // Compiled for the widest SIMD this CPU has (pulp's runtime dispatch), so the division vectorises.
            let bad = pulp::Arch::new().dispatch(LevelBlock { out, block, first, differs: &mut differs });
            (bad == 0).then_some(differs)
        })
        .try_reduce(
            || std::vec![0u8; d],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a |= b);
                Some(a)
            },
        );
    let Some(differs) = differs else {
        return false;
    };
    idx.clear();
    idx.extend((0..d).filter(|&p| differs[p] != 0));
    scratch.gram.compute(&scratch.levels, d, idx, kernel);
    let g = &scratch.gram;
    let mi = m as i64;
    // t for every pixel: from the Gram pass for the varying ones, m * level for the constant ones.
    let mut t: Vec<i64> = first.iter().map(|&v| mi * i64::from(level_of(v).0)).collect();
    for (&p, &s) in idx.iter().zip(g.sums()) {
        t[p] = s as i64;
    }
    let den = 255.0 * m as f64;
    mean.clear();
    mean.extend(t.iter().map(|&tp| (2 * tp - 255 * mi) as f64 / den));
    // M2 row-major, lower triangle (row i of the Gram product is contiguous).
    let tv: Vec<i64> = idx.iter().map(|&p| t[p]).collect();
    let dv = idx.len();
    let den = 65025.0 * m as f64;
    m2.clear();
    m2.resize(dv * dv, 0.0);
    m2.par_chunks_mut(dv.max(1)).zip(&tv).enumerate().for_each(|(i, (row, &ti))| {
        for ((out, &s), &tj) in row.iter_mut().zip(g.lower_row(i)).zip(&tv) {
            *out = (4 * (mi * s - ti * tj)) as f64 / den;
        }
    });
    true
}

/// Pixels per parallel task of [`centred_gram`]'s level pass (1 KiB of each image's f32 row).
const PIXEL_BLOCK: usize = 256;

/// Images per tile of [`centred_gram`]'s level pass.
const IMAGE_TILE: usize = 64;

/// One block of pixels of every image, as levels transposed (pixel-major, `n` per pixel) into `out`, and
/// each pixel's total into `totals`; the output is nonzero if some value is not a level. pulp's SIMD
/// operation (see [`LevelBlock`]).
struct TransposedBlock<'a> {
    out: &'a mut [u8],
    totals: &'a mut [u64],
    images: &'a [f32],
    d: usize,
    p0: usize,
}

impl pulp::WithSimd for TransposedBlock<'_> {
    type Output = u8;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> u8 {
        let Self { out, totals, images, d, p0 } = self;
        let w = totals.len();
        let n = images.len() / d;
        let mut bad = 0u8;
        // Tiles of IMAGE_TILE images: levels image by image into `tile` (pixel-major), then each pixel's
        // row of the tile to its place in `out`, so that `out` is written in runs.
        let mut tile = [[0u8; IMAGE_TILE]; PIXEL_BLOCK];
        let mut lv = [0u8; PIXEL_BLOCK];
        for (t, imgs) in images.chunks(IMAGE_TILE * d).enumerate() {
            let k0 = t * IMAGE_TILE;
            let kt = imgs.len() / d;
            for (kl, img) in imgs.chunks_exact(d).enumerate() {
                for (o, &v) in lv.iter_mut().zip(&img[p0..p0 + w]) {
                    let (l, exact) = level_of(v);
                    *o = l;
                    bad |= u8::from(!exact);
                }
                for (row, &l) in tile.iter_mut().zip(&lv[..w]) {
                    row[kl] = l;
                }
            }
            for (row, dst) in tile.iter().zip(out.chunks_exact_mut(n)) {
                dst[k0..k0 + kt].copy_from_slice(&row[..kt]);
            }
        }
        for (t, row) in totals.iter_mut().zip(out.chunks_exact(n)) {
            *t = row.iter().map(|&l| u64::from(l)).sum();
        }
        bad
    }
}

/// The Gram matrix of the centred images, `G = X_c X_c^T` (`n x n`, lower triangle; the upper one is 0), of
/// `n` images of `d` pixels (`images`, image-major) that are all 8-bit levels, or `None` if some value is not
/// a level. With the levels `l`, the pixel totals `T_p = sum_k l_kp`, `S = L L^T` (by [`LevelGram`], over
/// the pixels) and `r = L T`,
/// ```text
/// G_kl = 4 (n^2 S_kl - n r_k - n r_l + sum_p T_p^2) / (65025 n^2)
/// ```
/// (`x_kp - mu_p = 2 (n l_kp - T_p) / (255 n)`): an integer numerator and one division, so `G` is the
/// correctly rounded Gram matrix of the exact values `(2 l - 255) / 255` while the numerator stays below
/// `2^53` (`n^2 d < 2^37`: 400 images of up to 850,000 pixels), whatever the kernel or thread count.
pub(super) fn centred_gram(images: &[f32], d: usize, kernel: Kernel) -> Option<faer::Mat<f64>> {
    let n = images.len() / d.max(1);
    if n == 0 {
        return None;
    }
    // Levels pixel-major (the rows of the product are the images), pixel blocks in parallel.
    let mut lt = std::vec![0u8; d * n];
    let mut totals = std::vec![0u64; d];
    let bad = lt
        .par_chunks_mut(PIXEL_BLOCK * n)
        .zip(totals.par_chunks_mut(PIXEL_BLOCK))
        .enumerate()
        .map(|(b, (out, totals))| {
            pulp::Arch::new().dispatch(TransposedBlock { out, totals, images, d, p0: b * PIXEL_BLOCK })
        })
        .reduce(|| 0, |a, b| a | b);
    if bad != 0 {
        return None;
    }
    let mut gram = LevelGram::new();
    let all: Vec<usize> = (0..n).collect();
    gram.compute(&lt, n, &all, kernel);
    // r_k = sum_p l_kp T_p, image blocks in parallel (integer sums: any order gives the same result).
    // At most d * 255 * (255 n): u64 holds it for d n < 2^44.
    let mut r = std::vec![0u64; n];
    r.par_chunks_mut(IMAGE_TILE).enumerate().for_each(|(b, rb)| {
        let k0 = b * IMAGE_TILE;
        for (row, &t) in lt.chunks_exact(n).zip(&totals) {
            for (o, &l) in rb.iter_mut().zip(&row[k0..]) {
                *o += u64::from(l) * t;
            }
        }
    });
    drop(lt);
    let c: i128 = totals.iter().map(|&t| i128::from(t) * i128::from(t)).sum();
    let ni = n as i128;
    let den = 16_256.25 * (n as f64) * (n as f64);
    let mut g = faer::Mat::<f64>::zeros(n, n);
    g.par_col_iter_mut().enumerate().for_each(|(l, col)| {
        for (k, o) in col.iter_mut().enumerate().skip(l) {
            let num = ni * ni * i128::from(gram.get(k, l)) - ni * i128::from(r[k] + r[l]) + c;
            *o = num as f64 / den;
        }
    });
    Some(g)
}

#[cfg(test)]
mod tests {
    use super::super::tests::level_data;
    use super::{centred_gram, level_of, Kernel};
    use gaussdiff_core::pixel::PixelMap;

    #[test]
    fn centred_gram_is_the_correctly_rounded_gram_of_the_exact_values() {
        // Shapes across the pixel blocks (256) and image tiles (64); levels 0 and 255 (clamped) and a
        // constant pixel included.
        for (n, d) in [(1, 1), (2, 3), (5, 300), (65, 257), (130, 600)] {
            let (l, x) = level_data(n, d, (n * 7919 + d) as u64);
            let g = centred_gram(&x, d, Kernel::Portable).unwrap();
            let t: Vec<i128> = (0..d).map(|p| (0..n).map(|k| i128::from(l[k * d + p])).sum()).collect();
            let ni = n as i128;
            let den = 16_256.25 * (n * n) as f64;
            for k in 0..n {
                for j in 0..n {
                    let expect = if j > k {
                        0.0
                    } else {
                        let num: i128 = (0..d)
                            .map(|p| (ni * i128::from(l[k * d + p]) - t[p]) * (ni * i128::from(l[j * d + p]) - t[p]))
                            .sum();
                        num as f64 / den
                    };
                    assert_eq!(g[(k, j)], expect, "G[{k}][{j}], n = {n}, d = {d}");
                }
            }
            // The VNNI kernel, where the CPU has it, gives the same bits.
            assert_eq!(centred_gram(&x, d, Kernel::Auto).unwrap(), g);
        }
        let (_, mut x) = level_data(4, 5, 1);
        x[13] = 0.3;
        assert!(centred_gram(&x, 5, Kernel::Portable).is_none(), "a value that is not a level");
        let ones = std::vec![1.0f32; 3 * 4];
        let g = centred_gram(&ones, 4, Kernel::Portable).unwrap();
        assert!(g.col_iter().all(|c| c.iter().all(|&v| v == 0.0)), "constant images: G = 0");
    }

    #[test]
    fn every_level_is_found_exactly_and_other_values_are_not_levels() {
        for l in 0..=255u8 {
            let v = PixelMap::EDM.to_value(f32::from(l));
            assert_eq!(level_of(v), (l, true), "level {l}");
            // The neighbouring floats are not levels.
            for w in [f32::from_bits(v.to_bits() + 1), f32::from_bits(v.to_bits().wrapping_sub(1))] {
                if w.is_finite() && w != v {
                    assert!(!level_of(w).1, "{w} (next to level {l}) taken for a level");
                }
            }
        }
        for v in [-1.0 - 2.0 / 255.0, 1.0 + 2.0 / 255.0, 0.1234, f32::NAN, f32::INFINITY, -f32::INFINITY, 1e9, -1e9] {
            assert!(!level_of(v).1, "{v} taken for a level");
        }
    }
}
