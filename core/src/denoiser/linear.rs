//! (in progress)
/// (in progress)
#[derive(Debug, Clone, Copy)]
pub struct LinearDenoiser<'a> {
    _p: core::marker::PhantomData<&'a ()>,
}
