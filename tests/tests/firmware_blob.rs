//! The committed default firmware blob (`firmware/blobs/frey-k40-f16.gdn`) is exactly what `gaussdiff
//! export` makes today, so it cannot drift from the tool:
//! `gaussdiff export --dataset data/frey_faces/frey_rawface.mat --rank 40 --dtype f16 -o firmware/blobs/frey-k40-f16.gdn`.
//!
//! Uses the `gaussdiff` binary that `cargo test --workspace --release` builds next to this test's
//! executable; when it is missing (only this package was built) the test skips locally and fails under `CI`.

mod firmware_support;

use std::path::PathBuf;
use std::process::Command;

use firmware_support as fw;

fn gaussdiff_binary() -> Option<PathBuf> {
    // target/<profile>/deps/firmware_blob-<hash> -> target/<profile>/gaussdiff
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join(format!("gaussdiff{}", std::env::consts::EXE_SUFFIX));
    bin.exists().then_some(bin)
}

#[test]
fn firmware_default_blob_is_what_gaussdiff_export_writes() {
    let Some(bin) = gaussdiff_binary() else {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
        assert!(!ci, "the gaussdiff binary is not built next to the tests (run `cargo test --workspace --release`)");
        eprintln!("SKIPPED: gaussdiff binary not built; run `cargo test --workspace --release`");
        return;
    };
    let repo = fw::repo();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frey-k40-f16.gdn");
    let status = Command::new(&bin)
        .current_dir(&repo)
        .args(["export", "--dataset", "data/frey_faces/frey_rawface.mat", "--rank", "40", "--dtype", "f16", "-o"])
        .arg(&out)
        .output()
        .expect("running gaussdiff export");
    assert!(status.status.success(), "gaussdiff export failed: {}", String::from_utf8_lossy(&status.stderr));
    let fresh = std::fs::read(&out).unwrap();
    let committed = std::fs::read(fw::default_blob()).unwrap();
    assert!(
        fresh == committed,
        "firmware/blobs/frey-k40-f16.gdn ({} bytes) differs from a fresh `gaussdiff export` ({} bytes); regenerate it \
         with the command in this test's doc comment (and update firmware/sizes with GAUSSDIFF_UPDATE_SIZES=1)",
        committed.len(),
        fresh.len()
    );
}
