//! Read-only, zero-copy matrix views over little-endian bytes of ANY alignment.
//!
//! Storage formats (`DType`) are f32, f16 and int8 with one f32 scale per row; arithmetic is always f32.
//! Every reduction here has a fixed summation order (documented on each kernel), so the same input gives the
//! same bits on the host and on Cortex-M.

use crate::error::BlobError;
use crate::math::{dot4_rows4_with, BlockKernels};

/// Four rows' chunked parts, as the block kernels take them.
#[derive(Clone, Copy)]
enum Rows4<'a> {
    F32([&'a [[f32; 4]]; 4]),
    F16([&'a [[u32; 2]]; 4]),
    /// int8 rows (portable kernels only) and their four row scales.
    I8([&'a [[u8; 4]]; 4], [f32; 4]),
}

/// Element type of a stored tensor. The discriminant is the on-disk code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DType {
    /// IEEE 754 binary32, little-endian.
    F32 = 0,
    /// IEEE 754 binary16, little-endian (decoded with `half`).
    F16 = 1,
    /// Signed 8-bit integers; row `r` decodes as `q * scale[r]`, scales stored as f32 after the data.
    I8 = 2,
}

impl DType {
    /// The dtype for an on-disk code.
    ///
    /// # Errors
    /// [`BlobError::UnknownDType`] for any code other than 0, 1, 2.
    pub const fn from_code(code: u8) -> Result<Self, BlobError> {
        match code {
            0 => Ok(Self::F32),
            1 => Ok(Self::F16),
            2 => Ok(Self::I8),
            _ => Err(BlobError::UnknownDType { code }),
        }
    }

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

    /// Short lowercase name: `f32`, `f16`, `i8`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::I8 => "i8",
        }
    }
}

/// A row-major `rows x cols` matrix (a vector is `rows = 1`) stored in `dtype` inside a byte slice.
///
/// For [`DType::I8`] the slice holds `rows * cols` bytes of data followed by `rows` little-endian f32 scales.
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'a> {
    dtype: DType,
    rows: usize,
    cols: usize,
    bytes: &'a [u8],
    /// For f16: every stored value is finite (checked once in [`Tensor::new`]; the fast f16 kernels rely on
    /// it). Always true for f32 and int8, whose kernels need no such check.
    f16_finite: bool,
}

#[inline(always)]
fn le_f32(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

#[inline(always)]
fn le_f16(b: &[u8], i: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])).to_f32()
}

impl<'a> Tensor<'a> {
    /// A view of `bytes` as a `rows x cols` tensor of `dtype`.
    ///
    /// # Errors
    /// [`BlobError::BadTensorLength`] if `bytes.len()` is not exactly `dtype.storage_bytes(rows, cols)`.
    pub fn new(dtype: DType, rows: usize, cols: usize, bytes: &'a [u8]) -> Result<Self, BlobError> {
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
        assert!(r < self.rows, "row out of range");
        match self.dtype {
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
        assert!(r < self.rows && c < self.cols, "index out of range");
        let i = r * self.cols + c;
        match self.dtype {
            DType::F32 => le_f32(self.bytes, i),
            DType::F16 => le_f16(self.bytes, i),
            DType::I8 => (self.bytes[i] as i8) as f32 * self.row_scale(r),
        }
    }

    /// Decode row `r` into `out` (length `cols`).
    ///
    /// # Panics
    /// If `r >= rows` or `out.len() != cols`.
    pub fn decode_row(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.rows && out.len() == self.cols, "decode_row: bad row or output length");
        for (c, o) in out.iter_mut().enumerate() {
            *o = self.get(r, c);
        }
    }

