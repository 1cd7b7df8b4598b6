//! `gaussdiff`: fit Gaussian diffusion denoisers on real datasets, export them as blobs for host and
//! microcontroller, inspect blobs, sample from them, and run the main demo.

mod batch;
mod cmd;
mod limits;
mod util;

use clap::{Parser, Subcommand};

// mimalloc: the fit allocates tens of MiB of buffers (levels, packed panels, covariance). mimalloc v3 (the
// `mimalloc` crate's default) returns freed memory to the OS after its `purge_delay` of 1 s
// (`MIMALLOC_VERBOSE=1 gaussdiff --version` lists it), so fits that follow each other (the demo's, `bench-fit`'s
// repeats) reuse the pages instead of faulting them in again; only a process's first fit pays for them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "gaussdiff",
    version,
    about = "Gaussian diffusion denoisers for host and microcontroller",
    long_about = "Fit the Gaussian (optimal linear) denoiser of an image dataset, export it as a checksummed blob \
                  that a Cortex-M runs, inspect blobs, and sample images on the host.\n\n\
                  Start with `gaussdiff demo` (fits, exports and samples the datasets shipped in data/)."
)]
struct Cli {
    /// No progress bars or spinners (they are hidden anyway when stderr is not a terminal).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fit a Gaussian to a dataset (or convert distilled linear maps) and write a blob.
    #[command(
        after_help = "Examples:\n  gaussdiff export --dataset data/mnist/t10k-images-idx3-ubyte.gz --rank 64 --floor auto --dtype f16 -o mnist.gdn\n  gaussdiff export --linear runs/digits/linear.safetensors -o linear.gdn"
    )]
    Export(cmd::export::ExportArgs),
    /// Show a blob's header, metadata, sections, checksum and what it needs on a target.
    #[command(after_help = "Example:\n  gaussdiff inspect mnist.gdn")]
    Inspect(cmd::inspect::InspectArgs),
    /// Sample images from a blob with the core sampler (bit-identical to the firmware) into a PNG grid.
    #[command(
        after_help = "Example:\n  gaussdiff sample mnist.gdn --n 64 --seed 0 --sampler heun --steps 18 -o grid.png --nearest data/mnist/t10k-images-idx3-ubyte.gz"
    )]
    Sample(cmd::sample::SampleArgs),
    /// The main job: fit, export and sample digits, MNIST and Frey faces; write a gallery and a report.
    #[command(after_help = "Example:\n  gaussdiff demo --out out/demo")]
    Demo(cmd::demo::DemoArgs),
    /// Turn a captured firmware frame stream into PNG files and verify the checksums.
    #[command(
        after_help = "Example:\n  gaussdiff capture firmware/capture.txt -o capture --blob firmware/blobs/olivetti-k40-f16.gdn"
    )]
    Capture(cmd::capture::CaptureArgs),
    /// Benchmark helper: time the Gaussian fit of a dataset (used by bench/bench_fit.py).
    #[command(
        hide = true,
        after_help = "Example:\n  python3 bench/bench_fit.py  (runs gaussdiff bench-fit on each benchmark shape)"
    )]
    BenchFit(cmd::bench::BenchFitArgs),
    /// Benchmark helper: sampling throughput, per-sample core path and batched host path.
    #[command(hide = true, after_help = "Example:\n  gaussdiff bench-sample mnist.gdn")]
    BenchSample(cmd::bench::BenchSampleArgs),
}

fn main() {
    let cli = Cli::parse();
    util::set_quiet(cli.quiet);
    let result = match &cli.command {
        Command::Export(a) => cmd::export::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Sample(a) => cmd::sample::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Capture(a) => cmd::capture::run(a),
        Command::BenchFit(a) => cmd::bench::run_fit(a),
        Command::BenchSample(a) => cmd::bench::run_sample(a),
    };
    if let Err(e) = result {
        // One line: the context chain joined, naming the input and what was expected.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
