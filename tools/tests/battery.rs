//! The bad-input battery (issue 16): a table of hostile or mistaken command lines, each run through the
//! binary under an address-space limit (`prlimit --as`, `gaussdiff_tests::memory::address_space_limit`: 1 GiB
//! plus faer's per-thread GEMM reservation) and a 30 s timeout, and the peak resident memory of every case
//! must stay under 1 GiB (`getrusage`). For every case: no panic
//! (exit 101), no abort or signal (an allocation over the limit aborts), no timeout, the expected one-line
//! error (or, for the few inputs that are valid but suspicious, success with a warning), and no file or
//! directory left behind that was not there before.
//!
//! The trainer's cases are in `host-trainer/tests/bad_input.rs`.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gaussdiff_core::blob::format::{header, CRC32, HEADER_SIZE};
use gaussdiff_core::blob::{format::section, Blob};

use gaussdiff_tests::memory;
/// Wall-clock limit of every case (seconds).
const TIMEOUT_S: u64 = 30;

/// What a case must end with.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exit code 1, one stderr line containing every needle.
    Error(&'static [&'static str]),
    /// Exit code 2 (clap's usage error) with every needle on stderr.
    Usage(&'static [&'static str]),
    /// Success, with every needle on stderr (a warning).
    Warn(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    /// Files to make in the case's directory before the run.
    setup: fn(&Path),
    /// Arguments; `@` is replaced by the case's directory, `%` by the fixtures directory.
    args: &'static [&'static str],
    expect: Expect,
    /// Files the run may leave in the case's directory (besides those setup made).
    outputs: &'static [&'static str],
}

fn none(_: &Path) {}

/// Fixtures shared by all cases (read-only): a digits blob and a distilled-maps stand-in.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("battery-fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        let blob = dir.join("digits.gdn");
        let o = export(&data("sklearn_digits/digits.csv.gz"), &["--rank", "8"], &blob);
        assert!(o.status.success(), "{}", stderr(&o));
        dir
    })
}

fn blob_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("digits.gdn")).unwrap()
}

/// Recompute both CRCs after a patch (so only the value checks can object).
fn fix_crcs(b: &mut [u8]) {
    let payload = CRC32.checksum(&b[HEADER_SIZE..]);
    b[header::PAYLOAD_CRC..header::PAYLOAD_CRC + 4].copy_from_slice(&payload.to_le_bytes());
    let h = CRC32.checksum(&b[..header::HEADER_CRC]);
    b[header::HEADER_CRC..header::HEADER_CRC + 4].copy_from_slice(&h.to_le_bytes());
}

