//! Experiment 7 -- mixtures of low-rank Gaussians, judged by a classifier (issue 14).
//!
//! Setup. The MNIST test set (10,000 labelled images) is split by the loader's seeded hold-out into half
//! **A** (5,000) and half **B** (5,000). A LeNet-like classifier ([`crate::classifier`]) is trained on A and
//! its accuracy reported on B. The generative models are fitted on **A too**, so that B is unseen by both
//! the judge and the models: B's even positions are the **reference** of the Frechet and kernel distances,
//! its odd positions the **real digits** baseline row (its distances to the reference are the floor of each
//! measure at this sample size). The price: a model that copied its training images would be judged on the
//! classifier's own training images (it is more sure of those); the nearest-training-image ratio column
//! shows whether any model copies.
//!
//! Models, each written as an f32 blob with `fit::export` and sampled through core's [`SampleSpec::run`]
//! with the exact sampler (the firmware's code path; mixtures: a component picked by weight from the
//! seed, then its exact flow): the global Gaussian of A, the class mixture (one component per label, as
//! `gaussdiff export --mixture labels`), the unsupervised mixture (`--mixture 10`: k-means++ then hard-EM),
//! all with 99 % of the variance per component and floor c = mean of the discarded eigenvalues.
//!
//! Measures ([`crate::measures`]): share of class-conditional samples the classifier assigns to their
//! class and its mean probability of that class (for unlabelled components: the share of the
//! component's majority class); the classifier's mean top probability on unconditional samples; the
//! Frechet distance of the classifier's penultimate features to the reference (FLD) and KID (unbiased,
//! cubic polynomial kernel); the median nearest/second-nearest training-image distance ratio (pixels)
//! and the share of copies (`d1 < d2 / 3`).
//!
//! Faces: the Olivetti faces (40 people x 10 images, 64 x 64 = 4,096 pixels; each person's first image
//! held out): the single Gaussian and a per-person mixture (each component fitted on 9 images, far fewer
//! than pixels, so rank <= 8), with the same
//! nearest-neighbour ratio, to show what memorisation looks like.

use anyhow::{Context, Result};
use candle_core::Device;
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::{Denoiser, Model};
use gaussdiff_core::sampler::{SampleSpec, Sampler};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_core::tensor::DType;
use gaussdiff_fit::dataset::{self, Dataset, LoadOptions};
use gaussdiff_fit::export::{self, Provenance};
use gaussdiff_fit::gaussian::{self as fit, FitOptions, Floor, Rank};
use gaussdiff_fit::mixture::{fit_mixture, Assignment};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

use super::common::{write_csv, write_json};
use super::{ExperimentArgs, Setting};
use crate::classifier::{Classifier, ClassifierConfig, Outputs, FEATURES};
use crate::measures;
use crate::plot::{labelled_grid, GridRow};
use crate::training_gaussian::TOOL;

/// Sizes of one setting.
#[derive(Clone, Copy, Debug, Serialize)]
struct Sizes {
    /// Images of half A (classifier training and model fits); at most 5,000.
    train: usize,
    /// Reference images for FLD / KID (from half B).
    reference: usize,
    /// Real-digit baseline images (from half B) = unconditional samples per model.
    samples: usize,
    /// Class-conditional samples per class / component.
    per_class: usize,
    classifier: ClassifierConfig,
    em_steps: usize,
    /// Olivetti: class-conditional samples per person and unconditional Gaussian samples.
    faces_per_person: usize,
    faces_gaussian: usize,
}

fn sizes(setting: Setting, seed: u64) -> Sizes {
    let clf = |epochs, shift| ClassifierConfig { epochs, batch: 64, lr: 1e-3, shift, seed };
    match setting {
        Setting::Quick => Sizes {
            train: 1_500,
            reference: 300,
            samples: 300,
            per_class: 10,
            classifier: clf(1, 0),
            em_steps: 1,
            faces_per_person: 2,
            faces_gaussian: 40,
        },
        Setting::Medium => Sizes {
            train: 5_000,
            reference: 2_500,
            samples: 1_000,
            per_class: 50,
            classifier: clf(4, 1),
            em_steps: 5,
            faces_per_person: 5,
            faces_gaussian: 200,
        },
        Setting::Full => Sizes {
            train: 5_000,
            reference: 2_500,
            samples: 2_500,
            per_class: 100,
            classifier: clf(8, 2),
            em_steps: 5,
            faces_per_person: 5,
            faces_gaussian: 200,
        },
    }
}

