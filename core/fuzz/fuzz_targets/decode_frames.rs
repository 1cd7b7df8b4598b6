//! Fuzz target for the frame decoder (`docs/frame-protocol.md`): arbitrary text must never make
//! `frame::decode` panic or allocate without bound, and every decoded frame's pixels must match its shape.
#![no_main]

use gaussdiff_core::frame::{self, Item};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for item in frame::decode(&text) {
        if let Ok(Item::Frame(f)) = item {
            assert_eq!(f.pixels.len(), f.shape.dim());
            if let Some(v) = &f.values {
                assert_eq!(v.len(), f.shape.dim());
                assert!(f.matches_sample(v));
            }
        }
    }
});
