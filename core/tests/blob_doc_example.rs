//! Keeps `docs/blob-format.md` honest: its worked hex examples are the bytes the writer produces today, and
//! its tables of field ids, section ids and limits match `blob::format`.
//!
//! After an intentional format change, regenerate the examples with
//! `GAUSSDIFF_BLESS_DOCS=1 cargo test -p gaussdiff-core --features std --test blob_doc_example`.
#![cfg(feature = "std")]

use std::fmt::Write as _;
use std::path::PathBuf;

use gaussdiff_core::blob::format::{self, field, section};
use gaussdiff_core::blob::write::{write_gaussian, write_mixture, GaussianParams, MixtureParams, WriteOptions};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_core::tensor::DType;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/blob-format.md")
}

/// The tiny blob of the spec: d = 2 (1x1x2), k = 1, u = (0.6, 0.8), lambda = 2, mu = (0.25, -0.5), c = 0.125.
fn example(dtype: DType) -> Vec<u8> {
    let p = GaussianParams {
        shape: ImageShape { channels: 1, height: 1, width: 2 },
        mu: vec![0.25, -0.5],
        u_t: vec![0.6, 0.8],
        lambda: vec![2.0],
        floor: 0.125,
    };
    let o = WriteOptions { dtype, pixel: PixelMap::EDM, metadata: vec![("dataset".into(), "toy".into())] };
    write_gaussian(&p, &o).unwrap()
}

/// The mixture of the spec: d = 2, K = 2 components of rank 1, labels `a`, `b`, weights 0.75 / 0.25.
fn mixture_example(dtype: DType) -> Vec<u8> {
    let shape = ImageShape { channels: 1, height: 1, width: 2 };
    let c0 = GaussianParams { shape, mu: vec![0.25, -0.5], u_t: vec![0.6, 0.8], lambda: vec![2.0], floor: 0.125 };
    let c1 = GaussianParams { shape, mu: vec![-1.0, 1.0], u_t: vec![1.0, 0.0], lambda: vec![0.5], floor: 0.0 };
    let p = MixtureParams { components: vec![c0, c1], weights: vec![0.75, 0.25], labels: vec!["a".into(), "b".into()] };
    write_mixture(&p, &WriteOptions { dtype, pixel: PixelMap::EDM, metadata: vec![] }).unwrap()
}

/// `offset: 16 hex bytes  |ascii|`, like `xxd -g1`.
fn hexdump(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, chunk) in b.chunks(16).enumerate() {
        write!(s, "{:04x}:", i * 16).unwrap();
        for x in chunk {
            write!(s, " {x:02x}").unwrap();
        }
        s.push_str(&"   ".repeat(16 - chunk.len()));
        s.push_str("  |");
        s.extend(chunk.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '.' }));
        s.push_str("|\n");
    }
    s
}

/// Replaces (bless) or compares the fenced block between `<!-- {tag}:begin -->` and `<!-- {tag}:end -->`.
fn check_block(doc: &mut String, tag: &str, body: &str, bless: bool) -> Result<(), String> {
    let (begin, end) = (format!("<!-- {tag}:begin -->\n"), format!("<!-- {tag}:end -->"));
    let start = doc.find(&begin).ok_or(format!("docs/blob-format.md lacks {begin}"))? + begin.len();
    let stop = doc[start..].find(&end).ok_or(format!("docs/blob-format.md lacks {end}"))? + start;
    let want = format!("```text\n{body}```\n");
    if bless {
        doc.replace_range(start..stop, &want);
        Ok(())
    } else if doc[start..stop] == want {
        Ok(())
    } else {
        Err(format!("the {tag} example in docs/blob-format.md is stale; the writer now produces:\n{want}"))
    }
}

#[test]
fn worked_examples_match_the_writer() {
    let bless = std::env::var_os("GAUSSDIFF_BLESS_DOCS").is_some();
    let mut doc = std::fs::read_to_string(doc_path()).unwrap();
    let mut errors = Vec::new();
    for (tag, dtype) in [("example-f32", DType::F32), ("example-i8", DType::I8)] {
        let bytes = example(dtype);
        let blob = Blob::parse(&bytes).unwrap();
        assert!(blob.checksum_ok());
        if let Err(e) = check_block(&mut doc, tag, &hexdump(&bytes), bless) {
            errors.push(e);
        }
    }
    for (tag, dtype) in [("example-mixture-f32", DType::F32), ("example-mixture-i8", DType::I8)] {
        let bytes = mixture_example(dtype);
        let blob = Blob::parse(&bytes).unwrap();
        assert_eq!(blob.num_components(), 2);
        assert_eq!(blob.component_label(1), Some("b"));
        // Component 1 of the int8 blob decodes from its own block: q = 127 with scale 1/127, then 0.
        assert_eq!(blob.section_block(section::U_T, 1).unwrap().get(0, 0), 1.0);
        blob.model().unwrap();
        if let Err(e) = check_block(&mut doc, tag, &hexdump(&bytes), bless) {
            errors.push(e);
        }
    }
    if bless {
        std::fs::write(doc_path(), doc).unwrap();
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// What a reader that predates a kind says: the kind byte is checked before anything kind-specific, so a
/// kind-4 blob given to a v1 reader of kinds 1..=3 stops with `UnknownKind` (the documented behaviour, §12).
/// Simulated here by setting the kind byte to the next unassigned code, 5, with the header CRC repaired.
#[test]
fn unknown_kind_is_refused_with_its_code() {
    let mut bytes = mixture_example(DType::F32);
    bytes[format::header::KIND] = 5;
    let crc = format::CRC32.checksum(&bytes[..format::header::HEADER_CRC]);
    bytes[format::header::HEADER_CRC..format::header::END].copy_from_slice(&crc.to_le_bytes());
    let e = Blob::parse(&bytes).unwrap_err();
    assert_eq!(e.to_string(), "unknown denoiser kind code 5");
}

#[test]
fn tables_match_the_format_module() {
    let doc = std::fs::read_to_string(doc_path()).unwrap();
    for id in 1..=18u8 {
        let row = format!("| {id} | {} |", field::name(id));
        assert!(doc.contains(&row), "field table lacks `{row}`");
    }
    for id in 1..=10u8 {
        let row = format!("| {id} | `{}` |", section::name(id));
        assert!(doc.contains(&row), "section table lacks `{row}`");
    }
    for (name, value) in [
        ("MAX_DIM", format::MAX_DIM),
        ("MAX_RANK", format::MAX_RANK),
        ("MAX_CHANNELS", format::MAX_CHANNELS),
        ("MAX_SIGMAS", format::MAX_SIGMAS),
        ("MAX_COMPONENTS", format::MAX_COMPONENTS),
        ("MAX_SECTIONS", format::MAX_SECTIONS),
        ("MAX_METADATA_BYTES", format::MAX_METADATA_BYTES),
        ("MAX_METADATA_ENTRIES", format::MAX_METADATA_ENTRIES),
        ("MAX_KEY_LEN", format::MAX_KEY_LEN),
    ] {
        let row = format!("| `{name}` | {value} |");
        assert!(doc.contains(&row), "limits table lacks `{row}`");
    }
}
