//! Shared by the firmware tests (`qemu_*.rs`, `firmware_*.rs`): build the firmware workspace, run it under
//! QEMU, decode its frames and compare them with the host's samples, read llvm-size, and decide whether a
//! missing tool skips (locally) or fails (with `CI` set).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gaussdiff_core::blob::write::WriteOptions;
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::{Denoiser, Model};
use gaussdiff_core::frame::{self, DecodedFrame, Item};
use gaussdiff_core::sampler::SampleSpec;
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_core::tensor::DType;

/// Serialises firmware builds within one test binary (they share `firmware/target`).
static BUILD: Mutex<()> = Mutex::new(());

pub const TARGET: &str = "thumbv7em-none-eabihf";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

pub fn firmware_dir() -> PathBuf {
    repo().join("firmware")
}

/// The boards' default blob: Olivetti faces 64 x 64, rank 40, f16.
pub fn default_blob() -> PathBuf {
    firmware_dir().join("blobs/olivetti-k40-f16.gdn")
}

/// The Frey faces blob (28 x 20, rank 40, f16), the other committed blob.
pub fn frey_blob() -> PathBuf {
    firmware_dir().join("blobs/frey-k40-f16.gdn")
}

/// True when `CI` is set (to anything but empty, `0` or `false`): then no test may skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `None` when everything is there; otherwise skip locally (returns the reason) or panic under CI.
pub fn require(tools: &[&str]) -> Option<String> {
    for tool in tools {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        if !found {
            let msg = format!(
                "`{tool}` is not installed (install: .ci/firmware-deps.sh; qemu-system-arm via apt, flip-link via cargo install)"
            );
            assert!(!in_ci(), "CI is set, so this test may not skip: {msg}");
            eprintln!("SKIPPED: {msg}");
            return Some(msg);
        }
    }
    None
}

/// [`require`] for the QEMU tests (qemu-system-arm and flip-link): true when the test must skip.
pub fn qemu_missing() -> bool {
    require(&["qemu-system-arm", "flip-link"]).is_some()
}

/// A firmware build: features, extra environment (GAUSSDIFF_*), and where its ELF was copied.
#[derive(Debug, Clone)]
pub struct Build {
    pub elf: PathBuf,
}

/// `cd firmware && cargo build --release --features <features>` with the given GAUSSDIFF_* variables; the
/// ELF is copied to a name unique to this build, so later builds cannot replace it under a running test.
pub fn build(features: &str, envs: &[(&str, &str)], label: &str) -> Build {
    build_profile("release", features, envs, label)
}

/// [`build`] with a cargo profile of `firmware/Cargo.toml`: `release`, or `lean`: the lean production build
/// is `--profile lean --no-default-features` (optimised for size, without the default features `messages`
/// and `every-blob`).
pub fn build_profile(profile: &str, features: &str, envs: &[(&str, &str)], label: &str) -> Build {
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let out = cargo_build(profile, features, envs);
    assert!(
        out.status.success(),
        "firmware build `--features {features}` {envs:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target_dir = firmware_dir().join("target");
    let built = target_dir.join(TARGET).join(profile).join("gaussdiff-firmware");
    let copies = target_dir.join("test-elves");
    std::fs::create_dir_all(&copies).expect("creating firmware/target/test-elves");
    let elf = copies.join(format!("{label}.elf"));
    std::fs::copy(&built, &elf).unwrap_or_else(|e| panic!("copying {} to {}: {e}", built.display(), elf.display()));
    Build { elf }
}

/// [`build_profile`] of a build that must fail (a blob the build refuses): its stderr.
pub fn build_fails(profile: &str, features: &str, envs: &[(&str, &str)]) -> String {
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let out = cargo_build(profile, features, envs);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "firmware build `--features {features}` {envs:?} should fail:\n{stderr}");
    stderr
}

/// Runs `cargo build` in `firmware/` for [`build_profile`] and [`build_fails`] (the caller holds `BUILD`).
fn cargo_build(profile: &str, features: &str, envs: &[(&str, &str)]) -> std::process::Output {
    let dir = firmware_dir();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&dir)
        .args(["build", "--profile", profile, "--features", features])
        .env("CARGO_TARGET_DIR", dir.join("target"));
    if profile == "lean" {
        cmd.arg("--no-default-features");
    }
    cmd.arg("--config").arg(remap_rustflags());
    // The outer `cargo test` exports variables meant for the host build; keep them out of the firmware's.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER", "CARGO_BUILD_RUSTFLAGS"]
    {
        cmd.env_remove(var);
    }
    for var in [
        "GAUSSDIFF_BLOB",
        "GAUSSDIFF_RUNS",
        "GAUSSDIFF_SEEDS",
        "GAUSSDIFF_VALUES",
        "GAUSSDIFF_CLASS",
        "GAUSSDIFF_MEMORY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("running cargo build in firmware/")
}

/// `--config` value that appends `--remap-path-prefix` for the checkout and the cargo home to the
/// firmware's rustflags (`.cargo/config.toml`; cargo concatenates the arrays): panic locations embed source
/// paths, and without this the size records would depend on where the repository was cloned.
pub fn remap_rustflags() -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent-cargo-home"));
    let remap = |from: &Path, to: &str| format!("{:?}", format!("--remap-path-prefix={}={to}", from.display()));
    format!("target.{TARGET}.rustflags=[{}, {}]", remap(&repo(), "/gaussdiff"), remap(&cargo_home, "/cargo-home"))
}

/// What a QEMU run printed (semihosting stdout) and its exit code (`None` when killed by the timeout).
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

