//! Helpers shared by the CLI tests (included with `mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gaussdiff"));
    c.current_dir(repo());
    c
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn data(rel: &str) -> PathBuf {
    repo().join("data").join(rel)
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn gaussdiff")
}

/// `gaussdiff export --dataset <dataset> <flags> -o <out>`.
pub fn export(dataset: &Path, flags: &[&str], out: &Path) -> Output {
    let mut args = vec!["export", "--dataset", s(dataset)];
    args.extend_from_slice(flags);
    args.extend(["-o", s(out)]);
    run(&args)
}

/// `export` of `dataset` with `flags` into a fresh temporary folder as `name`, which must succeed: the
/// folder, the blob's path and export's report.
pub fn export_ok(dataset: &Path, flags: &[&str], name: &str) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join(name);
    let out = ok_stdout(&export(dataset, flags, &blob));
    (dir, blob, out)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The stdout of a command that must have succeeded (its stderr is the failure message).
pub fn ok_stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o)
}

/// `out` contains every key.
pub fn assert_contains_all(out: &str, keys: &[&str]) {
    for key in keys {
        assert!(out.contains(key), "missing {key:?} in\n{out}");
    }
}

/// The command failed with exactly one line on stderr that contains every needle.
pub fn assert_one_line_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{err}");
    for n in needles {
        assert!(lines[0].contains(n), "error line lacks {n:?}: {}", lines[0]);
    }
}

/// No file in `dir` other than `keep` (no partial output, no leftover temporary files).
pub fn assert_only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    names.sort();
    assert!(names.is_empty(), "unexpected files left in {}: {names:?}", dir.display());
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
