//! Mixtures of low-rank Gaussians: one [`GaussianFit`] per component, the components chosen by labels
//! (one per class) or unsupervised (k-means++ initialisation, Lloyd iterations, then hard-EM /
//! K-subspaces refinement under the fitted low-rank Gaussians).
//!
//! Every component is fitted by [`crate::gaussian::fit`] with the same [`FitOptions`], so the method
//! follows each component's shape (a component with fewer images than pixels takes the Gram path). All
//! components of a blob share one rank (`docs/blob-format.md`, kind 4): with [`Rank::Variance`] each
//! component's rank is found first and the mixture keeps the largest, capped by the smallest component
//! (`n_j - 1`); every component is then refitted at that fixed rank.
//!
//! Determinism: the unsupervised path is single-threaded in a fixed order (k-means++ draws from core's
//! [`Rng`] seeded by `seed`, ties go to the lower index, sums in f64 in image order), so the same data and
//! seed give the same components on every machine and thread count.

use faer::{Mat, Par};
use gaussdiff_core::rng::Rng;

use crate::gaussian::{fit, FitError, FitOptions, GaussianFit, Rank};

/// How images are assigned to components.
#[derive(Clone, Debug, PartialEq)]
pub enum Assignment {
    /// One component per distinct label, in ascending label order (`labels[i]` is image `i`'s label).
    Labels(Vec<u8>),
    /// `k` unsupervised components.
    Unsupervised {
        /// Number of components.
        k: usize,
        /// Seed of the k-means++ initialisation.
        seed: u64,
        /// Hard-EM (K-subspaces) refinement steps after k-means.
        em_steps: usize,
    },
}

/// A fitted mixture in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureFit {
    /// The components (all of rank [`MixtureFit::rank`]).
    pub components: Vec<GaussianFit>,
    /// Weights `n_j / n`.
    pub weights: Vec<f64>,
    /// The label of each component (`Labels`: the label value; unsupervised: none).
    pub labels: Vec<Option<u8>>,
    /// Component of each image.
    pub assignment: Vec<usize>,
}

impl MixtureFit {
    /// The common rank.
    pub fn rank(&self) -> usize {
        self.components.first().map_or(0, |c| c.rank)
    }
}

/// Why a mixture cannot be fitted.
#[derive(Debug)]
pub enum MixtureError {
    /// Labels and images disagree in number.
    Labels {
        /// Images.
        images: usize,
        /// Labels.
        labels: usize,
    },
    /// `k` is 0 or larger than the number of images, or a component has fewer than 2 images.
    Components(String),
    /// A component's Gaussian fit failed.
    Fit {
        /// Component index.
        component: usize,
        /// The fit's error.
        error: FitError,
    },
}

impl std::fmt::Display for MixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Labels { images, labels } => write!(f, "{labels} labels for {images} images"),
            Self::Components(m) => f.write_str(m),
            Self::Fit { component, error } => write!(f, "component {component}: {error}"),
        }
    }
}

impl std::error::Error for MixtureError {}

/// Fits a mixture to `images` (`n x d`, row-major) with per-component options `opts`.
///
/// # Errors
/// [`MixtureError`] for inconsistent labels, too few images per component, or a failing component fit.
pub fn fit_mixture(
    images: &[f32],
    d: usize,
    assignment: &Assignment,
    opts: &FitOptions,
) -> Result<MixtureFit, MixtureError> {
    let n = images.len() / d.max(1);
    let (assign, labels) = match assignment {
        Assignment::Labels(l) => {
            if l.len() != n {
                return Err(MixtureError::Labels { images: n, labels: l.len() });
            }
            let mut values: Vec<u8> = l.clone();
            values.sort_unstable();
            values.dedup();
            let assign = l.iter().map(|v| values.binary_search(v).unwrap_or(0)).collect();
            (assign, values.into_iter().map(Some).collect())
        }
        Assignment::Unsupervised { k, seed, em_steps } => {
            if *k == 0 || *k > n {
                return Err(MixtureError::Components(format!("--mixture {k}: expected 1..={n} components")));
            }
            let mut assign = kmeans(images, d, *k, *seed, 50);
            for _ in 0..*em_steps {
                let comps = fit_components(images, d, &assign, *k, opts)?;
                let next = reassign(images, d, &comps, &counts(&assign, *k));
                if next == assign || counts(&next, *k).contains(&0) {
                    break;
                }
                assign = next;
            }
            (assign, vec![None; *k])
        }
    };
    let k = labels.len();
    let components = fit_components(images, d, &assign, k, opts)?;
    let weights = counts(&assign, k).iter().map(|&c| c as f64 / n as f64).collect();
    Ok(MixtureFit { components, weights, labels, assignment: assign })
}

