//! The committed firmware blobs are exactly what `gaussdiff export` makes today, so they cannot drift from
//! the tool:
//! * `firmware/blobs/olivetti-k40-f16.gdn` (the boards' default; Olivetti faces 64 x 64, provenance in
//!   `data/olivetti/PROVENANCE.md`):
//!   `gaussdiff export --dataset data/olivetti/olivetti-images-idx3-ubyte.gz --rank 40 --dtype f16 -o firmware/blobs/olivetti-k40-f16.gdn`
//! * `firmware/blobs/frey-k40-f16.gdn`:
//!   `gaussdiff export --dataset data/frey_faces/frey_rawface.mat --rank 40 --dtype f16 -o firmware/blobs/frey-k40-f16.gdn`
//!
//! Uses the `gaussdiff` binary that `cargo test --workspace --release` builds next to this test's
//! executable; when it is missing (only this package was built) the test skips locally and fails under `CI`.

mod firmware_support;

use std::path::Path;
use std::process::Command;

use firmware_support as fw;

/// `gaussdiff export --dataset <dataset> --rank <rank> --dtype <dtype>` gives `committed` byte for byte.
fn regenerates(dataset: &str, rank: &str, dtype: &str, committed: &Path) {
    let Some(bin) = fw::gaussdiff_binary() else { return };
    let repo = fw::repo();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fresh.gdn");
    let status = Command::new(&bin)
        .current_dir(&repo)
        .args(["export", "--dataset", dataset, "--rank", rank, "--dtype", dtype, "-o"])
        .arg(&out)
        .output()
        .expect("running gaussdiff export");
    assert!(status.status.success(), "gaussdiff export failed: {}", String::from_utf8_lossy(&status.stderr));
    let fresh = std::fs::read(&out).unwrap();
    let committed_bytes = std::fs::read(committed).unwrap();
    assert!(
        fresh == committed_bytes,
        "{} ({} bytes) differs from a fresh `gaussdiff export` ({} bytes); regenerate it with the command in this \
         test's doc comment (and update firmware/sizes with GAUSSDIFF_UPDATE_SIZES=1)",
        committed.display(),
        committed_bytes.len(),
        fresh.len()
    );
}

#[test]
fn firmware_default_blob_is_what_gaussdiff_export_writes() {
    regenerates("data/olivetti/olivetti-images-idx3-ubyte.gz", "40", "f16", &fw::default_blob());
}

#[test]
fn firmware_frey_blob_is_what_gaussdiff_export_writes() {
    regenerates("data/frey_faces/frey_rawface.mat", "40", "f16", &fw::frey_blob());
}