/// One row of the table.
#[derive(Serialize, Clone, Debug)]
struct ModelRow {
    model: String,
    components: usize,
    rank: usize,
    blob_bytes_f32: usize,
    /// How the class-conditional share is read: `class`, `component majority`, `true label` or `none`.
    conditional: String,
    cond_samples: usize,
    cond_share: Option<f64>,
    cond_confidence: Option<f64>,
    uncond_samples: usize,
    #[serde(flatten)]
    scores: Scores,
    /// Per class / component: (label, share, majority class).
    per_class: Vec<(String, f64, usize)>,
}

/// What the classifier's features and the nearest training images say about a set of images.
#[derive(Serialize, Clone, Debug)]
struct Scores {
    uncond_top_prob: f64,
    fld: f64,
    kid: f64,
    nn_ratio_median: f64,
    memorised_fraction: f64,
}

impl Scores {
    /// Scores of images whose classifier outputs are `out` and whose nearest training distances are `nn`,
    /// against the reference features `feat_ref`.
    fn new(out: &Outputs, nn: &[(f64, f64)], feat_ref: &[f32]) -> Result<Self> {
        Ok(Self {
            uncond_top_prob: top_prob(out),
            fld: measures::frechet_distance(&out.features, feat_ref, FEATURES)?,
            kid: measures::kid(&out.features, feat_ref, FEATURES),
            nn_ratio_median: measures::median_nn_ratio(nn),
            memorised_fraction: measures::memorisation_fraction(nn),
        })
    }
}

#[derive(Serialize)]
struct ClassifierSummary {
    config: ClassifierConfig,
    params: usize,
    train_images: usize,
    test_images: usize,
    test_accuracy: f64,
    test_mean_confidence: f64,
    train_seconds: f64,
}

#[derive(Serialize, Clone, Debug)]
struct FaceRow {
    model: String,
    components: usize,
    rank: usize,
    samples: usize,
    nn_ratio_median: f64,
    memorised_fraction: f64,
    nn_distance_median: f64,
}

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    setting: Setting,
    sizes: Sizes,
    split: String,
    classifier: ClassifierSummary,
    fit: String,
    rows: Vec<ModelRow>,
    faces: Vec<FaceRow>,
    figures: Vec<String>,
}

/// The exact samples of `model` for seeds `seeds` (core's recipe), row-major.
fn exact_samples(model: &Model<'_>, seeds: std::ops::Range<u64>) -> Result<Vec<f32>> {
    let d = model.dim();
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(model)];
    let mut sigmas = vec![0.0f32; 1];
    let mut out = Vec::with_capacity(d * (seeds.end - seeds.start) as usize);
    let mut x = vec![0.0f32; d];
    for seed in seeds {
        let spec = SampleSpec { sampler: Sampler::Exact, steps: 0, seed };
        spec.run(model, &EdmSchedule::EDM, &mut sigmas, &mut x, &mut scratch, |_, _| {})
            .map_err(|e| anyhow::anyhow!("sampling seed {seed}: {e}"))?;
        out.extend_from_slice(&x);
    }
    Ok(out)
}

fn fit_options() -> FitOptions {
    FitOptions { rank: Rank::Variance(0.99), floor: Floor::Auto }
}

/// A fitted model as blob bytes, with its component count and rank.
struct Fitted {
    name: String,
    bytes: Vec<u8>,
    components: usize,
    rank: usize,
}

