//! The firmware under QEMU (`mps2-an386`, Cortex-M4F) produces bit-for-bit the samples the host's core
//! computes for the same blob, seed, sampler and steps: the f32 bits (through the frame's `v` lines and its
//! CRC) and the pixels. Skips locally without qemu-system-arm/flip-link; fails when `CI` is set.

mod firmware_support;

use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::blob::Blob;
use gaussdiff_core::frame::{self, DecodedFrame};
use gaussdiff_core::sampler::Sampler;

/// The frames of a default-runs build (exact, euler:18, heun:18 for seeds 0 and 1) of `blob` are the
/// host's samples bit for bit, with real instruction counts that repeat exactly. Returns the run's stdout.
fn check_bit_identical(features: &str, blob_path: &std::path::Path, label: &str) -> String {
    check_bit_identical_profile("release", features, blob_path, label)
}

/// [`check_bit_identical`] for a build with the cargo `profile` (`release` or the size-optimised `lean`).
fn check_bit_identical_profile(profile: &str, features: &str, blob_path: &std::path::Path, label: &str) -> String {
    let build = fw::build_profile(profile, features, &[("GAUSSDIFF_BLOB", blob_path.to_str().unwrap())], label);
    let run = fw::qemu_ok(&build.elf, Duration::from_secs(240));
    let bytes = std::fs::read(blob_path).expect("reading the blob");
    let blob = Blob::parse(&bytes).expect("blob parses on the host");
    let model = blob.model().expect("blob has a model");
    let frames = fw::frames(&run.stdout);
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
        let instr: u64 = f.extra("instr").unwrap().parse().unwrap();
        assert!(instr > 10_000 * u64::from(evals), "{:?}: instr={instr} is not a count", f.spec);
    }
    assert!(run.stdout.contains("stat calib_instr=2000000 calib_ticks=50000"), "calibration:\n{}", run.stdout);
    // Instruction counts under -icount are exactly repeatable.
    let again = fw::qemu(&build.elf, Duration::from_secs(240));
    let instr = |fs: &[DecodedFrame]| fs.iter().map(|f| f.extra("instr").unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(instr(&frames), instr(&fw::frames(&again.stdout)), "instruction counts differ between two runs");
    run.stdout
}

#[test]
fn qemu_samples_are_bit_identical_to_the_host() {
    if fw::qemu_missing() {
        return;
    }
    // The default (shipped) build: Olivetti 64 x 64, f16; no benchmark, so no `stat kernel=` lines.
    let stdout = check_bit_identical("qemu", &fw::default_blob(), "qemu-default");
    assert!(!stdout.contains(" stat kernel="), "the default build must not contain the benchmark\n{stdout}");
}

