//! Helpers shared by the end-to-end tests in `tests/tests/` and by the binaries' own integration tests.

/// The subcommands a clap `--help` text lists under `Commands:` (without `help`).
///
/// # Panics
/// If the text has no `Commands:` section.
pub fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The last paragraph of a help text (its lines after the last blank line).
pub fn last_paragraph(text: &str) -> Vec<String> {
    let mut para: Vec<String> =
        text.trim_end().lines().rev().take_while(|l| !l.trim().is_empty()).map(str::to_string).collect();
    para.reverse();
    para
}
