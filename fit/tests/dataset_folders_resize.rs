//! Image folders through `dataset::load`: `--resize` keeps pixel values (issue 13), and folders of
//! folders are read recursively with the subfolder as the label.

use std::path::{Path, PathBuf};

use gaussdiff_fit::dataset::{load, Dataset, DatasetError, LoadOptions};

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

// ---------------------------------------------------------------- folders of folders

/// Write a `w x h` gray PNG of constant `level` at `root/rel`, creating its folders.
fn gray(root: &Path, rel: &str, level: u8, (w, h): (u32, u32)) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(w, h, image::Luma([level])).save(p).unwrap();
}

/// A temporary folder of [`gray`] images: (path inside it, level, size) each.
fn tree(images: &[(&str, u8, (u32, u32))]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for &(rel, level, size) in images {
        gray(dir.path(), rel, level, size);
    }
    dir
}

/// The constant level of each training image.
fn levels(ds: &Dataset) -> Vec<u8> {
    (0..ds.len()).map(|i| ds.pixel.to_pixel(ds.image(i)[0])).collect()
}

fn names(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

/// Two classes in natural folder order (`s2` before `s10`), files by name inside each, non-image files and
/// hidden folders skipped.
fn two_class_tree() -> tempfile::TempDir {
    let dir = tree(&[
        ("s10/1.png", 10, (3, 2)),
        ("s10/2.pgm", 11, (3, 2)),
        ("s2/b.png", 21, (3, 2)),
        ("s2/a.png", 20, (3, 2)),
        ("s2/10.png", 19, (3, 2)), // byte order inside a folder: "10.png" < "a.png"
        (".thumbs/x.png", 99, (7, 7)),
    ]);
    let r = dir.path();
    std::fs::write(r.join("s2/README.txt"), "not an image").unwrap();
    std::fs::write(r.join("notes.md"), "not an image").unwrap();
    dir
}

#[test]
fn folder_of_folders_reads_recursively_with_subfolder_labels() {
    let dir = two_class_tree();
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.shape.channels, ds.shape.width, ds.shape.height), (5, 1, 3, 2));
    assert_eq!(levels(&ds), [19, 20, 21, 10, 11]);
    assert_eq!(ds.label_names, names(&["s2", "s10"]));
    assert_eq!(ds.labels, Some(vec![0, 0, 0, 1, 1]));
    assert_eq!(ds.held_out_labels, Some(vec![]));
    // Explicit format, and the same bits again.
    let f = load(dir.path(), &LoadOptions { format: "folder".parse().unwrap(), ..LoadOptions::default() }).unwrap();
    assert_eq!(f, ds);
}

#[test]
fn deeper_trees_label_by_relative_folder_path() {
    let dir = tree(&[
        ("train/dog/a.png", 1, (2, 2)),
        ("train/cat/a.png", 2, (2, 2)),
        ("train/cat/b.png", 3, (2, 2)),
        ("test/cat/a.png", 4, (2, 2)),
    ]);
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(levels(&ds), [4, 2, 3, 1]);
    assert_eq!(ds.label_names, names(&["test/cat", "train/cat", "train/dog"]));
    assert_eq!(ds.labels, Some(vec![0, 1, 1, 2]));
}

#[test]
fn labels_follow_their_images_through_hold_out_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    // 6 classes c1..c6 (level = 10 * class + image), 5 images each.
    for c in 1..=6u8 {
        for k in 0..5u8 {
            gray(dir.path(), &format!("c{c}/{k}.png"), 10 * c + k, (2, 3));
        }
    }
    let class_of = |level: u8| level / 10 - 1;
    let opts = LoadOptions { hold_out: 7, limit: Some(11), seed: 3, ..LoadOptions::default() };
    let ds = load(dir.path(), &opts).unwrap();
    assert_eq!((ds.len(), ds.held_out_len()), (11, 7));
    assert_eq!(ds.label_names, names(&["c1", "c2", "c3", "c4", "c5", "c6"]));
    let labels = ds.labels.as_ref().unwrap();
    assert_eq!(labels, &levels(&ds).into_iter().map(class_of).collect::<Vec<_>>());
    let held: Vec<u8> = (0..ds.held_out_len()).map(|i| class_of(ds.pixel.to_pixel(ds.held_out_image(i)[0]))).collect();
    assert_eq!(ds.held_out_labels.as_ref().unwrap(), &held);
    // The IDX path too: labels of held-out digits follow their rows.
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn_digits/digits.csv.gz");
    let all = load(&digits, &LoadOptions::default()).unwrap();
    let part = load(&digits, &LoadOptions { hold_out: 40, seed: 1, ..LoadOptions::default() }).unwrap();
    let all_labels = all.labels.as_ref().unwrap();
    for i in 0..part.held_out_len() {
        let img = part.held_out_image(i);
        let rows: Vec<usize> = (0..all.len()).filter(|&r| all.image(r) == img).collect();
        assert!(rows.iter().any(|&r| all_labels[r] == part.held_out_labels.as_ref().unwrap()[i]), "held-out {i}");
    }
    assert_eq!(part.label_names, None);
}