/// The blob with element `i` of section `id` (f32) set to `v`, CRCs fixed.
fn patched(id: u8, i: usize, v: f32) -> Vec<u8> {
    let mut b = blob_bytes();
    let off = Blob::parse(&b).unwrap().sections().find(|s| s.id == id).unwrap().offset + 4 * i;
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    fix_crcs(&mut b);
    b
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn blob_copy(d: &Path) {
    write(d, "m.gdn", &blob_bytes());
}
/// A blob and an existing `raw/` whose third sample's name is taken by a directory: the run fails after
/// drawing two samples, and must leave `raw/` as it was.
fn raw_dir_with_obstacle(d: &Path) {
    blob_copy(d);
    std::fs::create_dir_all(d.join("raw/sample_00002.png")).unwrap();
    write(d, "raw/keep.txt", b"the user's file");
}
fn blob_padded(d: &Path) {
    let f = std::fs::File::create(d.join("m.gdn")).unwrap();
    std::io::Write::write_all(&mut &f, &blob_bytes()).unwrap();
    f.set_len(1_500_000_000).unwrap(); // sparse: 1.5 GB on paper
}
fn blob_truncated(d: &Path) {
    let b = blob_bytes();
    write(d, "m.gdn", &b[..b.len() - 7]);
}
fn blob_header_only(d: &Path) {
    write(d, "m.gdn", &blob_bytes()[..HEADER_SIZE]);
}
fn blob_empty(d: &Path) {
    write(d, "m.gdn", b"");
}
fn blob_text(d: &Path) {
    write(d, "m.gdn", b"this is not a blob at all, just some text that is long enough for a header.....");
}
fn blob_inf_mean(d: &Path) {
    write(d, "m.gdn", &patched(section::MU, 5, f32::INFINITY));
}
fn blob_nan_basis(d: &Path) {
    write(d, "m.gdn", &patched(section::U_T, 3, f32::NAN));
}
fn blob_negative_lambda(d: &Path) {
    write(d, "m.gdn", &patched(section::LAMBDA, 7, -1.5));
}
fn blob_payload_flip(d: &Path) {
    let mut b = blob_bytes();
    let n = b.len();
    b[n - 5] ^= 0x10;
    write(d, "m.gdn", &b);
}
fn blob_header_flip(d: &Path) {
    let mut b = blob_bytes();
    b[header::PIXEL_OFFSET] ^= 0x01;
    write(d, "m.gdn", &b);
}
fn blob_huge_total_len(d: &Path) {
    let mut b = blob_bytes();
    b[header::TOTAL_LEN..header::TOTAL_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_crcs(&mut b);
    write(d, "m.gdn", &b);
}
fn blob_and_dir(d: &Path) {
    blob_copy(d);
    std::fs::create_dir(d.join("out.png")).unwrap();
}
fn blob_and_fifo(d: &Path) {
    blob_copy(d);
    mkfifo(&d.join("out.png"));
}
fn blob_and_file(d: &Path) {
    blob_copy(d);
    write(d, "raw", b"a file, not a directory");
}
fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}
fn fifo_out(d: &Path) {
    mkfifo(&d.join("m.gdn"));
}
fn dir_out(d: &Path) {
    std::fs::create_dir(d.join("m.gdn")).unwrap();
}
fn digits_csv(d: &Path) {
    std::fs::copy(data("sklearn_digits/digits.csv.gz"), d.join("digits.csv.gz")).unwrap();
}
fn constant_csv(d: &Path) {
    let row: Vec<String> = (0..64).map(|_| "7".to_string()).chain(["1".to_string()]).collect();
    let text: Vec<String> = (0..20).map(|_| row.join(",")).collect();
    write(d, "same.csv", text.join("\n").as_bytes());
}
fn idx_huge_count(d: &Path) {
    // Claims 2^31 images of 28x28 but holds 10 bytes of pixels.
    let mut b = vec![0, 0, 8, 3];
    for v in [1u32 << 31, 28, 28] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&[0; 10]);
    write(d, "big-images-idx3-ubyte", &b);
}
fn idx_huge_dims(d: &Path) {
    let mut b = vec![0, 0, 8, 3];
    for v in [1u32, 65535, 65535] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&[0; 100]);
    write(d, "wide-images-idx3-ubyte", &b);
}
fn short_cifar(d: &Path) {
    write(d, "data_batch_1.bin", &[3u8; 1000]);
}
fn garbage_gz(d: &Path) {
    write(d, "x.gz", &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
}
fn not_safetensors(d: &Path) {
    write(d, "maps.safetensors", b"\xff\xff\xff\xff\xff\xff\xff\x7f{}");
}
fn safetensors_tiny_header(d: &Path) {
    write(d, "maps.safetensors", &[2, 0, 0, 0, 0, 0, 0, 0, b'{', b'}']);
}
fn no_frames(d: &Path) {
    write(d, "log.txt", b"booting\nhello\n@GDF1 begin c=1 h=2 w=2 sampler=heun steps=18 seed=0\n@GDF1 p 0000\n");
}
fn frame_huge_shape(d: &Path) {
    write(d, "log.txt", b"@GDF1 begin c=4 h=65535 w=65535 sampler=heun steps=18 seed=0\n@GDF1 end pixels=0 sample=0\n");
}

const B: &[&str] = &["m.gdn"];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // --- sample: sizes from options ---
    Case { name: "sample --scale 100000", setup: blob_copy, args: &["sample", "@/m.gdn", "--scale", "100000", "-o", "@/g.png"], expect: Expect::Error(&["--scale 100000", "expected 1 <= scale <= 64"]), outputs: &[] },
    Case { name: "sample --scale 0", setup: blob_copy, args: &["sample", "@/m.gdn", "--scale", "0", "-o", "@/g.png"], expect: Expect::Error(&["--scale 0"]), outputs: &[] },
    Case { name: "sample --cols 0", setup: blob_copy, args: &["sample", "@/m.gdn", "--cols", "0", "-o", "@/g.png"], expect: Expect::Error(&["--cols 0"]), outputs: &[] },
    Case { name: "sample --scale 64 --n 4096 (grid too big)", setup: blob_copy, args: &["sample", "@/m.gdn", "--scale", "64", "--n", "4096", "-o", "@/g.png"], expect: Expect::Error(&["PNG grid would be", "at most 16384"]), outputs: &[] },
    Case { name: "sample --n 10^12", setup: blob_copy, args: &["sample", "@/m.gdn", "--n", "1000000000000", "-o", "@/g.png"], expect: Expect::Error(&["--n 1000000000000", "at most 1000000"]), outputs: &[] },
    Case { name: "sample --n 300000 (rows exceed the grid)", setup: blob_copy, args: &["sample", "@/m.gdn", "--n", "300000", "-o", "@/g.png"], expect: Expect::Error(&["PNG grid would be"]), outputs: &[] },
    Case { name: "sample --n 0", setup: blob_copy, args: &["sample", "@/m.gdn", "--n", "0", "-o", "@/g.png"], expect: Expect::Error(&["--n 0"]), outputs: &[] },
    Case { name: "sample --cols 10^9", setup: blob_copy, args: &["sample", "@/m.gdn", "--n", "2000", "--cols", "1000000000", "-o", "@/g.png"], expect: Expect::Error(&["PNG grid would be"]), outputs: &[] },
    Case { name: "sample --steps 4e9", setup: blob_copy, args: &["sample", "@/m.gdn", "--steps", "4000000000", "-o", "@/g.png"], expect: Expect::Error(&["--steps 4000000000", "at most 10000"]), outputs: &[] },
    Case { name: "sample --steps 4e9 --sampler exact", setup: blob_copy, args: &["sample", "@/m.gdn", "--sampler", "exact", "--steps", "4000000000", "-o", "@/g.png"], expect: Expect::Error(&["--steps 4000000000"]), outputs: &[] },
    Case { name: "sample --steps 0", setup: blob_copy, args: &["sample", "@/m.gdn", "--steps", "0", "-o", "@/g.png"], expect: Expect::Error(&["--steps 0", "at least 1"]), outputs: &[] },
    Case { name: "sample --steps -1", setup: blob_copy, args: &["sample", "@/m.gdn", "--steps", "-1", "-o", "@/g.png"], expect: Expect::Usage(&["-1"]), outputs: &[] },
    Case { name: "sample --sampler bogus", setup: blob_copy, args: &["sample", "@/m.gdn", "--sampler", "bogus", "-o", "@/g.png"], expect: Expect::Usage(&["bogus"]), outputs: &[] },
    // --- sample: blob files ---
    Case { name: "sample blob padded to 1.5 GB", setup: blob_padded, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "1500000000 bytes", "trailing"]), outputs: &[] },
    Case { name: "sample truncated blob", setup: blob_truncated, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "truncated"]), outputs: &[] },
    Case { name: "sample header-only blob", setup: blob_header_only, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "truncated"]), outputs: &[] },
    Case { name: "sample empty blob", setup: blob_empty, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "invalid gaussdiff blob"]), outputs: &[] },
    Case { name: "sample text file", setup: blob_text, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "magic"]), outputs: &[] },
    Case { name: "sample total_len 4 GiB", setup: blob_huge_total_len, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "4294967295"]), outputs: &[] },
    Case { name: "sample inf in the mean", setup: blob_inf_mean, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "(mu) element 5 is not finite"]), outputs: &[] },
    Case { name: "sample NaN in the basis", setup: blob_nan_basis, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "element 3 is not finite"]), outputs: &[] },
    Case { name: "sample negative lambda", setup: blob_negative_lambda, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "lambda", "-1.5"]), outputs: &[] },
    Case { name: "sample payload bit flip", setup: blob_payload_flip, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "checksum mismatch"]), outputs: &[] },
    Case { name: "sample header bit flip", setup: blob_header_flip, args: &["sample", "@/m.gdn", "-o", "@/g.png"], expect: Expect::Error(&["m.gdn", "header checksum mismatch"]), outputs: &[] },
    Case { name: "sample missing blob", setup: none, args: &["sample", "@/nope.gdn", "-o", "@/g.png"], expect: Expect::Error(&["nope.gdn", "cannot read blob"]), outputs: &[] },
    Case { name: "sample blob is a directory", setup: none, args: &["sample", "@", "-o", "@/g.png"], expect: Expect::Error(&["cannot read blob"]), outputs: &[] },
    // --- sample: outputs ---
    Case { name: "sample -o a directory", setup: blob_and_dir, args: &["sample", "@/m.gdn", "-o", "@/out.png"], expect: Expect::Error(&["out.png", "is a directory"]), outputs: &["out.png"] },
    Case { name: "sample -o a FIFO", setup: blob_and_fifo, args: &["sample", "@/m.gdn", "-o", "@/out.png"], expect: Expect::Error(&["out.png", "is a FIFO"]), outputs: &["out.png"] },
    Case { name: "sample -o /dev/null", setup: blob_copy, args: &["sample", "@/m.gdn", "-o", "/dev/null"], expect: Expect::Error(&["/dev/null", "is a device"]), outputs: &[] },
    Case { name: "sample -o the blob itself", setup: blob_copy, args: &["sample", "@/m.gdn", "-o", "@/./m.gdn"], expect: Expect::Error(&["refusing to overwrite an input"]), outputs: &[] },
    Case { name: "sample -o in a missing directory", setup: blob_copy, args: &["sample", "@/m.gdn", "-o", "@/no/g.png"], expect: Expect::Error(&["does not exist"]), outputs: &[] },
    Case { name: "sample --raw is a file", setup: blob_and_file, args: &["sample", "@/m.gdn", "--raw", "@/raw", "-o", "@/g.png"], expect: Expect::Error(&["raw", "not a directory"]), outputs: &[] },
    Case { name: "sample --raw missing parent", setup: blob_copy, args: &["sample", "@/m.gdn", "--raw", "@/a/b", "-o", "@/g.png"], expect: Expect::Error(&["does not exist"]), outputs: &[] },
    Case { name: "sample --raw existing dir, third name a directory", setup: raw_dir_with_obstacle, args: &["sample", "@/m.gdn", "--sampler", "exact", "--n", "4", "--raw", "@/raw", "-o", "@/g.png"], expect: Expect::Error(&["sample_00002.png", "directory"]), outputs: &[] },
    Case { name: "sample --raw with a failing --steps", setup: blob_copy, args: &["sample", "@/m.gdn", "--raw", "@/raw", "--steps", "0", "-o", "@/g.png"], expect: Expect::Error(&["--steps 0"]), outputs: &[] },
    Case { name: "sample --nearest wrong d", setup: blob_copy, args: &["sample", "@/m.gdn", "--nearest", "data/frey_faces/frey_rawface.mat", "-o", "@/g.png"], expect: Expect::Error(&["--nearest", "expected the blob's d = 64"]), outputs: &[] },
    Case { name: "sample --nearest missing", setup: blob_copy, args: &["sample", "@/m.gdn", "--nearest", "@/none.csv", "-o", "@/g.png"], expect: Expect::Error(&["none.csv"]), outputs: &[] },
    // --- inspect ---
    Case { name: "inspect --steps 0", setup: blob_copy, args: &["inspect", "@/m.gdn", "--steps", "0"], expect: Expect::Error(&["--steps 0"]), outputs: &[] },
    Case { name: "inspect --steps 4e9", setup: blob_copy, args: &["inspect", "@/m.gdn", "--steps", "4000000000"], expect: Expect::Error(&["--steps 4000000000", "at most 10000"]), outputs: &[] },
    Case { name: "inspect header bit flip", setup: blob_header_flip, args: &["inspect", "@/m.gdn"], expect: Expect::Error(&["m.gdn", "header checksum mismatch", "bytes 0..60"]), outputs: &[] },
    Case { name: "inspect padded blob", setup: blob_padded, args: &["inspect", "@/m.gdn"], expect: Expect::Error(&["m.gdn", "trailing"]), outputs: &[] },
    Case { name: "inspect inf in the mean", setup: blob_inf_mean, args: &["inspect", "@/m.gdn"], expect: Expect::Error(&["m.gdn", "not finite"]), outputs: &[] },
    Case { name: "inspect negative lambda", setup: blob_negative_lambda, args: &["inspect", "@/m.gdn"], expect: Expect::Error(&["m.gdn", "-1.5"]), outputs: &[] },
    // --- export ---
    Case { name: "export --resize 65535x65535", setup: none, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--resize", "65535x65535", "-o", "@/m.gdn"], expect: Expect::Error(&["--resize 65535x65535", "MAX_DIM"]), outputs: &[] },
    Case { name: "export --resize 0x5", setup: none, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--resize", "0x5", "-o", "@/m.gdn"], expect: Expect::Usage(&["0x5"]), outputs: &[] },
    Case { name: "export --resize 70000x2", setup: none, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--resize", "70000x2", "-o", "@/m.gdn"], expect: Expect::Usage(&["70000x2"]), outputs: &[] },
    Case { name: "export --linear with --dataset", setup: not_safetensors, args: &["export", "--linear", "@/maps.safetensors", "--dataset", "data/sklearn_digits/digits.csv.gz", "-o", "@/m.gdn"], expect: Expect::Usage(&["--dataset"]), outputs: &[] },
    Case { name: "export --linear with --limit", setup: not_safetensors, args: &["export", "--linear", "@/maps.safetensors", "--limit", "5", "-o", "@/m.gdn"], expect: Expect::Usage(&["--limit"]), outputs: &[] },
    Case { name: "export --linear with --grayscale", setup: not_safetensors, args: &["export", "--linear", "@/maps.safetensors", "--grayscale", "-o", "@/m.gdn"], expect: Expect::Usage(&["--grayscale"]), outputs: &[] },
    Case { name: "export --linear with --hold-out", setup: not_safetensors, args: &["export", "--linear", "@/maps.safetensors", "--hold-out", "5", "-o", "@/m.gdn"], expect: Expect::Usage(&["--hold-out"]), outputs: &[] },
    Case { name: "export --linear with --floor", setup: not_safetensors, args: &["export", "--linear", "@/maps.safetensors", "--floor", "auto", "-o", "@/m.gdn"], expect: Expect::Usage(&["--floor"]), outputs: &[] },
    Case { name: "export --linear not safetensors", setup: not_safetensors, args: &["export", "--linear", "@/maps.safetensors", "-o", "@/m.gdn"], expect: Expect::Error(&["maps.safetensors", "safetensors"]), outputs: &[] },
    Case { name: "export --linear empty safetensors", setup: safetensors_tiny_header, args: &["export", "--linear", "@/maps.safetensors", "-o", "@/m.gdn"], expect: Expect::Error(&["maps.safetensors"]), outputs: &[] },
    Case { name: "export -o the dataset", setup: digits_csv, args: &["export", "--dataset", "@/digits.csv.gz", "--rank", "4", "-o", "@/digits.csv.gz"], expect: Expect::Error(&["refusing to overwrite an input"]), outputs: &[] },
    Case { name: "export -o a directory", setup: dir_out, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--rank", "4", "-o", "@/m.gdn"], expect: Expect::Error(&["is a directory"]), outputs: &[] },
    Case { name: "export -o a FIFO", setup: fifo_out, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--rank", "4", "-o", "@/m.gdn"], expect: Expect::Error(&["is a FIFO"]), outputs: &[] },
    Case { name: "export --rank 0", setup: none, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--rank", "0", "-o", "@/m.gdn"], expect: Expect::Error(&["rank 0"]), outputs: &[] },
    Case { name: "export --rank 10^9", setup: none, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--rank", "1000000000", "-o", "@/m.gdn"], expect: Expect::Error(&["rank 1000000000"]), outputs: &[] },
    Case { name: "export --limit 0", setup: none, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--limit", "0", "-o", "@/m.gdn"], expect: Expect::Error(&["limit"]), outputs: &[] },
    Case { name: "export --hold-out 10^9", setup: none, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--hold-out", "1000000000", "-o", "@/m.gdn"], expect: Expect::Error(&["hold"]), outputs: &[] },
    Case { name: "export --dtype f64", setup: none, args: &["export", "--dataset", "data/sklearn_digits/digits.csv.gz", "--dtype", "f64", "-o", "@/m.gdn"], expect: Expect::Usage(&["f64"]), outputs: &[] },
    Case { name: "export IDX claiming 2^31 images", setup: idx_huge_count, args: &["export", "--dataset", "@/big-images-idx3-ubyte", "-o", "@/m.gdn"], expect: Expect::Error(&["big-images-idx3-ubyte"]), outputs: &[] },
    Case { name: "export IDX of 65535x65535 images", setup: idx_huge_dims, args: &["export", "--dataset", "@/wide-images-idx3-ubyte", "-o", "@/m.gdn"], expect: Expect::Error(&["wide-images-idx3-ubyte"]), outputs: &[] },
    Case { name: "export short CIFAR batch", setup: short_cifar, args: &["export", "--dataset", "@/data_batch_1.bin", "--format", "cifar10", "-o", "@/m.gdn"], expect: Expect::Error(&["data_batch_1.bin"]), outputs: &[] },
    Case { name: "export corrupt gzip", setup: garbage_gz, args: &["export", "--dataset", "@/x.gz", "-o", "@/m.gdn"], expect: Expect::Error(&["x.gz"]), outputs: &[] },
    Case { name: "export zero-variance data (warned)", setup: constant_csv, args: &["export", "--dataset", "@/same.csv", "--format", "digits-csv", "--rank", "1", "-o", "@/m.gdn"], expect: Expect::Warn(&["warning", "zero variance"]), outputs: B },
    // --- demo ---
    Case { name: "demo --steps 0", setup: none, args: &["demo", "--quick", "--steps", "0", "-o", "@/demo"], expect: Expect::Error(&["--steps 0"]), outputs: &[] },
    Case { name: "demo --n 0", setup: none, args: &["demo", "--quick", "--n", "0", "-o", "@/demo"], expect: Expect::Error(&["--n 0"]), outputs: &[] },
    Case { name: "demo --n 10^6 (gallery too big)", setup: none, args: &["demo", "--n", "1000000", "-o", "@/demo"], expect: Expect::Error(&["PNG grid would be"]), outputs: &[] },
    Case { name: "demo -o with missing parents, then a failure (all removed)", setup: none, args: &["demo", "--quick", "--data", "@/nodata", "-o", "@/a/b/demo"], expect: Expect::Error(&["nodata"]), outputs: &[] },
    Case { name: "demo --data missing", setup: none, args: &["demo", "--quick", "--data", "@/nodata", "-o", "@/demo"], expect: Expect::Error(&["nodata"]), outputs: &[] },
    Case { name: "demo --steps 10^9", setup: none, args: &["demo", "--steps", "1000000000", "-o", "@/demo"], expect: Expect::Error(&["at most 10000"]), outputs: &[] },
    // --- capture ---
    Case { name: "capture with no complete frame", setup: no_frames, args: &["capture", "@/log.txt", "-o", "@/cap"], expect: Expect::Error(&["log.txt", "no complete frame"]), outputs: &[] },
    Case { name: "capture frame of 4x65535x65535", setup: frame_huge_shape, args: &["capture", "@/log.txt", "-o", "@/cap"], expect: Expect::Error(&["log.txt"]), outputs: &[] },
    Case { name: "capture missing input", setup: none, args: &["capture", "@/none.txt", "-o", "@/cap"], expect: Expect::Error(&["none.txt"]), outputs: &[] },
    Case { name: "capture --scale 0", setup: no_frames, args: &["capture", "@/log.txt", "--scale", "0", "-o", "@/cap"], expect: Expect::Usage(&["--scale"]), outputs: &[] },
];

/// Every path under `dir` (relative, sorted), so a file left inside an output directory is seen too.
fn listing(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            v.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if p.is_dir() && !p.is_symlink() {
                todo.push(p);
            }
        }
    }
    v.sort();
    v
}

/// Run one case; `Err` describes how it failed.
fn run_case(c: &Case) -> Result<Duration, String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    (c.setup)(dir);
    let before = listing(dir);
    let args: Vec<String> = c.args.iter().map(|a| a.replace('@', s(dir)).replace('%', s(fixtures()))).collect();
    let t0 = Instant::now();
    let o = Command::new("prlimit")
        .arg(format!("--as={}", memory::address_space_limit()))
        .arg("--")
        .arg("timeout")
        .arg(TIMEOUT_S.to_string())
        .arg(env!("CARGO_BIN_EXE_gaussdiff"))
        .args(&args)
        .current_dir(repo())
        .env("RUST_BACKTRACE", "1")
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    let dt = t0.elapsed();
    let err = stderr(&o);
    let code = o.status.code();
    if code == Some(124) {
        return Err(format!("timed out after {TIMEOUT_S} s"));
    }
    if code.is_none() || code == Some(134) || err.contains("memory allocation of") {
        return Err(format!("aborted ({:?}): {err}", o.status));
    }
    if code == Some(101) || err.contains("panicked") {
        return Err(format!("panicked: {err}"));
    }
    let lines: Vec<&str> = err.trim_end().lines().collect();
    let (want_code, needles, one_line) = match c.expect {
        Expect::Error(n) => (1, n, true),
        Expect::Usage(n) => (2, n, false),
        Expect::Warn(n) => (0, n, false),
    };
    if code != Some(want_code) {
        return Err(format!("exit {code:?}, expected {want_code}; stderr: {err}"));
    }
    if one_line && lines.len() != 1 {
        return Err(format!("expected a one-line error, got:\n{err}"));
    }
    for n in needles {
        if !err.contains(n) {
            return Err(format!("stderr lacks {n:?}: {err}"));
        }
    }
    let after: Vec<String> =
        listing(dir).into_iter().filter(|f| !before.contains(f) && !c.outputs.contains(&f.as_str())).collect();
    if !after.is_empty() {
        return Err(format!("left behind {after:?}"));
    }
    Ok(dt)
}

#[test]
fn bad_input_battery() {
    let _ = fixtures();
    let mut names = std::collections::BTreeSet::new();
    for c in CASES {
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
    }
    // Two workers: the cases are independent processes.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(c) = CASES.get(i) else { break };
                let r = run_case(c);
                results.lock().unwrap().push((c.name, r));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let failures: Vec<String> =
        results.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}"))).collect();
    let slowest = results.iter().filter_map(|(n, r)| r.as_ref().ok().map(|d| (*d, *n))).max();
    let peak = memory::children_peak_rss();
    eprintln!(
        "{} cases under a {} MiB address-space limit; peak resident memory of any case {} MiB; slowest {:?}",
        CASES.len(),
        memory::address_space_limit() >> 20,
        peak >> 20,
        slowest
    );
    assert!(CASES.len() >= 60, "the battery holds {} cases", CASES.len());
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
    assert!(peak < memory::PEAK, "a case peaked at {} MiB of resident memory", peak >> 20);
}

/// The options that used to take gigabytes now cost what their output needs: a 2,000-sample `--raw` run
/// streams its files under the same limits (peak resident memory under 1 GiB).
#[test]
fn raw_many_samples_streamed_under_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    blob_copy(dir);
    let o = Command::new("prlimit")
        .arg(format!("--as={}", memory::address_space_limit()))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_gaussdiff"))
        .args(["sample", s(&dir.join("m.gdn")), "--sampler", "exact", "--n", "2000", "--cols", "50", "--scale", "1"])
        .args(["--raw", s(&dir.join("raw")), "-o", s(&dir.join("g.png"))])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(dir.join("raw")).unwrap().count(), 2000);
    let peak = memory::children_peak_rss();
    assert!(peak < memory::PEAK, "peak resident memory {} MiB", peak >> 20);
}
