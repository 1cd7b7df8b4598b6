//! The trained denoisers: a noise-conditioned MLP (the CPU default) and a small conv U-Net.
//!
//! Both are raw networks `F(c_in x; c_noise)` wrapped by EDM's preconditioning (see [`crate::edm`]):
//! `D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; ln(sigma)/4)`.
//!
//! Noise conditioning: `c_noise` is expanded into `EMB_FREQS` sine and cosine features with
//! frequencies geometrically spaced from 1 to 64 (fixed, not learned), plus `c_noise` itself.
//!
//! * MLP (`depth` hidden layers of `width`):
//!   `h_0 = A_in (c_in x) + E_0 phi`, `h_{i+1} = A_i silu(h_i) + E_{i+1} phi`, `F = A_out silu(h_depth)`.
//! * Residual MLP (`width` units, `blocks` residual blocks with LayerNorm and FiLM conditioning; the
//!   network that learns MNIST): see [`resmlp`].
//! * U-Net (`channels` c, two downsamplings by 2x2 average pooling, so H and W must be divisible by 4):
//!   conv3x3 in -> ResBlock(c) -> pool -> ResBlock(2c) -> pool -> ResBlock(2c) -> upsample, concat ->
//!   ResBlock(4c -> 2c) -> upsample, concat -> ResBlock(3c -> c) -> GroupNorm, SiLU, conv3x3 out.
//!   ResBlock: `h = conv(silu(gn(x))) + E phi`; `h = conv(silu(gn(h)))`; `out = h + skip(x)`.
//!
//! Weights are initialised from [`TrainRng`] (PyTorch's default uniform `+-1/sqrt(fan_in)`, zero
//! biases, zero output layer), never from candle's unseedable CPU generator.

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use serde::{Deserialize, Serialize};

use crate::edm::Precond;
use crate::rng::TrainRng;

pub mod resmlp;

/// Number of sine (and of cosine) features of the noise embedding.
pub const EMB_FREQS: usize = 16;
/// Width of the noise feature vector phi.
pub const EMB_DIM: usize = 2 * EMB_FREQS + 1;

/// Network architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Arch {
    /// Fully connected network with noise conditioning.
    Mlp {
        /// Hidden width.
        width: usize,
        /// Number of hidden-to-hidden layers.
        depth: usize,
    },
    /// Residual MLP: pre-LayerNorm blocks with FiLM noise conditioning ([`resmlp`]).
    Resmlp {
        /// Width of the residual stream.
        width: usize,
        /// Number of residual blocks.
        blocks: usize,
    },
    /// Small convolutional U-Net.
    Unet {
        /// Base channel count c (levels use c, 2c, 2c).
        channels: usize,
    },
}

impl Arch {
    /// Short label for plots and metadata.
    pub fn label(&self) -> String {
        match self {
            Arch::Mlp { width, depth } => format!("mlp-w{width}-d{depth}"),
            Arch::Resmlp { width, blocks } => format!("resmlp-w{width}-b{blocks}"),
            Arch::Unet { channels } => format!("unet-c{channels}"),
        }
    }
}

/// A named trainable parameter.
#[derive(Debug)]
pub struct Param {
    /// Stable name (checkpoint key).
    pub name: String,
    /// The variable.
    pub var: Var,
}

/// A network and its parameters, in a fixed order.
#[derive(Debug)]
pub struct Network {
    /// Architecture.
    pub arch: Arch,
    /// Image shape (channels, height, width).
    pub chw: (usize, usize, usize),
    /// Parameters, in creation order.
    pub params: Vec<Param>,
    device: Device,
}

struct Init<'a> {
    rng: &'a mut TrainRng,
    device: &'a Device,
    params: Vec<Param>,
    /// Scalar parameters that may still be created ([`Network::new_within`]).
    budget: usize,
}

