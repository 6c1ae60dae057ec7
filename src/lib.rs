//! hark: a streaming speech daemon and command-line tool.
//!
//! Stages are plain structs (`audio`, `features`, `asr`); only `pipeline` knows threads and
//! channels; `cli` holds the commands the binary runs.

pub mod asr;
pub mod audio;
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod features;
pub mod live;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod queue;
pub mod separation;
pub mod service;
pub mod train;
pub mod tts;
pub mod vad;

pub use error::{Error, Result};