fn gaussian_model(ds_name: &str, images: &[f32], shape: gaussdiff_core::pixel::ImageShape) -> Result<Fitted> {
    let g = fit::fit(images, shape.dim(), &fit_options()).map_err(|e| anyhow::anyhow!("fitting {ds_name}: {e}"))?;
    let prov = Provenance::new(ds_name, g.n, TOOL);
    let (bytes, _) = export::gaussian_blob(&g, shape, DType::F32, gaussdiff_core::pixel::PixelMap::EDM, &prov)
        .map_err(|e| anyhow::anyhow!("writing the {ds_name} Gaussian: {e}"))?;
    Ok(Fitted { name: "Gaussian".into(), bytes, components: 1, rank: g.rank })
}

fn mixture_model(
    name: &str,
    ds_name: &str,
    images: &[f32],
    shape: gaussdiff_core::pixel::ImageShape,
    assignment: &Assignment,
) -> Result<Fitted> {
    let m = fit_mixture(images, shape.dim(), assignment, &fit_options())
        .map_err(|e| anyhow::anyhow!("fitting the {name} of {ds_name}: {e}"))?;
    let n: usize = m.components.iter().map(|c| c.n).sum();
    let prov = Provenance::new(ds_name, n, TOOL);
    let (bytes, _) = export::mixture_blob(&m, shape, DType::F32, gaussdiff_core::pixel::PixelMap::EDM, &prov, None)
        .map_err(|e| anyhow::anyhow!("writing the {name}: {e}"))?;
    Ok(Fitted { name: name.into(), bytes, components: m.components.len(), rank: m.rank() })
}

fn load(path: &Path, hold_out: usize, limit: Option<usize>, seed: u64) -> Result<Dataset> {
    let opts = LoadOptions { hold_out, limit, seed, ..Default::default() };
    let ds = dataset::load(path, &opts).map_err(|e| anyhow::anyhow!("loading dataset {}: {e}", path.display()))?;
    if ds.labels.is_none() {
        anyhow::bail!("{}: no labels (the IDX *-labels-idx1-ubyte file beside the images)", path.display());
    }
    Ok(ds)
}

