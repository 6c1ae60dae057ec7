//! hark: a streaming speech daemon and command-line tool.
//!
//! Stages are plain structs (`audio`, `features`, `asr`); only `pipeline` knows threads and
//! channels; `cli` holds the commands the binary runs.

pub mod asr;
pub mod audio;
pub mod bench;
pub mod cli;
pub mod data;
pub mod error;
pub mod eval;
pub mod features;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod train;

pub use error::{Error, Result};
