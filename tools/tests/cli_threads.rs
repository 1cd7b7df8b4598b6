//! The thread count never changes results: `gaussdiff export` (parallel f64 Gram product and eigensolver)
//! writes the same blob bytes with 1, 2 and 3 rayon threads.

mod common;
use common::*;

#[test]
fn export_bytes_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = data("mnist/t10k-images-idx3-ubyte.gz");
    let mut blobs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = dir.path().join(format!("t{threads}.gdn"));
        // 3000 images: more than one chunk of the streaming moments, and products large enough for faer
        // to split them over threads.
        let o = bin()
            .env("RAYON_NUM_THREADS", threads)
            .args(["export", "--dataset", s(&mnist), "--limit", "3000", "--seed", "1", "--rank", "40"])
            .args(["--floor", "auto", "-o", s(&out)])
            .output()
            .expect("spawn gaussdiff");
        assert!(o.status.success(), "{}", stderr(&o));
        blobs.push(std::fs::read(&out).unwrap());
    }
    assert!(blobs[0] == blobs[1], "1 vs 2 threads: blobs differ");
    assert!(blobs[0] == blobs[2], "1 vs 3 threads: blobs differ");
}
