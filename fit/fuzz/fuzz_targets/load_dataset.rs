//! Fuzz target for every dataset reader: the first byte picks the format (IDX, digits CSV, Frey MAT,
//! CIFAR-10 batch, image folder with one file, auto-detection), the rest is the file's content, written to
//! a per-process scratch directory (the readers take paths). Arbitrary bytes must give `Ok` or an error,
//! never a panic, and never an allocation beyond what the file's size justifies (libFuzzer's -rss_limit_mb).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use gaussdiff_fit::dataset::{load, Format, LoadOptions};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let d = PathBuf::from(base).join(format!("gaussdiff-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(d.join("folder")).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let dir = scratch();
    let (path, format) = match sel % 7 {
        0 => (dir.join("x-images-idx3-ubyte"), Format::Idx),
        1 => (dir.join("digits.csv"), Format::DigitsCsv),
        2 => (dir.join("frey.mat"), Format::FreyMat),
        3 => (dir.join("data_batch_1.bin"), Format::Cifar10),
        4 => (dir.join("folder/a.png"), Format::ImageFolder),
        5 => (dir.join("folder/a.pgm"), Format::ImageFolder),
        _ => (dir.join("auto.bin"), Format::Auto),
    };
    std::fs::write(&path, body).unwrap();
    let target = if format == Format::ImageFolder { dir.join("folder") } else { path.clone() };
    let opts = LoadOptions { format, ..LoadOptions::default() };
    if let Ok(ds) = load(&target, &opts) {
        assert_eq!(ds.images.len(), ds.len() * ds.dim());
        assert!(ds.images.iter().all(|v| v.is_finite()));
    }
    let _ = std::fs::remove_file(&path);
});
