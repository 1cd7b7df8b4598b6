//! Both kernels against a plain i64 reference, on edge shapes (padding of pixels and images, cache blocks,
//! several passes) and extreme levels.

use super::*;

/// Deterministic levels from a 64-bit LCG.
fn levels(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

fn reference(rows: &[u8], d: usize, cols: &[usize]) -> (Vec<u64>, Vec<i64>) {
    let p = cols.len();
    let mut t = vec![0u64; p];
    let mut s = vec![0i64; p * p];
    for img in rows.chunks_exact(d) {
        for (i, &ci) in cols.iter().enumerate() {
            t[i] += u64::from(img[ci]);
            for (j, &cj) in cols.iter().enumerate() {
                s[i * p + j] += i64::from(img[ci]) * i64::from(img[cj]);
            }
        }
    }
    (t, s)
}

fn check(rows: &[u8], d: usize, cols: &[usize]) {
    let (t, s) = reference(rows, d, cols);
    let p = cols.len();
    for kernel in [Kernel::Portable, Kernel::Auto] {
        let mut g = LevelGram::new();
        g.compute(rows, d, cols, kernel);
        assert_eq!(g.dim(), p);
        assert_eq!(g.sums(), &t[..], "{kernel:?}: sums, m = {}, p = {p}", rows.len() / d);
        for i in 0..p {
            for j in 0..p {
                assert_eq!(g.get(i, j), s[i * p + j], "{kernel:?}: S[{i}][{j}], m = {}, p = {p}", rows.len() / d);
            }
        }
    }
}

#[test]
fn both_kernels_match_the_reference_on_edge_shapes() {
    eprintln!("AVX-512 VNNI kernel available: {}", vnni_available());
    for (m, d) in [(1, 1), (3, 5), (4, 16), (5, 17), (9, 48), (13, 49), (1023, 20), (1025, 33), (2100, 100)] {
        let rows = levels(m * d, (m * 1000 + d) as u64);
        let all: Vec<usize> = (0..d).collect();
        check(&rows, d, &all);
        // A permuted subset (the fit leaves constant pixels out).
        let some: Vec<usize> = (0..d).rev().filter(|c| c % 3 != 1).collect();
        check(&rows, d, &some);
        // Ascending runs of several pixels with gaps, as an image's varying pixels come.
        let rows_of_runs: Vec<usize> = (0..d).filter(|c| c % 7 < 4 || c % 11 == 5).collect();
        check(&rows, d, &rows_of_runs);
    }
}

#[test]
fn runs_cover_the_selection_in_order() {
    for cols in [vec![], vec![3], vec![0, 1, 2, 5, 6, 9], vec![4, 3, 2], vec![1, 2, 2, 3]] {
        let rs = runs(&cols);
        let mut back = Vec::new();
        for r in &rs {
            assert_eq!(r.dst, back.len(), "{cols:?}");
            back.extend(r.src..r.src + r.len);
        }
        assert_eq!(back, cols);
        // Maximal runs: no run continues the previous one.
        assert!(rs.windows(2).all(|w| w[0].src + w[0].len != w[1].src), "{cols:?}");
    }
    assert_eq!(runs(&[0, 1, 2, 5, 6, 9]).len(), 3);
}

#[test]
fn extreme_levels_and_several_passes_are_exact() {
    // All 255 over more than one pass: |C| reaches 255 * 128 * 65,536 in the first pass.
    let d = 3;
    let m = MAX_IMAGES_PER_PASS + 5;
    let rows = vec![255u8; m * d];
    check(&rows, d, &[0, 1, 2]);
    // Alternating 0 and 255 and a constant column.
    let rows: Vec<u8> = (0..m * d)
        .map(|k| {
            if k % d == 2 {
                7
            } else if (k / d) % 2 == 0 {
                0
            } else {
                255
            }
        })
        .collect();
    check(&rows, d, &[0, 1, 2]);
}

#[test]
fn no_columns_and_no_images_give_empty_or_zero_results() {
    let mut g = LevelGram::new();
    g.compute(&[1, 2, 3, 4], 2, &[], Kernel::Auto);
    assert_eq!(g.dim(), 0);
    g.compute(&[], 2, &[0, 1], Kernel::Auto);
    assert_eq!(g.sums(), &[0, 0]);
    assert_eq!(g.get(1, 0), 0);
}
