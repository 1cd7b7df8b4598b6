//! The main job in quick mode on the shipped data: outputs exist and are sane.

mod common;
use common::*;

#[test]
fn demo_quick_writes_gallery_report_and_blobs() {
    let dir = tempfile::tempdir().unwrap();
    // Missing parents are created, as the default `out/demo` needs on a fresh checkout.
    let out = dir.path().join("out").join("demo");
    let o = run(&["demo", "--quick", "--out", s(&out)]);
    assert!(o.status.success(), "demo failed: {}", stderr(&o));
    for name in ["digits", "mnist", "frey"] {
        let blob = std::fs::read(out.join(format!("{name}.gdn"))).unwrap();
        assert_eq!(&blob[..4], b"GDN1", "{name} blob magic");
        let img = image::open(out.join(format!("{name}.png"))).unwrap();
        assert!(img.width() > 4 * 8 && img.height() > 3 * 8, "{name} gallery size");
        // Not a blank image: samples have contrast.
        let g = img.to_luma8();
        let (lo, hi) = g.pixels().fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
        assert!(hi - lo > 100, "{name} gallery has no contrast");
    }
    let gallery = image::open(out.join("gallery.png")).unwrap().to_luma8();
    assert!(gallery.height() > 100);
    // Labels are drawn: black text on the white label column left of the tiles (the title, 3 block
    // headers and 9 row labels), and the background there is white.
    let label_col = |x: u32| x < 8 * 2 * "nearest training image".len() as u32;
    let ink = gallery.enumerate_pixels().filter(|(x, _, p)| label_col(*x) && p[0] < 64).count();
    let white = gallery.enumerate_pixels().filter(|(x, _, p)| label_col(*x) && p[0] == 255).count();
    assert!(ink > 2000 && white > 10 * ink, "label column: {ink} ink pixels, {white} white");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| digits |") && report.contains("| mnist |") && report.contains("| frey |"), "{report}");
    // The nearest-neighbour table: finite, positive distances (samples are not copies).
    let nn_rows: Vec<&str> =
        report.lines().filter(|l| l.starts_with("| ") && l.contains('.') && !l.contains("dataset")).collect();
    assert!(nn_rows.len() >= 6, "{report}");
    for row in report
        .split("## Nearest-neighbour distances")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| ["| digits |", "| mnist |", "| frey |"].iter().any(|p| l.starts_with(p)))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let nn_exact: f64 = cells[2].parse().unwrap_or_else(|_| panic!("bad number in {row}"));
        let held: f64 = cells[5].parse().unwrap();
        assert!(nn_exact > 0.1 && nn_exact.is_finite() && held > 0.1, "{row}");
        let rms: f64 = cells[6].parse().unwrap();
        assert!(rms < 0.05, "Heun-18 should agree with the exact solution: {row}");
    }
    assert!(report.contains("MACs/sample"));
}