#[test]
fn qemu_frey_bench_build_is_bit_identical_and_its_kernels_match() {
    if fw::qemu_missing() {
        return;
    }
    // The benchmark build (feature `bench`) on the Frey f16 blob: the samples are still the host's, and the
    // firmware's assembly block kernels agree bit for bit with the portable ones on its own checks
    // (kernel 0: a whole denoise; 3, 4: the blob's U^T and an f32 copy; 6: odd chunk counts and tails; 7: the
    // square root).
    let stdout = check_bit_identical("qemu,bench", &fw::frey_blob(), "qemu-frey-bench");
    let checks: Vec<&str> = stdout.lines().filter(|l| l.contains(" stat kernel=") && l.contains(" match=")).collect();
    assert_eq!(checks.len(), 8, "expected 8 kernel checks\n{stdout}");
    for line in &checks {
        assert!(line.ends_with(" match=1"), "assembly kernel differs from the portable one: {line}");
    }
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

#[test]
fn qemu_capture_writes_pngs_and_rejects_a_corrupted_stream() {
    if fw::qemu_missing() {
        return;
    }
    let Some(bin) = fw::gaussdiff_binary() else { return };
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

/// The other storage types: Frey faces exported as int8 and f32 (`gaussdiff export`, into a temporary
/// directory) run bit-identical to the host too (f32 in the lean build too, whose build refuses int8 blobs), so
/// QEMU covers every blob kind (f16: the two committed
/// blobs; linear: `qemu_linear.rs`; mixture: `qemu_mixture.rs`).
#[test]
fn qemu_int8_and_f32_blobs_are_bit_identical_to_the_host() {
    if fw::qemu_missing() {
        return;
    }
    let Some(bin) = fw::gaussdiff_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    for dtype in ["i8", "f32"] {
        let blob = dir.path().join(format!("frey-k40-{dtype}.gdn"));
        let res = std::process::Command::new(&bin)
            .current_dir(fw::repo())
            .args(["export", "--dataset", "data/frey_faces/frey_rawface.mat", "--rank", "40", "--dtype", dtype, "-o"])
            .arg(&blob)
            .output()
            .unwrap();
        assert!(res.status.success(), "export {dtype}: {}", String::from_utf8_lossy(&res.stderr));
        check_bit_identical("qemu", &blob, &format!("qemu-frey-{dtype}"));
        if dtype == "f32" {
            // The lean build has no fast f32 row kernels: the element-wise reference, the same bits.
            check_bit_identical_profile("lean", "qemu", &blob, &format!("qemu-lean-frey-{dtype}"));
        } else {
            // Nor int8 storage at all: its build refuses the blob, naming the feature that adds it.
            let stderr = fw::build_fails("lean", "qemu", &[("GAUSSDIFF_BLOB", blob.to_str().unwrap())]);
            assert!(stderr.contains("int8") && stderr.contains("every-blob"), "{stderr}");
        }
    }
}

/// The same default build on a Cortex-M7 (`qemu-system-arm -machine mps2-an500 -cpu cortex-m7`): the frames
/// are those of the Cortex-M4 run and of the host, bit for bit.
#[test]
fn qemu_cortex_m7_mps2_an500_is_bit_identical_to_the_m4_and_the_host() {
    if fw::qemu_missing() {
        return;
    }
    let envs = [("GAUSSDIFF_RUNS", "exact,heun:5"), ("GAUSSDIFF_SEEDS", "3")];
    let build = fw::build("qemu", &envs, "qemu-m7");
    let m4 = fw::qemu_ok(&build.elf, Duration::from_secs(120));
    let m7 = fw::qemu_on("mps2-an500", "cortex-m7", &build.elf, Duration::from_secs(120));
    assert_eq!(m7.code, Some(0), "mps2-an500 exit code\nstdout:\n{}\nstderr:\n{}", m7.stdout, m7.stderr);
    let (f4, f7) = (fw::frames(&m4.stdout), fw::frames(&m7.stdout));
    assert_eq!(f7.len(), 2, "{}", m7.stdout);
    let bytes = std::fs::read(fw::default_blob()).unwrap();
    let blob = Blob::parse(&bytes).unwrap();
    let model = blob.model().unwrap();
    for (a, b) in f4.iter().zip(&f7) {
        assert_eq!(a.spec, b.spec);
        let bits = |f: &DecodedFrame| f.values.as_ref().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a), bits(b), "{:?}: Cortex-M7 and Cortex-M4 differ", b.spec);
        assert_eq!((a.sample_crc, &a.pixels), (b.sample_crc, &b.pixels));
        let x = fw::host_sample(&model, &b.spec);
        fw::assert_frame_values(b, &x);
        assert_eq!(b.pixels, fw::pixels(&blob, &x));
    }
}

/// The lean production build (`--profile lean --no-default-features`: optimised for size, without error texts
/// or the other blob kinds) computes the same bits as the host.
#[test]
fn qemu_lean_build_is_bit_identical_to_the_host() {
    if fw::qemu_missing() {
        return;
    }
    check_bit_identical_profile("lean", "qemu", &fw::default_blob(), "qemu-lean");
}
