//! Every board's budget under QEMU: the default firmware (Olivetti 64 x 64 blob) built with the memory map of
//! the Nucleo-F411RE (`memory/qemu-f411.x`: 512 KiB flash, 128 KiB RAM) and of the nRF52840-DK
//! (`memory/qemu-nrf52840.x`: 1 MiB, 256 KiB) links, runs every sample to the end and reports its stack
//! peak. A build that would not fit the board fails here: the link fails (flash, static RAM) or the stack
//! runs into the MPU guard and the firmware reports `@GDF1 error stack overflow` with a non-zero exit.
//! Skips locally without qemu-system-arm/flip-link; fails when `CI` is set.

mod firmware_support;

use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::frame::{self, Item};

/// `(stack_peak, stack_size)` from the run's `stat` line.
fn stack(stdout: &str) -> Option<(u64, u64)> {
    let mut peak = None;
    let mut size = None;
    for item in frame::decode(stdout).into_iter().flatten() {
        if let Item::Stat { pairs, .. } = item {
            for (k, v) in pairs {
                match k.as_str() {
                    "stack_peak" => peak = v.parse().ok(),
                    "stack_size" => size = v.parse().ok(),
                    _ => {}
                }
            }
        }
    }
    Some((peak?, size?))
}

fn fits(map: &str, ram: u64) {
    if fw::qemu_missing() {
        return;
    }
    let build = fw::build("qemu", &[("GAUSSDIFF_MEMORY", map)], &format!("budget-{map}"));
    let (text, data, bss) = fw::sizes(&build.elf);
    let run = fw::qemu(&build.elf, Duration::from_secs(240));
    assert_eq!(run.code, Some(0), "{map}: QEMU exit code\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("@GDF1 done frames=6"), "{map}: {}", run.stdout);
    let (peak, size) = stack(&run.stdout).unwrap_or_else(|| panic!("{map}: no stack stat line\n{}", run.stdout));
    eprintln!("{map}: flash {} static RAM {} stack peak {peak} of {size}", text + data, data + bss);
    assert!(peak > 0 && peak < size, "{map}: stack peak {peak} of {size}");
    assert!(data + bss + size <= ram, "{map}: static RAM {} + stack {size} > {ram}", data + bss);
}

#[test]
fn default_firmware_fits_the_nucleo_f411re_budget() {
    fits("qemu-f411", 128 * 1024);
}

#[test]
fn default_firmware_fits_the_nrf52840_dk_budget() {
    fits("qemu-nrf52840", 256 * 1024);
}

/// The benchmark build of the Olivetti blob needs far more than 128 KiB of stack (its f32 copies of the
/// blob's rows): with the F411's budget it must fail loudly, not lock up.
#[test]
fn a_build_over_the_ram_budget_fails_with_a_stack_overflow_report() {
    if fw::qemu_missing() {
        return;
    }
    let envs = [("GAUSSDIFF_MEMORY", "qemu-f411"), ("GAUSSDIFF_RUNS", "exact"), ("GAUSSDIFF_SEEDS", "0")];
    let build = fw::build("qemu,bench", &envs, "budget-over");
    let run = fw::qemu(&build.elf, Duration::from_secs(120));
    assert!(run.code.is_some_and(|c| c != 0), "exit code {:?}\n{}", run.code, run.stdout);
    assert!(run.stdout.contains("@GDF1 error stack overflow"), "{}", run.stdout);
}
