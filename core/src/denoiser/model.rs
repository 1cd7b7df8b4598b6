//! The denoiser a blob holds: [`Model`], built from a validated [`Blob`] by [`Model::from_blob`] (or its
//! shorthand [`Blob::model`]), borrowing every tensor from the blob bytes.

use super::{Denoiser, GaussianDenoiser, LinearDenoiser, MixtureDenoiser};
use crate::blob::format::{section, Kind};
use crate::blob::Blob;
use crate::error::BlobError;
use crate::tensor::Tensor;

/// The denoiser a blob holds, borrowing its tensors from the blob bytes.
#[derive(Clone, Copy, Debug)]
pub enum Model<'a> {
    /// Kind 1: the Gaussian (low rank plus floor).
    Gaussian(GaussianDenoiser<'a>),
    /// Kinds 2 and 3: per-sigma linear maps, dense or in a shared basis.
    Linear(LinearDenoiser<'a>),
    /// Kind 4: a mixture of low-rank Gaussians.
    Mixture(MixtureDenoiser<'a>),
}

/// [`BlobError::NonFiniteTensor`] for the first NaN or infinity in `t` (element indices counted from
/// `offset`, the tensor's first element within its section).
fn check_finite(t: &Tensor<'_>, id: u8, offset: usize) -> Result<(), BlobError> {
    for r in 0..t.rows() {
        for c in 0..t.cols() {
            if !t.get(r, c).is_finite() {
                let index = u32::try_from(offset + r * t.cols() + c).unwrap_or(u32::MAX);
                return Err(BlobError::NonFiniteTensor { id, index });
            }
        }
    }
    Ok(())
}

/// The tensors of the sections `ids`, in order.
fn sections<'a, const N: usize>(blob: &Blob<'a>, ids: [u8; N]) -> Result<[Tensor<'a>; N], BlobError> {
    let mut out = [None; N];
    for (o, id) in out.iter_mut().zip(ids) {
        *o = Some(blob.section(id).ok_or(BlobError::MissingSection { id })?);
    }
    Ok(out.map(|t| t.expect("every entry set above")))
}

impl<'a> Model<'a> {
    /// Builds the denoiser `blob` holds (no allocation; tensors stay views into the blob bytes).
    ///
    /// # Errors
    /// [`BlobError::MissingSection`] (impossible after a successful parse) and the value checks of
    /// [`GaussianDenoiser::new`], [`LinearDenoiser::dense`] and [`LinearDenoiser::basis`] (eigenvalues
    /// descending and >= 0, sigma grid positive and strictly descending, finite values), and
    /// [`BlobError::NonFiniteTensor`] for a NaN or infinity in any section.
    pub fn from_blob(blob: &Blob<'a>) -> Result<Self, BlobError> {
        // Every tensor's values must be finite (an infinite mean would give non-finite samples), checked
        // before the denoisers' own value checks. A mixture's `mu` and `u_t` are K blocks, each laid out like
        // a standalone tensor (int8 blocks carry their own row scales): they are checked through the
        // components' views once the model is built.
        let blocked = |id: u8| blob.kind() == Kind::Mixture && (id == section::MU || id == section::U_T);
        for s in blob.sections() {
            if let Some(t) = blob.section(s.id).filter(|_| !blocked(s.id)) {
                check_finite(&t, s.id, 0)?;
            }
        }
        let model = match blob.kind() {
            Kind::Gaussian => {
                let [mu, u_t, lambda] = sections(blob, [section::MU, section::U_T, section::LAMBDA])?;
                Model::Gaussian(GaussianDenoiser::new(mu, u_t, lambda, blob.floor())?)
            }
            Kind::LinearDense => {
                let [sigmas, w, b] = sections(blob, [section::SIGMAS, section::W, section::B])?;
                Model::Linear(LinearDenoiser::dense(sigmas, w, b)?)
            }
            Kind::LinearBasis => {
                let ids = [section::SIGMAS, section::U_T, section::M, section::A, section::B];
                let [sigmas, u_t, m, a, b] = sections(blob, ids)?;
                Model::Linear(LinearDenoiser::basis(sigmas, u_t, m, a, b)?)
            }
            Kind::Mixture => {
                let ids = [section::MU, section::U_T, section::LAMBDA, section::WEIGHTS, section::FLOORS];
                let [mu, u_t, lambda, weights, floors] = sections(blob, ids)?;
                Model::Mixture(MixtureDenoiser::new(mu, u_t, lambda, weights, floors)?)
            }
        };
        // A mixture's `mu` and `u_t` (checked above only if not blocked) through the components' views.
        if let Model::Mixture(m) = &model {
            for j in 0..m.components() {
                let g = m.component(j);
                let (mu, u_t) = (g.mu(), g.u_t());
                check_finite(&mu, section::MU, j * mu.rows() * mu.cols())?;
                check_finite(&u_t, section::U_T, j * u_t.rows() * u_t.cols())?;
            }
        }
        Ok(model)
    }

    /// The mixture denoiser, if this is one.
    pub fn as_mixture(&self) -> Option<&MixtureDenoiser<'a>> {
        match self {
            Self::Mixture(m) => Some(m),
            _ => None,
        }
    }

    /// Number of components: K for a mixture, 1 otherwise.
    pub fn components(&self) -> usize {
        self.as_mixture().map_or(1, MixtureDenoiser::components)
    }

    /// Class-conditional model: component `j` of a mixture as a Gaussian model (its exact closed form);
    /// a Gaussian or linear model for `j = 0` is itself. `None` if `j >= components()`.
    pub fn component(&self, j: usize) -> Option<Model<'a>> {
        match self {
            Self::Mixture(m) => (j < m.components()).then(|| Model::Gaussian(m.component(j))),
            _ => (j == 0).then_some(*self),
        }
    }

    /// The Gaussian denoiser, if this is one (the exact sampler needs it).
    pub fn as_gaussian(&self) -> Option<&GaussianDenoiser<'a>> {
        match self {
            Self::Gaussian(g) => Some(g),
            _ => None,
        }
    }

    /// The linear denoiser, if this is one.
    pub fn as_linear(&self) -> Option<&LinearDenoiser<'a>> {
        match self {
            Self::Linear(l) => Some(l),
            _ => None,
        }
    }
}

