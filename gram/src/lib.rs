//! Exact Gram products of 8-bit pixel levels, for gaussdiff's Gaussian fit (host only).
//!
//! For a chunk of `m` images whose pixels are 8-bit levels `l` in `0..=255` (MNIST, Frey faces, CIFAR-10,
//! image folders), the fit's second moment needs the column sums `t_i = sum_k l_ki` and the Gram matrix
//! `S_ij = sum_k l_ki l_kj` of the selected pixels. Both are integers, and [`LevelGram`] computes them
//! exactly:
//! - on x86-64 with AVX-512 VNNI, with `vpdpbusd`, which multiplies 64 pairs of bytes and sums them by fours
//!   into 16 lanes of i32 in one instruction (8 times the multiply-adds of an AVX-512 f64 FMA);
//! - elsewhere (or with [`Kernel::Portable`]), with a portable kernel over the same packed layout.
//!
//! Integer sums do not depend on their order, so both kernels, any thread count and any machine give the
//! same bits; the tests compare both kernels with a plain i64 reference.
//!
//! # Method
//! `vpdpbusd` multiplies unsigned by signed bytes, so the kernel computes `C = L^T (L - 128)` with the
//! levels as the unsigned operand and `l - 128` (the level's byte with its top bit flipped) as the signed
//! one; then `S_ij = C_ij + 128 t_i`. Every product is at most `255 * 128` in magnitude, so `C` is exact
//! in i32 for up to [`MAX_IMAGES_PER_PASS`] images; longer inputs run in passes summed in i64.
//!
//! # Layout
//! Pixels are packed in panels of 16, images in groups of 4: the 64-byte block of panel `q` and group `g`
//! holds, at byte `4 c + r`, the level of pixel `16 q + c` in image `4 g + r` (one i32 lane per pixel, one
//! byte per image, as `vpdpbusd` wants it). A panel's blocks are contiguous over `g`. A tile of the output
//! is 8 pixels `i` (broadcast from one panel) by 48 pixels `j` (three panels): 24 accumulators. Only tiles
//! that reach the lower triangle `j <= i` run. Images run in cache blocks of 1,024 (the packed levels of
//! that many images for ~700 pixels fit in a core's L2), output row strips in parallel (rayon).
#![deny(unsafe_op_in_unsafe_fn)]

use rayon::prelude::*;

/// Pixels per packed panel (one i32 lane each in a 512-bit register).
const PANEL: usize = 16;
/// Images per group (bytes summed per lane by one `vpdpbusd`).
const GROUP: usize = 4;
/// Output rows (pixels `i`) per tile.
const ROWS: usize = 8;
/// Panels of pixels `j` per tile.
const COLS: usize = 3;
/// Pixels `j` per tile.
const TILE_J: usize = PANEL * COLS;
/// Groups per cache block (1,024 images).
const K_BLOCK: usize = 256;

/// Most images per pass: `|C_ij| <= 255 * 128 * 65,536 < 2^31`, so the i32 sums cannot overflow.
pub const MAX_IMAGES_PER_PASS: usize = 65_536;

/// One packed block: 16 pixels x 4 images.
type Block = [u8; PANEL * GROUP];

/// Which kernel computes the products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512 VNNI when the CPU has it, else the portable kernel.
    Auto,
    /// The portable kernel (same results; for tests and benchmarks).
    Portable,
}

impl Kernel {
    fn use_vnni(self) -> bool {
        self == Kernel::Auto && vnni_available()
    }
}

/// Whether this CPU runs the AVX-512 VNNI kernel (x86-64 with `avx512f`, `avx512bw` and `avx512vnni`).
pub fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Column sums and Gram matrix of 8-bit levels, with the buffers to compute them (kept across calls).
#[derive(Clone, Debug, Default)]
pub struct LevelGram {
    p: usize,
    sums: Vec<u64>,
    /// `p x p` row-major; the lower triangle (`j <= i`) is valid.
    s: Vec<i64>,
    a: Vec<Block>,
    c: Vec<i32>,
}

impl LevelGram {
    /// Empty; [`LevelGram::compute`] fills it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of selected pixels `p`.
    pub fn dim(&self) -> usize {
        self.p
    }

    /// `t_i = sum_k l_ki` for the selected pixels, in the order given.
    pub fn sums(&self) -> &[u64] {
        &self.sums
    }

