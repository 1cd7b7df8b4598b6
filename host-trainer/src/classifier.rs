//! A small LeNet-like image classifier trained with candle: the judge of the plausibility measures
//! (`experiments::mixtures`, `docs/results.md` "Mixtures of low-rank Gaussians").
//!
//! Architecture (single-channel images in model space `[-1, 1]`, `H, W >= 12`):
//! conv 5x5 (1 -> 16, padding 2), ReLU, 2x2 max-pool; conv 5x5 (16 -> 32, no padding), ReLU, 2x2 max-pool;
//! dense -> [`FEATURES`] with ReLU (the **penultimate features** the Frechet distance and KID use); dense
//! -> classes. Loss: softmax cross-entropy. Optimiser: the trainer's [`Adam`] (no warm-up, constant
//! learning rate). Augmentation: each training image shifted by a random `(dx, dy)` in
//! `[-shift, shift]^2` pixels (background -1 fills the border), drawn per epoch.
//!
//! Determinism: weights start from [`TrainRng`] (PyTorch's uniform `+-1/sqrt(fan_in)`), batches and
//! shifts come from the same generator, and candle's CPU convolutions and products split over output
//! blocks only, so the same data and seed give the same weights at any thread count.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, Var, D};

use crate::network::Param;
use crate::optim::{Adam, AdamConfig};
use crate::rng::TrainRng;

/// Width of the penultimate feature layer.
pub const FEATURES: usize = 128;
const C1: usize = 16;
const C2: usize = 32;
const K: usize = 5;

/// Training settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ClassifierConfig {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per Adam step.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Largest random shift (pixels) of the augmentation; 0 = none.
    pub shift: usize,
    /// Seed of the weights, the batch order and the shifts.
    pub seed: u64,
}

/// A trained classifier.
#[derive(Debug)]
pub struct Classifier {
    params: Vec<Param>,
    height: usize,
    width: usize,
    classes: usize,
    device: Device,
}

/// What the classifier says about a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// Class probabilities, `n x classes` row-major.
    pub probs: Vec<f32>,
    /// Penultimate features, `n x FEATURES` row-major.
    pub features: Vec<f32>,
    /// Number of classes.
    pub classes: usize,
}

impl Outputs {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.probs.len() / self.classes.max(1)
    }

    /// `true` for no images.
    pub fn is_empty(&self) -> bool {
        self.probs.is_empty()
    }

    /// The most probable class of image `i` (ties: the lower class).
    pub fn predicted(&self, i: usize) -> usize {
        let p = &self.probs[i * self.classes..(i + 1) * self.classes];
        (0..self.classes).fold(0, |best, c| if p[c] > p[best] { c } else { best })
    }

    /// Probability of class `c` for image `i`.
    pub fn prob(&self, i: usize, c: usize) -> f64 {
        f64::from(self.probs[i * self.classes + c])
    }

    /// Fraction of images whose predicted class is `labels[i]`.
    pub fn accuracy(&self, labels: &[usize]) -> f64 {
        if labels.is_empty() {
            return f64::NAN;
        }
        labels.iter().enumerate().filter(|&(i, &l)| self.predicted(i) == l).count() as f64 / labels.len() as f64
    }

    /// Mean probability the classifier gives to `labels[i]`.
    pub fn mean_confidence(&self, labels: &[usize]) -> f64 {
        if labels.is_empty() {
            return f64::NAN;
        }
        labels.iter().enumerate().map(|(i, &l)| self.prob(i, l)).sum::<f64>() / labels.len() as f64
    }
}

/// Spatial size after the two conv + pool stages.
fn feature_hw(h: usize, w: usize) -> (usize, usize) {
    ((h / 2 - (K - 1)) / 2, (w / 2 - (K - 1)) / 2)
}

/// `img` (h x w, model space) shifted by `(dx, dy)` pixels, the border filled with -1 (background).
fn shifted(img: &[f32], h: usize, w: usize, dx: isize, dy: isize, out: &mut Vec<f32>) {
    for y in 0..h as isize {
        for x in 0..w as isize {
            let (sy, sx) = (y - dy, x - dx);
            out.push(if (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx) {
                img[sy as usize * w + sx as usize]
            } else {
                -1.0
            });
        }
    }
}