impl Denoiser for Model<'_> {
    fn dim(&self) -> usize {
        match self {
            Self::Gaussian(g) => g.dim(),
            Self::Linear(l) => l.dim(),
            Self::Mixture(m) => m.dim(),
        }
    }

    fn scratch_len(&self) -> usize {
        match self {
            Self::Gaussian(g) => g.scratch_len(),
            Self::Linear(l) => l.scratch_len(),
            Self::Mixture(m) => m.scratch_len(),
        }
    }

    fn denoise(&self, x: &[f32], sigma: f32, out: &mut [f32], scratch: &mut [f32]) {
        match self {
            Self::Gaussian(g) => g.denoise(x, sigma, out, scratch),
            Self::Linear(l) => l.denoise(x, sigma, out, scratch),
            Self::Mixture(m) => m.denoise(x, sigma, out, scratch),
        }
    }

    fn macs_per_eval(&self) -> u64 {
        match self {
            Self::Gaussian(g) => g.macs_per_eval(),
            Self::Linear(l) => l.macs_per_eval(),
            Self::Mixture(m) => m.macs_per_eval(),
        }
    }
}

impl<'a> Blob<'a> {
    /// The blob's denoiser: [`Model::from_blob`] (defined beside the denoisers; the blob module itself
    /// does not depend on them).
    ///
    /// # Errors
    /// As [`Model::from_blob`].
    pub fn model(&self) -> Result<Model<'a>, BlobError> {
        Model::from_blob(self)
    }
}
