//! Mixture blobs through the binary: export --mixture labels / K, inspect, sample --class (index, label,
//! all), unconditional sampling, and the errors of --class.

mod common;
use common::*;

#[test]
fn mixture_export_inspect_sample() {
    let digits = data("sklearn_digits/digits.csv.gz");
    let (dir, blob, out) =
        export_ok(&digits, &["--mixture", "labels", "--rank", "8", "--floor", "auto", "--dtype", "i8"], "mix.gdn");
    assert_contains_all(
        &out,
        &["kind               mixture", "rank               8", "components         10", "label 9"],
    );
    let o = run(&["inspect", s(&blob)]);
    let out = ok_stdout(&o);
    assert_contains_all(
        &out,
        &["kind          mixture", "components    10 (rank 8 each)", "component_labels", "0,1,2,3,4,5,6,7,8,9"],
    );
    let png = |name: &str| dir.path().join(name);
    for (class, sampler, file) in [("7", "exact", "c7.png"), ("all", "exact", "all.png"), ("3", "heun", "c3.png")] {
        let o = run(&[
            "sample",
            s(&blob),
            "--class",
            class,
            "--sampler",
            sampler,
            "--steps",
            "8",
            "--n",
            "4",
            "-o",
            s(&png(file)),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(stdout(&run(&[
        "sample",
        s(&blob),
        "--class",
        "all",
        "--sampler",
        "exact",
        "--n",
        "2",
        "-o",
        s(&png("x.png"))
    ]))
    .contains("20 samples"));
    // Unconditional: the mixture ODE and the pick-then-exact sampler.
    for sampler in ["heun", "exact"] {
        let o = run(&["sample", s(&blob), "--sampler", sampler, "--steps", "6", "--n", "4", "-o", s(&png("u.png"))]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = run(&["sample", s(&blob), "--class", "12", "--n", "1", "-o", s(&png("bad.png"))]);
    assert_one_line_error(&o, &["--class 12", "0..9"]);

    // Unsupervised, deterministic for a seed.
    let (a, b) = (dir.path().join("a.gdn"), dir.path().join("b.gdn"));
    for p in [&a, &b] {
        let o = export(&digits, &["--mixture", "4", "--rank", "4", "--seed", "3"], p);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let o = run(&["sample", s(&a), "--class", "zero", "--n", "1", "-o", s(&png("bad.png"))]);
    assert_one_line_error(&o, &["--class zero", "none stored"]);
}