/// Runs `elf` on `qemu-system-arm -machine mps2-an386` with `-icount shift=0`, killed after `timeout`.
pub fn qemu(elf: &Path, timeout: Duration) -> Run {
    qemu_on("mps2-an386", "cortex-m4", elf, timeout)
}

/// Runs `elf` on `qemu-system-arm -machine <machine> -cpu <cpu>` with `-icount shift=0`.
pub fn qemu_on(machine: &str, cpu: &str, elf: &Path, timeout: Duration) -> Run {
    let mut child = Command::new("qemu-system-arm")
        .args(["-machine", machine, "-cpu", cpu, "-nographic", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu-system-arm");
    // Drain both pipes while QEMU runs: a 64 x 64 run writes far more than a pipe buffer holds.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for qemu") {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::process::Output {
        status: status.unwrap_or_default(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: status.and_then(|s| s.code()),
    }
}

/// `llvm-size` from the toolchain's llvm-tools component.
pub fn llvm_size() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let vv = Command::new(&rustc).arg("-vV").output().ok()?;
    let vv = String::from_utf8_lossy(&vv.stdout).into_owned();
    let host = vv.lines().find_map(|l| l.strip_prefix("host: "))?.trim().to_string();
    let p = sysroot.join("lib/rustlib").join(host).join("bin/llvm-size");
    p.exists().then_some(p)
}

/// Section sizes in bytes: `(text, data, bss)` from `llvm-size` (Berkeley format).
pub fn sizes(elf: &Path) -> (u64, u64, u64) {
    let tool = llvm_size().expect("llvm-size (rustup component add llvm-tools)");
    let out = Command::new(&tool).arg(elf).output().expect("running llvm-size");
    assert!(out.status.success(), "llvm-size failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let row: Vec<u64> = text
        .lines()
        .nth(1)
        .expect("llvm-size prints a header and a row")
        .split_whitespace()
        .take(3)
        .map(|v| v.parse().expect("llvm-size numbers"))
        .collect();
    (row[0], row[1], row[2])
}

/// The frames a run printed, in order; panics on a malformed frame or a target error.
pub fn frames(stdout: &str) -> Vec<DecodedFrame> {
    frame::decode(stdout)
        .into_iter()
        .filter_map(|item| match item.unwrap_or_else(|e| panic!("bad frame from the target: {e}\n{stdout}")) {
            Item::Frame(f) => Some(f),
            Item::TargetError { message, .. } => panic!("target reported an error: {message}"),
            _ => None,
        })
        .collect()
}

/// The host's sample for a spec from `model`: the same `SampleSpec::run` the firmware calls.
pub fn host_sample(model: &Model<'_>, spec: &SampleSpec) -> Vec<f32> {
    let mut x = vec![0.0f32; model.dim()];
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(model)];
    let mut sigmas = vec![0.0f32; spec.steps as usize + 1];
    spec.run(model, &EdmSchedule::EDM, &mut sigmas, &mut x, &mut scratch, |_, _| {}).expect("spec runs on the host");
    x
}

/// A sample's pixels through the blob's pixel map.
pub fn pixels(blob: &Blob<'_>, x: &[f32]) -> Vec<u8> {
    let mut pixels = vec![0u8; x.len()];
    blob.pixel_map().to_pixels(x, &mut pixels);
    pixels
}

/// Asserts that a frame with `v` lines carries bit for bit the host's sample `x` (its values and the
/// sample CRC).
pub fn assert_frame_values(f: &DecodedFrame, x: &[f32]) {
    let target = f.values.as_ref().expect("the build sends v lines");
    let differing = x.iter().zip(target).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differing, 0, "{:?}: {differing} of {} f32 values differ from the host", f.spec, x.len());
    assert!(f.matches_sample(x), "{:?}: sample CRC differs from the host's", f.spec);
}

/// Runs `elf` under QEMU ([`qemu`]) and asserts a zero exit code.
pub fn qemu_ok(elf: &Path, timeout: Duration) -> Run {
    let run = qemu(elf, timeout);
    assert_eq!(run.code, Some(0), "QEMU exit code (None = timeout)\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    run
}

/// Writes a blob a test made to `firmware/target/test-blobs/{name}` (where `GAUSSDIFF_BLOB` can point).
/// A blob derived from the Frey blob's bytes (a linear or mixture one built from its Gaussian): `write`
/// of `params(Frey blob)` with weights stored as `dtype`, written by [`write_test_blob`] as `name`; its
/// bytes and path.
pub fn derived_test_blob<P, E: std::fmt::Debug>(
    name: &str,
    dtype: DType,
    params: impl FnOnce(&[u8]) -> P,
    write: impl FnOnce(&P, &WriteOptions) -> Result<Vec<u8>, E>,
) -> (Vec<u8>, PathBuf) {
    // From the Frey Gaussian (d = 560): small test blobs, whatever the boards' default blob is.
    let gauss = std::fs::read(frey_blob()).expect("reading the Frey blob");
    let bytes = write(&params(&gauss), &WriteOptions { dtype, ..WriteOptions::default() })
        .unwrap_or_else(|e| panic!("writing {name}: {e:?}"));
    let path = write_test_blob(name, &bytes);
    (bytes, path)
}

pub fn write_test_blob(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = firmware_dir().join("target").join("test-blobs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The `gaussdiff` binary that `cargo test --workspace --release` builds next to this test's executable;
/// `None` (the test skips) where it is missing, which fails under CI.
pub fn gaussdiff_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join(format!("gaussdiff{}", std::env::consts::EXE_SUFFIX));
    if bin.exists() {
        return Some(bin);
    }
    assert!(!in_ci(), "the gaussdiff binary is not built next to the tests (run `cargo test --workspace --release`)");
    eprintln!("SKIPPED: gaussdiff binary not built");
    None
}
