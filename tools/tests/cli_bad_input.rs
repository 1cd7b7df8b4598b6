//! Bad input through the binary: a one-line error naming the input and what was expected, exit code 1,
//! and no partial output file.

mod common;
use common::*;
use std::path::Path;

fn idx(n: u32, h: u32, w: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for v in [n, h, w] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..n * h * w).map(|i| (i % 251) as u8));
    b
}

/// `export --dataset <dataset> <flags> -o DIR/m.gdn` fails with a one-line error that contains every needle.
fn export_fails(dir: &Path, dataset: &Path, flags: &[&str], needles: &[&str]) {
    assert_one_line_error(&export(dataset, flags, &dir.join("m.gdn")), needles);
}

#[test]
fn missing_dataset_file() {
    let dir = tempfile::tempdir().unwrap();
    export_fails(dir.path(), Path::new("no/such/file.gz"), &["--rank", "4"], &["no/such/file.gz", "cannot read"]);
    assert_only(dir.path(), &[]);
}

#[test]
fn unreadable_blob() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be read as a file.
    let o = run(&["inspect", s(dir.path())]);
    assert_one_line_error(&o, &[s(dir.path()), "cannot read blob"]);
    let o = run(&["sample", "no/such/model.gdn", "-o", s(&dir.path().join("g.png"))]);
    assert_one_line_error(&o, &["no/such/model.gdn", "cannot read blob"]);
    assert_only(dir.path(), &[]);
}

#[test]
fn truncated_and_wrong_magic_idx() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = idx(5, 4, 4);
    b.truncate(b.len() - 3);
    let p = dir.path().join("trunc-images-idx3-ubyte");
    std::fs::write(&p, &b).unwrap();
    export_fails(
        dir.path(),
        &p,
        &["--format", "idx", "--rank", "2"],
        &["trunc-images-idx3-ubyte", "expected 96 bytes", "truncated"],
    );
    let mut m = idx(5, 4, 4);
    m[3] = 7;
    let q = dir.path().join("magic.idx");
    std::fs::write(&q, &m).unwrap();
    export_fails(dir.path(), &q, &["--format", "idx", "--rank", "2"], &["magic.idx", "expected 3 dimensions"]);
    // auto-detection does not recognise the wrong magic either.
    export_fails(dir.path(), &q, &["--rank", "2"], &["magic.idx", "unrecognised dataset"]);
    assert_only(dir.path(), &["trunc-images-idx3-ubyte", "magic.idx"]);
}

#[test]
fn empty_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty-images-idx3-ubyte");
    std::fs::write(&p, idx(0, 28, 28)).unwrap();
    export_fails(dir.path(), &p, &["--rank", "2"], &["empty-images-idx3-ubyte", "empty dataset"]);
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    export_fails(dir.path(), &imgs, &["--format", "folder", "--rank", "2"], &["imgs", "empty dataset"]);
    assert_only(dir.path(), &["empty-images-idx3-ubyte", "imgs"]);
}

#[test]
fn mixed_image_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    image::GrayImage::new(6, 6).save(imgs.join("a.png")).unwrap();
    image::GrayImage::new(6, 6).save(imgs.join("b.png")).unwrap();
    image::GrayImage::new(7, 6).save(imgs.join("c.png")).unwrap();
    export_fails(dir.path(), &imgs, &["--rank", "1"], &["c.png", "7x6", "expected 6x6"]);
    assert_only(dir.path(), &["imgs"]);
}

#[test]
fn nan_in_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for r in 0..5 {
        let mut f: Vec<String> = (0..64).map(|i| ((i + r) % 17).to_string()).collect();
        f.push("1".into());
        if r == 3 {
            f[10] = "NaN".into();
        }
        rows.push(f.join(","));
    }
    let p = dir.path().join("digits.csv");
    std::fs::write(&p, rows.join("\n")).unwrap();
    export_fails(
        dir.path(),
        &p,
        &["--rank", "2"],
        &["digits.csv", "line 4 column 11", "expected an integer pixel value 0..16", "'NaN'"],
    );
    assert_only(dir.path(), &["digits.csv"]);
}

#[test]
fn rank_larger_than_d_or_n_minus_1() {
    let dir = tempfile::tempdir().unwrap();
    let digits = data("sklearn_digits/digits.csv.gz");
    export_fails(
        dir.path(),
        &digits,
        &["--rank", "65"],
        &["digits.csv", "rank 65", "expected 1 <= rank <= min(d = 64"],
    );
    export_fails(dir.path(), &digits, &["--limit", "10", "--rank", "20"], &["rank 20", "n - 1 = 9"]);
    assert_only(dir.path(), &[]);
}

#[test]
fn steps_zero_and_corrupt_blob_and_missing_output_dir() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("d.gdn");
    let digits = data("sklearn_digits/digits.csv.gz");
    let o = export(&digits, &["--rank", "8"], &blob);
    assert!(o.status.success(), "{}", stderr(&o));

    let png = dir.path().join("g.png");
    let o = run(&["sample", s(&blob), "--steps", "0", "--sampler", "heun", "-o", s(&png)]);
    assert_one_line_error(&o, &["--steps 0", "expected at least 1"]);

    // Flip one payload bit: the CRC catches it.
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x10;
    let bad = dir.path().join("bad.gdn");
    std::fs::write(&bad, &bytes).unwrap();
    let o = run(&["sample", s(&bad), "-o", s(&png)]);
    assert_one_line_error(&o, &["bad.gdn", "checksum"]);
    let o = run(&["inspect", s(&bad)]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("bad.gdn") && err.contains("checksum mismatch") && err.contains("expected CRC-32"), "{err}");

    let missing = dir.path().join("no/such/dir/m.gdn");
    let o = export(&digits, &["--rank", "8"], &missing);
    assert_one_line_error(&o, &["no/such/dir", "does not exist", "expected an existing directory"]);
    let o = run(&["sample", s(&blob), "-o", s(&dir.path().join("nope/g.png"))]);
    assert_one_line_error(&o, &["nope", "does not exist"]);
    assert_only(dir.path(), &["d.gdn", "bad.gdn"]);
}
