//! Every subcommand's `--help` ends with an example (issue 17): the last paragraph starts with "Example"
//! and its lines are `gaussdiff-train <subcommand> ...` commands.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_gaussdiff-train")).args(args).output().expect("spawn gaussdiff-train");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn every_subcommand_help_ends_with_an_example() {
    let top = help(&["--help"]);
    let subs = gaussdiff_tests::subcommands(&top);
    for want in ["train", "distill", "metrics", "bench", "experiment"] {
        assert!(subs.iter().any(|s| s == want), "{want} not listed: {subs:?}");
    }
    for sub in &subs {
        let para = gaussdiff_tests::last_paragraph(&help(&[sub, "--help"]));
        assert!(para.len() >= 2 && para[0].starts_with("Example"), "{sub}: last paragraph {para:?}");
        for line in &para[1..] {
            assert!(line.trim_start().starts_with(&format!("gaussdiff-train {sub}")), "{sub}: {line:?}");
        }
    }
}
