//! `gaussdiff export`: fit a Gaussian to a dataset, or convert a distilled linear denoiser, into a blob.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use gaussdiff_core::blob::write::LinearMaps;
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_core::tensor::DType;
use gaussdiff_fit::dataset::{Dataset, LoadOptions};
use gaussdiff_fit::export::{self, Provenance};
use gaussdiff_fit::gaussian::{self as fit, FitOptions, Floor, GaussianFit, Rank};
use gaussdiff_fit::mixture::{fit_mixture, Assignment, MixtureFit};

use crate::util::{self, DatasetArgs};

/// The `tool_version` metadata of the blobs the CLI writes.
const TOOL: &str = concat!("gaussdiff ", env!("CARGO_PKG_VERSION"));

/// Arguments of `gaussdiff export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Keep exactly K eigenvectors (1 <= K <= min(d, n-1)). With --linear: the shared-basis rank.
    #[arg(long, value_name = "K", conflicts_with = "variance")]
    pub rank: Option<usize>,
    /// Keep the fewest eigenvectors explaining this fraction of the variance (default 0.99).
    #[arg(long, value_name = "F")]
    pub variance: Option<f64>,
    /// Isotropic variance c of the discarded directions: none, auto (mean of the discarded eigenvalues) or a value.
    #[arg(long, default_value = "none", value_name = "none|auto|VALUE")]
    pub floor: Floor,
    /// Storage type of the large matrices: f32, f16 or i8 (per-row scales).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// Convert the trainer's distilled linear maps (safetensors, docs/distill-format.md) instead of fitting.
    /// The dataset flags (and --variance, --floor) do not apply and are refused with it.
    #[arg(
        long,
        value_name = "DISTILLED",
        conflicts_with_all = ["variance", "dataset", "format", "limit", "seed", "grayscale", "resize", "hold_out", "floor"]
    )]
    pub linear: Option<PathBuf>,
    /// With --linear: store dense W_i even for large d (default: dense only for d <= 256 without --rank).
    #[arg(long, requires = "linear")]
    pub dense: bool,
    /// Fit a mixture of low-rank Gaussians (kind 4): `labels` (one component per dataset label, e.g. the
    /// IDX labels file beside the images) or a number K of unsupervised components (k-means++ seeded by
    /// --seed, then hard-EM). --rank / --variance / --floor apply per component (one common rank).
    #[arg(long, value_name = "labels|K", conflicts_with = "linear")]
    pub mixture: Option<MixtureArg>,
    /// With --mixture labels: the labels, one per image of the dataset file (before --hold-out / --limit),
    /// in place of the dataset's own: an IDX label file (`00 00 08 01`, gzipped or not) or a CSV column,
    /// `FILE.csv[:COLUMN]` (0-based index or header name; default the last column).
    #[arg(long, value_name = "L", requires = "mixture")]
    pub labels: Option<String>,
    /// With --mixture K: hard-EM (K-subspaces) refinement steps after k-means.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub em_steps: usize,
    /// Output blob.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `--mixture labels` or `--mixture K`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixtureArg {
    /// One component per label.
    Labels,
    /// K unsupervised components.
    Components(usize),
}

impl std::str::FromStr for MixtureArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "labels" => Ok(Self::Labels),
            _ => match s.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(Self::Components(k)),
                _ => Err(format!("invalid mixture '{s}': expected labels or a number of components >= 1")),
            },
        }
    }
}

/// The one storage-type parser (`gaussdiff_fit::export`).
pub use gaussdiff_fit::export::parse_dtype;

