//! Fuzz target for the blob reader: arbitrary bytes must never make `Blob::parse`, `Blob::parse_unverified`,
//! the accessors, `Blob::model` or one `denoise` panic.
//!
//! Every input is tried twice: as given, and with `total_len` and both CRC-32s repaired, so that mutations
//! also reach the structural checks and the denoiser constructors that sit behind the checksums.
#![no_main]

use gaussdiff_core::blob::format::{header, CRC32, HEADER_SIZE};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use libfuzzer_sys::fuzz_target;

/// Largest d for which a denoise is run (bounds the time per input, not correctness).
const MAX_DENOISE_DIM: usize = 1 << 16;

fn exercise(bytes: &[u8]) {
    let verified = Blob::parse(bytes);
    let Ok(blob) = Blob::parse_unverified(bytes) else {
        assert!(verified.is_err(), "verified parse accepted what the unverified one rejects");
        return;
    };
    assert_eq!(verified.is_ok(), blob.checksum_ok(), "checksum_ok disagrees with Blob::parse");
    for (k, v) in blob.metadata().iter() {
        assert_eq!(blob.metadata().get(k), blob.metadata().iter().find(|(kk, _)| *kk == k).map(|(_, v)| v));
        let _ = v.len();
    }
    for s in blob.sections() {
        let t = blob.section(s.id).expect("every listed section has a view");
        assert_eq!((t.rows(), t.cols(), t.dtype()), (s.rows, s.cols, s.dtype));
        if t.rows() > 0 && t.cols() > 0 {
            let _ = t.get(t.rows() - 1, t.cols() - 1);
        }
    }
    let Ok(model) = blob.model() else { return };
    let d = model.dim();
    assert_eq!(d, blob.dim());
    if d > MAX_DENOISE_DIM {
        return;
    }
    let x: Vec<f32> = (0..d).map(|i| ((i % 17) as f32 - 8.0) * 0.125).collect();
    let mut out = vec![0.0f32; d];
    let mut scratch = vec![0.0f32; model.scratch_len()];
    // An input-chosen sigma (any bits: NaN, infinities, subnormals) and a plain one.
    let sigma = f32::from_le_bytes([bytes[60], bytes[61], bytes[62], bytes[63]]);
    model.denoise(&x, sigma, &mut out, &mut scratch);
    model.denoise(&x, 0.5, &mut out, &mut scratch);
    let _ = model.macs_per_eval();
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if data.len() >= HEADER_SIZE {
        let mut v = data.to_vec();
        let n = v.len() as u32;
        v[header::TOTAL_LEN..header::TOTAL_LEN + 4].copy_from_slice(&n.to_le_bytes());
        let payload = CRC32.checksum(&v[HEADER_SIZE..]);
        v[header::PAYLOAD_CRC..header::PAYLOAD_CRC + 4].copy_from_slice(&payload.to_le_bytes());
        let head = CRC32.checksum(&v[..header::HEADER_CRC]);
        v[header::HEADER_CRC..header::HEADER_CRC + 4].copy_from_slice(&head.to_le_bytes());
        exercise(&v);
    }
});