    /// `S_ij = sum_k l_ki l_kj` (symmetric; either order of `i`, `j`).
    ///
    /// # Panics
    /// If `i` or `j` is not below [`LevelGram::dim`].
    pub fn get(&self, i: usize, j: usize) -> i64 {
        assert!(i < self.p && j < self.p, "LevelGram::get({i}, {j}) out of range for p = {}", self.p);
        let (i, j) = if j <= i { (i, j) } else { (j, i) };
        self.s[i * self.p + j]
    }

    /// Row `i` of `S` up to the diagonal: `S_i0 ..= S_ii`.
    ///
    /// # Panics
    /// If `i` is not below [`LevelGram::dim`].
    pub fn lower_row(&self, i: usize) -> &[i64] {
        assert!(i < self.p, "LevelGram::lower_row({i}) out of range for p = {}", self.p);
        &self.s[i * self.p..i * self.p + i + 1]
    }

    /// Compute `t` and `S` for the pixels `cols` of `rows`, an image-major matrix of levels with `d`
    /// pixels per image.
    ///
    /// # Panics
    /// If `d == 0`, `rows.len()` is not a multiple of `d`, or a column is not below `d`.
    pub fn compute(&mut self, rows: &[u8], d: usize, cols: &[usize], kernel: Kernel) {
        assert!(d > 0 && rows.len().is_multiple_of(d), "levels: {} values are not whole images of {d}", rows.len());
        assert!(cols.iter().all(|&c| c < d), "levels: a column is not below d = {d}");
        let p = cols.len();
        self.p = p;
        self.sums.clear();
        self.sums.resize(p, 0);
        self.s.clear();
        self.s.resize(p * p, 0);
        for pass in rows.chunks(MAX_IMAGES_PER_PASS * d) {
            self.pass(pass, d, cols, pass.len() / d, kernel);
        }
    }

    /// One pass of at most [`MAX_IMAGES_PER_PASS`] images, added to `sums` and `s`.
    fn pass(&mut self, rows: &[u8], d: usize, cols: &[usize], m: usize, kernel: Kernel) {
        let p = cols.len();
        if p == 0 || m == 0 {
            return;
        }
        let groups = m.div_ceil(GROUP);
        let panels = p.div_ceil(TILE_J) * COLS;
        let pp = panels * PANEL;
        // Pack the levels (the kernels flip the top bit of the second operand as they load it, l - 128 as
        // i8). Padding (pixels beyond p, images beyond m) is level 0 (-128 flipped); a 0 in the first
        // operand adds nothing to any product that is kept.
        // Cache block `kb` (images 1,024 kb ..) is contiguous, panel-major inside: blocks
        // `[kb * K_BLOCK * panels + q * len_kb + g']`; each parallel task packs one cache block. Every
        // block is written (padding included), so the buffers are only resized, not cleared.
        self.a.resize(panels * groups, [0; 64]);
        let kblocks = groups.div_ceil(K_BLOCK);
        let mut block_sums = vec![vec![0u32; pp]; kblocks];
        let runs = &runs(cols);
        self.a[..panels * groups].par_chunks_mut(K_BLOCK * panels).zip(block_sums.par_iter_mut()).enumerate().for_each(
            |(kb, (a, sums))| {
                // Compiled for the widest SIMD this CPU has (pulp's runtime dispatch), so the interleave and
                // the sums vectorise.
                pulp::Arch::new().dispatch(Pack { rows, d, runs, m, kb, panels, a, sums });
            },
        );
        let t: Vec<u64> = (0..p).map(|i| block_sums.iter().map(|s| u64::from(s[i])).sum()).collect();
        // C = L^T (L - 128), lower tiles only, in row strips of ROWS pixels; images in cache blocks.
        self.c.clear();
        self.c.resize(pp * pp, 0);
        let vnni = kernel.use_vnni();
        let strips = p.div_ceil(ROWS);
        for a in self.a.chunks(K_BLOCK * panels) {
            let len = a.len() / panels;
            self.c[..strips * ROWS * pp].par_chunks_mut(ROWS * pp).enumerate().for_each(|(h, c)| {
                strip(a, len, h, pp, c, vnni);
            });
        }
        // S_ij = C_ij + 128 t_i, summed over passes.
        for (i, &ti) in t.iter().enumerate() {
            self.sums[i] += ti;
            let c = &self.c[i * pp..i * pp + i + 1];
            for (s, &cij) in self.s[i * p..i * p + i + 1].iter_mut().zip(c) {
                *s += i64::from(cij) + 128 * ti as i64;
            }
        }
    }
}

