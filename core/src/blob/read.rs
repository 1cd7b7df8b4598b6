//! (in progress)
/// A parsed blob (in progress).
#[derive(Debug)]
pub struct Blob<'a> {
    bytes: &'a [u8],
}
impl<'a> Blob<'a> {
    /// Raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}
