//! The denoiser a blob holds: [`Model`], built from a validated [`Blob`] by [`Model::from_blob`] (or its
//! shorthand [`Blob::model`]), borrowing every tensor from the blob bytes.

use super::{Denoiser, GaussianDenoiser, LinearDenoiser, MixtureDenoiser};
use crate::blob::format::{section, Kind};
use crate::blob::Blob;
use crate::error::BlobError;
use crate::kernels::{self, BlockKernels};
use crate::tensor::Tensor;

/// The denoiser a blob holds, borrowing its tensors from the blob bytes.
///
/// The Gaussian is always built; the linear and mixture kinds with core's features `linear` and `mixture`
/// (both on with `std`). A build without them (the firmware's lean build) has no code for them: its
/// [`Model::from_blob`] rejects such a blob.
#[derive(Clone, Copy, Debug)]
pub enum Model<'a> {
    /// Kind 1: the Gaussian (low rank plus floor).
    Gaussian(GaussianDenoiser<'a>),
    /// Kinds 2 and 3: per-sigma linear maps, dense or in a shared basis (feature `linear`).
    #[cfg(feature = "linear")]
    Linear(LinearDenoiser<'a>),
    /// Kind 4: a mixture of low-rank Gaussians (feature `mixture`).
    #[cfg(feature = "mixture")]
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

impl<'a> Model<'a> {
    /// Builds the denoiser `blob` holds (no allocation; tensors stay views into the blob bytes).
    ///
    /// # Errors
    /// [`BlobError::MissingSection`] (impossible after a successful parse) and the value checks of
    /// [`GaussianDenoiser::new`], [`LinearDenoiser::dense`] and [`LinearDenoiser::basis`] (eigenvalues
    /// descending and >= 0, sigma grid positive and strictly descending, finite values), and
    /// [`BlobError::NonFiniteTensor`] for a NaN or infinity in any section.
    pub fn from_blob(blob: &Blob<'a>) -> Result<Self, BlobError> {
        Self::from_blob_with(blob, &kernels::PORTABLE)
    }

    /// [`Model::from_blob`] with the denoiser computing its matrix-vector products with `kernels` (the
    /// firmware's Cortex-M4F assembly; a correct [`BlockKernels`] gives the same bits as
    /// [`kernels::Portable`], which a build that only calls this function does not link).
    ///
    /// # Errors
    /// As [`Model::from_blob`].
    pub fn from_blob_with(blob: &Blob<'a>, kernels: &'a dyn BlockKernels) -> Result<Self, BlobError> {
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
        // The tensor of a section the kind requires.
        let tensor = |id: u8| blob.section(id).ok_or(BlobError::MissingSection { id });
        let model = match blob.kind() {
            Kind::Gaussian => {
                let (mu, u_t, lambda) = (tensor(section::MU)?, tensor(section::U_T)?, tensor(section::LAMBDA)?);
                GaussianDenoiser::validate(&mu, &u_t, &lambda, blob.floor())?;
                Model::Gaussian(GaussianDenoiser::from_validated(mu, u_t, lambda, blob.floor(), kernels))
            }
            #[cfg(feature = "linear")]
            Kind::LinearDense => {
                let (sigmas, w, b) = (tensor(section::SIGMAS)?, tensor(section::W)?, tensor(section::B)?);
                Model::Linear(LinearDenoiser::dense(sigmas, w, b)?.with_kernels(kernels))
            }
            #[cfg(feature = "linear")]
            Kind::LinearBasis => {
                let (sigmas, u_t) = (tensor(section::SIGMAS)?, tensor(section::U_T)?);
                let (m, a, b) = (tensor(section::M)?, tensor(section::A)?, tensor(section::B)?);
                Model::Linear(LinearDenoiser::basis(sigmas, u_t, m, a, b)?.with_kernels(kernels))
            }
            #[cfg(feature = "mixture")]
            Kind::Mixture => {
                let (mu, u_t, lambda) = (tensor(section::MU)?, tensor(section::U_T)?, tensor(section::LAMBDA)?);
                let (weights, floors) = (tensor(section::WEIGHTS)?, tensor(section::FLOORS)?);
                Model::Mixture(MixtureDenoiser::new_with(mu, u_t, lambda, weights, floors, kernels)?)
            }
            #[cfg(not(all(feature = "linear", feature = "mixture")))]
            kind => return Err(BlobError::UnknownKind { code: kind as u8 }),
        };
        // A mixture's `mu` and `u_t` (checked above only if not blocked) through the components' views.
        #[cfg(feature = "mixture")]
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
            #[cfg(feature = "mixture")]
            Self::Mixture(m) => Some(m),
            #[allow(unreachable_patterns)]
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
        match self.as_mixture() {
            Some(m) => (j < m.components()).then(|| Model::Gaussian(m.component(j))),
            None => (j == 0).then_some(*self),
        }
    }

    /// The Gaussian denoiser, if this is one (the exact sampler needs it).
    pub fn as_gaussian(&self) -> Option<&GaussianDenoiser<'a>> {
        match self {
            Self::Gaussian(g) => Some(g),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The linear denoiser, if this is one.
    pub fn as_linear(&self) -> Option<&LinearDenoiser<'a>> {
        match self {
            #[cfg(feature = "linear")]
            Self::Linear(l) => Some(l),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// `$e` with `$d` bound to the denoiser of whichever kind `$model` holds (the kinds this build has).
macro_rules! each_kind {
    ($model:expr, $d:ident => $e:expr) => {
        match $model {
            Model::Gaussian($d) => $e,
            #[cfg(feature = "linear")]
            Model::Linear($d) => $e,
            #[cfg(feature = "mixture")]
            Model::Mixture($d) => $e,
        }
    };
}

impl Denoiser for Model<'_> {
    fn dim(&self) -> usize {
        each_kind!(self, d => d.dim())
    }

    fn scratch_len(&self) -> usize {
        each_kind!(self, d => d.scratch_len())
    }

    fn denoise(&self, x: &[f32], sigma: f32, out: &mut [f32], scratch: &mut [f32]) {
        each_kind!(self, d => d.denoise(x, sigma, out, scratch))
    }

    fn macs_per_eval(&self) -> u64 {
        each_kind!(self, d => d.macs_per_eval())
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
