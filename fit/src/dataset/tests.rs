use super::*;
use std::path::PathBuf;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(rel)
}

/// A fresh scratch directory under the system temp dir (removed by the test on success).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(std::format!("gaussdiff-dataset-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_bytes(n: u32, h: u32, w: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for v in [n, h, w] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..n * h * w).map(|i| (i % 256) as u8));
    b
}

#[test]
fn mnist_test_set_loads_with_labels() {
    let ds = load(&data("mnist/t10k-images-idx3-ubyte.gz"), &LoadOptions::default()).unwrap();
    assert_eq!(ds.shape, ImageShape { channels: 1, height: 28, width: 28 });
    assert_eq!(ds.len(), 10_000);
    assert_eq!(ds.dim(), 784);
    let labels = ds.labels.as_ref().unwrap();
    let mut counts = [0usize; 10];
    for &l in labels {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    assert!(ds.images.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Corner pixels are background (0 -> -1); some pixel is full ink (255 -> 1).
    assert_eq!(ds.image(0)[0], -1.0);
    assert!(ds.images.contains(&1.0));
    for (i, &v) in ds.image(0).iter().enumerate() {
        let p = ds.pixel.to_pixel(v);
        assert_eq!(ds.pixel.to_value(f32::from(p)), v, "pixel {i} does not round-trip");
    }
}

#[test]
fn digits_map_0_to_16_onto_minus1_to_1_and_back_to_0_to_255() {
    let ds = load(&data("sklearn_digits/digits.csv.gz"), &LoadOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.dim()), (1797, 64));
    assert_eq!(ds.labels.as_ref().unwrap()[..3], [0, 1, 2]);
    // First row of the file: 0,0,5,13,9,1,0,0,...
    let first = [0.0f32, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0];
    for (v, p) in ds.image(0).iter().zip(first) {
        assert_eq!(*v, p / 8.0 - 1.0);
    }
    // 16 -> 255, 8 -> 128 (127.5 rounded away from zero), 0 -> 0: the 0..16 scale spread over 8 bits.
    assert_eq!(ds.pixel.to_pixel(16.0 / 8.0 - 1.0), 255);
    assert_eq!(ds.pixel.to_pixel(0.0), 128);
    assert_eq!(ds.pixel.to_pixel(-1.0), 0);
    assert_eq!(ds.pixel.to_pixel(13.0 / 8.0 - 1.0), 207); // round(13 * 255 / 16)
}

#[test]
fn frey_faces_load() {
    let ds = load(&data("frey_faces/frey_rawface.mat"), &LoadOptions::default()).unwrap();
    assert_eq!(ds.shape, ImageShape { channels: 1, height: 28, width: 20 });
    assert_eq!(ds.len(), 1965);
    assert!(ds.labels.is_none());
    let raw = std::fs::read(data("frey_faces/frey_rawface.mat")).unwrap();
    assert_eq!(ds.pixel.to_pixel(ds.image(1964)[559]), raw[184 + 1965 * 560 - 1]);
    assert_eq!(ds.pixel.to_pixel(ds.image(0)[0]), raw[184]);
}

#[test]
fn auto_detection_uses_content_not_extension() {
    let dir = scratch("auto");
    let renamed = dir.join("mystery.bin");
    std::fs::copy(data("frey_faces/frey_rawface.mat"), &renamed).unwrap();
    assert_eq!(detect::detect(&renamed).unwrap(), Format::FreyMat);
    let idx = dir.join("digits.txt");
    std::fs::write(&idx, gz(&idx_bytes(3, 2, 2))).unwrap();
    assert_eq!(detect::detect(&idx).unwrap(), Format::Idx);
    std::fs::copy(data("sklearn_digits/digits.csv.gz"), dir.join("x.dat")).unwrap();
    assert_eq!(detect::detect(&dir.join("x.dat")).unwrap(), Format::DigitsCsv);
    let cifar = dir.join("batch");
    let mut rec = vec![3u8];
    rec.extend(std::iter::repeat_n(7u8, 3072));
    std::fs::write(&cifar, [rec.clone(), rec].concat()).unwrap();
    assert_eq!(detect::detect(&cifar).unwrap(), Format::Cifar10);
    let junk = dir.join("junk");
    std::fs::write(&junk, b"hello world").unwrap();
    let e = load(&junk, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DatasetError::Unrecognised { .. }), "{e}");
    assert!(e.to_string().contains("junk"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn limit_and_hold_out_are_deterministic_and_disjoint() {
    let path = data("sklearn_digits/digits.csv.gz");
    let all = load(&path, &LoadOptions::default()).unwrap();
    let opts = LoadOptions { limit: Some(100), hold_out: 50, seed: 7, ..LoadOptions::default() };
    let a = load(&path, &opts).unwrap();
    let b = load(&path, &opts).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.len(), a.held_out_len()), (100, 50));
    let c = load(&path, &LoadOptions { seed: 8, ..opts.clone() }).unwrap();
    assert_ne!(a.images, c.images);
    // Each selected image is a row of the full set, and train/held-out rows are different file rows.
    let find = |img: &[f32]| (0..all.len()).filter(|&i| all.image(i) == img).collect::<Vec<_>>();
    let train_rows: Vec<Vec<usize>> = (0..a.len()).map(|i| find(a.image(i))).collect();
    assert!(train_rows.iter().all(|r| !r.is_empty()));
    // The held-out set holds no training row unless that image occurs twice in the file.
    for i in 0..a.held_out_len() {
        let rows = find(a.held_out_image(i));
        assert!(!rows.is_empty());
    }
    let too_many = LoadOptions { hold_out: 1797, ..LoadOptions::default() };
    assert!(matches!(load(&path, &too_many), Err(DatasetError::BadOption { .. })));
    let zero = LoadOptions { limit: Some(0), ..LoadOptions::default() };
    assert!(matches!(load(&path, &zero), Err(DatasetError::BadOption { .. })));
}

#[test]
fn bad_idx_files_name_the_file_and_what_was_expected() {
    let dir = scratch("idx");
    let good = idx_bytes(4, 3, 2);
    let trunc = dir.join("trunc-images-idx3-ubyte");
    std::fs::write(&trunc, &good[..good.len() - 1]).unwrap();
    let e = load(&trunc, &LoadOptions { format: Format::Idx, ..LoadOptions::default() }).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("trunc-images-idx3-ubyte") && msg.contains("40 bytes"), "{msg}");
    let magic = dir.join("magic");
    let mut m = good.clone();
    m[2] = 9;
    std::fs::write(&magic, &m).unwrap();
    let e = load(&magic, &LoadOptions { format: Format::Idx, ..LoadOptions::default() }).unwrap_err();
    assert!(e.to_string().contains("unsigned byte"), "{e}");
    let gzt = dir.join("gz-trunc");
    let z = gz(&good);
    std::fs::write(&gzt, &z[..z.len() / 2]).unwrap();
    assert!(load(&gzt, &LoadOptions { format: Format::Idx, ..LoadOptions::default() }).is_err());
    let empty = dir.join("empty-images-idx3-ubyte");
    std::fs::write(&empty, idx_bytes(0, 28, 28)).unwrap();
    let e = load(&empty, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DatasetError::Empty { .. }), "{e}");
    let ok = dir.join("ok-images-idx3-ubyte.gz");
    std::fs::write(&ok, gz(&good)).unwrap();
    let ds = load(&ok, &LoadOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.shape.height, ds.shape.width), (4, 3, 2));
    assert_eq!(ds.pixel.to_pixel(ds.image(3)[5]), 23);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn csv_with_nan_or_bad_columns_is_rejected() {
    let dir = scratch("csv");
    let mut line: Vec<std::string::String> = (0..64).map(|i| (i % 17).to_string()).collect();
    line.push("3".into());
    let good = line.join(",");
    let mut bad = line.clone();
    bad[5] = "nan".into();
    let p = dir.join("d.csv");
    std::fs::write(&p, std::format!("{good}\n{}\n", bad.join(","))).unwrap();
    let e = load(&p, &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("d.csv") && msg.contains("line 2 column 6") && msg.contains("'nan'"), "{msg}");
    std::fs::write(&p, std::format!("{good}\n1,2,3\n")).unwrap();
    let e = load(&p, &LoadOptions { format: Format::DigitsCsv, ..LoadOptions::default() }).unwrap_err();
    assert!(e.to_string().contains("65 comma-separated"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn image_folder_gray_colour_mixed_sizes_resize() {
    let dir = scratch("folder");
    let a = image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 60 + y) as u8]));
    a.save(dir.join("a.png")).unwrap();
    a.save(dir.join("b.pgm")).unwrap();
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(ds.shape, ImageShape { channels: 1, height: 3, width: 4 });
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.image(0), ds.image(1));
    assert_eq!(ds.pixel.to_pixel(ds.image(0)[2 * 4 + 3]), 182);
    let r = load(&dir, &LoadOptions { resize: Some((2, 2)), ..LoadOptions::default() }).unwrap();
    assert_eq!((r.shape.width, r.shape.height, r.dim()), (2, 2, 4));
    let c = image::RgbImage::from_fn(4, 3, |x, _| image::Rgb([255, (x * 10) as u8, 0]));
    c.save(dir.join("c.png")).unwrap();
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(ds.shape.channels, 3);
    // CHW: the red plane of c.png is all 255.
    assert!(ds.image(2)[..12].iter().all(|&v| v == 1.0));
    let g = load(&dir, &LoadOptions { grayscale: true, ..LoadOptions::default() }).unwrap();
    assert_eq!(g.shape.channels, 1);
    assert!((g.image(2)[0] - (0.299 - 0.701)).abs() < 1e-6);
    image::GrayImage::new(5, 3).save(dir.join("d.png")).unwrap();
    let e = load(&dir, &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("d.png") && msg.contains("5x3") && msg.contains("expected 4x3"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cifar_directory_reads_batches_in_order() {
    let dir = scratch("cifar");
    for (b, label) in [(2u8, 5u8), (1, 4)] {
        let mut rec = vec![label];
        rec.extend((0..3072).map(|i| (i / 1024) as u8 * 100));
        std::fs::write(dir.join(std::format!("data_batch_{b}.bin")), rec).unwrap();
    }
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(ds.labels, Some(vec![4, 5]));
    assert_eq!(ds.shape, ImageShape { channels: 3, height: 32, width: 32 });
    assert_eq!(ds.pixel.to_pixel(ds.image(0)[2048]), 200);
    std::fs::write(dir.join("data_batch_3.bin"), [1u8; 100]).unwrap();
    let e = load(&dir, &LoadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("data_batch_3.bin") && e.to_string().contains("3073"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn frey_header_is_validated() {
    let dir = scratch("mat");
    let mut raw = std::fs::read(data("frey_faces/frey_rawface.mat")).unwrap();
    raw.truncate(10_000);
    let p = dir.join("short.mat");
    std::fs::write(&p, &raw).unwrap();
    let e = load(&p, &LoadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    raw[144] = 6; // class double
    std::fs::write(&p, &raw).unwrap();
    assert!(load(&p, &LoadOptions::default()).unwrap_err().to_string().contains("uint8"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn format_names_parse() {
    for name in Format::NAMES {
        let f: Format = name.parse().unwrap();
        assert_eq!(f.name(), name);
    }
    assert!("bmp".parse::<Format>().is_err());
}

#[test]
fn wxh_sizes() {
    assert_eq!(parse_wxh("28x28"), Ok((28, 28)));
    assert_eq!(parse_wxh("14X10"), Ok((14, 10)));
    assert!(parse_wxh("28").unwrap_err().contains("expected WxH"));
    assert!(parse_wxh("0x4").unwrap_err().contains("positive integers"));
}

/// The preparation round-trips through blob metadata; defaults write nothing (plain exports keep their bytes).
#[test]
fn preparation_round_trips_through_metadata() {
    assert!(LoadOptions::default().to_metadata().is_empty());
    let o = LoadOptions {
        format: Format::Idx,
        limit: Some(300),
        seed: 7,
        grayscale: true,
        resize: Some((16, 12)),
        hold_out: 40,
    };
    let m = o.to_metadata();
    let back = LoadOptions::from_metadata(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    assert_eq!(back, o);
    let e = LoadOptions::from_metadata([("prep.limit", "many")]).unwrap_err();
    assert!(e.contains("prep.limit") && e.contains("whole number"), "{e}");
    // Unknown keys are ignored.
    assert_eq!(LoadOptions::from_metadata([("dataset", "x")]).unwrap(), LoadOptions::default());
}
