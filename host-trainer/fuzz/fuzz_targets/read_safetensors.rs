//! Fuzz target for the trainer's safetensors reader: the first byte picks the reader, the rest is the file,
//! written to a per-process scratch file (the readers take paths):
//!
//! * 0: `distill::load_maps` (distilled maps, docs/distill-format.md); an accepted file must give maps of
//!   consistent sizes with a positive, strictly descending, finite sigma grid;
//! * 1: `train::load_checkpoint` on the CPU (metadata config, checksums, every tensor against the network);
//! * otherwise: `st::Loaded` directly (metadata, checksum presence, every tensor name the trainer reads).
//!
//! Arbitrary bytes must give `Ok` or an error, never a panic, and never an allocation beyond what the file's
//! size justifies (libFuzzer's -rss_limit_mb / -malloc_limit_mb).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use gaussdiff_trainer::{distill, st, train};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        PathBuf::from(base).join(format!("gaussdiff-trainer-fuzz-{}.safetensors", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let path = scratch();
    std::fs::write(path, body).unwrap();
    match sel % 3 {
        0 => {
            if let Ok(m) = distill::load_maps(path) {
                let l = m.sigmas.len();
                assert!(l >= 1 && m.w.len() == l * m.d * m.d && m.b.len() == l * m.d);
                assert!(m.sigmas.iter().all(|s| s.is_finite() && *s > 0.0));
                assert!(m.sigmas.windows(2).all(|w| w[0] > w[1]));
            }
        }
        1 => {
            let _ = train::load_checkpoint(path, &candle_core::Device::Cpu);
        }
        _ => {
            if let Ok(f) = st::Loaded::open(path) {
                let _ = f.metadata().len();
                let _ = f.meta("format");
                let _ = f.require_checksums();
                for name in ["sigmas", "W", "b", "basis", "lambda"] {
                    if f.has(name) {
                        if let Ok(t) = f.f32(name, None) {
                            assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
                            assert!(t.data.iter().all(|v| v.is_finite()));
                        }
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_file(path);
});