/// What an export wrote (printed, and used by the demo report).
#[derive(Debug, Clone)]
pub struct Summary {
    pub kind: &'static str,
    pub d: usize,
    pub rank: usize,
    pub floor: f64,
    pub dtype: DType,
    pub bytes: usize,
    pub explained_variance: Option<f64>,
    /// (tensor name, its storage type, relative Frobenius error of the stored values).
    pub quant_errors: Vec<(&'static str, DType, f64)>,
    /// Linear export: worst relative Frobenius error of the shared-basis approximation of W_i.
    pub basis_error: Option<f64>,
    pub n_train: usize,
    /// How the fit computed the eigenpairs (Gaussian exports).
    pub method: Option<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "kind               {}", self.kind)?;
        writeln!(f, "d                  {}", self.d)?;
        if self.kind == "linear-dense" {
            writeln!(f, "rank               {} (dense maps: no basis)", self.rank)?;
        } else {
            writeln!(f, "rank               {}", self.rank)?;
        }
        if self.kind == "gaussian" {
            writeln!(f, "floor              {:.6e}", self.floor)?;
        } else if self.kind == "mixture" {
            writeln!(f, "floor (mean)       {:.6e}", self.floor)?;
        }
        writeln!(f, "dtype              {}", self.dtype.name())?;
        writeln!(f, "bytes              {}", self.bytes)?;
        writeln!(f, "training images    {}", self.n_train)?;
        if let Some(m) = &self.method {
            writeln!(f, "fit method         {m}")?;
        }
        if let Some(v) = self.explained_variance {
            writeln!(f, "explained variance {:.4}", v)?;
        }
        if let Some(e) = self.basis_error {
            writeln!(f, "basis approx error {:.3e} (worst relative Frobenius over sigma levels)", e)?;
        }
        for (name, dtype, e) in &self.quant_errors {
            writeln!(f, "quantisation error {name} ({}): {e:.3e} (relative Frobenius)", dtype.name())?;
        }
        Ok(())
    }
}

pub fn fit_options(rank: Option<usize>, variance: Option<f64>, floor: Floor) -> FitOptions {
    let rank = match (rank, variance) {
        (Some(k), _) => Rank::Fixed(k),
        (None, Some(f)) => Rank::Variance(f),
        (None, None) => Rank::Variance(0.99),
    };
    FitOptions { rank, floor }
}

/// Fit and serialise a Gaussian blob for a dataset loaded with `prep` (recorded in the blob's metadata).
pub fn gaussian_blob(
    ds: &Dataset,
    prep: &LoadOptions,
    opts: &FitOptions,
    dtype: DType,
) -> Result<(Vec<u8>, GaussianFit, Summary)> {
    let pb = util::stage(format!("fitting {} ({} images x {} pixels)", ds.name, ds.len(), ds.dim()));
    let g = fit::fit(&ds.images, ds.dim(), opts).map_err(|e| anyhow!("fit of dataset {}: {e}", ds.name));
    pb.finish_and_clear();
    let g = g?;
    if g.total_variance <= 0.0 {
        eprintln!(
            "warning: dataset {}: zero variance (all {} images identical): the blob's samples all equal the mean, \
             and the explained variance is not meaningful",
            ds.name, g.n
        );
    }
    let provenance = Provenance::new(ds.name.clone(), g.n, TOOL)
        .with_explained_variance(g.explained_variance())
        .with_preparation(prep);
    let (bytes, params) = export::gaussian_blob(&g, ds.shape, dtype, ds.pixel, &provenance)
        .map_err(|e| anyhow!("writing the Gaussian blob: {e}"))?;
    let quant = params.quantization_report(dtype).map_err(|e| anyhow!("{e}"))?;
    let summary = Summary {
        kind: "gaussian",
        d: ds.dim(),
        rank: g.rank,
        floor: g.floor,
        dtype,
        bytes: bytes.len(),
        explained_variance: Some(g.explained_variance()),
        quant_errors: quant.iter().map(|q| (q.name, q.dtype, q.rel_frobenius)).collect(),
        basis_error: None,
        n_train: g.n,
        method: Some(g.method.describe()),
    };
    Ok((bytes, g, summary))
}