#[test]
fn flat_folders_and_mixed_trees_have_no_labels() {
    let dir = tree(&[("2.png", 2, (2, 2)), ("10.png", 10, (2, 2))]);
    let r = dir.path();
    let flat = load(r, &LoadOptions::default()).unwrap();
    assert_eq!(levels(&flat), [10, 2]); // byte order of names, as before
    assert_eq!((flat.labels.as_ref(), flat.label_names.as_ref(), flat.held_out_labels.as_ref()), (None, None, None));
    gray(r, "sub/1.png", 1, (2, 2));
    let mixed = load(r, &LoadOptions::default()).unwrap();
    assert_eq!(levels(&mixed), [10, 2, 1]); // the folder's own files first, then its subfolders
    assert_eq!((mixed.labels, mixed.label_names), (None, None));
}

#[test]
fn more_than_256_class_folders_have_no_labels() {
    let dir = tempfile::tempdir().unwrap();
    for c in 0..257u32 {
        gray(dir.path(), &format!("{c}/x.png"), (c % 256) as u8, (1, 1));
    }
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(ds.len(), 257);
    assert_eq!(ds.image(1)[0], ds.pixel.to_value(1.0)); // natural order: 0, 1, 2, ..., not 0, 1, 10, 100
    assert_eq!((ds.labels, ds.label_names), (None, None));
}

#[test]
fn empty_trees_and_mixed_sizes_say_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("a/b")).unwrap();
    std::fs::write(r.join("a/notes.txt"), "x").unwrap();
    for format in ["auto", "folder"] {
        let e = load(r, &LoadOptions { format: format.parse().unwrap(), ..LoadOptions::default() }).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DatasetError::Empty { .. }), "{format}: {msg}");
        assert!(msg.contains(&r.display().to_string()) && msg.contains("subfolders") && msg.contains("png"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    gray(r, "a/1.png", 0, (4, 3));
    gray(r, "a/b/1.png", 0, (4, 3));
    gray(r, "c/1.png", 0, (5, 3));
    let msg = load(r, &LoadOptions::default()).unwrap_err().to_string();
    let (bad, first) = (r.join("c/1.png").display().to_string(), r.join("a/1.png").display().to_string());
    assert!(msg.contains(&bad) && msg.contains("5x3") && msg.contains("expected 4x3") && msg.contains(&first), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    gray(dir.path(), "a/1.png", 5, (2, 2));
    std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).unwrap();
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(levels(&ds), [5]);
    assert_eq!(ds.label_names, names(&["a"]));
}

/// The ORL / AT&T faces folder (`s1/ ... s40/`, ten 92x112 PGM files each). Set `GAUSSDIFF_ORL` to its
/// path; without it the shared copy is used when present, else the test says so and passes.
#[test]
fn orl_faces_folder_of_folders() {
    let explicit = std::env::var_os("GAUSSDIFF_ORL").map(PathBuf::from);
    let path = explicit.clone().unwrap_or_else(|| PathBuf::from("/work/shared/datasets/orl_faces/att_faces"));
    if explicit.is_none() && !path.is_dir() {
        eprintln!("skipping: no ORL faces at {} (set GAUSSDIFF_ORL)", path.display());
        return;
    }
    let ds = load(&path, &LoadOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.shape.channels, ds.shape.width, ds.shape.height), (400, 1, 92, 112));
    let want: Vec<String> = (1..=40).map(|s| format!("s{s}")).collect();
    assert_eq!(ds.label_names.as_ref(), Some(&want));
    let labels = ds.labels.as_ref().unwrap();
    assert_eq!(labels, &(0..400).map(|i| (i / 10) as u8).collect::<Vec<_>>());
    // The first image is s1/1.pgm, the 11th s2/1.pgm (natural order), and the 10th s1/9.pgm (byte order).
    let first = image::open(path.join("s1/1.pgm")).unwrap().to_luma8();
    assert_eq!(pixels(&ds)[..92 * 112], first.as_raw()[..]);
    let s2 = image::open(path.join("s2/1.pgm")).unwrap().to_luma8();
    assert_eq!(ds.image(10).iter().map(|&v| ds.pixel.to_pixel(v)).collect::<Vec<_>>(), s2.as_raw()[..]);
    let s1_9 = image::open(path.join("s1/9.pgm")).unwrap().to_luma8();
    assert_eq!(ds.image(9).iter().map(|&v| ds.pixel.to_pixel(v)).collect::<Vec<_>>(), s1_9.as_raw()[..]);
    // Resized to 46x56, the mean face keeps its level (it was pulled up to mid-grey before issue 13).
    let r = load(&path, &LoadOptions { resize: Some((46, 56)), ..LoadOptions::default() }).unwrap();
    let m_full = mean(ds.images.iter().map(|&v| f64::from(v)));
    let m_half = mean(r.images.iter().map(|&v| f64::from(v)));
    assert!((m_full - m_half).abs() * 127.5 < 1.0, "mean {m_half} vs {m_full}");
}

/// Found by the `load_dataset` fuzz target: a PGM header of width 0 decoded to an empty image and then
/// panicked in the planar conversion; it is an error naming the file.
#[test]
fn zero_width_image_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.pgm");
    std::fs::write(&f, b"P5\n0 4\n255\n").unwrap();
    let err = load(dir.path(), &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("a.pgm") && err.contains("0x4"), "{err}");
}
