//! Image folders through `dataset::load`: `--resize` keeps pixel values (issue 13), and folders of
//! folders are read recursively with the subfolder as the label.

use gaussdiff_fit::dataset::{load, Dataset, LoadOptions};

fn opts_resize(w: u16, h: u16) -> LoadOptions {
    LoadOptions { resize: Some((w, h)), ..LoadOptions::default() }
}

/// 8-bit pixels of every training image, in order.
fn pixels(ds: &Dataset) -> Vec<u8> {
    ds.images.iter().map(|&v| ds.pixel.to_pixel(v)).collect()
}

fn mean(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (s, n) = xs.into_iter().fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n as f64
}

// ---------------------------------------------------------------- resize

const LEVELS: [u8; 6] = [0, 1, 64, 127, 200, 255];

#[test]
fn resize_keeps_constant_gray_levels() {
    let dir = tempfile::tempdir().unwrap();
    for (i, &level) in LEVELS.iter().enumerate() {
        image::GrayImage::from_pixel(8, 8, image::Luma([level])).save(dir.path().join(format!("{i}.png"))).unwrap();
    }
    for (w, h) in [(4, 4), (3, 5), (8, 4), (12, 10)] {
        let ds = load(dir.path(), &opts_resize(w, h)).unwrap();
        assert_eq!((ds.len(), ds.shape.channels, ds.shape.width, ds.shape.height), (LEVELS.len(), 1, w, h));
        for (i, &level) in LEVELS.iter().enumerate() {
            let want = ds.pixel.to_value(f32::from(level));
            for (p, &v) in ds.image(i).iter().enumerate() {
                assert!((v - want).abs() < 1e-5, "{w}x{h}: level {level}, pixel {p}: {v} (want {want})");
                assert_eq!(ds.pixel.to_pixel(v), level, "{w}x{h}: level {level}, pixel {p}");
            }
        }
    }
}

#[test]
fn resize_keeps_constant_rgb_levels() {
    let dir = tempfile::tempdir().unwrap();
    let colours = [[0u8, 64, 255], [200, 1, 127], [30, 30, 30]];
    for (i, c) in colours.iter().enumerate() {
        image::RgbImage::from_pixel(6, 9, image::Rgb(*c)).save(dir.path().join(format!("{i}.png"))).unwrap();
    }
    let ds = load(dir.path(), &opts_resize(3, 4)).unwrap();
    assert_eq!((ds.shape.channels, ds.shape.width, ds.shape.height), (3, 3, 4));
    for (i, c) in colours.iter().enumerate() {
        let px: Vec<u8> = ds.image(i).iter().map(|&v| ds.pixel.to_pixel(v)).collect();
        for (ch, plane) in px.chunks_exact(12).enumerate() {
            assert!(plane.iter().all(|&p| p == c[ch]), "image {i} channel {ch}: {plane:?}, want {}", c[ch]);
        }
    }
    // Grayscale then resize: the luma of a constant colour stays constant.
    let g = load(dir.path(), &LoadOptions { grayscale: true, ..opts_resize(3, 4) }).unwrap();
    for (i, c) in colours.iter().enumerate() {
        let luma = 0.299 * f64::from(c[0]) + 0.587 * f64::from(c[1]) + 0.114 * f64::from(c[2]);
        for &v in g.image(i) {
            assert!((f64::from(g.pixel.to_pixel(v)) - luma).abs() <= 0.5 + 1e-3, "image {i}: {v} vs luma {luma}");
        }
    }
}

#[test]
fn resize_of_a_gradient_is_a_triangle_downsample_with_the_same_mean() {
    let dir = tempfile::tempdir().unwrap();
    // A horizontal 0..255 ramp and a diagonal one over 16x12: half the values are below mid-grey.
    let ramp = image::GrayImage::from_fn(16, 12, |x, _| image::Luma([(x * 17) as u8]));
    let diag = image::GrayImage::from_fn(16, 12, |x, y| image::Luma([(x * 9 + y * 8) as u8]));
    ramp.save(dir.path().join("a.png")).unwrap();
    diag.save(dir.path().join("b.png")).unwrap();
    let full = load(dir.path(), &LoadOptions::default()).unwrap();
    for (w, h) in [(8, 6), (4, 3), (5, 7)] {
        let ds = load(dir.path(), &opts_resize(w, h)).unwrap();
        for (i, src) in [&ramp, &diag].into_iter().enumerate() {
            let before = mean(full.image(i).iter().map(|&v| 127.5 * f64::from(v) + 127.5));
            let after = mean(ds.image(i).iter().map(|&v| 127.5 * f64::from(v) + 127.5));
            assert!((before - after).abs() <= 1.0, "{w}x{h} image {i}: mean {after}, want {before}");
            // Same filter as the image crate's triangle resize of the 8-bit image, to within a grey level.
            let want = image::imageops::resize(src, u32::from(w), u32::from(h), image::imageops::FilterType::Triangle);
            let got: Vec<u8> = ds.image(i).iter().map(|&v| ds.pixel.to_pixel(v)).collect();
            for (p, (&g, &e)) in got.iter().zip(want.as_raw()).enumerate() {
                assert!(g.abs_diff(e) <= 1, "{w}x{h} image {i} pixel {p}: {g} vs {e}");
            }
        }
        // The ramp is monotone in x, so its left column is darker than mid-grey after the resize.
        assert!(pixels(&ds)[0] < 64, "{:?}", &pixels(&ds)[..usize::from(w)]);
    }
}

#[test]
fn resize_to_the_same_size_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    image::GrayImage::from_fn(5, 4, |x, y| image::Luma([(x * 50 + y) as u8])).save(dir.path().join("a.png")).unwrap();
    let a = load(dir.path(), &LoadOptions::default()).unwrap();
    let b = load(dir.path(), &opts_resize(5, 4)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn resize_applies_to_held_out_images_too() {
    let dir = tempfile::tempdir().unwrap();
    for (i, &level) in LEVELS.iter().enumerate() {
        image::GrayImage::from_pixel(8, 8, image::Luma([level])).save(dir.path().join(format!("{i}.png"))).unwrap();
    }
    let ds = load(dir.path(), &LoadOptions { hold_out: 3, seed: 5, ..opts_resize(2, 2) }).unwrap();
    assert_eq!((ds.len(), ds.held_out_len(), ds.dim()), (3, 3, 4));
    let mut seen: Vec<u8> = (0..ds.len())
        .map(|i| ds.image(i))
        .chain((0..ds.held_out_len()).map(|i| ds.held_out_image(i)))
        .map(|img| {
            let p = ds.pixel.to_pixel(img[0]);
            assert!(img.iter().all(|&v| ds.pixel.to_pixel(v) == p));
            p
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, LEVELS);
}
