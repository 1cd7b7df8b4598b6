//! One module per `gaussdiff-train` command, each with its argument struct beside its run function;
//! `main.rs` only parses and dispatches. The `experiment` command's arguments live with the
//! experiments ([`crate::experiments::ExperimentArgs`]).

pub mod bench;
pub mod distill;
pub mod metrics;
pub mod train;
