//! `docs/sampling.md` (with `docs/noise.md` and `docs/blob-format.md`) is enough to reproduce `gaussdiff
//! sample` bit for bit: the independent Python implementation `tests/python/sample_reference.py` (NumPy)
//! must give the core's f32 sample bits exactly and the CLI's `--raw` PNG pixels exactly, for the exact,
//! Euler and Heun samplers on Gaussian (f32, f16, int8), mixture (int8, f16) and linear (dense f32, dense
//! int8, shared-basis f16) blobs; and its ports of libm's `logf`, `expf` and `powf`
//! (`tests/python/libm_f32.py`) must give the libm crate's bits.
//!
//! Skipped, with a message, where `python3` with NumPy is not available; wherever they are, any
//! difference fails the test.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{data, export_ok, ok_stdout, repo, run, s};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::sampler::{SampleSpec, Sampler};
use gaussdiff_core::schedule::EdmSchedule;

fn python_with_numpy() -> bool {
    let ok = Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 with numpy not found (tests/python/sample_reference.py needs both)");
    }
    ok
}

fn script(name: &str) -> PathBuf {
    repo().join("tests/python").join(name)
}

/// Deterministic values in [-1, 1) (a SplitMix-style hash), for synthetic linear maps.
fn hash(i: usize, salt: u64) -> f32 {
    let mut z = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// Distilled linear maps (docs/distill-format.md) for a 1 x 4 x 4 image, `W_i = g_i I + 0.05 N`, on a grid
/// whose points the EDM schedules below fall between and outside of; with a 5-row `basis` if `basis`.
fn distilled(dir: &Path, basis: bool) -> PathBuf {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    let (d, l, k) = (16usize, 5usize, 5usize);
    let sigmas = [40.0f32, 9.0, 2.5, 0.4, 0.01];
    let mut w = vec![0.0f32; l * d * d];
    for (li, &sg) in sigmas.iter().enumerate() {
        for r in 0..d {
            for c in 0..d {
                let diag = if r == c { 1.0 / (1.0 + 0.1 * sg * sg) } else { 0.0 };
                w[(li * d + r) * d + c] = diag + 0.05 * hash((li * d + r) * d + c, 1);
            }
        }
    }
    let b: Vec<f32> = (0..l * d).map(|i| 0.1 * hash(i, 2)).collect();
    let u: Vec<f32> = (0..k * d).map(|i| 0.25 * hash(i, 3)).collect();
    let to_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (sb, wb, bb, ub) = (to_bytes(&sigmas), to_bytes(&w), to_bytes(&b), to_bytes(&u));
    let mut tensors = vec![
        ("sigmas", TensorView::new(Dtype::F32, vec![l], &sb).unwrap()),
        ("W", TensorView::new(Dtype::F32, vec![l, d, d], &wb).unwrap()),
        ("b", TensorView::new(Dtype::F32, vec![l, d], &bb).unwrap()),
    ];
    if basis {
        tensors.push(("basis", TensorView::new(Dtype::F32, vec![k, d], &ub).unwrap()));
    }
    let meta: HashMap<String, String> =
        [("dataset", "synthetic"), ("n_train", "1"), ("shape", "1,4,4")].map(|(a, b)| (a.into(), b.into())).into();
    let path = dir.join(if basis { "basis.safetensors" } else { "dense.safetensors" });
    std::fs::write(&path, safetensors::serialize(tensors, Some(meta)).unwrap()).unwrap();
    path
}

/// The blobs of the test: (name, path); the temporary folders stay alive with the returned guards.
fn blobs() -> (Vec<tempfile::TempDir>, Vec<(&'static str, PathBuf)>) {
    let digits = data("sklearn_digits/digits.csv.gz");
    let gauss = ["--rank", "12", "--floor", "auto", "--dtype"];
    let mix = ["--mixture", "labels", "--rank", "5", "--floor", "auto", "--dtype"];
    let mut dirs = Vec::new();
    let mut out = Vec::new();
    for (name, flags, dtype) in [
        ("gaussian-f32", &gauss[..], "f32"),
        ("gaussian-f16", &gauss[..], "f16"),
        ("gaussian-i8", &gauss[..], "i8"),
        ("mixture-i8", &mix[..], "i8"),
        ("mixture-f16", &mix[..], "f16"),
    ] {
        let mut f = flags.to_vec();
        f.push(dtype);
        let (dir, blob, _) = export_ok(&digits, &f, &format!("{name}.gdn"));
        out.push((name, blob));
        dirs.push(dir);
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, basis, flags) in [
        ("linear-dense-f32", false, &["--dense"][..]),
        ("linear-dense-i8", false, &["--dense", "--dtype", "i8"][..]),
        ("linear-basis-f16", true, &["--dtype", "f16"][..]),
    ] {
        let blob = dir.path().join(format!("{name}.gdn"));
        let st = distilled(dir.path(), basis);
        let mut args = vec!["export", "--linear", s(&st)];
        args.extend_from_slice(flags);
        args.extend(["-o", s(&blob)]);
        ok_stdout(&run(&args));
        out.push((name, blob));
    }
    dirs.push(dir);
    (dirs, out)
}

/// The core's f32 bits of sample `i` (the recipe the CLI runs, `SampleSpec::run`).
fn core_bits(blob: &[u8], sampler: Sampler, steps: u32, seed: u64) -> Vec<u32> {
    let blob = Blob::parse(blob).unwrap();
    let model = blob.model().unwrap();
    let spec = SampleSpec { sampler, steps, seed };
    let mut sigmas = vec![0.0f32; steps as usize + 1];
    let mut x = vec![0.0f32; model.dim()];
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(&model)];
    spec.run(&model, &EdmSchedule::EDM, &mut sigmas, &mut x, &mut scratch, |_, _| {}).unwrap();
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn python_reproduces_the_cli_sample_bits() {
    if !python_with_numpy() {
        return;
    }
    let (_dirs, blobs) = blobs();
    let out = tempfile::tempdir().unwrap();
    let (n, seed) = (2u64, 40u64);
    // Every run through the CLI first (PNGs under out/<run>/), then all of them through one Python process
    // (`--batch`: its start-up, NumPy's import, dominates the time of one run).
    let mut runs: Vec<(String, Vec<String>, Sampler, u32)> = Vec::new();
    for (name, blob) in &blobs {
        let linear = name.starts_with("linear");
        for (sampler, steps) in [(Sampler::Exact, 1u32), (Sampler::Euler, 7), (Sampler::Heun, 7), (Sampler::Heun, 18)] {
            if (linear && sampler == Sampler::Exact) || (steps == 18 && !name.ends_with("f32")) {
                continue;
            }
            let what = format!("{name}-{sampler}-{steps}");
            let (raw, grid) = (out.path().join(&what), out.path().join(format!("{what}.png")));
            let args: Vec<String> = [s(blob), "--sampler", sampler.name(), "--steps", &steps.to_string()]
                .into_iter()
                .map(String::from)
                .chain(["--n".into(), n.to_string(), "--seed".into(), seed.to_string()])
                .collect();
            let mut cli = vec!["sample"];
            cli.extend(args.iter().map(String::as_str));
            cli.extend(["--raw", s(&raw), "-o", s(&grid)]);
            ok_stdout(&run(&cli));
            let py = args.into_iter().chain(["--bits".into(), "--compare".into(), s(&raw).into()]).collect();
            runs.push((what, py, sampler, steps));
        }
    }
    let mut rest = tempfile::NamedTempFile::new().unwrap();
    for (_, args, _, _) in &runs[1..] {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        writeln!(rest, "{}", quoted.join(" ")).unwrap();
    }
    let o = Command::new("python3")
        .arg(script("sample_reference.py"))
        .args(&runs[0].1)
        .arg("--batch")
        .stdin(std::fs::File::open(rest.path()).unwrap())
        .output()
        .expect("run python3");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "pixels differ from the CLI's PNGs (or the script failed):\n{log}");
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines();
    let mut checked = 0usize;
    for (what, args, sampler, steps) in &runs {
        let bytes = std::fs::read(&args[0]).unwrap();
        for i in 0..n {
            let line = lines.next().unwrap_or_else(|| panic!("{what}: no line for sample {i}"));
            let py: Vec<u32> = line.split(' ').map(|h| u32::from_str_radix(h, 16).unwrap()).collect();
            let want = core_bits(&bytes, *sampler, *steps, seed + i);
            let differ = py.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert!(
                py.len() == want.len() && differ == 0,
                "{what} sample {i}: {differ} of {} f32 values differ",
                want.len()
            );
            checked += want.len();
        }
    }
    assert!(lines.next().is_none(), "more output lines than samples");
    eprintln!("{} runs: {checked} f32 values and their pixels bit-identical", runs.len());
}

/// The ports of libm's `logf`, `expf` and `powf` against the libm crate (through `gaussdiff_core::math`),
/// on the arguments the noise, the schedule, the mixture weights and the log-sigma interpolation take and
/// far beyond them.
#[test]
fn python_libm_ports_match_libm() {
    use gaussdiff_core::math;
    if !python_with_numpy() {
        return;
    }
    let mut cases: Vec<(&str, f32, f32)> = Vec::new();
    for i in 0..4_000usize {
        let u = (hash(i, 7) + 1.0) / 2.0; // [0, 1)
        let v = hash(i, 8);
        cases.push(("log", (u * 40.0 - 30.0).exp(), 0.0)); // 1e-13 .. 2e4
        cases.push(("log", ((i as u32 + 1) as f32) * (1.0 / 16_777_216.0), 0.0)); // the ziggurat tail's grid
        cases.push(("exp", v * 110.0 - 10.0, 0.0)); // -120 .. 100: underflow, subnormal and overflow results
        cases.push(("exp", v * 0.5, 0.0));
        cases.push(("pow", (u * 16.0 - 7.0).exp(), 1.0 / 7.0));
        cases.push(("pow", 0.3 + 1.7 * u, 7.0));
        cases.push(("pow", (u * 20.0 - 10.0).exp(), v * 20.0));
    }
    cases.extend([("log", 1.0, 0.0), ("log", 0.0, 0.0), ("log", 1e-40, 0.0), ("exp", 0.0, 0.0), ("exp", -0.0, 0.0)]);
    let mut input = tempfile::NamedTempFile::new().unwrap();
    for (f, a, b) in &cases {
        match *f {
            "pow" => writeln!(input, "pow {:08x} {:08x}", a.to_bits(), b.to_bits()),
            _ => writeln!(input, "{f} {:08x}", a.to_bits()),
        }
        .unwrap();
    }
    let o = Command::new("python3")
        .arg(script("libm_f32.py"))
        .stdin(std::fs::File::open(input.path()).unwrap())
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), cases.len());
    for ((f, a, b), g) in cases.iter().zip(got) {
        let want = match *f {
            "log" => math::ln(*a),
            "exp" => math::exp_libm(*a),
            _ => math::pow(*a, *b),
        };
        assert_eq!(g, format!("{:08x}", want.to_bits()), "{f}({a:e}, {b:e})");
    }
    eprintln!("{} libm values bit-identical", cases.len());
}