/// Fit and serialise a mixture blob for a loaded dataset.
pub fn mixture_blob(
    ds: &Dataset,
    mixture: MixtureArg,
    opts: &FitOptions,
    dtype: DType,
    seed: u64,
    em_steps: usize,
) -> Result<(Vec<u8>, MixtureFit, Summary)> {
    let assignment = match mixture {
        MixtureArg::Labels => {
            let labels = ds.labels.clone().ok_or_else(|| {
                anyhow!(
                    "--mixture labels: dataset {} has no labels (IDX: the *-labels-idx1-ubyte file beside the images)",
                    ds.name
                )
            })?;
            Assignment::Labels(labels)
        }
        MixtureArg::Components(k) => Assignment::Unsupervised { k, seed, em_steps },
    };
    let m = fit_mixture(&ds.images, ds.dim(), &assignment, opts)
        .map_err(|e| anyhow!("mixture fit of dataset {}: {e}", ds.name))?;
    let n: usize = m.components.iter().map(|c| c.n).sum();
    let explained = m.components.iter().zip(&m.weights).map(|(c, w)| w * c.explained_variance()).sum::<f64>();
    let provenance = Provenance::new(ds.name.clone(), n, TOOL).with_explained_variance(explained);
    let (bytes, params) = export::mixture_blob(&m, ds.shape, dtype, ds.pixel, &provenance, ds.label_names.as_deref())
        .map_err(|e| anyhow!("writing the mixture blob: {e}"))?;
    let quant = params.quantization_report(dtype).map_err(|e| anyhow!("{e}"))?;
    let summary = Summary {
        kind: "mixture",
        method: None,
        d: ds.dim(),
        rank: m.rank(),
        floor: m.components.iter().map(|c| c.floor).sum::<f64>() / m.components.len() as f64,
        dtype,
        bytes: bytes.len(),
        explained_variance: Some(explained),
        quant_errors: quant.iter().map(|q| (q.name, q.dtype, q.rel_frobenius)).collect(),
        basis_error: None,
        n_train: n,
    };
    Ok((bytes, m, summary))
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let inputs: Vec<&Path> = args.data.dataset.as_deref().into_iter().chain(args.linear.as_deref()).collect();
    util::check_output(&args.output, &inputs)?;
    let summary = if let Some(path) = &args.linear {
        let (bytes, summary) = linear_blob(path, args.rank, args.dense, args.dtype)?;
        util::write_atomic(&args.output, &bytes)?;
        summary
    } else {
        let Some(_) = args.data.dataset.as_ref() else {
            bail!("export: expected --dataset PATH or --linear DISTILLED")
        };
        let ds = match &args.labels {
            Some(l) => args.data.load_with_labels(l)?,
            None => args.data.load()?,
        };
        let opts = fit_options(args.rank, args.variance, args.floor);
        let (bytes, summary) = match args.mixture {
            Some(mixture) => {
                let (bytes, m, summary) = mixture_blob(&ds, mixture, &opts, args.dtype, args.data.seed, args.em_steps)?;
                let mut s = summary.to_string();
                s.push_str(&format!("components         {}\n", m.components.len()));
                for (j, (c, w)) in m.components.iter().zip(&m.weights).enumerate() {
                    let label = m.labels[j].map_or(String::new(), |l| format!(" label {l}"));
                    s.push_str(&format!(
                        "  {j:>3}{label}: weight {w:.4}, {} images, floor {:.3e}, {}\n",
                        c.n,
                        c.floor,
                        c.method.describe()
                    ));
                }
                util::write_atomic(&args.output, &bytes)?;
                return util::write_stdout(&format!("wrote {}\n{s}", args.output.display()));
            }
            None => {
                let (bytes, _, summary) = gaussian_blob(&ds, &args.data.options(), &opts, args.dtype)?;
                (bytes, summary)
            }
        };
        util::write_atomic(&args.output, &bytes)?;
        summary
    };
    util::write_stdout(&format!("wrote {}\n{summary}", args.output.display()))
}

fn f32_tensor(
    st: &safetensors::SafeTensors<'_>,
    path: &Path,
    name: &str,
    shape_desc: &str,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let t = st.tensor(name).map_err(|e| anyhow!("{}: tensor '{name}' ({shape_desc}): {e}", path.display()))?;
    if t.dtype() != safetensors::Dtype::F32 {
        bail!("{}: tensor '{name}': expected dtype F32, found {:?}", path.display(), t.dtype());
    }
    let v: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        bail!("{}: tensor '{name}': element {i} is {}, expected finite values", path.display(), v[i]);
    }
    Ok((t.shape().to_vec(), v))
}

fn parse_shape(s: &str) -> Option<ImageShape> {
    let p: Vec<u16> = s.split(',').map(|x| x.trim().parse().ok()).collect::<Option<_>>()?;
    match p[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Some(ImageShape { channels: c, height: h, width: w }),
        _ => None,
    }
}