/// A run of consecutive selected pixels: `len` pixels from `src` in the image to `dst` in the selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    src: usize,
    dst: usize,
    len: usize,
}

/// The selected pixels `cols` as runs of consecutive pixels (an image's varying pixels come in runs along
/// its rows), so that the pack copies slices instead of gathering byte by byte.
fn runs(cols: &[usize]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (dst, &src) in cols.iter().enumerate() {
        match out.last_mut() {
            Some(r) if r.src + r.len == src => r.len += 1,
            _ => out.push(Run { src, dst, len: 1 }),
        }
    }
    out
}

/// Cache block `kb` of the images (`rows`, `m` of them, `d` pixels each), packed for the selected pixels
/// (`runs`) into the panels' blocks `a`, and each pixel's sum added to `sums`: pulp's SIMD operation, so
/// that its body is compiled for the CPU's widest SIMD (a closure passed to `dispatch` is not inlined into
/// it).
struct Pack<'a> {
    rows: &'a [u8],
    d: usize,
    runs: &'a [Run],
    m: usize,
    kb: usize,
    panels: usize,
    a: &'a mut [Block],
    sums: &'a mut [u32],
}

impl pulp::WithSimd for Pack<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self { rows, d, runs, m, kb, panels, a, sums } = self;
        pack_block(rows, d, runs, m, kb, panels, a, sums);
    }
}

/// [`Pack`]'s body.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pack_block(
    rows: &[u8],
    d: usize,
    runs: &[Run],
    m: usize,
    kb: usize,
    panels: usize,
    a: &mut [Block],
    sums: &mut [u32],
) {
    let len = a.len() / panels;
    let pp = panels * PANEL;
    // The group's 4 images, selected pixels only, zero-padded to pp pixels.
    let mut sel = [vec![0u8; pp], vec![0u8; pp], vec![0u8; pp], vec![0u8; pp]];
    for gl in 0..len {
        let g = kb * K_BLOCK + gl;
        for (r, s) in sel.iter_mut().enumerate() {
            let k = g * GROUP + r;
            if k < m {
                let img = &rows[k * d..(k + 1) * d];
                for r in runs {
                    s[r.dst..r.dst + r.len].copy_from_slice(&img[r.src..r.src + r.len]);
                }
            } else {
                s.fill(0);
            }
        }
        for q in 0..panels {
            let lane = |r: usize| &sel[r][q * PANEL..(q + 1) * PANEL];
            let (s0, s1, s2, s3) = (lane(0), lane(1), lane(2), lane(3));
            let mut words = [0u32; PANEL];
            for (c, w) in words.iter_mut().enumerate() {
                *w = u32::from_le_bytes([s0[c], s1[c], s2[c], s3[c]]);
            }
            a[q * len + gl] = bytemuck::cast(words);
        }
        for s in &sel {
            for (t, &x) in sums.iter_mut().zip(s) {
                *t += u32::from(x);
            }
        }
    }
}

/// Accumulate the tiles of row strip `h` (pixels `8 h .. 8 h + 8`) over one cache block (`a`: its panels
/// of `len` groups each) into `c` (`ROWS` rows of the padded output, `pp` wide).
fn strip(a: &[Block], len: usize, h: usize, pp: usize, c: &mut [i32], vnni: bool) {
    let i0 = h * ROWS;
    let qa = i0 / PANEL;
    let half = i0 % PANEL;
    let b = a;
    let a = &a[qa * len..(qa + 1) * len];
    // Tiles j0 = 48 t with j0 <= i0 + 7 reach the lower triangle.
    let tiles = (i0 + ROWS - 1) / TILE_J + 1;
    for t in 0..tiles {
        let panel = |u: usize| {
            let q = t * COLS + u;
            &b[q * len..(q + 1) * len]
        };
        let bq = [panel(0), panel(1), panel(2)];
        let mut acc = [[0i32; PANEL]; ROWS * COLS];
        for (r, row) in acc.chunks_exact_mut(COLS).enumerate() {
            for (u, lanes) in row.iter_mut().enumerate() {
                let j = t * TILE_J + u * PANEL;
                lanes.copy_from_slice(&c[r * pp + j..r * pp + j + PANEL]);
            }
        }
        tile(a, half, bq, &mut acc, vnni);
        for (r, row) in acc.chunks_exact(COLS).enumerate() {
            for (u, lanes) in row.iter().enumerate() {
                let j = t * TILE_J + u * PANEL;
                c[r * pp + j..r * pp + j + PANEL].copy_from_slice(lanes);
            }
        }
    }
}

