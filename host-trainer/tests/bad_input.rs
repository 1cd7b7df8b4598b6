//! The trainer's part of the bad-input battery (issue 16; the CLI's is `tools/tests/battery.rs`): each case
//! runs `gaussdiff-train` under an address-space limit (1 GiB plus faer's per-thread GEMM reservation,
//! `gaussdiff_tests::memory`) and a timeout, with `RUST_BACKTRACE=1` set, and
//! must end with a one-line error (no backtrace), no panic, no abort, and nothing left behind. Plus: two
//! identical runs write identical bytes, and a corrupted checkpoint tensor is named on resume and distill.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use gaussdiff_tests::memory;

fn digits() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn_digits/digits.csv.gz")
}

fn run_limited(args: &[String]) -> Output {
    Command::new("prlimit")
        .arg(format!("--as={}", memory::address_space_limit()))
        .arg("--")
        .arg("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_gaussdiff-train"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("GAUSSDIFF_BACKTRACE")
        .output()
        .unwrap()
}

/// A tiny training run's arguments (digits, MLP width 16, `steps` steps).
fn tiny(out: &Path, steps: usize) -> Vec<String> {
    let d = digits().display().to_string();
    let o = out.display().to_string();
    [
        "--quiet",
        "--threads",
        "1",
        "train",
        "--dataset",
        &d,
        "--limit",
        "200",
        "--hold-out",
        "20",
        "--arch",
        "mlp",
        "--width",
        "16",
        "--depth",
        "1",
        "--batch",
        "16",
        "--warmup",
        "1",
        "--save-every",
        "2",
        "--seed",
        "3",
        "--out",
        &o,
        "--steps",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([steps.to_string()])
    .collect()
}

/// A finished tiny run (shared, read-only): its directory.
fn finished_run() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad-input-run");
        let _ = std::fs::remove_dir_all(&dir);
        let o = run_limited(&tiny(&dir, 4));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir
    })
}

