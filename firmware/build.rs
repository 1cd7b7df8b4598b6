//! Build script: picks the board's `memory.x`, the linker scripts, the blob and the sample runs.
//!
//! Environment (each re-runs the build when it changes):
//! * `GAUSSDIFF_BLOB`: path of the blob to embed (relative paths are relative to this directory);
//!   default `blobs/olivetti-k40-f16.gdn`.
//! * `GAUSSDIFF_CLASS`: for a mixture blob, the component (index or label) to sample class-conditionally;
//!   unset: unconditional sampling of the mixture;
//! * `GAUSSDIFF_RUNS`: comma-separated samplers with steps, `exact`, `euler:N`, `heun:N`; default
//!   `exact,euler:18,heun:18`.
//! * `GAUSSDIFF_SEEDS`: comma-separated seeds or a range `A..B`; default `0..2`. Every run is done for
//!   every seed.
//! * `GAUSSDIFF_VALUES`: `1` (default) sends the f32 bit patterns (`v` lines) with every frame, `0` only
//!   pixels and checksums.
//! * `GAUSSDIFF_MEMORY`: the memory map (`memory/<name>.x`); default the board's own. For the `qemu` board
//!   also `qemu-f411` (512 KiB flash, 128 KiB RAM) and `qemu-nrf52840` (1 MiB, 256 KiB): QEMU with a real
//!   board's budget, so a build that would not fit the board fails to link or overflows its stack.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use gaussdiff_core::blob::Blob;
use gaussdiff_core::sampler::{SampleSpec, Sampler};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_core::tensor::DType;