/// Run experiment 7.
pub fn run(a: &ExperimentArgs, device: &Device, progress: bool) -> Result<()> {
    let setting = a.setting();
    let sz = sizes(setting, a.seed);
    // Setup: halves A and B, the classifier.
    let ds = load(&a.mnist, 5_000, Some(sz.train), a.seed)?;
    let d = ds.dim();
    let shape = ds.shape;
    let (h, w) = (shape.height as usize, shape.width as usize);
    let labels_a = ds.labels.clone().context("labels")?;
    let labels_b: Vec<usize> = ds.held_out_labels.clone().context("labels")?.iter().map(|&l| usize::from(l)).collect();
    let t0 = std::time::Instant::now();
    let clf = Classifier::train(&ds.images, &labels_a, (h, w), 10, &sz.classifier, device, progress)?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let out_b = clf.evaluate(&ds.held_out)?;
    let classifier = ClassifierSummary {
        config: sz.classifier,
        params: clf.num_params(),
        train_images: ds.len(),
        test_images: labels_b.len(),
        test_accuracy: out_b.accuracy(&labels_b),
        test_mean_confidence: out_b.mean_confidence(&labels_b),
        train_seconds,
    };
    if progress {
        eprintln!(
            "classifier: {} weights, trained on {} images in {:.1} s; accuracy on the other half {:.4} ({} images)",
            classifier.params, classifier.train_images, train_seconds, classifier.test_accuracy, classifier.test_images
        );
    }
    // B alternates between the reference and the real-digit row: the loader returns B in file order, and
    // the MNIST test file is not one population (its first 5,000 digits come from other writers than its
    // last 5,000), so contiguous halves of B would differ by more than sampling noise.
    let nb = labels_b.len();
    let reference = sz.reference.min(nb / 2);
    let n_real = sz.samples.min(nb / 2);
    let ref_idx: Vec<usize> = (0..reference).map(|i| 2 * i).collect();
    let real_idx: Vec<usize> = (0..n_real).map(|i| 2 * i + 1).collect();
    let gather = |v: &[f32], idx: &[usize], w: usize| -> Vec<f32> {
        idx.iter().flat_map(|&i| v[i * w..(i + 1) * w].iter().copied()).collect()
    };
    let feat_ref = gather(&out_b.features, &ref_idx, FEATURES);
    let feat_ref = &feat_ref[..];

    // Models.
    let models = vec![
        gaussian_model(&ds.name, &ds.images, shape)?,
        mixture_model("class mixture", &ds.name, &ds.images, shape, &Assignment::Labels(labels_a.clone()))?,
        mixture_model(
            "K = 10 mixture",
            &ds.name,
            &ds.images,
            shape,
            &Assignment::Unsupervised { k: 10, seed: a.seed, em_steps: sz.em_steps },
        )?,
    ];

    // Measures.
    let mut rows = Vec::new();
    let mut model_grid: Vec<GridRow> = Vec::new();
    let mut class_grid: Vec<GridRow> = Vec::new();
    let mut comp_grid: Vec<GridRow> = Vec::new();
    let show = 12usize;
    for f in &models {
        let blob = Blob::parse(&f.bytes).map_err(|e| anyhow::anyhow!("parsing the {} blob: {e}", f.name))?;
        let model = blob.model().map_err(|e| anyhow::anyhow!("{} model: {e}", f.name))?;
        let uncond = exact_samples(&model, a.seed..a.seed + n_real as u64)?;
        let out_u = clf.evaluate(&uncond)?;
        let labelled = f.components > 1 && blob.component_label(0).is_some();
        let (mut cond_labels, mut cond_out, mut per_class) = (Vec::new(), None, Vec::new());
        if f.components > 1 {
            let mut all = Vec::new();
            for j in 0..f.components {
                let comp = model.component(j).context("component")?;
                let s = exact_samples(&comp, a.seed..a.seed + sz.per_class as u64)?;
                let o = clf.evaluate(&s)?;
                let target = if labelled {
                    blob.component_label(j).and_then(|l| l.parse::<usize>().ok()).unwrap_or(j)
                } else {
                    // The component's majority class under the classifier (ties: the lower class).
                    let mut counts = [0usize; 10];
                    (0..o.len()).for_each(|i| counts[o.predicted(i)] += 1);
                    (0..10).fold(0, |b, c| if counts[c] > counts[b] { c } else { b })
                };
                let lab = vec![target; o.len()];
                let share = o.accuracy(&lab);
                let name = if labelled {
                    format!("class {target}: {:.0}% as {target}", 100.0 * share)
                } else {
                    format!("component {j}: {:.0}% as {target}", 100.0 * share)
                };
                let grid_row = (name.clone(), s[..show.min(sz.per_class) * d].to_vec());
                if labelled {
                    class_grid.push(grid_row);
                } else {
                    comp_grid.push(grid_row);
                }
                per_class.push((name, share, target));
                cond_labels.extend(lab);
                all.extend(s);
            }
            cond_out = Some(clf.evaluate(&all)?);
        }
        let nn = measures::nearest_two(&uncond, &ds.images, d);
        rows.push(ModelRow {
            model: f.name.clone(),
            components: f.components,
            rank: f.rank,
            blob_bytes_f32: f.bytes.len(),
            conditional: if f.components == 1 {
                "none".into()
            } else if labelled {
                "class".into()
            } else {
                "component majority".into()
            },
            cond_samples: cond_labels.len(),
            cond_share: cond_out.as_ref().map(|o| o.accuracy(&cond_labels)),
            cond_confidence: cond_out.as_ref().map(|o| o.mean_confidence(&cond_labels)),
            uncond_samples: n_real,
            scores: Scores::new(&out_u, &nn, feat_ref)?,
            per_class,
        });
        model_grid.push((format!("{} (unconditional)", f.name), uncond[..show * d].to_vec()));
        if progress {
            eprintln!("{}", row_line(rows.last().context("row")?));
        }
    }
    // The real-digit baseline: half B's second part.
    let real = gather(&ds.held_out, &real_idx, d);
    let real_labels: Vec<usize> = real_idx.iter().map(|&i| labels_b[i]).collect();
    let out_r = clf.evaluate(&real)?;
    let nn = measures::nearest_two(&real, &ds.images, d);
    rows.push(ModelRow {
        model: "real digits (held out)".into(),
        components: 0,
        rank: 0,
        blob_bytes_f32: 0,
        conditional: "true label".into(),
        cond_samples: n_real,
        cond_share: Some(out_r.accuracy(&real_labels)),
        cond_confidence: Some(out_r.mean_confidence(&real_labels)),
        uncond_samples: n_real,
        scores: Scores::new(&out_r, &nn, feat_ref)?,
        per_class: Vec::new(),
    });
    if progress {
        eprintln!("{}", row_line(rows.last().context("row")?));
    }
    model_grid.push(("real digits (held out)".into(), real[..show * d].to_vec()));

    let (faces, face_grid) = faces(a, &sz, progress)?;
    let split = format!(
        "MNIST test set, loader hold-out {} with seed {}: half A = {} training images (classifier and models), half B = {} held out (file order): reference = B's even positions 0, 2, .. ({reference} images), real-digit row = B's odd positions 1, 3, .. ({n_real} images)",
        5_000,
        a.seed,
        ds.len(),
        nb,
    );
    report(a, setting, sz, split, classifier, rows, faces, [model_grid, class_grid, comp_grid, face_grid], shape)
}