/// The checkpoint `bytes` with `width = 16` in its metadata config replaced by `width` (the JSON header
/// re-serialised and padded to 8 bytes; the tensors unchanged).
fn with_config_width(bytes: &[u8], width: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let config = header["__metadata__"]["config"].as_str().unwrap().replace("width = 16", width);
    header["__metadata__"]["config"] = serde_json::Value::String(config);
    let mut json = serde_json::to_vec(&header).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

fn check(name: &str, o: &Output, code: i32, needles: &[&str]) -> Result<(), String> {
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() != Some(code) {
        return Err(format!("{name}: exit {:?}, expected {code}: {err}", o.status.code()));
    }
    if code == 1 && err.trim_end().lines().count() != 1 {
        return Err(format!("{name}: expected a one-line error (no backtrace), got:\n{err}"));
    }
    for n in needles {
        if !err.contains(n) {
            return Err(format!("{name}: stderr lacks {n:?}: {err}"));
        }
    }
    Ok(())
}

#[test]
fn trainer_bad_inputs() {
    let run = finished_run();
    let ck = run.join("checkpoint.safetensors");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // A checkpoint with one byte flipped inside the last tensor's data (the CRC metadata unchanged).
    let mut bytes = std::fs::read(&ck).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    let bad = t.join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("checkpoint.safetensors"), &bytes).unwrap();
    std::fs::copy(run.join("config.toml"), bad.join("config.toml")).unwrap();
    std::fs::copy(run.join("losses.csv"), bad.join("losses.csv")).unwrap();
    // A checkpoint whose metadata config asks for an MLP of width 3e9 (its tensors and checksums intact):
    // refused before the network is allocated.
    let huge = t.join("huge.safetensors");
    std::fs::write(&huge, with_config_width(&std::fs::read(&ck).unwrap(), "width = 3000000000")).unwrap();
    let s = |p: &Path| p.display().to_string();
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<String>, i32, Vec<&str>)> = vec![
        ("train --steps 0", tiny(&t.join("zero"), 0), 1, vec!["steps must be at least 1"]),
        ("train --resume on a missing directory", v(&["train", "--resume", "--out", &s(&t.join("none"))]), 1, vec!["--resume", "no checkpoint"]),
        ("train --resume --width", v(&["train", "--resume", "--width", "8", "--out", &s(run)]), 2, vec!["--resume", "--width"]),
        ("train --resume --lr", v(&["train", "--resume", "--lr", "0.1", "--out", &s(run)]), 2, vec!["--lr"]),
        ("train --resume --steps below the checkpoint", v(&["--quiet", "train", "--resume", "--steps", "2", "--out", &s(run)]), 1, vec!["--steps 2", "already at step 4"]),
        ("train missing dataset", v(&["train", "--dataset", &s(&t.join("none.csv")), "--out", &s(&t.join("d"))]), 1, vec!["none.csv"]),
        ("train --batch 0", v(&["train", "--dataset", &s(&digits()), "--batch", "0", "--out", &s(&t.join("d"))]), 1, vec!["batch"]),
        ("train --lr -1", v(&["train", "--dataset", &s(&digits()), "--lr=-1", "--out", &s(&t.join("d"))]), 1, vec!["lr"]),
        ("train --ema-decay 1.5", v(&["train", "--dataset", &s(&digits()), "--ema-decay", "1.5", "--out", &s(&t.join("d"))]), 1, vec!["ema_decay"]),
        ("train --limit 0", v(&["train", "--dataset", &s(&digits()), "--limit", "0", "--out", &s(&t.join("d"))]), 1, vec!["limit"]),
        ("train --save-every 0", v(&["train", "--dataset", &s(&digits()), "--save-every", "0", "--out", &s(&t.join("d"))]), 1, vec!["save_every"]),
        ("train --resume corrupt tensor", v(&["--quiet", "train", "--resume", "--steps", "6", "--out", &s(&bad)]), 1, vec!["is corrupt", "checksum"]),
        ("distill corrupt checkpoint", v(&["--quiet", "distill", "--checkpoint", &s(&bad.join("checkpoint.safetensors")), "--out", &s(&t.join("maps.safetensors"))]), 1, vec!["is corrupt"]),
        ("distill checkpoint with a huge config", v(&["--quiet", "distill", "--checkpoint", &s(&huge), "--out", &s(&t.join("maps.safetensors"))]), 1, vec!["huge.safetensors", "cannot hold"]),
        ("distill missing checkpoint", v(&["--quiet", "distill", "--checkpoint", &s(&t.join("no.safetensors")), "--out", &s(&t.join("maps.safetensors"))]), 1, vec!["no.safetensors"]),
    ];
    let mut failures = Vec::new();
    for (name, args, code, needles) in &cases {
        let before: Vec<_> = std::fs::read_dir(t).unwrap().map(|e| e.unwrap().file_name()).collect();
        let o = run_limited(args);
        if let Err(e) = check(name, &o, *code, needles) {
            failures.push(e);
        }
        let after: Vec<_> = std::fs::read_dir(t).unwrap().map(|e| e.unwrap().file_name()).collect();
        if after != before {
            failures.push(format!("{name}: left {after:?} (before {before:?})"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    let peak = memory::children_peak_rss();
    assert!(peak < memory::PEAK, "a case peaked at {} MiB of resident memory", peak >> 20);
    // The corrupted file was not replaced by the failed resume.
    assert_eq!(std::fs::read(bad.join("checkpoint.safetensors")).unwrap(), bytes);
}

#[test]
fn identical_runs_write_identical_bytes_and_clean_temporaries() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        let o = run_limited(&tiny(dir, 4));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in ["checkpoint.safetensors", "config.toml", "losses.csv"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f} differs");
    }
    for dir in [&a, &b] {
        let args: Vec<String> = ["--quiet", "--threads", "1", "distill", "--checkpoint"]
            .iter()
            .map(|s| s.to_string())
            .chain([dir.join("checkpoint.safetensors").display().to_string()])
            .chain(["--out".to_string(), dir.join("maps.safetensors").display().to_string()])
            .chain(["--batches", "2", "--batch", "16"].iter().map(|s| s.to_string()))
            .collect();
        let o = run_limited(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(a.join("maps.safetensors")).unwrap(), std::fs::read(b.join("maps.safetensors")).unwrap());
    // A temporary file left by a killed writer is removed when the run resumes.
    let stale = a.join(".gaussdiff-killed.tmp");
    std::fs::write(&stale, vec![0u8; 1000]).unwrap();
    let mut args = vec!["--quiet".to_string(), "train".into(), "--resume".into(), "--steps".into(), "6".into()];
    args.extend(["--out".to_string(), a.display().to_string()]);
    let o = run_limited(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!stale.exists(), "stale temporary file not removed");
}