impl Init<'_> {
    /// Counts a parameter of `shape` against the budget, before anything is allocated; its element count.
    fn reserve(&mut self, name: &str, shape: &[usize]) -> Result<usize> {
        match shape.iter().try_fold(1usize, |n, &s| n.checked_mul(s)) {
            Some(n) if n <= self.budget => {
                self.budget -= n;
                Ok(n)
            }
            _ => bail!("parameter {name:?} of shape {shape:?} exceeds the parameter budget ({} left)", self.budget),
        }
    }
    fn tensor(&mut self, name: &str, shape: &[usize], bound: f64) -> Result<()> {
        let n = self.reserve(name, shape)?;
        let data: Vec<f32> = (0..n).map(|_| ((self.rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
        let t = Tensor::from_vec(data, shape, self.device)?;
        self.params.push(Param { name: name.to_string(), var: Var::from_tensor(&t)? });
        Ok(())
    }
    fn zeros(&mut self, name: &str, shape: &[usize]) -> Result<()> {
        self.reserve(name, shape)?;
        let t = Tensor::zeros(shape, DType::F32, self.device)?;
        self.params.push(Param { name: name.to_string(), var: Var::from_tensor(&t)? });
        Ok(())
    }
    fn ones(&mut self, name: &str, shape: &[usize]) -> Result<()> {
        self.reserve(name, shape)?;
        let t = Tensor::ones(shape, DType::F32, self.device)?;
        self.params.push(Param { name: name.to_string(), var: Var::from_tensor(&t)? });
        Ok(())
    }
    /// Linear layer stored as `w: (in, out)` so that `y = x w + b`.
    fn linear(&mut self, name: &str, fan_in: usize, fan_out: usize, zero: bool, bias: bool) -> Result<()> {
        if zero {
            self.zeros(&format!("{name}.w"), &[fan_in, fan_out])?;
        } else {
            self.tensor(&format!("{name}.w"), &[fan_in, fan_out], 1.0 / (fan_in as f64).sqrt())?;
        }
        if bias {
            self.zeros(&format!("{name}.b"), &[fan_out])?;
        }
        Ok(())
    }
    fn conv(&mut self, name: &str, cin: usize, cout: usize, k: usize, zero: bool) -> Result<()> {
        if zero {
            self.zeros(&format!("{name}.w"), &[cout, cin, k, k])?;
        } else {
            self.tensor(&format!("{name}.w"), &[cout, cin, k, k], 1.0 / ((cin * k * k) as f64).sqrt())?;
        }
        self.zeros(&format!("{name}.b"), &[cout])
    }
    fn norm(&mut self, name: &str, c: usize) -> Result<()> {
        self.ones(&format!("{name}.g"), &[c])?;
        self.zeros(&format!("{name}.b"), &[c])
    }
    fn resblock(&mut self, name: &str, cin: usize, cout: usize) -> Result<()> {
        self.norm(&format!("{name}.n1"), cin)?;
        self.conv(&format!("{name}.c1"), cin, cout, 3, false)?;
        self.linear(&format!("{name}.e"), EMB_DIM, cout, false, true)?;
        self.norm(&format!("{name}.n2"), cout)?;
        self.conv(&format!("{name}.c2"), cout, cout, 3, false)?;
        if cin != cout {
            self.conv(&format!("{name}.skip"), cin, cout, 1, false)?;
        }
        Ok(())
    }
}

/// Number of GroupNorm groups for `c` channels (8 where it divides, else 1).
fn groups(c: usize) -> usize {
    if c.is_multiple_of(8) {
        8
    } else if c.is_multiple_of(4) {
        4
    } else {
        1
    }
}

/// Noise features phi(c_noise) for a batch: `[c_noise, sin(f_j c_noise), cos(f_j c_noise)]`, shape (B, EMB_DIM).
pub fn noise_features(c_noise: &[f64], device: &Device) -> Result<Tensor> {
    let mut v = Vec::with_capacity(c_noise.len() * EMB_DIM);
    for &c in c_noise {
        v.push(c as f32);
        for j in 0..EMB_FREQS {
            let f = (64f64.ln() * j as f64 / (EMB_FREQS - 1) as f64).exp();
            v.push((f * c).sin() as f32);
        }
        for j in 0..EMB_FREQS {
            let f = (64f64.ln() * j as f64 / (EMB_FREQS - 1) as f64).exp();
            v.push((f * c).cos() as f32);
        }
    }
    Ok(Tensor::from_vec(v, (c_noise.len(), EMB_DIM), device)?)
}

/// Per-sample preconditioning columns, each of shape (B, 1): `(c_skip, c_out, c_in)` and the
/// noise features.
pub struct CondBatch {
    /// c_skip (B, 1).
    pub c_skip: Tensor,
    /// c_out (B, 1).
    pub c_out: Tensor,
    /// c_in (B, 1).
    pub c_in: Tensor,
    /// phi (B, EMB_DIM).
    pub phi: Tensor,
}

impl std::fmt::Debug for CondBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CondBatch").finish_non_exhaustive()
    }
}

impl CondBatch {
    /// Coefficients for per-sample sigmas.
    pub fn new(sigmas: &[f64], device: &Device) -> Result<Self> {
        let b = sigmas.len();
        let pc: Vec<Precond> = sigmas.iter().map(|&s| Precond::new(s)).collect();
        let col = |f: &dyn Fn(&Precond) -> f64| -> Result<Tensor> {
            Ok(Tensor::from_vec(pc.iter().map(|p| f(p) as f32).collect::<Vec<_>>(), (b, 1), device)?)
        };
        let c_noise: Vec<f64> = pc.iter().map(|p| p.c_noise).collect();
        Ok(Self {
            c_skip: col(&|p| p.c_skip)?,
            c_out: col(&|p| p.c_out)?,
            c_in: col(&|p| p.c_in)?,
            phi: noise_features(&c_noise, device)?,
        })
    }
}

