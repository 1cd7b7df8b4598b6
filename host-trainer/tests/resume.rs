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
    names.into_iter().map(|n| (n.clone(), f.f32(&n, None).unwrap().data.iter().map(|v| v.to_bits()).collect())).collect()
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
    assert_eq!(std::fs::read_to_string(c.join("losses.csv")).unwrap(), std::fs::read_to_string(e.join("losses.csv")).unwrap());
    assert_eq!(tensors(&c.join("checkpoint.safetensors")), tensors(&e.join("checkpoint.safetensors")));
}

#[test]
fn sigkill_then_resume_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (full, killed) = (dir.path().join("full"), dir.path().join("killed"));
    let steps = 300;
    run_ok(&train_args(&full, steps, 128, 2));

    let mut child = bin().args(train_args(&killed, steps, 128, 2)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
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

    run_ok(&["--quiet".into(), "--threads".into(), "2".into(), "train".into(), "--resume".into(), "--out".into(), killed.display().to_string()]);
    assert_eq!(tensors(&full.join("checkpoint.safetensors")), tensors(&ck), "resumed weights differ from the uninterrupted run");
    assert_eq!(std::fs::read_to_string(full.join("losses.csv")).unwrap(), std::fs::read_to_string(killed.join("losses.csv")).unwrap());
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin().args(["--quiet", "train", "--dataset", "/nonexistent/x.idx", "--out"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("/nonexistent/x.idx"), "{e}");
    let out = bin().args(["--quiet", "train", "--resume", "--out"]).arg(dir.path().join("none")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint"));
    let out = bin().args(["--quiet", "train", "--arch", "unet", "--dataset"]).arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn_digits/digits.csv.gz")).args(["--batch", "0", "--out"]).arg(dir.path().join("b0")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch"));
}