/// `acc[r * COLS + u][lane] += sum_g sum_k a[g][4 (half + r) + k] * ((b[u][g][4 lane + k] ^ 0x80) as i8)`:
/// the second operand's levels `l` with the top bit flipped, `l - 128`.
fn tile(a: &[Block], half: usize, b: [&[Block]; COLS], acc: &mut [[i32; PANEL]; ROWS * COLS], vnni: bool) {
    #[cfg(target_arch = "x86_64")]
    if vnni {
        // SAFETY: `vnni` is only true when `vnni_available()` found avx512f, avx512bw and avx512vnni on
        // this CPU, the target features `tile_vnni` is compiled for; it has no other requirement.
        #[allow(unsafe_code)]
        unsafe {
            if half == 0 {
                tile_vnni::<0>(a, b, acc);
            } else {
                tile_vnni::<ROWS>(a, b, acc);
            }
        }
        return;
    }
    let _ = vnni;
    tile_portable(a, half, b, acc);
}

/// The portable kernel: the same sums as [`tile_vnni`], in plain integer arithmetic.
fn tile_portable(a: &[Block], half: usize, b: [&[Block]; COLS], acc: &mut [[i32; PANEL]; ROWS * COLS]) {
    for (g, ab) in a.iter().enumerate() {
        for r in 0..ROWS {
            let x = &ab[GROUP * (half + r)..GROUP * (half + r + 1)];
            for (u, bu) in b.iter().enumerate() {
                let y = &bu[g];
                for (lane, out) in acc[r * COLS + u].iter_mut().enumerate() {
                    let mut s = 0i32;
                    for k in 0..GROUP {
                        s += i32::from(x[k]) * i32::from((y[GROUP * lane + k] ^ 0x80) as i8);
                    }
                    *out += s;
                }
            }
        }
    }
}

/// The AVX-512 VNNI kernel: per group, 3 loads (each with its top bits flipped, `l - 128`), 8 broadcasts
/// and 24 `vpdpbusd`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn tile_vnni<const HALF: usize>(a: &[Block], b: [&[Block]; COLS], acc: &mut [[i32; PANEL]; ROWS * COLS]) {
    use std::arch::x86_64::{__m512i, _mm512_dpbusd_epi32, _mm512_set1_epi32, _mm512_set1_epi8, _mm512_xor_si512};
    let flip = _mm512_set1_epi8(i8::MIN);
    let mut v: [__m512i; ROWS * COLS] = [bytemuck::cast::<[i32; PANEL], __m512i>([0; PANEL]); ROWS * COLS];
    for (x, lanes) in v.iter_mut().zip(acc.iter()) {
        *x = bytemuck::cast(*lanes);
    }
    for (((ab, b0), b1), b2) in a.iter().zip(b[0]).zip(b[1]).zip(b[2]) {
        let ad: [i32; PANEL] = bytemuck::cast(*ab);
        let bv: [__m512i; COLS] = [
            _mm512_xor_si512(bytemuck::cast(*b0), flip),
            _mm512_xor_si512(bytemuck::cast(*b1), flip),
            _mm512_xor_si512(bytemuck::cast(*b2), flip),
        ];
        for r in 0..ROWS {
            let x = _mm512_set1_epi32(ad[HALF + r]);
            for u in 0..COLS {
                v[r * COLS + u] = _mm512_dpbusd_epi32(v[r * COLS + u], x, bv[u]);
            }
        }
    }
    for (x, lanes) in v.iter().zip(acc.iter_mut()) {
        *lanes = bytemuck::cast(*x);
    }
}

#[cfg(test)]
mod tests;