impl Network {
    /// A freshly initialised network for images of shape `chw`.
    ///
    /// # Errors
    /// If the U-Net is asked for an image whose height or width is not divisible by 4, or a size is 0.
    pub fn new(arch: Arch, chw: (usize, usize, usize), rng: &mut TrainRng, device: &Device) -> Result<Self> {
        Self::new_within(arch, chw, rng, device, usize::MAX)
    }

    /// [`Network::new`] with at most `max_params` scalar parameters: each parameter is counted against it
    /// before it is allocated, so a configuration read from a file (a checkpoint) cannot make the trainer
    /// allocate more than the file can justify.
    ///
    /// # Errors
    /// As [`Network::new`], and if the network would need more than `max_params` parameters (or `C H W`
    /// overflows).
    pub fn new_within(
        arch: Arch,
        chw: (usize, usize, usize),
        rng: &mut TrainRng,
        device: &Device,
        max_params: usize,
    ) -> Result<Self> {
        let (c, h, w) = chw;
        let Some(d) = c.checked_mul(h).and_then(|ch| ch.checked_mul(w)) else {
            bail!("image shape {c}x{h}x{w} is too large");
        };
        let mut init = Init { rng, device, params: Vec::new(), budget: max_params };
        match &arch {
            Arch::Mlp { width, depth } => {
                if *width == 0 {
                    bail!("MLP width must be at least 1");
                }
                init.linear("in", d, *width, false, true)?;
                init.linear("emb0", EMB_DIM, *width, false, false)?;
                for i in 0..*depth {
                    init.linear(&format!("h{i}"), *width, *width, false, true)?;
                    init.linear(&format!("emb{}", i + 1), EMB_DIM, *width, false, false)?;
                }
                init.linear("out", *width, d, true, true)?;
            }
            Arch::Resmlp { width, blocks } => {
                if *width == 0 {
                    bail!("residual MLP width must be at least 1");
                }
                resmlp::init(&mut init, d, *width, *blocks)?;
            }
            Arch::Unet { channels } => {
                let ch = *channels;
                if ch == 0 {
                    bail!("U-Net channels must be at least 1");
                }
                if h % 4 != 0 || w % 4 != 0 {
                    bail!("the U-Net pools twice by 2x2, so image height and width must be divisible by 4 (got {h}x{w}); use the MLP or --resize");
                }
                init.conv("conv_in", c, ch, 3, false)?;
                init.resblock("d0", ch, ch)?;
                init.resblock("d1", ch, 2 * ch)?;
                init.resblock("mid", 2 * ch, 2 * ch)?;
                init.resblock("u1", 4 * ch, 2 * ch)?;
                init.resblock("u0", 3 * ch, ch)?;
                init.norm("out_n", ch)?;
                init.conv("conv_out", ch, c, 3, true)?;
            }
        }
        let params = init.params;
        Ok(Self { arch, chw, params, device: device.clone() })
    }

    /// `d = C H W`.
    pub fn dim(&self) -> usize {
        self.chw.0 * self.chw.1 * self.chw.2
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Total number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.params.iter().map(|p| p.var.elem_count()).sum()
    }

