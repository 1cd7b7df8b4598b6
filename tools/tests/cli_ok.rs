//! Happy paths through the binary: export -> inspect -> sample, determinism, --raw/--nearest, --linear.

mod common;
use common::*;

use std::collections::HashMap;

#[test]
fn export_inspect_sample_digits() {
    let digits = data("sklearn_digits/digits.csv.gz");
    let (dir, blob, out) =
        export_ok(&digits, &["--variance", "0.95", "--floor", "auto", "--dtype", "f16"], "digits.gdn");
    assert_contains_all(
        &out,
        &[
            "kind               gaussian",
            "d                  64",
            "dtype              f16",
            "explained variance 0.9",
            "quantisation error u_t",
        ],
    );
    let bytes = std::fs::metadata(&blob).unwrap().len();
    assert!(out.contains(&format!("bytes              {bytes}")), "{out}");

    let o = run(&["inspect", s(&blob)]);
    let out = ok_stdout(&o);
    assert_contains_all(
        &out,
        &[
            "checksum      ok",
            "dataset",
            "digits.csv",
            "n_train",
            "1797",
            "flash bytes",
            "MACs per evaluation",
            "u_t",
            "f16",
        ],
    );

    // Same seed -> same bits; the exact and Heun grids decode as PNGs of the expected size.
    let a = dir.path().join("a.png");
    let b = dir.path().join("b.png");
    let raw = dir.path().join("raw");
    for (p, extra) in [(&a, None), (&b, Some(&raw))] {
        let mut args = vec![
            "sample",
            s(&blob),
            "--n",
            "6",
            "--seed",
            "3",
            "--sampler",
            "exact",
            "--cols",
            "3",
            "--scale",
            "1",
            "-o",
            s(p),
        ];
        if let Some(r) = extra {
            args.extend(["--raw", s(r)]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let img = image::open(&a).unwrap();
    // 3 columns x (8 + 1) + 1 wide, 2 rows x 9 + 1 high.
    assert_eq!((img.width(), img.height()), (28, 19));
    let raws: Vec<_> = std::fs::read_dir(&raw).unwrap().collect();
    assert_eq!(raws.len(), 6);
    assert!(raw.join("sample_00003.png").is_file());

    let h = dir.path().join("h.png");
    let o = run(&[
        "sample",
        s(&blob),
        "--n",
        "4",
        "--sampler",
        "heun",
        "--steps",
        "10",
        "--nearest",
        s(&digits),
        "-o",
        s(&h),
    ]);
    assert!(ok_stdout(&o).contains("mean distance to the nearest training image"));
    let img = image::open(&h).unwrap();
    assert_eq!(img.width(), 2 + 8 * (16 + 2)); // 4 samples + 4 neighbours, scale 2, gap 2
}

/// A distilled file whose maps are exactly a Gaussian denoiser's `W_i = U diag(lambda/(lambda+s^2)) U^T`:
/// the shared-basis export must reconstruct it (basis error ~0) and sample.
#[test]
fn export_linear_from_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let (d, k, l) = (16usize, 3usize, 4usize);
    // Orthonormal basis: coordinate vectors e_0, e_5, e_10; lambda = 1, 0.5, 0.25.
    let idx = [0usize, 5, 10];
    let lambda = [1.0f32, 0.5, 0.25];
    let sigmas = [10.0f32, 2.0, 0.5, 0.1];
    let mut w = vec![0.0f32; l * d * d];
    let mut basis = vec![0.0f32; k * d];
    for (r, &i) in idx.iter().enumerate() {
        basis[r * d + i] = 1.0;
    }
    for (li, &sg) in sigmas.iter().enumerate() {
        for (r, &i) in idx.iter().enumerate() {
            w[li * d * d + i * d + i] = lambda[r] / (lambda[r] + sg * sg);
        }
    }
    let b = vec![0.01f32; l * d];
    let to_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (sb, wb, bb, ub) = (to_bytes(&sigmas), to_bytes(&w), to_bytes(&b), to_bytes(&basis));
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    let tensors = vec![
        ("sigmas", TensorView::new(Dtype::F32, vec![l], &sb).unwrap()),
        ("W", TensorView::new(Dtype::F32, vec![l, d, d], &wb).unwrap()),
        ("b", TensorView::new(Dtype::F32, vec![l, d], &bb).unwrap()),
        ("basis", TensorView::new(Dtype::F32, vec![k, d], &ub).unwrap()),
    ];
    let meta: HashMap<String, String> = [("dataset", "synthetic"), ("n_train", "100"), ("shape", "1,4,4")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let st = safetensors::serialize(tensors, Some(meta)).unwrap();
    let distilled = dir.path().join("distilled.safetensors");
    std::fs::write(&distilled, st).unwrap();
    let blob = dir.path().join("lin.gdn");
    let o = run(&["export", "--linear", s(&distilled), "-o", s(&blob)]);
    let out = ok_stdout(&o);
    assert!(out.contains("kind               linear-basis") && out.contains("rank               3"), "{out}");
    let err: f64 = out
        .lines()
        .find(|l| l.starts_with("basis approx error"))
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(err < 1e-6, "basis error {err}");
    let dense = dir.path().join("dense.gdn");
    let o = run(&["export", "--linear", s(&distilled), "--dense", "-o", s(&dense)]);
    assert!(ok_stdout(&o).contains("linear-dense"));
    let png = dir.path().join("s.png");
    let o = run(&["sample", s(&blob), "--n", "2", "--steps", "8", "-o", s(&png)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["sample", s(&blob), "--sampler", "exact", "-o", s(&png)]);
    assert!(!o.status.success() && stderr(&o).contains("expected a Gaussian or mixture blob"));

    // Missing tensor / bad shape metadata are named.
    let tensors = vec![("sigmas", TensorView::new(Dtype::F32, vec![l], &sb).unwrap())];
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, safetensors::serialize(tensors, None::<HashMap<String, String>>).unwrap()).unwrap();
    let o = run(&["export", "--linear", s(&bad), "-o", s(&dir.path().join("x.gdn"))]);
    assert_one_line_error(&o, &["bad.safetensors", "'W'"]);
    assert!(!dir.path().join("x.gdn").exists());
}

/// Run gaussdiff with its stdout on a pipe whose read end is closed before the process starts, so every
/// write to stdout gets EPIPE.
fn run_into_closed_pipe(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    bin().args(args).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap()
}

/// `gaussdiff inspect m.gdn | head` (and `gaussdiff export ... | head -1`): a reader that closed the pipe
/// before the report is written ends the output quietly (exit 0, nothing on stderr), not with a panic.
#[test]
fn reports_into_a_closed_pipe_exit_quietly() {
    let o = run_into_closed_pipe(&["inspect", s(&repo().join("firmware/blobs/frey-k40-f16.gdn"))]);
    assert!(o.status.success(), "status {:?}, stderr: {}", o.status, stderr(&o));
    assert!(stderr(&o).is_empty(), "stderr: {}", stderr(&o));
    // The same for export's summary: the blob is written, exit 0.
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("d.gdn");
    let o = run_into_closed_pipe(&[
        "export",
        "--dataset",
        s(&data("sklearn_digits/digits.csv.gz")),
        "--rank",
        "8",
        "-o",
        s(&blob),
    ]);
    assert!(o.status.success(), "status {:?}, stderr: {}", o.status, stderr(&o));
    assert!(stderr(&o).is_empty(), "stderr: {}", stderr(&o));
    assert!(blob.is_file());
}

/// The blob records how its data was prepared, and `sample --nearest` prepares the dataset the same way:
/// a resized fit with a hold-out finds its neighbours among the resized training images (before, the
/// unprepared dataset had the wrong d and the command failed). The report names the method the fit chose.
#[test]
fn preparation_is_recorded_and_nearest_applies_it() {
    let frey = data("frey_faces/frey_rawface.mat");
    let (dir, blob, out) =
        export_ok(&frey, &["--resize", "10x14", "--hold-out", "100", "--seed", "3", "--rank", "8"], "frey.gdn");
    assert!(out.contains("training images    1865"), "{out}");
    assert!(out.contains("fit method         d x d covariance"), "{out}");
    let o = run(&["inspect", s(&blob)]);
    let out = stdout(&o);
    assert_contains_all(&out, &["prep.resize", "10x14", "prep.hold_out", "prep.seed"]);
    let png = dir.path().join("nn.png");
    let o = run(&["sample", s(&blob), "--n", "2", "--sampler", "exact", "--nearest", s(&frey), "-o", s(&png)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("(model space, d = 140)"), "{}", stdout(&o));
}
