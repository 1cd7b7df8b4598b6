//! Adam (Kingma & Ba 2015) with linear learning-rate warm-up, and an exponential moving average (EMA)
//! of the weights.
//!
//! At step `t = 1, 2, ...` with gradient `g`:
//! `m = b1 m + (1-b1) g`, `v = b2 v + (1-b2) g^2`,
//! `p -= lr_t (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)` with `lr_t = lr min(1, t / warmup)`.
//! EMA after each step: `e = beta e + (1-beta) p` with `beta = min(ema_decay, (1+t)/(10+t))`.

use anyhow::Result;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Tensor};
use rayon::prelude::*;

use crate::network::{Network, Param};

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
        Self::for_params(&net.params, cfg, ema_decay)
    }

    /// [`Adam::new`] over any parameter list (the classifier's, for instance).
    pub fn for_params(params: &[Param], cfg: AdamConfig, ema_decay: f64) -> Result<Self> {
        let mut m = Vec::new();
        let mut v = Vec::new();
        let mut ema = Vec::new();
        for p in params {
            m.push(p.var.as_tensor().zeros_like()?);
            v.push(p.var.as_tensor().zeros_like()?);
            ema.push(p.var.as_tensor().copy()?);
        }
        Ok(Self { cfg, m, v, ema, ema_decay, t: 0 })
    }

    /// One Adam step plus the EMA update.
    ///
    /// On the CPU the four updates run as fused in-place passes over the parameter, moment and EMA
    /// buffers (no temporaries; elementwise, so the result does not depend on the thread count);
    /// elsewhere they are composed from candle tensor ops. Both compute the same formula in f32.
    pub fn step(&mut self, net: &Network, grads: &GradStore) -> Result<()> {
        self.step_params(&net.params, grads)
    }

    /// [`Adam::step`] over the parameter list this optimiser was made for.
    pub fn step_params(&mut self, params: &[Param], grads: &GradStore) -> Result<()> {
        self.t += 1;
        let t = self.t as i32;
        let c = self.cfg;
        let lr = c.lr_at(self.t);
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let beta = self.ema_decay.min((1.0 + self.t as f64) / (10.0 + self.t as f64));
        for (i, p) in params.iter().enumerate() {
            let w = p.var.as_tensor();
            let g = grads.get(w).map(|g| g.detach().contiguous()).transpose()?;
            if w.device().is_cpu() {
                if let Some(g) = &g {
                    let k = Coef {
                        b1: c.beta1 as f32,
                        b2: c.beta2 as f32,
                        lr: lr as f32,
                        bc1: bc1 as f32,
                        bc2: bc2 as f32,
                        eps: c.eps as f32,
                    };
                    self.m[i].inplace_op2(g, &Fused { which: Which::M, k })?;
                    self.v[i].inplace_op2(g, &Fused { which: Which::V, k })?;
                    w.inplace_op3(&self.m[i], &self.v[i], &FusedParam { k })?;
                }
                let k = Coef { b1: beta as f32, b2: 0.0, lr: 0.0, bc1: 0.0, bc2: 0.0, eps: 0.0 };
                self.ema[i].inplace_op2(w, &Fused { which: Which::Ema, k })?;
            } else {
                // Gradients come out of tracked ops: detach everything the optimiser keeps, or the
                // autograd graph would grow across steps (memory and time without bound).
                if let Some(g) = &g {
                    self.m[i] = ((&self.m[i] * c.beta1)? + (g * (1.0 - c.beta1))?)?.detach();
                    self.v[i] = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
                    let denom = ((&self.v[i] / bc2)?.sqrt()? + c.eps)?;
                    let upd = ((&self.m[i] / bc1)? / denom)?;
                    p.var.set(&(w.detach() - (upd * lr)?)?.detach())?;
                }
                self.ema[i] = ((&self.ema[i] * beta)? + (p.var.as_tensor().detach() * (1.0 - beta))?)?.detach();
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Coef {
    b1: f32,
    b2: f32,
    lr: f32,
    bc1: f32,
    bc2: f32,
    eps: f32,
}

#[derive(Clone, Copy, Debug)]
enum Which {
    /// `m = b1 m + (1-b1) g`
    M,
    /// `v = b2 v + (1-b2) g^2`
    V,
    /// `e = b1 e + (1-b1) p` (b1 holds the EMA decay)
    Ema,
}

#[derive(Debug)]
struct Fused {
    which: Which,
    k: Coef,
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("fused Adam: {what} must be a contiguous f32 tensor"),
    }
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("fused Adam: destination must be a contiguous f32 tensor"),
    }
}

const CHUNK: usize = 1 << 14;

impl InplaceOp2 for Fused {
    fn name(&self) -> &'static str {
        "fused-adam-moment"
    }
    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let src = slice(s2, l2, "source")?;
        let dst = slice_mut(s1, l1)?;
        if src.len() != dst.len() {
            candle_core::bail!("fused Adam: length mismatch {} vs {}", dst.len(), src.len());
        }
        let k = self.k;
        let which = self.which;
        dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| match which {
            Which::M => d.iter_mut().zip(s).for_each(|(m, &g)| *m = k.b1 * *m + (1.0 - k.b1) * g),
            Which::V => d.iter_mut().zip(s).for_each(|(v, &g)| *v = k.b2 * *v + (1.0 - k.b2) * (g * g)),
            Which::Ema => d.iter_mut().zip(s).for_each(|(e, &p)| *e = k.b1 * *e + (1.0 - k.b1) * p),
        });
        Ok(())
    }
}

#[derive(Debug)]
struct FusedParam {
    k: Coef,
}

impl InplaceOp3 for FusedParam {
    fn name(&self) -> &'static str {
        "fused-adam-param"
    }
    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let m = slice(s2, l2, "m")?;
        let v = slice(s3, l3, "v")?;
        let p = slice_mut(s1, l1)?;
        if m.len() != p.len() || v.len() != p.len() {
            candle_core::bail!("fused Adam: length mismatch");
        }
        let k = self.k;
        p.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK))).for_each(|(p, (m, v))| {
            for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                *p -= k.lr * ((m / k.bc1) / ((v / k.bc2).sqrt() + k.eps));
            }
        });
        Ok(())
    }
}