impl Classifier {
    /// Fresh weights for `h x w` single-channel images and `classes` classes.
    ///
    /// # Errors
    /// Images smaller than 12 x 12, fewer than 2 classes, tensor errors.
    pub fn new(h: usize, w: usize, classes: usize, rng: &mut TrainRng, device: &Device) -> Result<Self> {
        if h < 12 || w < 12 {
            bail!("the classifier needs images of at least 12 x 12 pixels (got {h} x {w})");
        }
        if classes < 2 {
            bail!("the classifier needs at least 2 classes (got {classes})");
        }
        let (fh, fw) = feature_hw(h, w);
        let flat = C2 * fh * fw;
        let mut params = Vec::new();
        let mut add = |name: &str, shape: &[usize], fan_in: usize| -> Result<()> {
            let n: usize = shape.iter().product();
            let bound = 1.0 / (fan_in as f64).sqrt();
            let v: Vec<f32> = (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
            let var = Var::from_tensor(&Tensor::from_vec(v, shape, device)?)?;
            params.push(Param { name: name.to_string(), var });
            Ok(())
        };
        add("c1.w", &[C1, 1, K, K], K * K)?;
        add("c1.b", &[C1], K * K)?;
        add("c2.w", &[C2, C1, K, K], C1 * K * K)?;
        add("c2.b", &[C2], C1 * K * K)?;
        add("f1.w", &[flat, FEATURES], flat)?;
        add("f1.b", &[FEATURES], flat)?;
        add("f2.w", &[FEATURES, classes], FEATURES)?;
        add("f2.b", &[classes], FEATURES)?;
        Ok(Self { params, height: h, width: w, classes, device: device.clone() })
    }

    fn p(&self, i: usize) -> &Tensor {
        self.params[i].var.as_tensor()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Total number of scalar weights.
    pub fn num_params(&self) -> usize {
        self.params.iter().map(|p| p.var.elem_count()).sum()
    }

    /// Logits `(B, classes)` and features `(B, FEATURES)` of a batch `(B, H W)`.
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let b = x.dim(0)?;
        let x = x.reshape((b, 1, self.height, self.width))?;
        let bias = |i: usize| -> Result<Tensor> { Ok(self.p(i).reshape((1, (), 1, 1))?) };
        let h = x.conv2d(self.p(0), 2, 1, 1, 1)?.broadcast_add(&bias(1)?)?.relu()?.max_pool2d(2)?;
        let h = h.conv2d(self.p(2), 0, 1, 1, 1)?.broadcast_add(&bias(3)?)?.relu()?.max_pool2d(2)?;
        let f = h.flatten_from(1)?;
        let feat = f.matmul(self.p(4))?.broadcast_add(self.p(5))?.relu()?;
        let logits = feat.matmul(self.p(6))?.broadcast_add(self.p(7))?;
        Ok((logits, feat))
    }

    /// Train on `images` (`n x H W`, model space) with labels `0..classes`. Prints one line per epoch
    /// when `progress`.
    ///
    /// # Errors
    /// A label out of range, a size mismatch, tensor errors.
    #[allow(clippy::too_many_arguments)]
    pub fn train(
        images: &[f32],
        labels: &[u8],
        (h, w): (usize, usize),
        classes: usize,
        cfg: &ClassifierConfig,
        device: &Device,
        progress: bool,
    ) -> Result<Self> {
        let d = h * w;
        let n = labels.len();
        if images.len() != n * d || n == 0 {
            bail!("classifier: {} values for {n} labels of {h} x {w} images", images.len());
        }
        if let Some(l) = labels.iter().find(|&&l| usize::from(l) >= classes) {
            bail!("classifier: label {l} out of range 0..{classes}");
        }
        let mut rng = TrainRng::new(cfg.seed);
        let net = Self::new(h, w, classes, &mut rng, device)?;
        let mut opt = Adam::for_params(
            &net.params,
            AdamConfig { lr: cfg.lr, warmup: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
            0.0,
        )?;
        let batch = cfg.batch.max(1);
        for epoch in 0..cfg.epochs {
            let order = rng.permutation(n);
            let (mut loss_sum, mut steps) = (0.0f64, 0usize);
            for chunk in order.chunks(batch) {
                let mut xb = Vec::with_capacity(chunk.len() * d);
                let mut onehot = vec![0.0f32; chunk.len() * classes];
                for (r, &i) in chunk.iter().enumerate() {
                    let img = &images[i * d..(i + 1) * d];
                    if cfg.shift > 0 {
                        let s = cfg.shift as isize;
                        let dx = rng.below(2 * cfg.shift + 1) as isize - s;
                        let dy = rng.below(2 * cfg.shift + 1) as isize - s;
                        shifted(img, h, w, dx, dy, &mut xb);
                    } else {
                        xb.extend_from_slice(img);
                    }
                    onehot[r * classes + usize::from(labels[i])] = 1.0;
                }
                let m = chunk.len();
                let x = Tensor::from_vec(xb, (m, d), device)?;
                let y = Tensor::from_vec(onehot, (m, classes), device)?;
                let (logits, _) = net.forward(&x)?;
                let logp = log_softmax(&logits)?;
                let loss = ((logp * y)?.sum_all()? * (-1.0 / m as f64))?;
                let grads = loss.backward()?;
                opt.step_params(&net.params, &grads)?;
                loss_sum += f64::from(loss.to_scalar::<f32>()?);
                steps += 1;
            }
            if progress {
                eprintln!("classifier epoch {}/{}: mean loss {:.4}", epoch + 1, cfg.epochs, loss_sum / steps as f64);
            }
        }
        Ok(net)
    }

    /// Probabilities and penultimate features of `images` (`n x H W`), in batches of 500.
    ///
    /// # Errors
    /// A size mismatch, tensor errors.
    pub fn evaluate(&self, images: &[f32]) -> Result<Outputs> {
        let d = self.height * self.width;
        if !images.len().is_multiple_of(d) {
            bail!("classifier: {} values are not whole {} x {} images", images.len(), self.height, self.width);
        }
        let n = images.len() / d;
        let (mut probs, mut features) = (Vec::with_capacity(n * self.classes), Vec::with_capacity(n * FEATURES));
        for start in (0..n).step_by(500) {
            let m = 500.min(n - start);
            let x = Tensor::from_slice(&images[start * d..(start + m) * d], (m, d), &self.device)?;
            let (logits, feat) = self.forward(&x)?;
            probs.extend(log_softmax(&logits)?.exp()?.flatten_all()?.to_vec1::<f32>()?);
            features.extend(feat.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(Outputs { probs, features, classes: self.classes })
    }

    /// All weights in order, as f32 (to compare two trainings bit for bit).
    ///
    /// # Errors
    /// Tensor errors.
    pub fn weights(&self) -> Result<Vec<f32>> {
        let mut v = Vec::new();
        for p in &self.params {
            v.extend(p.var.as_tensor().flatten_all()?.to_vec1::<f32>().context("classifier weights")?);
        }
        Ok(v)
    }
}

/// `log softmax` over the last axis (max subtracted first).
fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let m = logits.max_keepdim(D::Minus1)?.detach();
    let z = logits.broadcast_sub(&m)?;
    let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(z.broadcast_sub(&lse)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes of 16 x 16 images: a horizontal or a vertical bar at a random position.
    fn bars(n: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
        let mut rng = TrainRng::new(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..n {
            let label = (i % 2) as u8;
            let pos = 3 + rng.below(10);
            for r in 0..16 {
                for c in 0..16 {
                    let on = if label == 0 { r == pos } else { c == pos };
                    x.push(if on { 1.0 } else { -1.0 } + 0.1 * rng.normal() as f32);
                }
            }
            y.push(label);
        }
        (x, y)
    }

    #[test]
    fn learns_bars_and_is_deterministic() {
        let (x, y) = bars(256, 1);
        let cfg = ClassifierConfig { epochs: 3, batch: 32, lr: 2e-3, shift: 1, seed: 5 };
        let a = Classifier::train(&x, &y, (16, 16), 2, &cfg, &Device::Cpu, false).unwrap();
        let b = Classifier::train(&x, &y, (16, 16), 2, &cfg, &Device::Cpu, false).unwrap();
        assert_eq!(a.weights().unwrap(), b.weights().unwrap(), "same seed, same weights");
        let (xt, yt) = bars(100, 2);
        let out = a.evaluate(&xt).unwrap();
        let labels: Vec<usize> = yt.iter().map(|&l| usize::from(l)).collect();
        assert!(out.accuracy(&labels) > 0.95, "accuracy {}", out.accuracy(&labels));
        assert_eq!(out.features.len(), 100 * FEATURES);
        for i in 0..out.len() {
            let s: f64 = (0..2).map(|c| out.prob(i, c)).sum();
            assert!((s - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn shift_moves_and_fills() {
        let img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let mut out = Vec::new();
        shifted(&img, 3, 3, 1, 0, &mut out);
        assert_eq!(out, vec![-1.0, 0.0, 1.0, -1.0, 3.0, 4.0, -1.0, 6.0, 7.0]);
    }
}
