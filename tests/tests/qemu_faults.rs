//! Failures on the target become a readable `@GDF1 error` line and a non-zero QEMU exit code: a HardFault
//! (feature `test-hardfault`), a panic (`test-panic`), a stack overflow (`test-stack-overflow`), and a blob
//! corrupted after the build (one flipped payload bit: the reader's CRC check reports it, nothing panics). Skips locally without
//! qemu-system-arm/flip-link; fails when `CI` is set.

mod firmware_support;

use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::frame::{self, Item};

/// Builds the firmware (`features`, `envs`), runs it under QEMU and asserts a non-zero exit code and an
/// `@GDF1 error` line that `reported` accepts (the report of `what`), and that nothing panicked unless the
/// panic is the point. Skips (returns) without QEMU.
fn assert_reported(features: &str, envs: &[(&str, &str)], what: &str, reported: impl Fn(&str) -> bool) {
    if fw::qemu_missing() {
        return;
    }
    let build = fw::build(features, envs, what);
    let run = fw::qemu(&build.elf, Duration::from_secs(60));
    assert!(run.code.is_some_and(|c| c != 0), "exit code {:?}, expected non-zero\n{}", run.code, run.stdout);
    let errors: Vec<String> = frame::decode(&run.stdout)
        .into_iter()
        .filter_map(|i| match i {
            Ok(Item::TargetError { message, .. }) => Some(message),
            _ => None,
        })
        .collect();
    assert!(errors.iter().any(|e| reported(e)), "no {what} report in:\n{}", run.stdout);
    assert!(what == "panic" || !run.stdout.contains("panic"), "{}", run.stdout);
}

/// The smallest run set, one exact sample for seed 0 (the deliberate faults need no more).
const ONE_RUN: [(&str, &str); 2] = [("GAUSSDIFF_RUNS", "exact"), ("GAUSSDIFF_SEEDS", "0")];

#[test]
fn qemu_hardfault_is_reported_with_nonzero_exit() {
    assert_reported("qemu,test-hardfault", &ONE_RUN, "hardfault", |e| e.starts_with("hardfault pc=0x"));
}

#[test]
fn qemu_panic_is_reported_with_nonzero_exit() {
    assert_reported("qemu,test-panic", &ONE_RUN, "panic", |e| {
        e.starts_with("panic at ") && e.contains("deliberate panic")
    });
}

#[test]
fn qemu_stack_overflow_is_reported_with_nonzero_exit() {
    // With the Nucleo-F411RE's budget (128 KiB RAM): the recursion runs into the MPU guard at the bottom of
    // the stack; the fault handler (on its own stack) reports it.
    let envs = [("GAUSSDIFF_RUNS", "exact"), ("GAUSSDIFF_SEEDS", "0"), ("GAUSSDIFF_MEMORY", "qemu-f411")];
    assert_reported("qemu,test-stack-overflow", &envs, "stack-overflow", |e| e.starts_with("stack overflow sp=0x"));
}

#[test]
fn qemu_corrupt_blob_is_reported_not_panicked() {
    let mut bytes = std::fs::read(fw::default_blob()).unwrap();
    let at = bytes.len() - 100; // inside the payload, covered by the CRC
    bytes[at] ^= 0x10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.gdn");
    std::fs::write(&path, &bytes).unwrap();
    let envs = [("GAUSSDIFF_BLOB", path.to_str().unwrap())];
    assert_reported("qemu", &envs, "corrupt-blob", |e| e.starts_with("blob: checksum mismatch"));
}
