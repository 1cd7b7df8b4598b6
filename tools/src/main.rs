//! `gaussdiff`: the command-line tool (skeleton; filled by the CLI issue).
fn main() -> anyhow::Result<()> {
    use clap::Parser;
    #[derive(Parser, Debug)]
    #[command(name = "gaussdiff", version, about = "Gaussian diffusion denoisers for host and microcontroller")]
    struct Cli {}
    let _ = Cli::parse();
    Ok(())
}
