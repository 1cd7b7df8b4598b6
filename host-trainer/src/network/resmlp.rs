//! The residual MLP (`--arch resmlp`): pre-LayerNorm residual blocks with FiLM noise conditioning.
//!
//! With `x_in = c_in x` (d pixels), `phi` the Fourier features of `c_noise` ([`super::noise_features`])
//! and `W` the width:
//! * noise embedding: `e = silu(silu(phi E_0 + b) E_1 + b)` (width [`EMB_HIDDEN`]);
//! * `h_0 = x_in A_in + b` (W units, the residual stream);
//! * block k: `(s, t) = e M_k + b` (FiLM, 2W), `a = LN(h_k) (1 + s) + t`,
//!   `h_{k+1} = h_k + silu(a B_k + b) C_k + b`;
//! * `F = LN(h_K) A_out + b + g ⊙ x_in` (LayerNorm with gain and bias), where `g = e G + b` is a
//!   per-pixel gain that depends on sigma: it moves each pixel's effective skip coefficient
//!   `c_skip + c_out c_in g` (for MNIST's constant border pixels the best one is 0).
//!
//! Why this shape (measured in `docs/trainer.md`, "Why the plain MLP stalls"): at small sigma EDM's skip
//! path passes almost all of the noise, `c_skip ~ 1`, and the raw network must output about `-z` (unit
//! variance in every one of the d pixels) to remove it. A stack of SiLU layers without residual paths
//! cannot carry a full-rank linear map of the input with a noise-dependent gain; the residual stream can
//! (it is linear from `x_in` to the output LayerNorm), LayerNorm supplies the gain, and FiLM lets every
//! unit's scale depend on sigma. The FiLM maps and the output layer start at zero, so `F = 0` at
//! initialisation and every block starts as the same function of sigma.

use anyhow::Result;
use candle_core::{Tensor, D};

use super::{Init, Network, EMB_DIM};

/// Width of the noise embedding MLP.
pub const EMB_HIDDEN: usize = 128;

/// Create the parameters of a residual MLP of `width` units and `blocks` blocks for d = `dim` pixels.
pub(super) fn init(init: &mut Init<'_>, dim: usize, width: usize, blocks: usize) -> Result<()> {
    init.linear("emb.0", EMB_DIM, EMB_HIDDEN, false, true)?;
    init.linear("emb.1", EMB_HIDDEN, EMB_HIDDEN, false, true)?;
    init.linear("in", dim, width, false, true)?;
    for k in 0..blocks {
        init.linear(&format!("b{k}.film"), EMB_HIDDEN, 2 * width, true, true)?;
        init.linear(&format!("b{k}.fc1"), width, width, false, true)?;
        init.linear(&format!("b{k}.fc2"), width, width, false, true)?;
    }
    init.norm("out_n", width)?;
    init.linear("out", width, dim, true, true)?;
    init.linear("gain", EMB_HIDDEN, dim, true, true)
}

/// LayerNorm over the last dimension (eps 1e-5), without gain or bias.
pub(super) fn layer_norm(x: &Tensor) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?)
}

impl Network {
    fn lin(&self, x: &Tensor, name: &str) -> Result<Tensor> {
        Ok(x.matmul(self.p(&format!("{name}.w"))?)?.broadcast_add(self.p(&format!("{name}.b"))?)?)
    }

    /// Raw residual MLP `F(x_in; phi)`, (B, d) -> (B, d).
    pub(super) fn raw_resmlp(&self, x_in: &Tensor, phi: &Tensor, blocks: usize) -> Result<Tensor> {
        let e = self.lin(&self.lin(phi, "emb.0")?.silu()?, "emb.1")?.silu()?;
        let mut h = self.lin(x_in, "in")?;
        for k in 0..blocks {
            let film = self.lin(&e, &format!("b{k}.film"))?;
            let w = h.dim(1)?;
            let (s, t) = (film.narrow(1, 0, w)?, film.narrow(1, w, w)?);
            let a = (layer_norm(&h)?.broadcast_mul(&(s + 1.0)?)? + t)?;
            let a = self.lin(&self.lin(&a, &format!("b{k}.fc1"))?.silu()?, &format!("b{k}.fc2"))?;
            h = (h + a)?;
        }
        let hn = layer_norm(&h)?.broadcast_mul(self.p("out_n.g")?)?.broadcast_add(self.p("out_n.b")?)?;
        let gain = self.lin(&e, "gain")?;
        Ok((self.lin(&hn, "out")? + (gain * x_in)?)?)
    }
}
