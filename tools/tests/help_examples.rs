//! Every subcommand's `--help` ends with an example (issue 17): the last paragraph starts with "Example"
//! and its lines are commands.

mod common;
use common::*;

/// The subcommands `gaussdiff --help` lists, plus the hidden benchmark helpers.
fn subcommands() -> Vec<String> {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mut v = gaussdiff_tests::subcommands(&text);
    assert!(v.len() >= 5, "{text}");
    v.extend(["bench-fit".to_string(), "bench-sample".to_string()]);
    v
}

#[test]
fn every_subcommand_help_ends_with_an_example() {
    let subs = subcommands();
    for want in ["export", "inspect", "sample", "capture", "demo"] {
        assert!(subs.iter().any(|s| s == want), "{want} not listed: {subs:?}");
    }
    for sub in &subs {
        for flag in ["--help", "-h"] {
            let o = run(&[sub, flag]);
            assert!(o.status.success(), "{sub} {flag}");
            let para = gaussdiff_tests::last_paragraph(&String::from_utf8_lossy(&o.stdout));
            assert!(para.len() >= 2 && para[0].starts_with("Example"), "{sub} {flag}: last paragraph {para:?}");
            for line in &para[1..] {
                let l = line.trim_start();
                assert!(
                    l.starts_with(&format!("gaussdiff {sub} ")) || l.starts_with("python3 bench/"),
                    "{sub}: example line {l:?} is not a {sub} command"
                );
            }
        }
    }
}
