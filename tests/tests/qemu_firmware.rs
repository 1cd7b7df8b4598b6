//! The firmware under QEMU (`mps2-an386`, Cortex-M4F) produces bit-for-bit the samples the host's core
//! computes for the same blob, seed, sampler and steps: the f32 bits (through the frame's `v` lines and its
//! CRC) and the pixels. Skips locally without qemu-system-arm/flip-link; fails when `CI` is set.

mod firmware_support;

use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::blob::Blob;
use gaussdiff_core::frame::{self, DecodedFrame};
use gaussdiff_core::sampler::Sampler;

#[test]
fn qemu_samples_are_bit_identical_to_the_host() {
    if fw::qemu_missing() {
        return;
    }
    let build = fw::build("qemu", &[], "qemu-default");
    let run = fw::qemu_ok(&build.elf, Duration::from_secs(120));
    let bytes = std::fs::read(fw::default_blob()).expect("reading the default blob");
    let blob = Blob::parse(&bytes).expect("default blob parses on the host");
    let model = blob.model().expect("default blob has a model");
    let frames = fw::frames(&run.stdout);
    // The default build: exact, euler:18 and heun:18 for seeds 0 and 1.
    assert_eq!(frames.len(), 6, "{}", run.stdout);
    for kind in Sampler::ALL {
        assert!(frames.iter().any(|f| f.spec.sampler == kind), "no {kind} frame");
    }
    for f in &frames {
        assert_eq!(f.extra("blob_crc"), Some(blob.stored_crc().to_string().as_str()), "frame built from another blob");
        let x = fw::host_sample(&model, &f.spec);
        fw::assert_frame_values(f, &x);
        assert_eq!(f.sample_crc, frame::sample_crc(&x));
        assert_eq!(f.pixels, fw::pixels(&blob, &x), "{:?}: pixels differ from the host", f.spec);
        let evals: u32 = f.extra("evals").unwrap().parse().unwrap();
        let want = match f.spec.sampler {
            Sampler::Exact => 1,
            Sampler::Euler => f.spec.steps,
            Sampler::Heun => 2 * f.spec.steps - 1,
        };
        assert_eq!(evals, want, "{:?}", f.spec);
    }
    // The firmware's assembly block kernels agree bit for bit with the portable ones on its own checks
    // (kernel 0: a whole denoise; 3, 4: the blob's U^T and an f32 copy; 6: odd chunk counts and tails).
    let checks: Vec<&str> =
        run.stdout.lines().filter(|l| l.contains(" stat kernel=") && l.contains(" match=")).collect();
    assert_eq!(checks.len(), 7, "expected 7 kernel checks\n{}", run.stdout);
    for line in &checks {
        assert!(line.ends_with(" match=1"), "assembly kernel differs from the portable one: {line}");
    }
    // Instruction counts under -icount are exactly repeatable.
    let again = fw::qemu(&build.elf, Duration::from_secs(120));
    let instr = |fs: &[DecodedFrame]| fs.iter().map(|f| f.extra("instr").unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(instr(&frames), instr(&fw::frames(&again.stdout)), "instruction counts differ between two runs");
}

#[test]
fn qemu_runs_chosen_at_build_time_and_pixel_only_frames() {
    if fw::qemu_missing() {
        return;
    }
    let envs = [("GAUSSDIFF_RUNS", "heun:5,euler:3"), ("GAUSSDIFF_SEEDS", "7,123456789"), ("GAUSSDIFF_VALUES", "0")];
    let run = fw::qemu_ok(&fw::build("qemu", &envs, "qemu-runs").elf, Duration::from_secs(120));
    let bytes = std::fs::read(fw::default_blob()).unwrap();
    let blob = Blob::parse(&bytes).unwrap();
    let model = blob.model().unwrap();
    let frames = fw::frames(&run.stdout);
    let specs: Vec<_> = frames.iter().map(|f| (f.spec.sampler, f.spec.steps, f.spec.seed)).collect();
    assert_eq!(
        specs,
        [
            (Sampler::Heun, 5, 7),
            (Sampler::Heun, 5, 123_456_789),
            (Sampler::Euler, 3, 7),
            (Sampler::Euler, 3, 123_456_789)
        ]
    );
    for f in &frames {
        assert!(f.values.is_none(), "GAUSSDIFF_VALUES=0 sends no v lines");
        let x = fw::host_sample(&model, &f.spec);
        assert!(f.matches_sample(&x), "{:?}: sample CRC differs from the host's", f.spec);
        assert_eq!(f.pixels, fw::pixels(&blob, &x));
    }
}

/// The `gaussdiff` binary that `cargo test --workspace --release` builds next to this test's executable.
fn gaussdiff_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join(format!("gaussdiff{}", std::env::consts::EXE_SUFFIX));
    bin.exists().then_some(bin)
}

#[test]
fn qemu_capture_writes_pngs_and_rejects_a_corrupted_stream() {
    if fw::qemu_missing() {
        return;
    }
    let Some(bin) = gaussdiff_binary() else {
        assert!(
            !fw::in_ci(),
            "the gaussdiff binary is not built next to the tests (run `cargo test --workspace --release`)"
        );
        eprintln!("SKIPPED: gaussdiff binary not built");
        return;
    };
    let run = fw::qemu_ok(&fw::build("qemu", &[], "qemu-capture").elf, Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture.txt");
    // As a serial terminal or probe-rs would show it: a prefix before every line.
    let prefixed: String = run.stdout.lines().map(|l| format!("[00:01.234] {l}\n")).collect();
    std::fs::write(&capture, &prefixed).unwrap();
    let out = dir.path().join("png");
    let res = std::process::Command::new(&bin)
        .arg("capture")
        .arg(&capture)
        .arg("-o")
        .arg(&out)
        .arg("--blob")
        .arg(fw::default_blob())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "capture failed: {}{}", stdout, String::from_utf8_lossy(&res.stderr));
    assert_eq!(stdout.matches("bit-identical to the host").count(), 6, "{stdout}");
    let pngs = std::fs::read_dir(&out).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some()).count();
    assert_eq!(pngs, 6);

    // One changed pixel digit: the pixels CRC catches it, capture exits non-zero and names the line.
    let at = prefixed.find("@GDF1 p 3 0 ").unwrap() + "@GDF1 p 3 0 ".len();
    let mut bad = prefixed.into_bytes();
    bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&capture, &bad).unwrap();
    let res = std::process::Command::new(&bin).arg("capture").arg(&capture).arg("-o").arg(&out).output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "a corrupted capture must fail");
    assert!(stderr.contains("pixels CRC"), "{stderr}");
}
