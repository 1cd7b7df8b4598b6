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

/// Memory bounds of the bad-input batteries (issue 16): every case must stay under [`memory::PEAK`] of
/// resident memory, and runs under an address-space limit that stops a runaway allocation before it can
/// take the machine.
pub mod memory {
    /// Peak resident memory a bad-input case may use: 1 GiB.
    pub const PEAK: u64 = 1 << 30;

    /// The address-space limit for a case (`prlimit --as`): [`PEAK`] plus the workspace faer's x86 GEMM
    /// (`private-gemm-x86`) reserves, uninitialised, in every thread that multiplies: twice the L3 size the
    /// kernel reports, per thread (all cores and the main thread). That reservation is address space, not
    /// memory (the GEMM touches only what its blocking needs), but on a VM that reports a 480 MiB L3 it is
    /// 960 MiB per thread, and a bare 1 GiB limit aborted any fit.
    /// Read from `/sys` once per test process.
    pub fn address_space_limit() -> u64 {
        static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        *LIMIT.get_or_init(|| {
            let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) as u64 + 1;
            PEAK + 2 * l3_bytes() * threads
        })
    }

    /// The largest L3 (level 3) cache size in `/sys/devices/system/cpu/cpu*/cache/index*/size`, in bytes
    /// (0 where there is none or no such files).
    fn l3_bytes() -> u64 {
        let Ok(cpus) = std::fs::read_dir("/sys/devices/system/cpu") else { return 0 };
        let mut best = 0;
        for cpu in cpus.flatten() {
            let Ok(indices) = std::fs::read_dir(cpu.path().join("cache")) else { continue };
            for index in indices.flatten() {
                let read = |f: &str| std::fs::read_to_string(index.path().join(f)).unwrap_or_default();
                if read("level").trim() != "3" {
                    continue;
                }
                let size = read("size");
                let size = size.trim();
                let (digits, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit()).unwrap_or(size.len()));
                let scale = match unit {
                    "K" => 1 << 10,
                    "M" => 1 << 20,
                    "G" => 1 << 30,
                    _ => 1,
                };
                best = best.max(digits.parse::<u64>().unwrap_or(0) * scale);
            }
        }
        best
    }

    /// The peak resident memory, in bytes, of the largest child process this process has waited for,
    /// including their own waited-for children (`getrusage(RUSAGE_CHILDREN)`, `ru_maxrss`; Linux).
    ///
    /// # Panics
    /// If `getrusage` fails.
    #[allow(unsafe_code)]
    pub fn children_peak_rss() -> u64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `usage` is a valid, writable `rusage`; getrusage writes it and nothing else.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
        assert_eq!(rc, 0, "getrusage failed");
        // SAFETY: getrusage returned 0, so it initialised `usage` (it was zeroed before anyway).
        let usage = unsafe { usage.assume_init() };
        u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
    }
}
