//! The one nearest-neighbour search of the host tools: exact squared Euclidean distances in model
//! space, each summed in f32 from the first pixel to the last, rows scanned in order (the first of equal
//! distances wins). `gaussdiff sample --nearest`, `gaussdiff demo`, the trainer's memorisation measure
//! and its gallery experiment all use it; [`nearest_rows`] spreads queries over rayon's pool, and the
//! results do not depend on the thread count.

use rayon::prelude::*;

/// Squared Euclidean distance, summed in f32 in pixel order.
pub fn dist_sq(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The nearest and second-nearest rows of a set to one query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbours {
    /// Index of the nearest row (the first one on ties).
    pub index: usize,
    /// Squared distance to the nearest row (`inf` for an empty set).
    pub d1_sq: f32,
    /// Squared distance to the second-nearest row (`inf` with fewer than two rows).
    pub d2_sq: f32,
}

impl Neighbours {
    /// Euclidean distance to the nearest row.
    pub fn d1(&self) -> f32 {
        self.d1_sq.sqrt()
    }
    /// Euclidean distances to the nearest and second-nearest rows, in f64.
    pub fn distances(&self) -> (f64, f64) {
        (f64::from(self.d1_sq).sqrt(), f64::from(self.d2_sq).sqrt())
    }
}

/// The nearest two rows of `set` (`n x d`, row-major) to `x`.
pub fn neighbours(set: &[f32], d: usize, x: &[f32]) -> Neighbours {
    let mut nb = Neighbours { index: 0, d1_sq: f32::INFINITY, d2_sq: f32::INFINITY };
    for (i, row) in set.chunks_exact(d).enumerate() {
        let s = dist_sq(row, x);
        if s < nb.d1_sq {
            nb.d2_sq = nb.d1_sq;
            nb.d1_sq = s;
            nb.index = i;
        } else if s < nb.d2_sq {
            nb.d2_sq = s;
        }
    }
    nb
}

/// Index and Euclidean distance of the nearest row of `set` (`n x d`) to `x`.
pub fn nearest(set: &[f32], d: usize, x: &[f32]) -> (usize, f32) {
    let nb = neighbours(set, d, x);
    (nb.index, nb.d1())
}

/// [`neighbours`] for every row of `queries` (`m x d`), in parallel over the queries.
pub fn nearest_rows(set: &[f32], d: usize, queries: &[f32]) -> Vec<Neighbours> {
    queries.par_chunks_exact(d).map(|q| neighbours(set, d, q)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_of_ties_and_second_distance() {
        let set = [0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 1.0, 0.0];
        let nb = neighbours(&set, 2, &[0.0, 0.0]);
        assert_eq!((nb.index, nb.d1_sq, nb.d2_sq), (0, 0.0, 0.0));
        assert_eq!(nearest(&set, 2, &[3.0, 3.5]), (1, 0.5));
        let rows = nearest_rows(&set, 2, &[0.9, 0.0, 3.0, 4.0]);
        assert_eq!(rows[0].index, 3);
        assert_eq!(rows[1].distances().0, 0.0);
    }
}
