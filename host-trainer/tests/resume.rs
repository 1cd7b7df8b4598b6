//! End-to-end determinism through the binary: same seed -> same losses and weights on 1 and 2 threads,
//! and a run killed with SIGKILL then `--resume`d ends with bit-identical weights.

use gaussdiff_trainer::st::Loaded;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gaussdiff-train"))
}

fn digits() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn_digits/digits.csv.gz")
}

fn train_args(out: &Path, steps: usize, width: usize, threads: usize) -> Vec<String> {
    vec![
        "--quiet".into(),
        "--threads".into(),
        threads.to_string(),
        "train".into(),
        "--dataset".into(),
        digits().display().to_string(),
        "--limit".into(),
        "500".into(),
        "--hold-out".into(),
        "100".into(),
        "--arch".into(),
        "mlp".into(),
        "--width".into(),
        width.to_string(),
        "--depth".into(),
        "2".into(),
        "--batch".into(),
        "64".into(),
        "--steps".into(),
        steps.to_string(),
        "--warmup".into(),
        "10".into(),
        "--save-every".into(),
        "10".into(),
        "--seed".into(),
        "42".into(),
        "--out".into(),
        out.display().to_string(),
    ]
}

/// Every tensor of a checkpoint, by name, as raw f32 bits.
fn tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    let f = Loaded::open(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), f.f32(&n, None).unwrap().data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn run_ok(args: &[String]) {
    let out = bin().args(args).output().unwrap();
    assert!(out.status.success(), "gaussdiff-train {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn same_losses_and_weights_on_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("t1"), dir.path().join("t2"));
    run_ok(&train_args(&a, 40, 96, 1));
    run_ok(&train_args(&b, 40, 96, 2));
    let la = std::fs::read_to_string(a.join("losses.csv")).unwrap();
    let lb = std::fs::read_to_string(b.join("losses.csv")).unwrap();
    assert_eq!(la.lines().count(), 41);
    assert_eq!(la, lb, "losses differ between 1 and 2 threads");
    assert_eq!(tensors(&a.join("checkpoint.safetensors")), tensors(&b.join("checkpoint.safetensors")));
    // The U-Net (convolutions, group norm, pooling) too.
    let unet = |out: &Path, threads: usize| {
        let mut v = train_args(out, 4, 96, threads);
        let i = v.iter().position(|s| s == "mlp").unwrap();
        v[i] = "unet".into();
        let j = v.iter().position(|s| s == "--batch").unwrap();
        v[j + 1] = "16".into();
        v.extend(["--channels".into(), "8".into()]);
        v
    };
    let (c, e) = (dir.path().join("u1"), dir.path().join("u2"));
    run_ok(&unet(&c, 1));
    run_ok(&unet(&e, 2));
    assert_eq!(
        std::fs::read_to_string(c.join("losses.csv")).unwrap(),
        std::fs::read_to_string(e.join("losses.csv")).unwrap()
    );
    assert_eq!(tensors(&c.join("checkpoint.safetensors")), tensors(&e.join("checkpoint.safetensors")));
    // The residual MLP (LayerNorm, FiLM, per-pixel gain) too.
    let resmlp = |out: &Path, threads: usize| {
        let mut v = train_args(out, 10, 96, threads);
        let i = v.iter().position(|s| s == "mlp").unwrap();
        v[i] = "resmlp".into();
        v
    };
    let (f, g) = (dir.path().join("r1"), dir.path().join("r2"));
    run_ok(&resmlp(&f, 1));
    run_ok(&resmlp(&g, 2));
    let lf = std::fs::read_to_string(f.join("losses.csv")).unwrap();
    assert_eq!(lf.lines().count(), 11);
    assert_eq!(lf, std::fs::read_to_string(g.join("losses.csv")).unwrap());
    assert_eq!(tensors(&f.join("checkpoint.safetensors")), tensors(&g.join("checkpoint.safetensors")));
}

#[test]
fn sigkill_then_resume_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (full, killed) = (dir.path().join("full"), dir.path().join("killed"));
    let steps = 300;
    run_ok(&train_args(&full, steps, 128, 2));

    let mut child =
        bin().args(train_args(&killed, steps, 128, 2)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let ck = killed.join("checkpoint.safetensors");
    let t0 = Instant::now();
    // Kill as soon as a checkpoint beyond step 30 exists (the run writes one every 10 steps).
    loop {
        if let Ok(f) = Loaded::open(&ck) {
            if f.meta("step").unwrap().parse::<usize>().unwrap() >= 30 {
                break;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it could be killed; make it longer");
    let at_kill: usize = Loaded::open(&ck).unwrap().meta("step").unwrap().parse().unwrap();
    assert!(at_kill < steps, "killed run already complete");

    run_ok(&[
        "--quiet".into(),
        "--threads".into(),
        "2".into(),
        "train".into(),
        "--resume".into(),
        "--out".into(),
        killed.display().to_string(),
    ]);
    assert_eq!(
        tensors(&full.join("checkpoint.safetensors")),
        tensors(&ck),
        "resumed weights differ from the uninterrupted run"
    );
    assert_eq!(
        std::fs::read_to_string(full.join("losses.csv")).unwrap(),
        std::fs::read_to_string(killed.join("losses.csv")).unwrap()
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        bin().args(["--quiet", "train", "--dataset", "/nonexistent/x.idx", "--out"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("/nonexistent/x.idx"), "{e}");
    let out = bin().args(["--quiet", "train", "--resume", "--out"]).arg(dir.path().join("none")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint"));
    let out = bin()
        .args(["--quiet", "train", "--arch", "unet", "--dataset"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn_digits/digits.csv.gz"))
        .args(["--batch", "0", "--out"])
        .arg(dir.path().join("b0"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch"));
}

#[test]
fn train_distill_metrics_pipeline_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    run_ok(&train_args(&run, 30, 64, 2));
    let ck = run.join("checkpoint.safetensors").display().to_string();
    let lin = dir.path().join("lin.safetensors");
    let blob = dir.path().join("lin.gdn");
    run_ok(&[
        "--quiet".into(),
        "distill".into(),
        "--checkpoint".into(),
        ck.clone(),
        "--method".into(),
        "both".into(),
        "--batches".into(),
        "3".into(),
        "--sigmas".into(),
        "10,1,0.1".into(),
        "--basis-rank".into(),
        "8".into(),
        "--blob".into(),
        blob.display().to_string(),
        "--out".into(),
        lin.display().to_string(),
    ]);
    let maps = gaussdiff_trainer::distill::load_maps(&lin).unwrap();
    assert_eq!((maps.sigmas.len(), maps.d), (3, 64));
    // The blob reads back through core's reader.
    let bytes = std::fs::read(&blob).unwrap();
    let b = gaussdiff_core::blob::Blob::parse(&bytes).unwrap();
    assert!(b.model().is_ok());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("lin.report.json")).unwrap()).unwrap();
    assert!(report[0]["w_rel_frob_gd_vs_closed"].as_f64().unwrap().is_finite());
    let out = dir.path().join("metrics");
    run_ok(&[
        "--quiet".into(),
        "metrics".into(),
        "--checkpoint".into(),
        ck,
        "--distilled".into(),
        lin.display().to_string(),
        "--n-eval".into(),
        "32".into(),
        "--n-samples".into(),
        "8".into(),
        "--steps".into(),
        "6".into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    for f in [
        "metrics.json",
        "difference.csv",
        "linearity.csv",
        "frobenius.csv",
        "sample_agreement.csv",
        "memorisation.csv",
        "difference.png",
        "linearity.png",
        "frobenius.png",
        "nn_distance.png",
        "samples_network.png",
        "samples_linear.png",
        "samples_gaussian.png",
        "samples_memorising.png",
    ] {
        assert!(out.join(f).metadata().map(|m| m.len() > 0).unwrap_or(false), "missing {f}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["eval_set"], "held-out");
    // Samples of the memorising denoiser are copies of training images.
    assert_eq!(m["memorisation_fraction"]["memorising"].as_f64().unwrap(), 1.0);
    for v in m["linearity_min"].as_object().unwrap().values() {
        let v = v.as_f64().unwrap();
        assert!((-1.0..=1.0 + 1e-9).contains(&v));
    }
}
