//! The seed -> noise path as `docs/noise.md` specifies it, reproduced by an independent Python
//! implementation (`tests/python/noise_reference.py`, NumPy), must give the core's f32 bits exactly.
//! Skipped (with a message) where `python3` with NumPy is not available.

use std::path::Path;
use std::process::Command;

use gaussdiff_core::sampler::initial_noise;

#[test]
fn python_reproduces_the_noise_bits() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/noise_reference.py");
    let ok = Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 with numpy not found");
        return;
    }
    // Seeds near 0, large ones (wrapping), odd d, MNIST's d.
    for (seed, n, d) in [(0u64, 16u64, 784usize), (12345, 8, 63), (u64::MAX - 3, 8, 5), (1 << 40, 4, 3072)] {
        let o = Command::new("python3")
            .arg(&script)
            .args(["--seed", &seed.to_string(), "--n", &n.to_string(), "--d", &d.to_string()])
            .output()
            .expect("run python3");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, n);
        for (i, line) in lines.iter().enumerate() {
            let mut x = vec![0.0f32; d];
            initial_noise(seed, i as u64, 80.0, &mut x);
            let py: Vec<u32> = line.split(' ').map(|h| u32::from_str_radix(h, 16).unwrap()).collect();
            assert_eq!(py.len(), d);
            let differ = x.iter().zip(&py).filter(|(a, b)| a.to_bits() != **b).count();
            assert_eq!(differ, 0, "seed {seed} sample {i}: {differ} of {d} values differ");
        }
        eprintln!("seed {seed}: {} values bit-identical", n as usize * d);
    }
}
