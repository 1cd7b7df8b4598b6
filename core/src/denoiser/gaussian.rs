//! (in progress)
/// (in progress)
#[derive(Debug, Clone, Copy)]
pub struct GaussianDenoiser<'a> {
    _p: core::marker::PhantomData<&'a ()>,
}
