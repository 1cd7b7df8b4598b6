//! Image shape and the pixel mapping between stored model values and 8-bit pixels.
//!
//! Samples are flattened channel-major (CHW): index `(c * height + y) * width + x`.
//! The mapping is affine: `pixel = clamp(round(value * scale + offset), 0, 255)`; EDM's `[-1, 1]`
//! convention is `scale = offset = 127.5`. Datasets are mapped into model space by the inverse,
//! `value = (pixel - offset) / scale`.

use crate::math;

/// Image shape: channels (1 or 3), height and width in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ImageShape {
    /// Number of channels (1 = gray, 3 = RGB).
    pub channels: u16,
    /// Rows.
    pub height: u16,
    /// Columns.
    pub width: u16,
}

impl ImageShape {
    /// `d = channels * height * width`.
    pub const fn dim(&self) -> usize {
        self.channels as usize * self.height as usize * self.width as usize
    }
}

/// Affine map from model values to 8-bit pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PixelMap {
    /// Multiplier applied to a model value.
    pub scale: f32,
    /// Added after scaling.
    pub offset: f32,
}

impl PixelMap {
    /// EDM's convention: pixel values 0..255 map to [-1, 1].
    pub const EDM: Self = Self { scale: 127.5, offset: 127.5 };

    /// `clamp(round(value * scale + offset), 0, 255)`; NaN maps to 0.
    #[inline]
    pub fn to_pixel(&self, value: f32) -> u8 {
        let p = math::round(value * self.scale + self.offset);
        if p >= 255.0 {
            255
        } else if p > 0.0 {
            p as u8
        } else {
            0
        }
    }

    /// Inverse mapping for dataset loading: `(pixel - offset) / scale`.
    #[inline]
    pub fn to_value(&self, pixel: f32) -> f32 {
        (pixel - self.offset) / self.scale
    }

    /// Convert a whole sample to pixels.
    ///
    /// # Panics
    /// If `sample.len() != out.len()`.
    pub fn to_pixels(&self, sample: &[f32], out: &mut [u8]) {
        contract!(sample.len() == out.len(), "to_pixels: length mismatch");
        for (o, &v) in out.iter_mut().zip(sample) {
            *o = self.to_pixel(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edm_mapping_endpoints_and_clamping() {
        let m = PixelMap::EDM;
        assert_eq!(m.to_pixel(-1.0), 0);
        assert_eq!(m.to_pixel(1.0), 255);
        assert_eq!(m.to_pixel(0.0), 128); // 127.5 rounds half away from zero
        assert_eq!(m.to_pixel(-7.0), 0);
        assert_eq!(m.to_pixel(9.0), 255);
        assert_eq!(m.to_pixel(f32::NAN), 0);
        for p in 0..=255u8 {
            assert_eq!(m.to_pixel(m.to_value(p as f32)), p);
        }
    }
}
