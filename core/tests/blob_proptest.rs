//! Property tests for the reader: truncated, bit-flipped, mutated and random inputs never panic; any single
//! flipped bit after the header is reported as `ChecksumMismatch` (CRC-32 detects every single-bit error),
//! any flipped header bit is rejected too. Whatever parses is then exercised end to end (accessors,
//! `model()`, `denoise` at several sigmas), which must not panic either.
#![cfg(feature = "std")]

mod blob_support;

use std::sync::OnceLock;

use blob_support::*;
use gaussdiff_core::blob::format::{header, HEADER_SIZE};
use gaussdiff_core::blob::write::{write_gaussian, write_linear};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::tensor::DType;
use gaussdiff_core::BlobError;
use proptest::prelude::*;

/// Valid blobs of every kind and storage type (9 in all).
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut v = Vec::new();
        for dtype in DTYPES {
            v.push(write_gaussian(&gaussian(1, shape(1, 3, 4), 5, 0.1), &opts(dtype)).unwrap());
            v.push(write_linear(&linear_dense(2, shape(1, 2, 3), 3), &opts(dtype)).unwrap());
            v.push(write_linear(&linear_basis(3, shape(3, 2, 2), 4, 3), &opts(dtype)).unwrap());
        }
        v
    })
}

/// Parses `bytes` both ways and, where that succeeds, uses everything a caller can reach.
/// Returns the verified parse result.
fn exercise(bytes: &[u8]) -> Result<(), BlobError> {
    if let Ok(blob) = Blob::parse_unverified(bytes) {
        let _ = (blob.checksum_ok(), blob.header_checksum_ok(), blob.shape(), blob.pixel_map(), blob.header());
        for (k, v) in blob.metadata().iter() {
            assert_eq!(blob.metadata().get(k), Some(v), "first entry with key {k}");
        }
        for s in blob.sections() {
            let t = blob.section(s.id).expect("a listed section has a view");
            assert_eq!((t.rows(), t.cols(), t.dtype()), (s.rows, s.cols, s.dtype));
            if t.rows() > 0 && t.cols() > 0 {
                let _ = t.get(t.rows() - 1, t.cols() - 1);
            }
        }
        if let Ok(model) = blob.model() {
            let d = model.dim();
            assert_eq!(d, blob.dim());
            let x: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut out = vec![0.0; d];
            let mut scratch = vec![0.0; model.scratch_len()];
            for sigma in [0.0, 0.5, 80.0, 1e30, f32::NAN, f32::INFINITY] {
                model.denoise(&x, sigma, &mut out, &mut scratch);
            }
            let _ = model.macs_per_eval();
        }
    }
    Blob::parse(bytes).map(|_| ())
}

#[test]
fn corpus_is_valid() {
    for b in corpus() {
        exercise(b).unwrap();
    }
}

/// Exhaustive: every single bit of a small blob's payload, flipped in turn, gives `ChecksumMismatch`; every
/// header bit gives an error.
#[test]
fn every_single_bit_flip_is_caught() {
    let b = &corpus()[0];
    let mut m = b.clone();
    for bit in 0..b.len() * 8 {
        m[bit / 8] ^= 1 << (bit % 8);
        let e = exercise(&m).unwrap_err();
        if bit / 8 >= HEADER_SIZE {
            assert!(matches!(e, BlobError::ChecksumMismatch { .. }), "bit {bit}: {e:?}");
        } else {
            assert!(
                matches!(
                    e,
                    BlobError::HeaderChecksumMismatch { .. }
                        | BlobError::BadMagic { .. }
                        | BlobError::UnsupportedVersion { .. }
                        | BlobError::BadHeaderSize { .. }
                ),
                "bit {bit}: {e:?}"
            );
        }
        m[bit / 8] ^= 1 << (bit % 8);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn truncated_blobs_are_rejected(which in 0usize..9, cut in any::<prop::sample::Index>()) {
        let b = &corpus()[which];
        let n = cut.index(b.len()); // 0..len-1: always a strict prefix
        let e = exercise(&b[..n]).unwrap_err();
        let truncated = matches!(e, BlobError::Truncated { .. });
        prop_assert!(truncated, "{:?}", e);
    }

    #[test]
    fn payload_bit_flip_is_a_checksum_mismatch(which in 0usize..9, bit in any::<prop::sample::Index>()) {
        let mut b = corpus()[which].clone();
        let bit = HEADER_SIZE * 8 + bit.index((b.len() - HEADER_SIZE) * 8);
        b[bit / 8] ^= 1 << (bit % 8);
        let e = exercise(&b).unwrap_err();
        let mismatch = matches!(e, BlobError::ChecksumMismatch { .. });
        prop_assert!(mismatch, "bit {}: {:?}", bit, e);
    }

    #[test]
    fn flipped_bits_never_panic(which in 0usize..9, bits in prop::collection::vec(any::<prop::sample::Index>(), 1..8)) {
        let mut b = corpus()[which].clone();
        let n = b.len() * 8;
        for bit in bits {
            let bit = bit.index(n);
            b[bit / 8] ^= 1 << (bit % 8);
        }
        let _ = exercise(&b);
    }

    /// Mutations with both CRCs repaired reach the structural checks and the denoiser constructors.
    #[test]
    fn mutated_blobs_with_valid_crcs_never_panic(
        which in 0usize..9,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        grow in 0usize..3,
    ) {
        let mut b = corpus()[which].clone();
        b.extend(std::iter::repeat_n(0u8, grow * 7));
        let n = b.len();
        for (at, v) in edits {
            let at = at.index(n);
            // Keep magic, version and header size so the edit lands past the prefix checks.
            if at >= 8 {
                b[at] = v;
            }
        }
        if grow > 0 {
            put_u32(&mut b, header::TOTAL_LEN, n as u32);
        }
        fix_crcs(&mut b);
        let _ = exercise(&b);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(exercise(&bytes).is_err());
    }

    /// Random bytes behind a valid prefix and with valid CRCs: deep into the field checks.
    #[test]
    fn random_headers_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 64..400)) {
        bytes[..4].copy_from_slice(b"GDN1");
        put_u16(&mut bytes, header::VERSION, 1);
        put_u16(&mut bytes, header::HEADER_SIZE, 64);
        fix_len_and_crcs(&mut bytes);
        let _ = exercise(&bytes);
    }
}

#[test]
fn f16_and_i8_corpus_entries_differ_from_f32() {
    // Guards the corpus itself: the nine blobs really use three storage types.
    let c = corpus();
    assert_ne!(c[0].len(), c[3].len());
    assert_ne!(c[3].len(), c[6].len());
    let blob = Blob::parse(&c[6]).unwrap();
    assert_eq!(blob.sections().nth(1).unwrap().dtype, DType::I8);
}
