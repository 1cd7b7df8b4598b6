//! Failures on the target become a readable `@GDF1 error` line and a non-zero QEMU exit code: a HardFault
//! (feature `test-hardfault`), a panic (`test-panic`), a stack overflow (`test-stack-overflow`), and a blob
//! corrupted after the build (one flipped payload bit: the reader's CRC check reports it, nothing panics). Skips locally without
//! qemu-system-arm/flip-link; fails when `CI` is set.

mod firmware_support;

use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::frame::{self, Item};

/// Builds the firmware (`features`, `envs`), runs it under QEMU and asserts a non-zero exit code; returns the
/// target's error messages (`@GDF1 error` lines) and the whole output.
fn failing_run(features: &str, envs: &[(&str, &str)], label: &str) -> (Vec<String>, String) {
    let build = fw::build(features, envs, label);
    let run = fw::qemu(&build.elf, Duration::from_secs(60));
    assert!(run.code.is_some_and(|c| c != 0), "exit code {:?}, expected non-zero\n{}", run.code, run.stdout);
    let errors = frame::decode(&run.stdout)
        .into_iter()
        .filter_map(|i| match i {
            Ok(Item::TargetError { message, .. }) => Some(message),
            _ => None,
        })
        .collect();
    (errors, run.stdout)
}

/// The smallest run set, one exact sample for seed 0 (the deliberate faults need no more).
const ONE_RUN: [(&str, &str); 2] = [("GAUSSDIFF_RUNS", "exact"), ("GAUSSDIFF_SEEDS", "0")];

#[test]
fn qemu_hardfault_is_reported_with_nonzero_exit() {
    if fw::qemu_missing() {
        return;
    }
    let (errors, stdout) = failing_run("qemu,test-hardfault", &ONE_RUN, "hardfault");
    assert!(errors.iter().any(|e| e.starts_with("hardfault pc=0x")), "no hardfault report in:\n{stdout}");
}

#[test]
fn qemu_panic_is_reported_with_nonzero_exit() {
    if fw::qemu_missing() {
        return;
    }
    let (errors, stdout) = failing_run("qemu,test-panic", &ONE_RUN, "panic");
    assert!(
        errors.iter().any(|e| e.starts_with("panic:") && e.contains("deliberate panic")),
        "no panic report in:\n{stdout}"
    );
}

#[test]
fn qemu_stack_overflow_is_reported_with_nonzero_exit() {
    if fw::qemu_missing() {
        return;
    }
    // With the Nucleo-F411RE's budget (128 KiB RAM): the recursion runs into the MPU guard at the bottom of
    // the stack; the fault handler (on its own stack) reports it.
    let envs = [("GAUSSDIFF_RUNS", "exact"), ("GAUSSDIFF_SEEDS", "0"), ("GAUSSDIFF_MEMORY", "qemu-f411")];
    let (errors, stdout) = failing_run("qemu,test-stack-overflow", &envs, "stack-overflow");
    assert!(errors.iter().any(|e| e.starts_with("stack overflow sp=0x")), "no stack overflow report in:\n{stdout}");
}

#[test]
fn qemu_corrupt_blob_is_reported_not_panicked() {
    if fw::qemu_missing() {
        return;
    }
    let mut bytes = std::fs::read(fw::default_blob()).unwrap();
    let at = bytes.len() - 100; // inside the payload, covered by the CRC
    bytes[at] ^= 0x10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.gdn");
    std::fs::write(&path, &bytes).unwrap();
    let (errors, stdout) = failing_run("qemu", &[("GAUSSDIFF_BLOB", path.to_str().unwrap())], "corrupt-blob");
    assert!(errors.iter().any(|e| e.starts_with("blob: checksum mismatch")), "no checksum report in:\n{stdout}");
    assert!(!stdout.contains("panic"), "{stdout}");
}
