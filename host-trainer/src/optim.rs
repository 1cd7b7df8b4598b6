//! Adam (Kingma & Ba 2015) with linear learning-rate warm-up, and an exponential moving average (EMA)
//! of the weights.
//!
//! At step `t = 1, 2, ...` with gradient `g`:
//! `m = b1 m + (1-b1) g`, `v = b2 v + (1-b2) g^2`,
//! `p -= lr_t (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)` with `lr_t = lr min(1, t / warmup)`.
//! EMA after each step: `e = beta e + (1-beta) p` with `beta = min(ema_decay, (1+t)/(10+t))`.

use anyhow::Result;
use candle_core::backprop::GradStore;
use candle_core::Tensor;

use crate::model::Network;

/// Adam hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps (linear ramp from 0).
    pub warmup: usize,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator guard.
    pub eps: f64,
}

impl AdamConfig {
    /// Learning rate at step `t` (1-based).
    pub fn lr_at(&self, t: usize) -> f64 {
        if self.warmup == 0 {
            self.lr
        } else {
            self.lr * (t as f64 / self.warmup as f64).min(1.0)
        }
    }
}

/// Optimiser state: moments and EMA for each parameter, in the network's parameter order.
#[derive(Debug)]
pub struct Adam {
    /// Hyper-parameters.
    pub cfg: AdamConfig,
    /// First moments.
    pub m: Vec<Tensor>,
    /// Second moments.
    pub v: Vec<Tensor>,
    /// EMA of the weights.
    pub ema: Vec<Tensor>,
    /// EMA decay ceiling.
    pub ema_decay: f64,
    /// Steps taken.
    pub t: usize,
}

impl Adam {
    /// Zero moments, EMA = current weights.
    pub fn new(net: &Network, cfg: AdamConfig, ema_decay: f64) -> Result<Self> {
        let mut m = Vec::new();
        let mut v = Vec::new();
        let mut ema = Vec::new();
        for p in &net.params {
            m.push(p.var.as_tensor().zeros_like()?);
            v.push(p.var.as_tensor().zeros_like()?);
            ema.push(p.var.as_tensor().copy()?);
        }
        Ok(Self { cfg, m, v, ema, ema_decay, t: 0 })
    }

    /// One Adam step plus the EMA update.
    pub fn step(&mut self, net: &Network, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let t = self.t as i32;
        let c = self.cfg;
        let lr = c.lr_at(self.t);
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let beta = self.ema_decay.min((1.0 + self.t as f64) / (10.0 + self.t as f64));
        for (i, p) in net.params.iter().enumerate() {
            let w = p.var.as_tensor();
            if let Some(g) = grads.get(w) {
                // Gradients come out of tracked ops: detach everything the optimiser keeps, or the
                // autograd graph would grow across steps (memory and time without bound).
                let g = g.detach();
                self.m[i] = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?.detach();
                self.v[i] = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
                let denom = ((&self.v[i] / bc2)?.sqrt()? + c.eps)?;
                let upd = ((&self.m[i] / bc1)? / denom)?;
                p.var.set(&(w.detach() - (upd * lr)?)?.detach())?;
            }
            self.ema[i] = ((&self.ema[i] * beta)? + (p.var.as_tensor().detach() * (1.0 - beta))?)?.detach();
        }
        Ok(())
    }
}
