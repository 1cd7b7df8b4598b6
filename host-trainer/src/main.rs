//! `gaussdiff-train` (skeleton; filled by the trainer issue).
fn main() -> anyhow::Result<()> {
    Ok(())
}
