//! The display under QEMU: the firmware built with `screen-frame` draws every sample with
//! `gaussdiff_screen::draw` into a 240 x 240 RGB565 framebuffer and sends it as a screen frame;
//! `gaussdiff capture --blob` turns each into `screen-*.png`, renders the host's screen of the same sample
//! with the same drawing code into `screen-*-host.png`, and the two PNG files are identical byte for byte.
//! A changed caption time in the stream makes the host's rendering differ, and capture fails.
//! Skips locally without qemu-system-arm/flip-link or the gaussdiff binary; fails when `CI` is set.

mod firmware_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use firmware_support as fw;
use gaussdiff_core::frame::{self, Item};

fn capture(bin: &Path, text: &str, dir: &Path, name: &str) -> (bool, String) {
    let input = dir.join(format!("{name}.txt"));
    std::fs::write(&input, text).unwrap();
    let res = Command::new(bin)
        .arg("capture")
        .arg(&input)
        .arg("-o")
        .arg(dir.join(name))
        .arg("--blob")
        .arg(fw::default_blob())
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    (res.status.success(), all)
}

#[test]
fn qemu_screen_frames_are_identical_to_the_hosts_rendering() {
    if fw::qemu_missing() {
        return;
    }
    let Some(bin) = fw::gaussdiff_binary() else { return };
    let envs = [("GAUSSDIFF_RUNS", "exact,heun:3"), ("GAUSSDIFF_SEEDS", "0,1"), ("GAUSSDIFF_VALUES", "0")];
    let build = fw::build("qemu,screen-frame", &envs, "qemu-screen");
    let run = fw::qemu_ok(&build.elf, Duration::from_secs(180));
    let screens: Vec<_> = frame::decode(&run.stdout)
        .into_iter()
        .filter_map(|i| match i.unwrap_or_else(|e| panic!("bad frame: {e}")) {
            Item::Screen(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        screens.len(),
        4,
        "{}",
        run.stdout.lines().filter(|l| !l.contains(" s ")).collect::<Vec<_>>().join("\n")
    );
    for s in &screens {
        eprintln!("screen {:?}: draw_instr={}", s.spec, s.extra("draw_instr").unwrap_or("?"));
    }

    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = capture(&bin, &run.stdout, dir.path(), "good");
    assert!(ok, "capture failed:\n{out}");
    assert_eq!(out.matches("identical to the host's rendering").count(), 4, "{out}");
    let pngs = dir.path().join("good");
    let mut targets: Vec<_> = std::fs::read_dir(&pngs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("screen-") && !n.ends_with("-host.png")
        })
        .collect();
    targets.sort();
    assert_eq!(targets.len(), 4, "{targets:?}");
    let mut seen = Vec::new();
    for target in &targets {
        let host = target.with_file_name(target.file_name().unwrap().to_string_lossy().replace(".png", "-host.png"));
        let (a, b) = (std::fs::read(target).unwrap(), std::fs::read(&host).unwrap());
        assert!(a == b, "{} and {} differ", target.display(), host.display());
        // Four different samples and captions: four different screens.
        assert!(!seen.contains(&a), "{} repeats an earlier screen", target.display());
        seen.push(a);
    }

    // The first screen's caption time changed in the stream: its pixels no longer match the host's
    // rendering of the caption it names, and capture fails.
    let first = run.stdout.lines().find(|l| l.contains("@GDF1 screen ")).unwrap();
    let instr = first.split_whitespace().find_map(|w| w.strip_prefix("instr=")).unwrap();
    let changed = first.replacen(&format!("instr={instr}"), &format!("instr={}", instr.parse::<u64>().unwrap() + 1), 1);
    let (ok, out) = capture(&bin, &run.stdout.replacen(first, &changed, 1), dir.path(), "bad");
    assert!(!ok && out.contains("pixels differ from the host's rendering"), "{out}");
}