fn counts(assign: &[usize], k: usize) -> Vec<usize> {
    let mut c = vec![0usize; k];
    assign.iter().for_each(|&j| c[j] += 1);
    c
}

/// The images of component `j`, row-major.
fn members(images: &[f32], d: usize, assign: &[usize], j: usize) -> Vec<f32> {
    assign.iter().enumerate().filter(|(_, &a)| a == j).flat_map(|(i, _)| &images[i * d..(i + 1) * d]).copied().collect()
}

/// Fits every component with `opts`, then refits at the common rank (module docs).
fn fit_components(
    images: &[f32],
    d: usize,
    assign: &[usize],
    k: usize,
    opts: &FitOptions,
) -> Result<Vec<GaussianFit>, MixtureError> {
    let sizes = counts(assign, k);
    if let Some(j) = sizes.iter().position(|&c| c < 2) {
        return Err(MixtureError::Components(format!("component {j} has {} images, expected at least 2", sizes[j])));
    }
    let cap = sizes.iter().map(|&c| c - 1).min().unwrap_or(0).min(d);
    let rank = match opts.rank {
        Rank::Fixed(r) => {
            if r > cap {
                return Err(MixtureError::Components(format!(
                    "--rank {r}: the smallest component has {} images, so the common rank is at most {cap}",
                    cap + 1
                )));
            }
            r
        }
        Rank::Full => d,
        Rank::Variance(_) => {
            let mut r = 0;
            for j in 0..k {
                let g = fit(&members(images, d, assign, j), d, opts)
                    .map_err(|error| MixtureError::Fit { component: j, error })?;
                r = r.max(g.rank);
            }
            r.min(cap)
        }
    };
    let fixed = FitOptions { rank: if rank == d { Rank::Full } else { Rank::Fixed(rank) }, ..*opts };
    (0..k)
        .map(|j| {
            fit(&members(images, d, assign, j), d, &fixed).map_err(|error| MixtureError::Fit { component: j, error })
        })
        .collect()
}

fn sq_dist(a: &[f32], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - y) * (f64::from(x) - y)).sum()
}

