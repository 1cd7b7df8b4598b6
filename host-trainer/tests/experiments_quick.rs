//! Runs every experiment's `--quick` setting through the binary and checks its outputs: files exist,
//! PNGs decode, JSON numbers are in range.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("data").join(rel)
}

fn run_quick(name: &str) -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_gaussdiff-train"))
        .args(["--quiet", "--threads", "2", "experiment", name, "--quick", "-o"])
        .arg(dir.path())
        .arg("--digits")
        .arg(data("sklearn_digits/digits.csv.gz"))
        .arg("--mnist")
        .arg(data("mnist/t10k-images-idx3-ubyte.gz"))
        .arg("--frey")
        .arg(data("frey_faces/frey_rawface.mat"))
        .arg("--olivetti")
        .arg(data("olivetti/olivetti-images-idx3-ubyte.gz"))
        .output()
        .expect("running gaussdiff-train");
    assert!(out.status.success(), "experiment {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.path().join("summary.json")).expect("summary.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("summary.json parses");
    assert_eq!(v["setting"], "quick");
    (dir, v)
}

fn png_ok(path: &Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    assert!(img.width() >= 8 && img.height() >= 8, "{} is {}x{}", path.display(), img.width(), img.height());
}

/// `v` as an array, asserted to hold `len` entries.
fn array_of_len(v: &serde_json::Value, len: usize) -> &[serde_json::Value] {
    let a = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    assert_eq!(a.len(), len, "{v}");
    a
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn gaussian_data_quick() {
    let (dir, v) = run_quick("gaussian-data");
    let sets = array_of_len(&v["datasets"], 2);
    for s in sets {
        let d = f(&s["d"]);
        let rows = s["rows"].as_array().unwrap();
        assert!(rows.len() >= 3);
        for r in rows {
            let (ke, kf) = (f(&r["kl_empirical"]), f(&r["kl_floored"]));
            assert!(ke.is_finite() && ke >= 0.0 && kf.is_finite() && kf >= 0.0, "{r}");
        }
        // More data never hurts much: the KL at all images is below the KL at the fewest, for both models.
        let (first, last) = (&rows[0], &rows[rows.len() - 1]);
        assert!(f(&last["kl_floored"]) < f(&first["kl_floored"]));
        assert!(f(&last["kl_empirical"]) < f(&first["kl_empirical"]));
        // Below N = d the floor helps (the unfloored covariance is singular up to the ridge) wherever there is
        // one: at the smallest N, 99 % of the variance can need all N - 1 nonzero eigenvalues, so every
        // discarded eigenvalue is 0, c = 0 and the two models coincide.
        assert!(f(&first["n"]) < d);
        let floored = rows.iter().find(|r| f(&r["floored_c"]) > 0.0).expect("a row with a floor");
        assert!(f(&floored["n"]) < d && f(&floored["kl_floored"]) < f(&floored["kl_empirical"]), "{floored}");
        for r in rows.iter().filter(|r| f(&r["floored_c"]) == 0.0) {
            let (ke, kf) = (f(&r["kl_empirical"]), f(&r["kl_floored"]));
            assert!((ke - kf).abs() <= 1e-9 * ke, "c = 0 but the models differ: {r}");
        }
        png_ok(&dir.path().join(format!("kl_{}.png", s["dataset"].as_str().unwrap())));
    }
}

#[test]
fn gallery_quick() {
    let (dir, v) = run_quick("gallery");
    let g = array_of_len(&v["gallery"], 3);
    for r in g {
        assert!(f(&r["blob_bytes_f32"]) > f(&r["blob_bytes_f16"]));
        // Heun-18 approximates the exact flow: well under the pixel range of 2.
        assert!(f(&r["rmse_exact_vs_heun18"]) < 0.1, "{r}");
        assert!((0.0..=1.0).contains(&f(&r["memorised_fraction"])));
        assert!(f(&r["macs_heun18"]) > f(&r["macs_exact"]));
        png_ok(&dir.path().join(r["grid"].as_str().unwrap()));
    }
    let sweep = array_of_len(&v["rank_sweep"], 5);
    assert_eq!(f(&sweep[4]["rmse_vs_full_rank"]), 0.0);
    for w in sweep.windows(2) {
        assert!(f(&w[0]["blob_bytes_f32"]) < f(&w[1]["blob_bytes_f32"]));
    }
    png_ok(&dir.path().join("rank_sweep_mnist.png"));
    png_ok(&dir.path().join("rank_sweep_mnist_cost.png"));
}

#[test]
fn distill_quick() {
    let (dir, v) = run_quick("distill");
    let m = &v["metrics"];
    for x in m["frobenius"].as_array().unwrap() {
        assert!(f(x).is_finite() && f(x) >= 0.0);
    }
    for x in m["difference"]["linear vs gaussian"].as_array().unwrap() {
        assert!(f(x).is_finite() && f(x) >= 0.0);
    }
    png_ok(&dir.path().join("side_by_side.png"));
}

#[test]
fn skip_steps_quick() {
    let (dir, v) = run_quick("skip-steps");
    let rows = array_of_len(&v["rows"], 17);
    for r in rows {
        assert!(f(&r["rmse_gaussian_start"]).is_finite() && f(&r["rmse_naive_start"]).is_finite());
        assert_eq!(f(&r["evals_saved"]), 2.0 * f(&r["skipped_steps"]));
    }
    png_ok(&dir.path().join("skip_steps.png"));
    png_ok(&dir.path().join("skip_steps_samples.png"));
}

#[test]
fn data_size_quick() {
    let (dir, v) = run_quick("data-size");
    for r in v["runs"].as_array().unwrap() {
        assert!((-1.0..=1.0 + 1e-9).contains(&f(&r["linearity_min_network"])), "{r}");
        assert!((0.0..=1.0).contains(&f(&r["memorised_fraction"])));
        assert!(f(&r["difference_to_gaussian_mean"]) >= 0.0);
    }
    png_ok(&dir.path().join("data_size_linearity.png"));
}

#[test]
fn capacity_quick() {
    let (dir, v) = run_quick("capacity");
    // The quick setting runs the digits only (MNIST has no quick plan).
    let sets = array_of_len(&v["datasets"], 1);
    assert_eq!(sets[0]["dataset"], "digits");
    let sweep = array_of_len(&sets[0]["width_sweep"], 2);
    let follow = array_of_len(&sets[0]["over_training"], 2);
    // The followed width (64) is measured once: its sweep point is the followed run's last snapshot.
    assert_eq!(sweep[1], follow[1]);
    png_ok(&dir.path().join("capacity_width.png"));
    png_ok(&dir.path().join("capacity_training.png"));
}

#[test]
fn mixtures_quick() {
    let (dir, v) = run_quick("mixtures");
    let acc = f(&v["classifier"]["test_accuracy"]);
    // One epoch on 1,500 images: well above chance (the full setting is the one held to 97 %).
    assert!(acc > 0.8, "classifier accuracy {acc}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let names: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["Gaussian", "class mixture", "K = 10 mixture", "real digits (held out)"]);
    for r in rows {
        assert!(f(&r["fld"]).is_finite() && f(&r["fld"]) >= 0.0, "{r}");
        assert!(f(&r["kid"]).is_finite(), "{r}");
        assert!((0.0..=1.0).contains(&f(&r["memorised_fraction"])), "{r}");
        assert!(f(&r["nn_ratio_median"]) > 0.0 && f(&r["nn_ratio_median"]) <= 1.0, "{r}");
    }
    assert!(rows[0]["cond_share"].is_null());
    assert_eq!(f(&rows[1]["cond_samples"]), 100.0);
    // The class mixture's samples read as their class far more often than chance, and real digits are
    // closer to the reference than the single Gaussian's samples are.
    assert!(f(&rows[1]["cond_share"]) > 0.5, "{}", rows[1]);
    assert!(f(&rows[3]["fld"]) < f(&rows[0]["fld"]));
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 3);
    for name in v["figures"].as_array().unwrap() {
        png_ok(&dir.path().join(name.as_str().unwrap()));
    }
    assert!(dir.path().join("mixtures.md").exists() && dir.path().join("mixtures_mnist.csv").exists());
}
