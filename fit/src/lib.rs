//! # gaussdiff-fit
//!
//! The host side of gaussdiff's data path, shared by the CLI (`gaussdiff`) and the trainer
//! (`gaussdiff-train`): [`dataset`] reads the image datasets people have, [`gaussian`] fits their
//! Gaussian `N(mu, Sigma)` (streaming f64 moments, exact 8-bit sums from `gaussdiff-gram`, faer's
//! eigensolver) and turns it into the [`GaussianParams`](gaussdiff_core::blob::write::GaussianParams) that
//! core's blob writer stores. Nothing here is linked into a microcontroller build: `gaussdiff-core` stays
//! `no_std`.
//!
//! [`mixture`] fits mixtures of low-rank Gaussians (one per label, or unsupervised), one [`gaussian`] fit per
//! component.
//!
//! Host helpers that the CLI and the trainer share live here too, one file each: [`export`] (metadata,
//! basis projection, fit -> blob bytes), [`figure`] (labelled image grids), [`io`] (atomic file writes) and [`nearest`] (nearest-neighbour
//! search).

pub mod dataset;
pub mod export;
pub mod figure;
pub mod gaussian;
pub mod io;
pub mod mixture;
pub mod nearest;