/// Convert the trainer's distilled maps (docs/distill-format.md) into a linear blob.
pub fn linear_blob(path: &Path, rank: Option<usize>, dense: bool, dtype: DType) -> Result<(Vec<u8>, Summary)> {
    let raw = util::read_file(path, "distilled linear maps")?;
    let st = safetensors::SafeTensors::deserialize(&raw)
        .map_err(|e| anyhow!("{}: expected a safetensors file of distilled maps: {e}", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&raw).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let (s_shape, sigmas) = f32_tensor(&st, path, "sigmas", "[L]")?;
    let (w_shape, w) = f32_tensor(&st, path, "W", "[L, d, d]")?;
    let (b_shape, b) = f32_tensor(&st, path, "b", "[L, d]")?;
    let l = sigmas.len();
    if s_shape.len() != 1 || w_shape.len() != 3 || w_shape[0] != l || w_shape[1] != w_shape[2] {
        bail!("{}: expected sigmas [L] and W [L, d, d], found sigmas {s_shape:?} and W {w_shape:?}", path.display());
    }
    let d = w_shape[1];
    if b_shape != [l, d] {
        bail!("{}: tensor 'b': expected shape [{l}, {d}], found {b_shape:?}", path.display());
    }
    let shape = match meta.get("shape") {
        Some(s) => {
            parse_shape(s).ok_or_else(|| anyhow!("{}: metadata 'shape' = '{s}': expected \"C,H,W\"", path.display()))?
        }
        None => bail!("{}: metadata 'shape' is missing: expected \"C,H,W\"", path.display()),
    };
    if shape.dim() != d {
        bail!("{}: metadata shape {:?} has {} pixels, expected d = {d}", path.display(), shape, shape.dim());
    }
    let basis = match st.tensor("basis") {
        Ok(_) => Some(f32_tensor(&st, path, "basis", "[k, d]")?),
        Err(_) => None,
    };
    let use_basis = !dense && (rank.is_some() || basis.is_some() || d > 256);
    let provenance = Provenance::new(
        meta.get("dataset").cloned().unwrap_or_else(|| "unknown".into()),
        meta.get("n_train").cloned().unwrap_or_else(|| "0".into()),
        TOOL,
    )
    .with_source("distilled");
    let n_train = meta.get("n_train").and_then(|s| s.parse().ok()).unwrap_or(0);
    let (maps, k, basis_error) = if use_basis {
        let u_t = match (basis, rank) {
            (Some((bs, u)), r) => {
                if bs.len() != 2 || bs[1] != d || bs[0] == 0 {
                    bail!("{}: tensor 'basis': expected shape [k, {d}], found {bs:?}", path.display());
                }
                let k = r.unwrap_or(bs[0]);
                if k == 0 || k > bs[0] {
                    bail!("{}: --rank {k}: expected 1..={} (rows of 'basis')", path.display(), bs[0]);
                }
                u[..k * d].to_vec()
            }
            (None, Some(k)) => {
                if k == 0 || k > d {
                    bail!("--rank {k}: expected 1 <= rank <= d = {d}");
                }
                export::dominant_basis(&w, l, d, k).map_err(|e| anyhow!("basis of the distilled maps: {e}"))?
            }
            (None, None) => {
                bail!("{}: d = {d} needs the shared-basis form: pass --rank K (or --dense)", path.display())
            }
        };
        let k = u_t.len() / d;
        let u_t64: Vec<f64> = u_t.iter().map(|&v| f64::from(v)).collect();
        let p = export::project(&w, l, d, &u_t64);
        (LinearMaps::Basis { sigmas: sigmas.clone(), u_t, m: p.m, a: p.a, b }, k, Some(p.worst_rel_error))
    } else {
        (LinearMaps::Dense { sigmas: sigmas.clone(), w, b }, d, None)
    };
    let (bytes, params) = export::linear_blob(shape, maps, dtype, PixelMap::EDM, &provenance)
        .map_err(|e| anyhow!("{}: writing the linear blob: {e}", path.display()))?;
    let quant = params.quantization_report(dtype).map_err(|e| anyhow!("{e}"))?;
    let summary = Summary {
        kind: if use_basis { "linear-basis" } else { "linear-dense" },
        d,
        // The blob's header rank: 0 for dense maps (no basis), as `inspect` shows it.
        rank: if use_basis { k } else { 0 },
        floor: 0.0,
        dtype,
        bytes: bytes.len(),
        explained_variance: None,
        quant_errors: quant.iter().map(|q| (q.name, q.dtype, q.rel_frobenius)).collect(),
        basis_error,
        n_train,
        method: None,
    };
    Ok((bytes, summary))
}