/// k-means++ initialisation then Lloyd iterations; returns the assignment (empty clusters re-seeded
/// with the image farthest from its centre).
fn kmeans(images: &[f32], d: usize, k: usize, seed: u64, iters: usize) -> Vec<usize> {
    let n = images.len() / d;
    let img = |i: usize| &images[i * d..(i + 1) * d];
    let mut rng = Rng::new(seed);
    let mut centres: Vec<Vec<f64>> = Vec::with_capacity(k);
    let first = (rng.next_u32() as usize) % n;
    centres.push(img(first).iter().map(|&v| f64::from(v)).collect());
    let mut dist: Vec<f64> = (0..n).map(|i| sq_dist(img(i), &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = dist.iter().sum();
        let target = f64::from(rng.uniform_f32()) * total;
        let mut cum = 0.0;
        let mut pick = n - 1;
        for (i, &dd) in dist.iter().enumerate() {
            cum += dd;
            if cum > target {
                pick = i;
                break;
            }
        }
        let c: Vec<f64> = img(pick).iter().map(|&v| f64::from(v)).collect();
        dist.iter_mut().enumerate().for_each(|(i, dd)| *dd = dd.min(sq_dist(img(i), &c)));
        centres.push(c);
    }
    let mut assign = vec![usize::MAX; n];
    for _ in 0..iters {
        let mut changed = false;
        let mut far = (0usize, -1.0f64);
        for (i, a) in assign.iter_mut().enumerate() {
            let (mut best, mut bd) = (0usize, f64::INFINITY);
            for (j, c) in centres.iter().enumerate() {
                let dd = sq_dist(img(i), c);
                if dd < bd {
                    (best, bd) = (j, dd);
                }
            }
            if bd > far.1 {
                far = (i, bd);
            }
            changed |= *a != best;
            *a = best;
        }
        let mut sums = vec![vec![0.0f64; d]; k];
        let cnt = counts(&assign, k);
        for (i, &a) in assign.iter().enumerate() {
            sums[a].iter_mut().zip(img(i)).for_each(|(s, &v)| *s += f64::from(v));
        }
        for j in 0..k {
            if cnt[j] == 0 {
                centres[j] = img(far.0).iter().map(|&v| f64::from(v)).collect();
                assign[far.0] = j;
                changed = true;
            } else {
                centres[j] = sums[j].iter().map(|s| s / cnt[j] as f64).collect();
            }
        }
        if !changed {
            break;
        }
    }
    assign
}

/// Hard EM: each image to the component of highest `ln pi_j + ln N(x; mu_j, Sigma_j)` (low-rank plus floor,
/// the formula of `docs/blob-format.md` kind 4 at sigma = 0 with the floor kept at least 1e-6 of the
/// component's mean eigenvalue, so a truncated fit still gives finite densities).
fn reassign(images: &[f32], d: usize, comps: &[GaussianFit], sizes: &[usize]) -> Vec<usize> {
    let n = images.len() / d;
    let total: usize = sizes.iter().sum();
    let x = Mat::<f64>::from_fn(n, d, |i, t| f64::from(images[i * d + t]));
    let mut best = vec![(f64::NEG_INFINITY, 0usize); n];
    for (j, g) in comps.iter().enumerate() {
        let r = g.rank;
        let mean_eig = if r > 0 { g.lambda().iter().sum::<f64>() / r as f64 } else { 1.0 };
        let c = g.floor.max(1e-6 * mean_eig).max(1e-12);
        let xc = Mat::<f64>::from_fn(n, d, |i, t| x[(i, t)] - g.mean[t]);
        let u = Mat::<f64>::from_fn(d, r, |t, i| g.u_t[i * d + t]);
        let mut a = Mat::<f64>::zeros(n, r);
        faer::linalg::matmul::matmul(a.as_mut(), faer::Accum::Replace, xc.as_ref(), u.as_ref(), 1.0, Par::Seq);
        let logdet: f64 = g.lambda().iter().map(|&l| l.max(c).ln()).sum::<f64>() + (d - r) as f64 * c.ln();
        let prior = (sizes[j] as f64 / total as f64).ln();
        for (i, b) in best.iter_mut().enumerate() {
            let n2: f64 = (0..d).map(|t| xc[(i, t)] * xc[(i, t)]).sum();
            let (mut quad, mut a2) = (0.0, 0.0);
            for (q, &l) in g.lambda().iter().enumerate() {
                let v = a[(i, q)] * a[(i, q)];
                a2 += v;
                quad += v / l.max(c);
            }
            quad += (n2 - a2).max(0.0) / c;
            let s = prior - 0.5 * (quad + logdet);
            if s > b.0 {
                *b = (s, j);
            }
        }
    }
    best.into_iter().map(|(_, j)| j).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::Floor;

    /// Two well-separated blobs in 6 dimensions with anisotropic spread.
    fn two_blobs(n: usize) -> (Vec<f32>, Vec<u8>) {
        let mut rng = Rng::new(3);
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = (i % 2) as u8;
            let shift = if c == 0 { -3.0 } else { 3.0 };
            for t in 0..6 {
                let s = if t == 0 { 1.0 } else { 0.2 };
                images.push(shift + s * rng.normal());
            }
            labels.push(c);
        }
        (images, labels)
    }

    #[test]
    fn labels_and_kmeans_find_the_same_two_components() {
        let (images, labels) = two_blobs(200);
        let opts = FitOptions { rank: Rank::Fixed(2), floor: Floor::Auto };
        let sup = fit_mixture(&images, 6, &Assignment::Labels(labels.clone()), &opts).unwrap();
        assert_eq!(sup.components.len(), 2);
        assert_eq!(sup.weights, vec![0.5, 0.5]);
        assert_eq!(sup.labels, vec![Some(0), Some(1)]);
        let un = fit_mixture(&images, 6, &Assignment::Unsupervised { k: 2, seed: 1, em_steps: 3 }, &opts).unwrap();
        // The same partition up to the order of the components.
        let same = un.assignment.iter().zip(&labels).all(|(&a, &l)| a == usize::from(l));
        let swapped = un.assignment.iter().zip(&labels).all(|(&a, &l)| a != usize::from(l));
        assert!(same || swapped);
        // Deterministic.
        let again = fit_mixture(&images, 6, &Assignment::Unsupervised { k: 2, seed: 1, em_steps: 3 }, &opts).unwrap();
        assert_eq!(un, again);
    }

    #[test]
    fn variance_rank_is_common_and_capped() {
        let (images, labels) = two_blobs(40);
        let opts = FitOptions { rank: Rank::Variance(0.5), floor: Floor::Auto };
        let m = fit_mixture(&images, 6, &Assignment::Labels(labels.clone()), &opts).unwrap();
        assert!(m.components.iter().all(|c| c.rank == m.rank()) && m.rank() >= 1);
        let too_big = FitOptions { rank: Rank::Fixed(6), floor: Floor::Auto };
        let few: Vec<f32> = images[..5 * 6].to_vec();
        assert!(fit_mixture(&few, 6, &Assignment::Labels(labels[..5].to_vec()), &too_big).is_err());
    }
}
