//! One module per subcommand.
pub mod bench;
pub mod capture;
pub mod demo;
pub mod export;
pub mod inspect;
pub mod sample;
