//! Stored tensors: read-only, zero-copy matrix views over little-endian bytes of ANY alignment, used by the
//! blob reader (sections) and the denoisers (their parameters).
//!
//! Storage formats ([`DType`]) are f32, f16 and int8 with one f32 scale per row; arithmetic is always f32.
//! This module is the storage view (shape, element access, row decoding); the row products with their fixed
//! summation order (`row_dot`, `rows_dot_with`, `row_axpy`, `rows_axpy_with`, ...) are kernels and live in
//! [`crate::kernels`].

use crate::error::{BlobError, ParseNameError};

code_enum! {
    /// Element type of a stored tensor. The discriminant is the on-disk code.
    pub enum DType, unknown code: UnknownDType {
        /// IEEE 754 binary32, little-endian.
        F32 = 0 => "f32",
        /// IEEE 754 binary16, little-endian (decoded with `half`).
        F16 = 1 => "f16",
        /// Signed 8-bit integers; row `r` decodes as `q * scale[r]`, scales stored as f32 after the data.
        I8 = 2 => "i8",
    }
}

impl DType {
    /// Bytes per stored element (scales not included).
    pub const fn element_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
            Self::I8 => 1,
        }
    }

    /// Total stored bytes of a `rows x cols` tensor, including int8's per-row f32 scales.
    pub const fn storage_bytes(self, rows: usize, cols: usize) -> usize {
        let data = rows * cols * self.element_bytes();
        match self {
            Self::I8 => data + 4 * rows,
            _ => data,
        }
    }

    /// The dtype for a name: [`DType::name`] (`f32`, `f16`, `i8`) or `int8` for [`DType::I8`]; `None` for
    /// any other text. The one dtype parser of the workspace (command lines, configuration files).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "int8" => Some(Self::I8),
            _ => Self::ALL.into_iter().find(|t| t.name() == name),
        }
    }
}

impl core::fmt::Display for DType {
    /// [`DType::name`].
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for DType {
    type Err = ParseNameError;

    /// [`DType::from_name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(ParseNameError::new("expected f32, f16 or i8"))
    }
}

/// A row-major `rows x cols` matrix (a vector is `rows = 1`) stored in `dtype` inside a byte slice.
///
/// For [`DType::I8`] the slice holds `rows * cols` bytes of data followed by `rows` little-endian f32 scales.
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'a> {
    pub(crate) dtype: DType,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) bytes: &'a [u8],
    /// For f16: every stored value is finite (checked once in [`Tensor::new`]; the fast f16 kernels rely on
    /// it). Always true for f32 and int8, whose kernels need no such check.
    pub(crate) f16_finite: bool,
}

/// Little-endian f32 element `i` of `b`.
#[inline(always)]
pub(crate) fn le_f32(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

/// Little-endian binary16 element `i` of `b`, decoded with `half`.
#[inline(always)]
pub(crate) fn le_f16(b: &[u8], i: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])).to_f32()
}

impl<'a> Tensor<'a> {
    /// A view of `bytes` as a `rows x cols` tensor of `dtype`.
    ///
    /// # Errors
    /// [`BlobError::BadTensorLength`] if `bytes.len()` is not exactly `dtype.storage_bytes(rows, cols)`;
    /// [`BlobError::UnknownDType`] for int8 in a build without the feature `int8` (so no int8 tensor exists
    /// there, and no int8 code is linked).
    pub fn new(dtype: DType, rows: usize, cols: usize, bytes: &'a [u8]) -> Result<Self, BlobError> {
        if dtype == DType::I8 && !cfg!(feature = "int8") {
            return Err(BlobError::UnknownDType { code: DType::I8 as u8 });
        }
        let expected = rows.checked_mul(cols).and_then(|n| n.checked_mul(dtype.element_bytes())).and_then(|n| {
            if dtype == DType::I8 {
                n.checked_add(rows.checked_mul(4)?)
            } else {
                Some(n)
            }
        });
        match expected {
            Some(e) if e == bytes.len() => {
                // binary16 infinities and NaNs have all five exponent bits set.
                let f16_finite = dtype != DType::F16
                    || bytes.as_chunks::<2>().0.iter().all(|h| u16::from_le_bytes(*h) & 0x7c00 != 0x7c00);
                Ok(Self { dtype, rows, cols, bytes, f16_finite })
            }
            _ => Err(BlobError::BadTensorLength {
                expected: expected.map_or(u32::MAX, |e| u32::try_from(e).unwrap_or(u32::MAX)),
                found: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            }),
        }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Number of elements (`rows * cols`).
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }
    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The underlying bytes (data, then int8 scales).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Per-row scale of an int8 tensor (1.0 for float types).
    ///
    /// # Panics
    /// If `r >= rows` (caller contract).
    #[inline]
    pub fn row_scale(&self, r: usize) -> f32 {
        contract!(r < self.rows, "row out of range");
        match self.dtype {
            #[cfg(feature = "int8")]
            DType::I8 => le_f32(&self.bytes[self.rows * self.cols..], r),
            _ => 1.0,
        }
    }

    /// Element `(r, c)` decoded to f32.
    ///
    /// # Panics
    /// If `r >= rows` or `c >= cols` (caller contract).
    #[inline]
    pub fn get(&self, r: usize, c: usize) -> f32 {
        contract!(r < self.rows && c < self.cols, "index out of range");
        let i = r * self.cols + c;
        match self.dtype {
            DType::F32 => le_f32(self.bytes, i),
            DType::F16 => le_f16(self.bytes, i),
            #[cfg(feature = "int8")]
            DType::I8 => (self.bytes[i] as i8) as f32 * self.row_scale(r),
            // No int8 tensor exists without the feature (`Tensor::new` refuses them).
            #[cfg(not(feature = "int8"))]
            DType::I8 => f32::NAN,
        }
    }

    /// Decode row `r` into `out` (length `cols`).
    ///
    /// # Panics
    /// If `r >= rows` or `out.len() != cols`.
    pub fn decode_row(&self, r: usize, out: &mut [f32]) {
        contract!(r < self.rows && out.len() == self.cols, "decode_row: bad row or output length");
        for (c, o) in out.iter_mut().enumerate() {
            *o = self.get(r, c);
        }
    }

    /// Block `j` of `blocks` equal row blocks of a tensor stored block by block (the mixture kind's stacked
    /// sections, `docs/blob-format.md` §6): rows `j rows / blocks ..`, viewing bytes
    /// `[j len / blocks, (j + 1) len / blocks)`. For f32 and f16 that is the same as the rows of the whole
    /// tensor; for int8 each block carries its own row scales after its data. No scan: an f16 block inherits
    /// the whole tensor's finiteness flag (conservative, same bits either way).
    ///
    /// `None` if `blocks == 0`, `rows` is not a multiple of `blocks` or `j >= blocks`.
    pub fn block(&self, j: usize, blocks: usize) -> Option<Tensor<'a>> {
        if blocks == 0 || !self.rows.is_multiple_of(blocks) || j >= blocks {
            return None;
        }
        let len = self.bytes.len() / blocks;
        let bytes = self.bytes.get(j * len..(j + 1) * len)?;
        Some(Self { rows: self.rows / blocks, bytes, ..*self })
    }

    /// Bytes of row `r` (data only; int8 scales excluded).
    #[inline]
    pub(crate) fn row_bytes(&self, r: usize) -> &'a [u8] {
        let n = self.cols * self.dtype.element_bytes();
        &self.bytes[r * n..(r + 1) * n]
    }
}