    /// Bytes of row `r` (data only; int8 scales excluded).
    #[inline]
    fn row_bytes(&self, r: usize) -> &'a [u8] {
        let n = self.cols * self.dtype.element_bytes();
        &self.bytes[r * n..(r + 1) * n]
    }

    /// `sum_c T[r, c] * x[c]` in f32.
    ///
    /// Summation order (part of the bit-exactness contract between host and target): four partial sums
    /// `s_j` accumulate elements `c = 4m + j` in increasing `m`; the tail `c >= 4*floor(cols/4)` is added to
    /// `s_0..` in order; the result is `(s_0 + s_1) + (s_2 + s_3)` ([`crate::math::dot4`]). For int8 the
    /// integer-valued products `q * x` are summed this way and the row scale is applied once at the end.
    /// Computed with the block kernels of [`crate::math`] straight over the row's bytes; bit-identical to the
    /// element-wise [`Tensor::row_dot_reference`].
    ///
    /// # Panics
    /// If `r >= rows` or `x.len() != cols`.
    #[inline]
    pub fn row_dot(&self, r: usize, x: &[f32]) -> f32 {
        assert!(r < self.rows && x.len() == self.cols, "row_dot: bad row or input length");
        let row = self.row_bytes(r);
        match self.dtype {
            DType::F32 => crate::math::dot4_f32_le(x, row),
            DType::F16 => crate::math::dot4_f16_le(x, row),
            DType::I8 => crate::math::dot4_i8(x, row) * self.row_scale(r),
        }
    }

    /// `y[c] += alpha * T[r, c]` for every column `c` (elementwise, no reduction); for int8,
    /// `y[c] += (alpha * scale_r) * q[r, c]`. Bit-identical to [`Tensor::row_axpy_reference`].
    ///
    /// # Panics
    /// If `r >= rows` or `y.len() != cols`.
    #[inline]
    pub fn row_axpy(&self, r: usize, alpha: f32, y: &mut [f32]) {
        assert!(r < self.rows && y.len() == self.cols, "row_axpy: bad row or output length");
        let row = self.row_bytes(r);
        match self.dtype {
            DType::F32 => crate::math::axpy_f32_le(alpha, row, y),
            DType::F16 if self.f16_finite => crate::math::axpy_f16_le_finite(alpha, row, y),
            DType::F16 => crate::math::axpy_f16_le(alpha, row, y),
            DType::I8 => crate::math::axpy_i8(alpha * self.row_scale(r), row, y),
        }
    }

    /// [`Tensor::row_axpy`] with the given block kernels for f32 and finite f16 rows (same bits with every
    /// correct implementation); int8, unaligned or non-finite f16 rows use [`Tensor::row_axpy`].
    ///
    /// # Panics
    /// If `r >= rows` or `y.len() != cols`.
    pub fn row_axpy_with(&self, kernels: &dyn BlockKernels, r: usize, alpha: f32, y: &mut [f32]) {
        assert!(r < self.rows && y.len() == self.cols, "row_axpy: bad row or output length");
        let (yq, yt) = y.as_chunks_mut::<4>();
        match self.rows4_from(r, 1) {
            Some(Rows4::F32(w)) => kernels.axpy_row_f32(alpha, w[0], yq),
            Some(Rows4::F16(w)) => kernels.axpy_row_f16(alpha, w[0], yq),
            // int8 (never returned for one row), unaligned or non-finite f16: the per-row kernel.
            _ => return self.row_axpy(r, alpha, y),
        }
        let main = 4 * yq.len();
        for (j, yc) in yt.iter_mut().enumerate() {
            *yc += alpha * self.get(r, main + j);
        }
    }

    /// `out[i] = row_dot(first + i, x)` for `i < out.len()`, bit for bit, four rows at a time (the
    /// matrix-vector product `T[first.., :] x`; each `x` chunk is loaded once for four rows), with the
    /// [`Portable`](crate::math::Portable) kernels.
    ///
    /// # Panics
    /// If `first + out.len() > rows` or `x.len() != cols`.
    pub fn rows_dot(&self, first: usize, x: &[f32], out: &mut [f32]) {
        self.rows_dot_with(&crate::math::PORTABLE, first, x, out);
    }

    /// [`Tensor::rows_dot`] with the given block kernels (same bits with every correct implementation).
    ///
    /// # Panics
    /// If `first + out.len() > rows` or `x.len() != cols`.
    pub fn rows_dot_with(&self, kernels: &dyn BlockKernels, first: usize, x: &[f32], out: &mut [f32]) {
        let in_range = first.checked_add(out.len()).is_some_and(|end| end <= self.rows);
        assert!(in_range && x.len() == self.cols, "rows_dot: bad rows or input length");
        let (blocks, tail) = out.as_chunks_mut::<{ crate::math::BLOCK_ROWS }>();
        let mut r = first;
        for block in blocks {
            let exact = |i: usize, c: usize| self.get(r + i, c);
            match self.rows4(r) {
                Some(Rows4::F32(w)) => {
                    *block = dot4_rows4_with(x, |xq, s| kernels.dot_rows4_f32(xq, w, s), exact);
                }
                Some(Rows4::F16(w)) => {
                    *block = dot4_rows4_with(x, |xq, s| kernels.dot_rows4_f16(xq, w, s), exact);
                }
                Some(Rows4::I8(w, scale)) => {
                    let q = |i: usize, c: usize| (self.bytes[(r + i) * self.cols + c] as i8) as f32;
                    let sums = dot4_rows4_with(x, |xq, s| crate::math::dot_rows4_i8(xq, w, s), q);
                    *block = core::array::from_fn(|i| sums[i] * scale[i]);
                }
                None => block.iter_mut().enumerate().for_each(|(i, o)| *o = self.row_dot(r + i, x)),
            }
            r += crate::math::BLOCK_ROWS;
        }
        for (i, o) in tail.iter_mut().enumerate() {
            *o = self.row_dot(r + i, x);
        }
    }

    /// `y += sum_i alpha[i] * T[first + i, :]`, bit-identical to `row_axpy(first + i, alpha[i], y)` for
    /// `i = 0, 1, ...` in order (every `y[c]` receives the same additions in the same order), four rows at a
    /// time (each `y` chunk loaded and stored once per four rows), with the
    /// [`Portable`](crate::math::Portable) kernels.
    ///
    /// # Panics
    /// If `first + alpha.len() > rows` or `y.len() != cols`.
    pub fn rows_axpy(&self, first: usize, alpha: &[f32], y: &mut [f32]) {
        self.rows_axpy_with(&crate::math::PORTABLE, first, alpha, y);
    }

    /// [`Tensor::rows_axpy`] with the given block kernels (same bits with every correct implementation).
    ///
    /// # Panics
    /// If `first + alpha.len() > rows` or `y.len() != cols`.
    pub fn rows_axpy_with(&self, kernels: &dyn BlockKernels, first: usize, alpha: &[f32], y: &mut [f32]) {
        let in_range = first.checked_add(alpha.len()).is_some_and(|end| end <= self.rows);
        assert!(in_range && y.len() == self.cols, "rows_axpy: bad rows or output length");
        let (blocks, tail) = alpha.as_chunks::<{ crate::math::BLOCK_ROWS }>();
        let mut r = first;
        for &a in blocks {
            let Some(rows) = self.rows4(r) else {
                a.iter().enumerate().for_each(|(i, &ai)| self.row_axpy(r + i, ai, y));
                r += crate::math::BLOCK_ROWS;
                continue;
            };
            let (yq, yt) = y.as_chunks_mut::<4>();
            let main = 4 * yq.len();
            match rows {
                Rows4::F32(w) => kernels.axpy_rows4_f32(a, w, yq),
                Rows4::F16(w) => kernels.axpy_rows4_f16(a, w, yq),
                Rows4::I8(w, scale) => {
                    // `row_axpy`'s int8 form: `y += (alpha * scale) * q`.
                    let a = core::array::from_fn(|i| a[i] * scale[i]);
                    crate::math::axpy_rows4_i8(a, w, yq);
                    for (j, yc) in yt.iter_mut().enumerate() {
                        for (i, &ai) in a.iter().enumerate() {
                            *yc += ai * (self.bytes[(r + i) * self.cols + main + j] as i8) as f32;
                        }
                    }
                    r += crate::math::BLOCK_ROWS;
                    continue;
                }
            }
            for (j, yc) in yt.iter_mut().enumerate() {
                for (i, &ai) in a.iter().enumerate() {
                    *yc += ai * self.get(r + i, main + j);
                }
            }
            r += crate::math::BLOCK_ROWS;
        }
        for (i, &a) in tail.iter().enumerate() {
            self.row_axpy(r + i, a, y);
        }
    }

    /// The chunked parts of rows `r..r + 4` for the block kernels: f32 rows when the data is 4-byte aligned
    /// (little-endian targets: the bytes already are the values), f16 rows when they are 4-byte aligned and
    /// every value is finite, int8 rows always (with their scales; these use the portable kernels whatever
    /// `kernels` says); `None` otherwise (odd addresses, non-finite f16), which takes the per-row kernels.
    #[inline(always)]
    fn rows4(&self, r: usize) -> Option<Rows4<'a>> {
        self.rows4_from(r, 4)
    }

    /// As [`Tensor::rows4`] for the `n` (1 to 4) rows `r..r + n`; slots `n..4` repeat row `r + n - 1`. No
    /// int8 rows for `n < 4`.
    #[inline(always)]
    fn rows4_from(&self, r: usize, n: usize) -> Option<Rows4<'a>> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let main = self.cols - self.cols % 4;
        let row = |i: usize| r + i.min(n - 1);
        match self.dtype {
            DType::F32 => {
                let all: &'a [f32] = bytemuck::try_cast_slice(&self.bytes[..self.rows * self.cols * 4]).ok()?;
                Some(Rows4::F32(core::array::from_fn(|i| {
                    let start = row(i) * self.cols;
                    all[start..start + main].as_chunks::<4>().0
                })))
            }
            DType::F16 if self.f16_finite => {
                let mut w: [&'a [[u32; 2]]; 4] = [&[]; 4];
                for (i, wi) in w.iter_mut().enumerate() {
                    let start = 2 * row(i) * self.cols;
                    *wi = bytemuck::try_cast_slice(&self.bytes[start..start + 2 * main]).ok()?;
                }
                Some(Rows4::F16(w))
            }
            DType::I8 if n == 4 => {
                let scale = core::array::from_fn(|i| self.row_scale(r + i));
                Some(Rows4::I8(
                    core::array::from_fn(|i| self.bytes[(r + i) * self.cols..][..main].as_chunks::<4>().0),
                    scale,
                ))
            }
            DType::F16 | DType::I8 => None,
        }
    }

    /// The element-wise reference for [`Tensor::row_dot`] (same order, decoding one element at a time with
    /// `half` for f16): the test oracle and the benchmarks' slow baseline.
    ///
    /// # Panics
    /// If `r >= rows` or `x.len() != cols`.
    pub fn row_dot_reference(&self, r: usize, x: &[f32]) -> f32 {
        assert!(r < self.rows && x.len() == self.cols, "row_dot: bad row or input length");
        let start = r * self.cols;
        match self.dtype {
            DType::F32 => crate::math::dot4(x, |c| le_f32(self.bytes, start + c)),
            DType::F16 => crate::math::dot4(x, |c| le_f16(self.bytes, start + c)),
            DType::I8 => crate::math::dot4(x, |c| (self.bytes[start + c] as i8) as f32) * self.row_scale(r),
        }
    }

    /// The element-wise reference for [`Tensor::row_axpy`] (test oracle and benchmark baseline).
    ///
    /// # Panics
    /// If `r >= rows` or `y.len() != cols`.
    pub fn row_axpy_reference(&self, r: usize, alpha: f32, y: &mut [f32]) {
        assert!(r < self.rows && y.len() == self.cols, "row_axpy: bad row or output length");
        let start = r * self.cols;
        match self.dtype {
            DType::F32 => y.iter_mut().enumerate().for_each(|(c, v)| *v += alpha * le_f32(self.bytes, start + c)),
            DType::F16 => y.iter_mut().enumerate().for_each(|(c, v)| *v += alpha * le_f16(self.bytes, start + c)),
            DType::I8 => {
                let a = alpha * self.row_scale(r);
                y.iter_mut().enumerate().for_each(|(c, v)| *v += a * (self.bytes[start + c] as i8) as f32)
            }
        }
    }
}
