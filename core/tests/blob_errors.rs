//! One test per `BlobError` variant the reader can produce (and the constructor errors `model()` forwards),
//! plus one per `WriteError` variant the writer can produce. Each corrupts a valid blob in one place, repairs
//! the CRCs where the check under test comes after them, and asserts the exact error value.
#![cfg(feature = "std")]

mod blob_support;

use blob_support::*;
use gaussdiff_core::blob::format::{
    entry, field, header, section, HEADER_SIZE, MAX_DIM, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_RANK,
    MAX_SECTIONS, MAX_SIGMAS, SECTION_ENTRY_SIZE,
};
use gaussdiff_core::blob::write::{write_gaussian, write_linear, LinearMaps, LinearParams, WriteError, WriteOptions};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::pixel::PixelMap;
use gaussdiff_core::tensor::DType;
use gaussdiff_core::BlobError;

/// A valid Gaussian blob: d = 6 (1x2x3), k = 2, floor 0.1, f32; sections MU, U_T, LAMBDA in that order.
fn base() -> Vec<u8> {
    write_gaussian(&gaussian(1, shape(1, 2, 3), 2, 0.1), &opts(DType::F32)).unwrap()
}

/// Byte offset of section-table entry `i`.
fn entry_at(i: usize) -> usize {
    HEADER_SIZE + i * SECTION_ENTRY_SIZE
}

