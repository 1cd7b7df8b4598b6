//! Flash and RAM bytes of every firmware target (llvm-size), and the QEMU build's painted-stack peak,
//! compared with the checked-in records `firmware/sizes/<board>.size`: growth beyond the tolerance fails,
//! so a size change is visible in review. Also proves the two real boards build.
//!
//! After an intended change, rewrite the records with
//! `GAUSSDIFF_UPDATE_SIZES=1 cargo test --release -p gaussdiff-tests --test firmware_sizes`.

mod firmware_support;

use std::collections::BTreeMap;
use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::frame::{self, Item};

/// Allowed growth: 1 % or 256 bytes, whichever is larger.
fn tolerance(recorded: u64) -> u64 {
    (recorded / 100).max(256)
}

fn measure(board: &str) -> BTreeMap<String, u64> {
    let build = fw::build(board, &[], &format!("size-{board}"));
    let (text, data, bss) = fw::sizes(&build.elf);
    let mut m = BTreeMap::new();
    m.insert("text".to_string(), text);
    m.insert("data".to_string(), data);
    m.insert("bss".to_string(), bss);
    m.insert("flash".to_string(), text + data);
    m.insert("ram_static".to_string(), data + bss);
    let blob_len = std::fs::metadata(fw::default_blob()).map(|m| m.len()).unwrap_or(0);
    m.insert("code".to_string(), (text + data).saturating_sub(blob_len));
    // The lean production build (profile `lean`, no default features): its code size without the blob.
    let lean = fw::build_profile("lean", board, &[], &format!("size-lean-{board}"));
    let (lt, ld, _) = fw::sizes(&lean.elf);
    m.insert("lean_flash".to_string(), lt + ld);
    m.insert("lean_code".to_string(), (lt + ld).saturating_sub(blob_len));
    if board == "qemu" {
        let run = fw::qemu(&build.elf, Duration::from_secs(120));
        assert_eq!(run.code, Some(0), "{}", run.stdout);
        for item in frame::decode(&run.stdout).into_iter().flatten() {
            if let Item::Stat { pairs, .. } = item {
                for (k, v) in pairs {
                    if k == "stack_peak" {
                        m.insert(k, v.parse().unwrap());
                    }
                }
            }
        }
        assert!(m.contains_key("stack_peak"), "no stack_peak stat line:\n{}", run.stdout);
    }
    m
}

fn record_path(board: &str) -> std::path::PathBuf {
    fw::firmware_dir().join("sizes").join(format!("{board}.size"))
}

fn parse_record(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or_else(|| panic!("bad size record line {l:?}"));
            (k.to_string(), v.trim().parse().unwrap_or_else(|_| panic!("bad size record value {l:?}")))
        })
        .collect()
}

fn write_record(board: &str, m: &BTreeMap<String, u64>) {
    let blob = fw::default_blob();
    let blob_len = std::fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
    let mut text = format!(
        "# gaussdiff firmware size record, board {board}: `cd firmware && cargo build --release --features {board}` with\n\
         # the --remap-path-prefix flags of tests/tests/firmware_support (`remap_rustflags`),\n\
         # then llvm-size (bytes; flash = text + data, code = flash - blob, ram_static = data + bss;\n\
         # lean_* = the same for `--profile lean --no-default-features`){}.\n\
         # Default blob blobs/{} ({blob_len} bytes). Rewrite: GAUSSDIFF_UPDATE_SIZES=1 cargo test \
         --release -p gaussdiff-tests --test firmware_sizes\n",
        if m.contains_key("stack_peak") { "; stack_peak = painted stack under QEMU" } else { "" },
        blob.file_name().unwrap().to_string_lossy()
    );
    for (k, v) in m {
        text.push_str(&format!("{k} {v}\n"));
    }
    let path = record_path(board);
    let tmp = path.with_extension("size.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn check(board: &str) {
    let measured = measure(board);
    eprintln!("{board}: {measured:?}");
    if std::env::var_os("GAUSSDIFF_UPDATE_SIZES").is_some() {
        write_record(board, &measured);
        return;
    }
    let path = record_path(board);
    let recorded =
        parse_record(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())));
    let mut failures = Vec::new();
    for (k, &now) in &measured {
        let Some(&was) = recorded.get(k) else {
            failures.push(format!("{k}: not in the record"));
            continue;
        };
        if now > was + tolerance(was) {
            failures.push(format!("{k}: {now} bytes, recorded {was} (+{} > tolerance {})", now - was, tolerance(was)));
        } else if now + tolerance(was) < was {
            eprintln!("note: {board} {k} shrank from {was} to {now}; consider updating {}", path.display());
        }
    }
    assert!(
        failures.is_empty(),
        "{board} grew beyond the size record {}:\n  {}\n(if intended, rerun with GAUSSDIFF_UPDATE_SIZES=1)",
        path.display(),
        failures.join("\n  ")
    );
}

#[test]
fn firmware_size_qemu() {
    if fw::qemu_missing() {
        return;
    }
    check("qemu");
}

#[test]
fn firmware_size_nucleo_f411re() {
    if fw::require(&["flip-link"]).is_some() {
        return;
    }
    check("nucleo-f411re");
}

#[test]
fn firmware_size_nrf52840_dk() {
    if fw::require(&["flip-link"]).is_some() {
        return;
    }
    check("nrf52840-dk");
}
