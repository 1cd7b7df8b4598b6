//! The no_std build matrix: `gaussdiff-core` with default features off must build for a Cortex-M4F
//! (`thumbv7em-none-eabihf`) and a Cortex-M0+ (`thumbv6m-none-eabi`, no atomic compare-and-swap), with and
//! without `defmt`, and with `fast-math`. Both targets are listed in `rust-toolchain.toml`.
//!
//! Runs a nested `cargo build` in its own target directory under this test's `CARGO_TARGET_TMPDIR`, so it
//! never waits on the lock of the build that runs the tests.

use std::path::Path;
use std::process::Command;

const TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "thumbv6m-none-eabi"];

fn build(features: Option<&str>) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("core/ lives in the workspace root");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nostd-matrix");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).env("CARGO_TARGET_DIR", &target_dir).args([
        "build",
        "--quiet",
        "-p",
        "gaussdiff-core",
        "--no-default-features",
    ]);
    for t in TARGETS {
        cmd.args(["--target", t]);
    }
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    let out = cmd.output().expect("failed to start cargo");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for t in TARGETS {
        let lib = target_dir.join(t).join("debug").join("libgaussdiff_core.rlib");
        assert!(lib.is_file(), "{} was not produced", lib.display());
    }
}

#[test]
fn core_builds_for_cortex_m_without_std() {
    build(None);
}

#[test]
fn core_builds_for_cortex_m_with_defmt() {
    build(Some("defmt"));
}

/// The opt-in `fast-math` feature (micromath's `exp`) builds for both targets too, so CI builds every
/// feature of core.
#[test]
fn core_builds_for_cortex_m_with_fast_math() {
    build(Some("fast-math"));
}

/// Every feature the firmware's default build turns on (the denoiser kinds, the f32 and int8 fast kernels, the
/// CRC-32 lookup table); the lean build is the plain `build(None)` above.
#[test]
fn core_builds_for_cortex_m_with_the_firmwares_default_features() {
    build(Some("linear,mixture,f32-kernels,i8-kernels,crc-table"));
}