fn err(b: &[u8]) -> BlobError {
    match Blob::parse(b) {
        Ok(_) => panic!("expected a parse error"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

/// Patch with `f`, repair both CRCs, return the parse error.
fn err_fixed(f: impl FnOnce(&mut Vec<u8>)) -> BlobError {
    let mut b = base();
    f(&mut b);
    fix_crcs(&mut b);
    err(&b)
}

#[test]
fn base_blob_parses() {
    let b = base();
    let blob = Blob::parse(&b).unwrap();
    assert!(blob.checksum_ok());
    assert_eq!(blob.sections().map(|s| s.id).collect::<Vec<_>>(), [section::MU, section::U_T, section::LAMBDA]);
    blob.model().unwrap();
}

#[test]
fn truncated() {
    let b = base();
    let n = b.len() as u32;
    assert_eq!(err(&[]), BlobError::Truncated { needed: 4, available: 0 });
    assert_eq!(err(&b[..3]), BlobError::Truncated { needed: 4, available: 3 });
    assert_eq!(err(&b[..40]), BlobError::Truncated { needed: 64, available: 40 });
    assert_eq!(err(&b[..b.len() - 1]), BlobError::Truncated { needed: n, available: n - 1 });
    assert_eq!(err(&b[..HEADER_SIZE]), BlobError::Truncated { needed: n, available: HEADER_SIZE as u32 });
}

#[test]
fn bad_magic() {
    let mut b = base();
    b[0] = b'X';
    assert_eq!(err(&b), BlobError::BadMagic { found: u32::from_be_bytes(*b"XDN1") });
    assert_eq!(err(b"P5\n28 28\n255\n"), BlobError::BadMagic { found: u32::from_be_bytes(*b"P5\n2") });
}

#[test]
fn unsupported_version() {
    for v in [0u16, 2, u16::MAX] {
        let mut b = base();
        put_u16(&mut b, header::VERSION, v);
        assert_eq!(err(&b), BlobError::UnsupportedVersion { found: v });
    }
}

#[test]
fn bad_header_size() {
    let mut b = base();
    put_u16(&mut b, header::HEADER_SIZE, 80);
    assert_eq!(err(&b), BlobError::BadHeaderSize { found: 80 });
}

#[test]
fn header_checksum_mismatch() {
    let mut b = base();
    b[header::FLOOR] ^= 1;
    assert!(matches!(err(&b), BlobError::HeaderChecksumMismatch { .. }));
    let blob = Blob::parse_unverified(&b).unwrap();
    assert!(!blob.header_checksum_ok());
    assert!(!blob.checksum_ok());
    assert_eq!(blob.computed_crc(), blob.stored_crc());
}

#[test]
fn checksum_mismatch() {
    let mut b = base();
    let stored = get_u32(&b, header::PAYLOAD_CRC);
    let last = b.len() - 1;
    b[last] ^= 0x10;
    let e = err(&b);
    let BlobError::ChecksumMismatch { stored: s, computed } = e else { panic!("{e:?}") };
    assert_eq!(s, stored);
    assert_ne!(computed, stored);
    let blob = Blob::parse_unverified(&b).unwrap();
    assert!(blob.header_checksum_ok());
    assert!(!blob.checksum_ok());
    assert_eq!((blob.stored_crc(), blob.computed_crc()), (stored, computed));
}

#[test]
fn unknown_kind() {
    for code in [0u8, 5, 0xFF] {
        assert_eq!(err_fixed(|b| b[header::KIND] = code), BlobError::UnknownKind { code });
    }
}

#[test]
fn unknown_dtype() {
    assert_eq!(err_fixed(|b| b[entry_at(1) + entry::DTYPE] = 3), BlobError::UnknownDType { code: 3 });
}

#[test]
fn bad_section_bounds_and_overlap() {
    // Past the end.
    let e = err_fixed(|b| {
        let n = b.len() as u32;
        put_u32(b, entry_at(2) + entry::OFFSET, n - 4);
    });
    assert_eq!(e, BlobError::BadSection { index: 2 });
    // Offset + length overflowing u32 is out of bounds, not a wrap-around.
    assert_eq!(
        err_fixed(|b| put_u32(b, entry_at(2) + entry::OFFSET, u32::MAX - 3)),
        BlobError::BadSection { index: 2 }
    );
    // Inside the header / section table.
    assert_eq!(err_fixed(|b| put_u32(b, entry_at(0) + entry::OFFSET, 8)), BlobError::BadSection { index: 0 });
    // Overlapping another section.
    let e = err_fixed(|b| {
        let mu_offset = get_u32(b, entry_at(0) + entry::OFFSET);
        put_u32(b, entry_at(1) + entry::OFFSET, mu_offset + 4);
    });
    assert_eq!(e, BlobError::BadSection { index: 1 });
    // Overlapping the metadata area.
    let e = err_fixed(|b| {
        let meta = get_u32(b, header::METADATA_OFFSET);
        put_u32(b, entry_at(0) + entry::OFFSET, meta);
    });
    assert_eq!(e, BlobError::BadSection { index: 0 });
}

#[test]
fn bad_tensor_length() {
    // lambda is 1 x 2 f32 = 8 bytes.
    assert_eq!(
        err_fixed(|b| put_u32(b, entry_at(2) + entry::LEN, 4)),
        BlobError::BadTensorLength { expected: 8, found: 4 }
    );
}

#[test]
fn bad_field() {
    let bf = |field, value| BlobError::BadField { field, value };
    assert_eq!(err_fixed(|b| b[header::RESERVED] = 1), bf(field::RESERVED, 1));
    assert_eq!(err_fixed(|b| put_u16(b, entry_at(0) + entry::RESERVED, 7)), bf(field::RESERVED, 7));
    assert_eq!(err_fixed(|b| put_u32(b, header::DIM, 0)), bf(field::DIM, 0));
    // Shape 1x2x3 = 6 but d = 7.
    assert_eq!(err_fixed(|b| put_u32(b, header::DIM, 7)), bf(field::SHAPE, 6));
    assert_eq!(err_fixed(|b| put_u16(b, header::CHANNELS, 0)), bf(field::SHAPE, 0));
    assert_eq!(err_fixed(|b| put_u16(b, header::CHANNELS, 5)), bf(field::SHAPE, 5));
    assert_eq!(err_fixed(|b| put_u32(b, header::PIXEL_SCALE, 0)), bf(field::PIXEL_MAP, 0));
    assert_eq!(err_fixed(|b| put_u32(b, header::RANK, 7)), bf(field::RANK, 7));
    assert_eq!(err_fixed(|b| put_u32(b, header::NUM_SIGMAS, 3)), bf(field::NUM_SIGMAS, 3));
    assert_eq!(err_fixed(|b| put_u32(b, header::FLOOR, (-1.0f32).to_bits())), bf(field::FLOOR, (-1.0f32).to_bits()));
    assert_eq!(err_fixed(|b| put_u32(b, header::TOTAL_LEN, 70)), bf(field::TOTAL_LEN, 70));
    // Linear kinds: no floor, L >= 1, dense has k = 0, basis has k >= 1.
    let dense = write_linear(&linear_dense(3, shape(1, 1, 4), 2), &opts(DType::F32)).unwrap();
    let patched = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = dense.clone();
        f(&mut b);
        fix_crcs(&mut b);
        err(&b)
    };
    assert_eq!(patched(&|b| put_u32(b, header::FLOOR, 0.5f32.to_bits())), bf(field::FLOOR, 0.5f32.to_bits()));
    assert_eq!(patched(&|b| put_u32(b, header::NUM_SIGMAS, 0)), bf(field::NUM_SIGMAS, 0));
    assert_eq!(patched(&|b| put_u32(b, header::RANK, 1)), bf(field::RANK, 1));
    let basis = write_linear(&linear_basis(3, shape(1, 1, 4), 2, 2), &opts(DType::F32)).unwrap();
    let mut b = basis.clone();
    put_u32(&mut b, header::RANK, 0);
    fix_crcs(&mut b);
    assert_eq!(err(&b), bf(field::RANK, 0));
}

#[test]
fn limit_exceeded() {
    let le = |field, value, max: usize| BlobError::LimitExceeded { field, value, max: max as u32 };
    assert_eq!(err_fixed(|b| put_u32(b, header::RANK, 5000)), le(field::RANK, 5000, MAX_RANK));
    assert_eq!(err_fixed(|b| put_u32(b, header::DIM, 1 << 20)), le(field::DIM, 1 << 20, MAX_DIM));
    assert_eq!(err_fixed(|b| put_u32(b, header::SECTION_COUNT, 17)), le(field::NUM_SECTIONS, 17, MAX_SECTIONS));
    assert_eq!(err_fixed(|b| put_u32(b, header::METADATA_LEN, 5000)), le(field::METADATA, 5000, MAX_METADATA_BYTES));
    let dense = write_linear(&linear_dense(3, shape(1, 1, 4), 2), &opts(DType::F32)).unwrap();
    let mut b = dense.clone();
    put_u32(&mut b, header::NUM_SIGMAS, 300);
    fix_crcs(&mut b);
    assert_eq!(err(&b), le(field::NUM_SIGMAS, 300, MAX_SIGMAS));

    // 33 metadata entries of 5 bytes (2-byte key, empty value) = 165 bytes, in place of one 165-byte entry.
    let mut o = opts(DType::F32);
    o.metadata = vec![("x".into(), "v".repeat(161))];
    let mut b = write_gaussian(&gaussian(1, shape(1, 2, 3), 2, 0.1), &o).unwrap();
    let at = get_u32(&b, header::METADATA_OFFSET) as usize;
    assert_eq!(get_u32(&b, header::METADATA_LEN), 165);
    for i in 0..33 {
        let e = &mut b[at + 5 * i..at + 5 * i + 5];
        e.copy_from_slice(&[2, 0, 0, b'a' + (i / 10) as u8, b'0' + (i % 10) as u8]);
    }
    fix_crcs(&mut b);
    assert_eq!(err(&b), le(field::METADATA, 33, MAX_METADATA_ENTRIES));
}

#[test]
fn missing_section() {
    // Renaming lambda to an (ignored) extension section leaves the Gaussian without eigenvalues.
    assert_eq!(err_fixed(|b| b[entry_at(2) + entry::ID] = 0x80), BlobError::MissingSection { id: section::LAMBDA });
    // Dropping the last table entry (count 2) does too.
    assert_eq!(err_fixed(|b| put_u32(b, header::SECTION_COUNT, 2)), BlobError::MissingSection { id: section::LAMBDA });
}

/// `base()` with a fourth, extension section (id 0x80, 1 x 2 f32 = [1.5, 2.5]) appended.
fn with_extension(id: u8) -> Vec<u8> {
    let b = base();
    let table_end = entry_at(3);
    let mut out = b[..table_end].to_vec();
    out.extend([0u8; SECTION_ENTRY_SIZE]);
    out.extend(&b[table_end..]);
    for i in 0..3 {
        let o = get_u32(&out, entry_at(i) + entry::OFFSET);
        put_u32(&mut out, entry_at(i) + entry::OFFSET, o + SECTION_ENTRY_SIZE as u32);
    }
    let meta = get_u32(&out, header::METADATA_OFFSET);
    put_u32(&mut out, header::METADATA_OFFSET, meta + SECTION_ENTRY_SIZE as u32);
    put_u32(&mut out, header::SECTION_COUNT, 4);
    let ext = out.len() as u32;
    out.extend(1.5f32.to_le_bytes());
    out.extend(2.5f32.to_le_bytes());
    out[entry_at(3) + entry::ID] = id;
    put_u32(&mut out, entry_at(3) + entry::ROWS, 1);
    put_u32(&mut out, entry_at(3) + entry::COLS, 2);
    put_u32(&mut out, entry_at(3) + entry::OFFSET, ext);
    put_u32(&mut out, entry_at(3) + entry::LEN, 8);
    fix_len_and_crcs(&mut out);
    out
}

#[test]
fn extension_sections_are_skipped() {
    let b = with_extension(0x80);
    let blob = Blob::parse(&b).unwrap();
    assert_eq!(blob.sections().count(), 4);
    let t = blob.section(0x80).unwrap();
    assert_eq!((t.rows(), t.cols(), t.get(0, 1)), (1, 2, 2.5));
    assert_eq!(section::name(0x80), "extension");
    // The model ignores it and equals the one from the plain blob.
    let plain = base();
    let (m1, m2) = (blob.model().unwrap(), Blob::parse(&plain).unwrap().model().unwrap());
    use gaussdiff_core::denoiser::Denoiser;
    let x = normals(9, 6);
    let (mut o1, mut o2) = (vec![0.0; 6], vec![0.0; 6]);
    let mut s = vec![0.0; m1.scratch_len()];
    m1.denoise(&x, 0.7, &mut o1, &mut s);
    m2.denoise(&x, 0.7, &mut o2, &mut s);
    assert_eq!(o1, o2);
    // Extension ids are still unique, and still need a consistent length.
    let mut dup = with_extension(0x80);
    dup[entry_at(2) + entry::ID] = 0x80;
    fix_crcs(&mut dup);
    assert_eq!(err(&dup), BlobError::DuplicateSection { id: 0x80 });
    let mut short = with_extension(0x81);
    put_u32(&mut short, entry_at(3) + entry::LEN, 7);
    fix_crcs(&mut short);
    assert_eq!(err(&short), BlobError::BadTensorLength { expected: 8, found: 7 });
}

#[test]
fn bad_metadata() {
    let b0 = base();
    let at = get_u32(&b0, header::METADATA_OFFSET) as usize;
    let len = get_u32(&b0, header::METADATA_LEN) as usize;
    // First entry is ("dataset", "unit-test"): key at at+3.
    assert_eq!(err_fixed(|b| b[at + 3] = b'D'), BlobError::BadMetadata { offset: at as u32 });
    // Empty key.
    assert_eq!(err_fixed(|b| b[at] = 0), BlobError::BadMetadata { offset: at as u32 });
    // Invalid UTF-8 in the value.
    assert_eq!(err_fixed(|b| b[at + 3 + 7] = 0xFF), BlobError::BadMetadata { offset: at as u32 });
    // Duplicate key: second entry ("n_train", ...) renamed to "dataset".
    let second = at + 3 + 7 + 9;
    let e = err_fixed(|b| b[second + 3..second + 10].copy_from_slice(b"dataset"));
    assert_eq!(e, BlobError::BadMetadata { offset: second as u32 });
    // Area cut short: the last entry is incomplete.
    let last = second + 3 + 7 + 4;
    assert_eq!(
        err_fixed(|b| put_u32(b, header::METADATA_LEN, (len - 1) as u32)),
        BlobError::BadMetadata { offset: last as u32 }
    );
    // Area outside the blob / inside the section table.
    assert_eq!(err_fixed(|b| put_u32(b, header::METADATA_OFFSET, 10_000)), BlobError::BadMetadata { offset: 10_000 });
    assert_eq!(err_fixed(|b| put_u32(b, header::METADATA_OFFSET, 70)), BlobError::BadMetadata { offset: 70 });
}

#[test]
fn non_finite() {
    assert_eq!(
        err_fixed(|b| put_u32(b, header::PIXEL_SCALE, f32::NAN.to_bits())),
        BlobError::NonFinite { field: field::PIXEL_MAP }
    );
    assert_eq!(
        err_fixed(|b| put_u32(b, header::PIXEL_OFFSET, f32::INFINITY.to_bits())),
        BlobError::NonFinite { field: field::PIXEL_MAP }
    );
    assert_eq!(
        err_fixed(|b| put_u32(b, header::FLOOR, f32::INFINITY.to_bits())),
        BlobError::NonFinite { field: field::FLOOR }
    );
    // A NaN eigenvalue passes the structural parse; building the model rejects it, naming the section.
    let mut b = base();
    let lambda = get_u32(&b, entry_at(2) + entry::OFFSET) as usize;
    put_u32(&mut b, lambda, f32::NAN.to_bits());
    fix_crcs(&mut b);
    assert_eq!(Blob::parse(&b).unwrap().model().unwrap_err(), BlobError::NonFiniteTensor { id: 3, index: 0 });
    // So is an infinity in any tensor (here the mean, section 1, element 1), which used to sample black images.
    let mut b = base();
    let mu = get_u32(&b, entry_at(0) + entry::OFFSET) as usize;
    put_u32(&mut b, mu + 4, f32::INFINITY.to_bits());
    fix_crcs(&mut b);
    let e = Blob::parse(&b).unwrap().model().unwrap_err();
    assert_eq!(e, BlobError::NonFiniteTensor { id: 1, index: 1 });
    assert_eq!(e.to_string(), "section 1 (mu) element 1 is not finite (expected finite values)");
}

#[test]
fn model_value_errors_from_constructors() {
    // Ascending eigenvalues.
    let mut b = base();
    let lambda = get_u32(&b, entry_at(2) + entry::OFFSET) as usize;
    put_u32(&mut b, lambda + 4, 100.0f32.to_bits());
    fix_crcs(&mut b);
    assert_eq!(
        Blob::parse(&b).unwrap().model().unwrap_err(),
        BlobError::BadField { field: field::LAMBDA, value: 100.0f32.to_bits() }
    );
    // A sigma grid that is not strictly descending.
    let mut b = write_linear(&linear_dense(3, shape(1, 1, 4), 2), &opts(DType::F32)).unwrap();
    let sig = get_u32(&b, entry_at(0) + entry::OFFSET) as usize;
    put_u32(&mut b, sig + 4, 80.0f32.to_bits());
    fix_crcs(&mut b);
    assert!(matches!(Blob::parse(&b).unwrap().model().unwrap_err(), BlobError::BadField { field: field::SIGMAS, .. }));
}

#[test]
fn trailing_bytes() {
    let mut b = base();
    let n = b.len();
    b.push(0);
    assert_eq!(err(&b), BlobError::TrailingBytes { declared: n as u32, available: n as u32 + 1 });
    // The declared length cuts the blob out of a larger region.
    assert_eq!(Blob::declared_len(&b).unwrap(), n);
    Blob::parse(&b[..n]).unwrap();
}

#[test]
fn bad_shape() {
    assert_eq!(
        err_fixed(|b| put_u32(b, entry_at(1) + entry::ROWS, 3)),
        BlobError::BadShape { id: section::U_T, rows: 3, cols: 6, expected_rows: 2, expected_cols: 6 }
    );
}

#[test]
fn dtype_not_allowed() {
    assert_eq!(
        err_fixed(|b| b[entry_at(2) + entry::DTYPE] = DType::F16 as u8),
        BlobError::DTypeNotAllowed { id: section::LAMBDA, code: 1 }
    );
}

#[test]
fn duplicate_section() {
    assert_eq!(
        err_fixed(|b| b[entry_at(2) + entry::ID] = section::MU),
        BlobError::DuplicateSection { id: section::MU }
    );
}

#[test]
fn unexpected_section() {
    assert_eq!(err_fixed(|b| b[entry_at(2) + entry::ID] = section::W), BlobError::UnexpectedSection { id: section::W });
    assert_eq!(err_fixed(|b| b[entry_at(2) + entry::ID] = 0x42), BlobError::UnexpectedSection { id: 0x42 });
}

#[test]
fn every_variant_displays_its_numbers() {
    let e = BlobError::BadShape { id: section::U_T, rows: 3, cols: 6, expected_rows: 2, expected_cols: 6 };
    assert_eq!(e.to_string(), "section 2 (u_t) is 3x6, expected 2x6");
    let e = BlobError::LimitExceeded { field: field::RANK, value: 5000, max: 4096 };
    assert_eq!(e.to_string(), "field 2 (rank) = 5000 exceeds the limit 4096");
}

// ---------------------------------------------------------------- writer errors

fn gerr(f: impl FnOnce(&mut gaussdiff_core::blob::write::GaussianParams)) -> WriteError {
    let mut p = gaussian(1, shape(1, 2, 3), 2, 0.1);
    f(&mut p);
    let e = write_gaussian(&p, &opts(DType::F32)).unwrap_err();
    assert!(!e.to_string().is_empty());
    e
}

#[test]
fn write_bad_shape() {
    assert_eq!(gerr(|p| p.shape = shape(0, 2, 3)), WriteError::BadShape { channels: 0, height: 2, width: 3 });
    assert_eq!(gerr(|p| p.shape = shape(5, 2, 3)), WriteError::BadShape { channels: 5, height: 2, width: 3 });
    assert_eq!(gerr(|p| p.shape = shape(4, 512, 512)), WriteError::BadShape { channels: 4, height: 512, width: 512 });
}

#[test]
fn write_length() {
    assert_eq!(
        gerr(|p| {
            p.mu.pop();
        }),
        WriteError::Length { tensor: "mu", expected: 6, found: 5 }
    );
    assert_eq!(gerr(|p| p.u_t.push(0.0)), WriteError::Length { tensor: "u_t", expected: 12, found: 13 });
}

#[test]
fn write_non_finite() {
    assert_eq!(gerr(|p| p.mu[3] = f32::NAN), WriteError::NonFinite { tensor: "mu", index: 3 });
    assert_eq!(gerr(|p| p.floor = f32::INFINITY), WriteError::NonFinite { tensor: "floor", index: 0 });
    // Representable in f32 but not in f16.
    let mut p = gaussian(1, shape(1, 2, 3), 2, 0.1);
    p.u_t[5] = 1.0e5;
    assert_eq!(write_gaussian(&p, &opts(DType::F16)).unwrap_err(), WriteError::NonFinite { tensor: "u_t", index: 5 });
    write_gaussian(&p, &opts(DType::I8)).unwrap();
}

#[test]
fn write_out_of_range_and_not_descending() {
    assert_eq!(gerr(|p| p.lambda[1] = -1.0), WriteError::OutOfRange { tensor: "lambda", index: 1, value: -1.0 });
    assert_eq!(gerr(|p| p.floor = -0.5), WriteError::OutOfRange { tensor: "floor", index: 0, value: -0.5 });
    assert_eq!(gerr(|p| p.lambda[1] = 9.0), WriteError::NotDescending { tensor: "lambda", index: 1 });
    // Sigmas must be strictly descending and positive.
    let mut p = linear_dense(3, shape(1, 1, 4), 3);
    if let LinearMaps::Dense { sigmas, .. } = &mut p.maps {
        sigmas[2] = sigmas[1];
    }
    assert_eq!(
        write_linear(&p, &opts(DType::F32)).unwrap_err(),
        WriteError::NotDescending { tensor: "sigmas", index: 2 }
    );
    if let LinearMaps::Dense { sigmas, .. } = &mut p.maps {
        sigmas[2] = 0.0;
    }
    assert_eq!(
        write_linear(&p, &opts(DType::F32)).unwrap_err(),
        WriteError::OutOfRange { tensor: "sigmas", index: 2, value: 0.0 }
    );
}

#[test]
fn write_limits() {
    // k > d.
    let mut p = gaussian(1, shape(1, 1, 2), 2, 0.0);
    p.lambda.push(0.1);
    p.u_t.extend([0.0, 0.0]);
    assert!(matches!(write_gaussian(&p, &opts(DType::F32)).unwrap_err(), WriteError::Limit { value: 3, max: 2, .. }));
    // More than MAX_SIGMAS levels.
    let p = LinearParams {
        shape: shape(1, 1, 1),
        maps: LinearMaps::Dense { sigmas: sigmas(MAX_SIGMAS + 1), w: vec![0.0; 257], b: vec![0.0; 257] },
    };
    assert!(matches!(write_linear(&p, &opts(DType::F32)).unwrap_err(), WriteError::Limit { value: 257, max: 256, .. }));
}

#[test]
fn write_too_large() {
    // 4 dense 256x256-pixel maps: 4 * 65536^2 f32 = 64 GiB, refused before any length check.
    let p = LinearParams {
        shape: shape(1, 256, 256),
        maps: LinearMaps::Dense { sigmas: sigmas(4), w: Vec::new(), b: Vec::new() },
    };
    assert_eq!(write_linear(&p, &opts(DType::F32)).unwrap_err(), WriteError::TooLarge { bytes: 4 * 65536 * 65536 * 4 });
}

#[test]
fn write_bad_pixel_map() {
    let p = gaussian(1, shape(1, 2, 3), 2, 0.1);
    for pixel in [PixelMap { scale: 0.0, offset: 0.0 }, PixelMap { scale: f32::NAN, offset: 1.0 }] {
        let o = WriteOptions { pixel, ..opts(DType::F32) };
        assert!(matches!(write_gaussian(&p, &o).unwrap_err(), WriteError::BadPixelMap { .. }));
    }
}

#[test]
fn write_bad_metadata() {
    let p = gaussian(1, shape(1, 2, 3), 2, 0.1);
    let with = |m: Vec<(&str, String)>| {
        let o = WriteOptions { metadata: m.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), ..opts(DType::F32) };
        write_gaussian(&p, &o)
    };
    assert!(matches!(with(vec![("Dataset", "x".into())]).unwrap_err(), WriteError::Metadata { index: 0, .. }));
    assert!(matches!(with(vec![("", "x".into())]).unwrap_err(), WriteError::Metadata { index: 0, .. }));
    assert!(matches!(
        with(vec![("a", "x".into()), ("a", "y".into())]).unwrap_err(),
        WriteError::Metadata { index: 1, reason: "duplicate key" }
    ));
    assert!(matches!(with(vec![("a", "x".repeat(70_000))]).unwrap_err(), WriteError::Metadata { index: 0, .. }));
    assert!(matches!(with(vec![("a", "x".repeat(5000))]).unwrap_err(), WriteError::Limit { max: 4096, .. }));
    let many: Vec<(String, String)> = (0..33).map(|i| (format!("k{i}"), String::new())).collect();
    let o = WriteOptions { metadata: many, ..opts(DType::F32) };
    assert!(matches!(write_gaussian(&p, &o).unwrap_err(), WriteError::Limit { value: 33, max: 32, .. }));
    // Unicode values are fine.
    with(vec![("dataset", "Frey faces — 1965 frames".into())]).unwrap();
}