const BOARDS: [&str; 3] = ["qemu", "nucleo-f411re", "nrf52840-dk"];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    // Board: exactly one feature (src/main.rs repeats the check with compile_error!).
    let boards: Vec<&str> = BOARDS
        .iter()
        .copied()
        .filter(|b| env::var_os(format!("CARGO_FEATURE_{}", b.to_uppercase().replace('-', "_"))).is_some())
        .collect();
    if boards.len() == 1 {
        let board = boards[0];
        println!("cargo:rerun-if-env-changed=GAUSSDIFF_MEMORY");
        let map = match env::var("GAUSSDIFF_MEMORY") {
            Ok(m) if !m.is_empty() => {
                assert!(
                    m == board || (board == "qemu" && m.starts_with("qemu-")),
                    "GAUSSDIFF_MEMORY={m:?} does not suit the board {board}"
                );
                m
            }
            _ => board.to_string(),
        };
        let mem = manifest.join("memory").join(format!("{map}.x"));
        fs::copy(&mem, out.join("memory.x")).unwrap_or_else(|e| panic!("copying {}: {e}", mem.display()));
        println!("cargo:rerun-if-changed={}", mem.display());
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
        if board != "qemu" {
            println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
        } else {
            // cortex-m-rt's `device` feature (the boards' PACs turn it on; feature `qemu` too) includes the
            // device's `device.x`: the QEMU board supplies its interrupt vectors itself (`board/qemu.rs`) and
            // has no handler names to alias, so an empty one.
            fs::write(out.join("device.x"), "/* QEMU mps2-an386: no device interrupt handlers */\n").unwrap();
        }
    }

    // Blob.
    println!("cargo:rerun-if-env-changed=GAUSSDIFF_BLOB");
    let blob_path = match env::var("GAUSSDIFF_BLOB") {
        Ok(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                manifest.join(p)
            }
        }
        _ => manifest.join("blobs/olivetti-k40-f16.gdn"),
    };
    println!("cargo:rerun-if-changed={}", blob_path.display());
    let bytes =
        fs::read(&blob_path).unwrap_or_else(|e| panic!("GAUSSDIFF_BLOB: cannot read {}: {e}", blob_path.display()));
    // Size the buffers from the blob. A blob that does not parse still builds (zero-sized buffers), so the
    // firmware itself reports the error at run time, as it would for a blob corrupted in flash.
    // Class: a mixture blob's component sampled class-conditionally (index or label), checked here.
    println!("cargo:rerun-if-env-changed=GAUSSDIFF_CLASS");
    let class_arg = env::var("GAUSSDIFF_CLASS").ok().filter(|c| !c.is_empty());
    let mut class = None;
    let (dim, scratch, note) = match Blob::parse(&bytes).and_then(|b| b.model().map(|m| (b, m))) {
        Ok((blob, model)) => {
            use gaussdiff_core::denoiser::Denoiser;
            if let Some(c) = &class_arg {
                let k = model.components();
                let j = (0..k)
                    .find(|&j| blob.component_label(j) == Some(c.as_str()))
                    .or_else(|| c.parse::<usize>().ok().filter(|&j| j < k && model.as_mixture().is_some()))
                    .unwrap_or_else(|| {
                        panic!("GAUSSDIFF_CLASS={c:?}: expected a component index or label of a mixture blob")
                    });
                class = Some(j);
            }
            // Without `every-blob` (the lean build) the firmware's core has the Gaussian only.
            let every_blob = env::var_os("CARGO_FEATURE_EVERY_BLOB").is_some();
            if !every_blob && model.as_gaussian().is_none() {
                panic!(
                    "GAUSSDIFF_BLOB {} holds a {} model, but this build (without the feature `every-blob`, e.g. the \
                     lean build) runs Gaussian blobs only: build with the default features",
                    blob_path.display(),
                    blob.kind().name()
                );
            }
            // Nor int8 storage (core's `int8`).
            let int8 = model.as_gaussian().is_some_and(|g| [g.mu(), g.u_t()].iter().any(|t| t.dtype() == DType::I8));
            if !every_blob && int8 {
                panic!(
                    "GAUSSDIFF_BLOB {} stores int8 matrices, but this build (without the feature `every-blob`, e.g. \
                     the lean build) has no int8 storage: build with the default features, or export the blob as f16",
                    blob_path.display()
                );
            }
            (model.dim(), SampleSpec::scratch_len(&model), String::from("parsed"))
        }
        Err(e) => {
            println!("cargo:warning=blob {} does not parse ({e}); the firmware will report it", blob_path.display());
            (0, 0, format!("does not parse: {e}"))
        }
    };

    // Runs.
    for v in ["GAUSSDIFF_RUNS", "GAUSSDIFF_SEEDS", "GAUSSDIFF_VALUES"] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let runs = env::var("GAUSSDIFF_RUNS").unwrap_or_else(|_| "exact,euler:18,heun:18".into());
    let seeds = env::var("GAUSSDIFF_SEEDS").unwrap_or_else(|_| "0..2".into());
    let values = match env::var("GAUSSDIFF_VALUES").as_deref() {
        Ok("0") => false,
        Ok("1") | Err(_) => true,
        Ok(other) => panic!("GAUSSDIFF_VALUES={other:?}: expected 0 or 1"),
    };
    let seeds = parse_seeds(&seeds);
    let mut specs = Vec::new();
    for run in runs.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let (name, steps) = match run.split_once(':') {
            Some((n, s)) => (n, s.parse::<u32>().unwrap_or_else(|_| panic!("GAUSSDIFF_RUNS: bad steps in {run:?}"))),
            None => (run, 0),
        };
        let sampler =
            Sampler::from_name(name).unwrap_or_else(|| panic!("GAUSSDIFF_RUNS: {name:?} is not exact, euler or heun"));
        if sampler != Sampler::Exact && steps == 0 {
            panic!("GAUSSDIFF_RUNS: {run:?} needs steps, e.g. {name}:18");
        }
        let steps = if sampler == Sampler::Exact { 0 } else { steps };
        // The run's noise levels, computed here by core's schedule (`EdmSchedule::fill`, libm's powf in f32:
        // the same bits as on the target), so the firmware links no powf.
        let levels = if sampler.is_ode() {
            let mut l = vec![0.0f32; steps as usize + 1];
            EdmSchedule::EDM.fill(steps as usize, &mut l);
            let bits: Vec<String> = l.iter().map(|v| format!("f32::from_bits({:#010x})", v.to_bits())).collect();
            format!("&[{}]", bits.join(", "))
        } else {
            String::from("&[]")
        };
        for &seed in &seeds {
            specs.push(format!(
                "Run {{ spec: SampleSpec {{ sampler: Sampler::{sampler:?}, steps: {steps}, seed: {seed} }}, levels: {levels} }}"
            ));
        }
    }
    assert!(!specs.is_empty(), "GAUSSDIFF_RUNS names no run");

    let mut cfg = String::new();
    writeln!(cfg, "// Generated by build.rs from the blob {} ({note}).", blob_path.display()).unwrap();
    writeln!(cfg, "pub const BLOB_LEN: usize = {};", bytes.len()).unwrap();
    writeln!(cfg, "pub static BLOB: Aligned<[u8; BLOB_LEN]> = Aligned(*include_bytes!({:?}));", path_str(&blob_path))
        .unwrap();
    writeln!(cfg, "pub const DIM: usize = {dim};").unwrap();
    writeln!(cfg, "pub const CLASS: Option<usize> = {class:?};").unwrap();
    writeln!(cfg, "pub const SCRATCH: usize = {scratch};").unwrap();
    writeln!(cfg, "pub const VALUES: bool = {values};").unwrap();
    writeln!(cfg, "pub const RUNS: [Run; {}] = [{}];", specs.len(), specs.join(", ")).unwrap();
    fs::write(out.join("config.rs"), cfg).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}

fn parse_seeds(s: &str) -> Vec<u64> {
    let bad = || panic!("GAUSSDIFF_SEEDS={s:?}: expected `A..B` or a comma-separated list of u64");
    if let Some((a, b)) = s.split_once("..") {
        let (a, b): (u64, u64) =
            (a.trim().parse().unwrap_or_else(|_| bad()), b.trim().parse().unwrap_or_else(|_| bad()));
        if a >= b || b - a > 64 {
            bad();
        }
        (a..b).collect()
    } else {
        s.split(',').map(|x| x.trim().parse().unwrap_or_else(|_| bad())).collect()
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap_or_else(|| panic!("blob path {} is not UTF-8", p.display())).to_string()
}