    fn p(&self, name: &str) -> Result<&Tensor> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.var.as_tensor())
            .ok_or_else(|| anyhow::anyhow!("network has no parameter {name:?}"))
    }

    /// Preconditioned denoiser `D(x; sigma)` for a batch `x` of shape (B, d) with per-sample sigmas.
    pub fn denoise(&self, x: &Tensor, cond: &CondBatch) -> Result<Tensor> {
        let f = self.raw(&x.broadcast_mul(&cond.c_in)?, &cond.phi)?;
        Ok((x.broadcast_mul(&cond.c_skip)? + f.broadcast_mul(&cond.c_out)?)?)
    }

    /// Raw network `F(x_in; phi)`, (B, d) -> (B, d).
    pub fn raw(&self, x_in: &Tensor, phi: &Tensor) -> Result<Tensor> {
        match &self.arch {
            Arch::Mlp { depth, .. } => {
                let lin = |x: &Tensor, name: &str| -> Result<Tensor> {
                    Ok(x.matmul(self.p(&format!("{name}.w"))?)?.broadcast_add(self.p(&format!("{name}.b"))?)?)
                };
                let mut h = (lin(x_in, "in")? + phi.matmul(self.p("emb0.w")?)?)?;
                for i in 0..*depth {
                    h = (lin(&h.silu()?, &format!("h{i}"))? + phi.matmul(self.p(&format!("emb{}.w", i + 1))?)?)?;
                }
                lin(&h.silu()?, "out")
            }
            Arch::Resmlp { blocks, .. } => self.raw_resmlp(x_in, phi, *blocks),
            Arch::Unet { .. } => {
                let (c, hh, ww) = self.chw;
                let b = x_in.dim(0)?;
                let x = x_in.reshape((b, c, hh, ww))?;
                let h0 = self.conv(&x, "conv_in", 1)?;
                let s0 = self.resblock(&h0, phi, "d0")?;
                let s1 = self.resblock(&s0.avg_pool2d(2)?, phi, "d1")?;
                let m = self.resblock(&s1.avg_pool2d(2)?, phi, "mid")?;
                let u = Tensor::cat(&[&m.upsample_nearest2d(hh / 2, ww / 2)?, &s1], 1)?;
                let u = self.resblock(&u, phi, "u1")?;
                let u = Tensor::cat(&[&u.upsample_nearest2d(hh, ww)?, &s0], 1)?;
                let u = self.resblock(&u, phi, "u0")?;
                let out = self.conv(&self.group_norm(&u, "out_n")?.silu()?, "conv_out", 1)?;
                Ok(out.reshape((b, c * hh * ww))?)
            }
        }
    }

    fn conv(&self, x: &Tensor, name: &str, pad: usize) -> Result<Tensor> {
        let w = self.p(&format!("{name}.w"))?;
        let k = w.dim(2)?;
        let pad = if k == 1 { 0 } else { pad };
        let y = x.conv2d(w, pad, 1, 1, 1)?;
        Ok(y.broadcast_add(&self.p(&format!("{name}.b"))?.reshape((1, (), 1, 1))?)?)
    }

    fn group_norm(&self, x: &Tensor, name: &str) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let g = groups(c);
        let xg = x.reshape((b, g, c / g * h * w))?;
        let mean = xg.mean_keepdim(D::Minus1)?;
        let xc = xg.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?.reshape((b, c, h, w))?;
        let gamma = self.p(&format!("{name}.g"))?.reshape((1, c, 1, 1))?;
        let beta = self.p(&format!("{name}.b"))?.reshape((1, c, 1, 1))?;
        Ok(xn.broadcast_mul(&gamma)?.broadcast_add(&beta)?)
    }

    fn resblock(&self, x: &Tensor, phi: &Tensor, name: &str) -> Result<Tensor> {
        let h = self.conv(&self.group_norm(x, &format!("{name}.n1"))?.silu()?, &format!("{name}.c1"), 1)?;
        let e = phi.matmul(self.p(&format!("{name}.e.w"))?)?.broadcast_add(self.p(&format!("{name}.e.b"))?)?;
        let (b, c) = e.dims2()?;
        let h = h.broadcast_add(&e.reshape((b, c, 1, 1))?)?;
        let h = self.conv(&self.group_norm(&h, &format!("{name}.n2"))?.silu()?, &format!("{name}.c2"), 1)?;
        let skip = if self.params.iter().any(|p| p.name == format!("{name}.skip.w")) {
            self.conv(x, &format!("{name}.skip"), 0)?
        } else {
            x.clone()
        };
        Ok((h + skip)?)
    }

    /// Multiply-adds of one raw forward pass for one sample (dense layers and convolutions only).
    pub fn macs_per_sample(&self) -> usize {
        let (_, h, w) = self.chw;
        let mut macs = 0usize;
        for p in &self.params {
            if !p.name.ends_with(".w") {
                continue;
            }
            let dims = p.var.dims();
            if dims.len() == 2 {
                macs += dims[0] * dims[1];
            } else {
                // conv: cout*cin*k*k per output pixel; resolution from the block name.
                let per_px = dims.iter().product::<usize>();
                let scale = if p.name.starts_with("d1") || p.name.starts_with("u1") {
                    4
                } else if p.name.starts_with("mid") {
                    16
                } else {
                    1
                };
                macs += per_px * h * w / scale;
            }
        }
        macs
    }
}

/// Denoise a batch given as row-major f32 `n x d` at one sigma, in chunks of `chunk` rows.
pub fn denoise_rows(net: &Network, x: &[f32], sigma: f64, chunk: usize) -> Result<Vec<f32>> {
    let d = net.dim();
    let n = x.len() / d;
    let mut out = Vec::with_capacity(x.len());
    let mut i = 0;
    while i < n {
        let m = chunk.min(n - i);
        let xt = Tensor::from_slice(&x[i * d..(i + m) * d], (m, d), net.device())?;
        let cond = CondBatch::new(&vec![sigma; m], net.device())?;
        let y = net.denoise(&xt, &cond)?;
        out.extend(y.flatten_all()?.to_vec1::<f32>()?);
        i += m;
    }
    Ok(out)
}