fn top_prob(o: &Outputs) -> f64 {
    if o.is_empty() {
        return f64::NAN;
    }
    (0..o.len()).map(|i| o.prob(i, o.predicted(i))).sum::<f64>() / o.len() as f64
}

fn opt(v: Option<f64>, pct: bool) -> String {
    match v {
        Some(x) if pct => format!("{:.1} %", 100.0 * x),
        Some(x) => format!("{x:.3}"),
        None => "--".into(),
    }
}

fn row_line(r: &ModelRow) -> String {
    format!(
        "{:<24} K={:<2} r={:<3} cond share {} (conf {})  top prob {:.3}  FLD {:.3}  KID {:.4}  d1/d2 {:.3}  copies {:.3}",
        r.model,
        r.components,
        r.rank,
        opt(r.cond_share, true),
        opt(r.cond_confidence, false),
        r.scores.uncond_top_prob,
        r.scores.fld,
        r.scores.kid,
        r.scores.nn_ratio_median,
        r.scores.memorised_fraction
    )
}

/// Olivetti: the single Gaussian beside the per-person mixture, nearest training faces.
fn faces(a: &ExperimentArgs, sz: &Sizes, progress: bool) -> Result<(Vec<FaceRow>, Vec<GridRow>)> {
    // Hold out each person's first image (file order): 9 training images per person, 360 in all.
    let mut ds = load(&a.olivetti, 0, None, a.seed)?;
    let d = ds.dim();
    let all_labels = ds.labels.clone().context("labels")?;
    let (mut train, mut held, mut labels, mut seen) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, &l) in all_labels.iter().enumerate() {
        let img = &ds.images[i * d..(i + 1) * d];
        if seen.contains(&l) {
            train.extend_from_slice(img);
            labels.push(l);
        } else {
            seen.push(l);
            held.extend_from_slice(img);
        }
    }
    (ds.images, ds.held_out, ds.labels) = (train, held, Some(labels.clone()));
    let g = gaussian_model(&ds.name, &ds.images, ds.shape)?;
    let m = mixture_model("per-person mixture", &ds.name, &ds.images, ds.shape, &Assignment::Labels(labels))?;
    let mut rows = Vec::new();
    let mut grid = Vec::new();
    let show = 8usize;
    let nearest_imgs = |x: &[f32]| -> Vec<f32> {
        gaussdiff_fit::nearest::nearest_rows(&ds.images, d, x).iter().flat_map(|n| ds.image(n.index).to_vec()).collect()
    };
    let mut push = |name: &str, f: &Fitted, s: Vec<f32>, grid: &mut Vec<GridRow>| {
        let nn = measures::nearest_two(&s, &ds.images, d);
        let mut d1: Vec<f64> = nn.iter().map(|p| p.0).collect();
        d1.sort_by(f64::total_cmp);
        let row = FaceRow {
            model: name.into(),
            components: f.components,
            rank: f.rank,
            samples: s.len() / d,
            nn_ratio_median: measures::median_nn_ratio(&nn),
            memorised_fraction: measures::memorisation_fraction(&nn),
            nn_distance_median: d1.get(d1.len() / 2).copied().unwrap_or(f64::NAN),
        };
        let head = &s[..show.min(s.len() / d) * d];
        grid.push((format!("{name}: median d1/d2 {:.2}", row.nn_ratio_median), head.to_vec()));
        grid.push(("  nearest training face".to_string(), nearest_imgs(head)));
        rows.push(row);
    };
    let gb = Blob::parse(&g.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let gm = gb.model().map_err(|e| anyhow::anyhow!("{e}"))?;
    push("Gaussian", &g, exact_samples(&gm, a.seed..a.seed + sz.faces_gaussian as u64)?, &mut grid);
    let mb = Blob::parse(&m.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mm = mb.model().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Class-conditional samples, person by person; the grid's columns are persons 0, 5, 10, ...
    let mut per = Vec::new();
    let mut shown = Vec::new();
    for j in 0..m.components {
        let comp = mm.component(j).context("component")?;
        let s = exact_samples(&comp, a.seed..a.seed + sz.faces_per_person as u64)?;
        if j % 5 == 0 {
            shown.extend_from_slice(&s[..d]);
        }
        per.extend(s);
    }
    let mut tmp = Vec::new();
    push("per-person mixture", &m, per, &mut tmp);
    grid.push((tmp[0].0.clone(), shown.clone()));
    grid.push(("  nearest training face".to_string(), nearest_imgs(&shown)));
    // Real held-out faces.
    let real = ds.held_out[..show.min(ds.held_out_len()) * d].to_vec();
    let real_all = ds.held_out.clone();
    let nn = measures::nearest_two(&real_all, &ds.images, d);
    rows.push(FaceRow {
        model: "real faces (held out)".into(),
        components: 0,
        rank: 0,
        samples: ds.held_out_len(),
        nn_ratio_median: measures::median_nn_ratio(&nn),
        memorised_fraction: measures::memorisation_fraction(&nn),
        nn_distance_median: {
            let mut d1: Vec<f64> = nn.iter().map(|p| p.0).collect();
            d1.sort_by(f64::total_cmp);
            d1[d1.len() / 2]
        },
    });
    grid.push((
        format!("real held-out faces: median d1/d2 {:.2}", rows.last().context("row")?.nn_ratio_median),
        real.clone(),
    ));
    grid.push(("  nearest training face".to_string(), nearest_imgs(&real)));
    if progress {
        for r in &rows {
            eprintln!(
                "olivetti {:<22} K={:<2} r={:<3} n={:<4} d1/d2 median {:.3}  copies {:.3}  d1 median {:.2}",
                r.model, r.components, r.rank, r.samples, r.nn_ratio_median, r.memorised_fraction, r.nn_distance_median
            );
        }
    }
    Ok((rows, grid))
}

const MODELS_PNG: &str = "mixtures_mnist_models.png";
const MODELS_TITLE: &str = "MNIST: unconditional exact samples of each model, and held-out real digits";
const CLASSES_PNG: &str = "mixtures_mnist_classes.png";
const CLASSES_TITLE: &str =
    "MNIST class mixture: class-conditional exact samples (label: share the classifier assigns to the class)";
const COMPONENTS_PNG: &str = "mixtures_mnist_components.png";
const COMPONENTS_TITLE: &str =
    "MNIST K = 10 unsupervised mixture: samples per component (label: its majority class under the classifier)";
const FACES_PNG: &str = "mixtures_olivetti.png";
const FACES_TITLE: &str =
    "Olivetti faces: single Gaussian vs per-person mixture (persons 0, 5, 10, ...), nearest training faces";

#[allow(clippy::too_many_arguments)]
fn report(
    a: &ExperimentArgs,
    setting: Setting,
    sizes: Sizes,
    split: String,
    classifier: ClassifierSummary,
    rows: Vec<ModelRow>,
    faces: Vec<FaceRow>,
    [model_grid, class_grid, comp_grid, face_grid]: [Vec<GridRow>; 4],
    shape: gaussdiff_core::pixel::ImageShape,
) -> Result<()> {
    let pixel = gaussdiff_core::pixel::PixelMap::EDM;
    let face_shape = gaussdiff_core::pixel::ImageShape { channels: 1, height: 64, width: 64 };
    // Per figure: file, title, block label, rows, image shape, images per row, zoom.
    let mnist = format!("MNIST test set, N = {} training images (half A)", sizes.train);
    let olivetti = "Olivetti faces, 64x64".to_string();
    let grids = [
        (MODELS_PNG, MODELS_TITLE, mnist.clone(), model_grid, shape, 12, 2),
        (CLASSES_PNG, CLASSES_TITLE, mnist.clone(), class_grid, shape, 12, 2),
        (COMPONENTS_PNG, COMPONENTS_TITLE, mnist, comp_grid, shape, 12, 2),
        (FACES_PNG, FACES_TITLE, olivetti, face_grid, face_shape, 8, 1),
    ];
    let mut figures = Vec::new();
    for (file, title, block, rows, shape, cols, zoom) in grids {
        labelled_grid(&a.out.join(file), title, &[(block, rows)], shape, pixel, cols, zoom)?;
        figures.push(file.to_string());
    }
    let header = [
        "components",
        "rank",
        "blob_bytes_f32",
        "cond_samples",
        "cond_share",
        "cond_confidence",
        "uncond_samples",
        "uncond_top_prob",
        "fld",
        "kid",
        "nn_ratio_median",
        "memorised_fraction",
    ];
    write_csv(
        &a.out.join("mixtures_mnist.csv"),
        &header,
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.components as f64,
                    r.rank as f64,
                    r.blob_bytes_f32 as f64,
                    r.cond_samples as f64,
                    r.cond_share.unwrap_or(f64::NAN),
                    r.cond_confidence.unwrap_or(f64::NAN),
                    r.uncond_samples as f64,
                    r.scores.uncond_top_prob,
                    r.scores.fld,
                    r.scores.kid,
                    r.scores.nn_ratio_median,
                    r.scores.memorised_fraction,
                ]
            })
            .collect::<Vec<_>>(),
    )?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Classifier: {} weights, trained on {} images ({} epochs), accuracy {:.2} % on {} held-out digits.\n",
        classifier.params,
        classifier.train_images,
        classifier.config.epochs,
        100.0 * classifier.test_accuracy,
        classifier.test_images
    );
    md.push_str("| model | K | rank | blob f32 bytes | class-conditional samples assigned to their class | mean confidence | unconditional: mean top probability | FLD | KID | median d1/d2 | copies (d1 < d2/3) |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        let share = match (r.cond_share, r.conditional.as_str()) {
            (Some(s), "component majority") => format!("{:.1} % (majority class)", 100.0 * s),
            (Some(s), "true label") => format!("{:.1} % (accuracy)", 100.0 * s),
            (s, _) => opt(s, true),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.2} | {:.4} | {:.3} | {:.1} % |",
            r.model,
            r.components,
            r.rank,
            r.blob_bytes_f32,
            share,
            opt(r.cond_confidence, false),
            r.scores.uncond_top_prob,
            r.scores.fld,
            r.scores.kid,
            r.scores.nn_ratio_median,
            100.0 * r.scores.memorised_fraction
        );
    }
    md.push_str("\n| Olivetti model | K | rank | samples | median d1/d2 | copies (d1 < d2/3) | median d1 |\n|---|---|---|---|---|---|---|\n");
    for f in &faces {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.3} | {:.1} % | {:.2} |",
            f.model,
            f.components,
            f.rank,
            f.samples,
            f.nn_ratio_median,
            100.0 * f.memorised_fraction,
            f.nn_distance_median
        );
    }
    gaussdiff_fit::io::write_atomic(&a.out.join("mixtures.md"), md.as_bytes())?;
    write_json(
        &a.out.join("summary.json"),
        &Summary {
            experiment: "mixtures",
            setting,
            sizes,
            split,
            classifier,
            fit: "every model: 99 % of the variance per component (mixtures: one common rank), floor c = mean of the discarded eigenvalues, f32 blob, exact sampler".into(),
            rows,
            faces,
            figures,
        },
    )
}
