//! The commands of the `hark` binary: argument parsing and the call into the library, one file
//! per command. `main.rs` parses arguments and calls [`run`]. Nothing below the CLI imports it.

mod bench;
mod data;
mod eval;
mod listen;
mod models;
mod queue;
mod recognise;
mod say;
mod separate;
mod serve;
mod train;
mod transcribe;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::pipeline::default_jobs;

#[derive(Parser)]
#[command(
    name = "hark",
    version,
    about = "Streaming speech recognition: transcribe files, evaluate, manage models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Transcribe audio files (WAV, FLAC, MP3, Ogg Vorbis; any rate and channel count).
    Transcribe(transcribe::TranscribeArgs),
    /// Transcribe a manifest of recordings and score the word error rate.
    Eval(eval::EvalArgs),
    /// Transcribe the microphone live: partials rewritten in place, finals as lines.
    Listen(listen::ListenArgs),
    /// List audio input devices (for `--device` and the service's [capture] device).
    Devices,
    /// Speak text (hibari's voice): plays it, or writes a WAV file with -o.
    Say(say::SayArgs),
    /// Enhance or separate speech in a recording: denoise it, keep one enrolled speaker, or
    /// split two overlapping talkers.
    Separate(separate::SeparateArgs),
    /// Enroll a speaker for target-speaker extraction (`--mode target:NAME`, `--enhance
    /// target:NAME`): stores the voice's embedding from a recording of them alone (3–10 s).
    Enroll(separate::EnrollArgs),
    /// Run the service: HTTP (OpenAI-compatible uploads), WebSocket streams, metrics.
    Serve(serve::ServeArgs),
    /// Install and list models.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Train the transducer, or with `separation` the two-speaker separator (see
    /// models/README.md for the recipes).
    Train(train::TrainArgs),
    /// Queue recordings for `hark worker`s on other machines (Redis Streams), one job per file.
    Submit(queue::SubmitArgs),
    /// Transcribe jobs from a Redis queue until SIGTERM (which finishes the jobs in hand).
    Worker(queue::WorkerArgs),
    /// Inspect a Redis queue.
    Queue {
        #[command(subcommand)]
        command: queue::QueueCommand,
    },
    /// Build training data.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Benchmarks (not part of the tests).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

impl Cli {
    /// How many files this command decodes at once (1 for commands that are not batches).
    pub fn parallel_files(&self) -> usize {
        match &self.command {
            Command::Transcribe(a) => {
                a.recogniser.jobs.unwrap_or_else(default_jobs).clamp(1, a.files.len().max(1))
            }
            Command::Eval(a) => a.recogniser.jobs.unwrap_or_else(default_jobs).max(1),
            Command::Worker(a) => a.recogniser.jobs.unwrap_or_else(default_jobs).max(1),
            _ => 1,
        }
    }
}

/// Runs a command; the exit status on success (1 when some inputs failed).
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Transcribe(a) => transcribe::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Listen(a) => listen::run(a),
        Command::Devices => models::devices(),
        Command::Say(a) => say::run(a),
        Command::Separate(a) => separate::run(a),
        Command::Enroll(a) => separate::enroll(a),
        Command::Serve(a) => serve::run(a),
        Command::Models { command } => models::run(command),
        Command::Train(a) => train::run(a),
        Command::Submit(a) => queue::submit_files(a),
        Command::Worker(a) => queue::work(a),
        Command::Queue { command } => queue::queue(command),
        Command::Data { command } => data::run(command),
        Command::Bench { command } => bench::run(command),
    }
}

/// A flag that Ctrl-C (SIGINT) and SIGTERM set: the commands that run until stopped finish what
/// they hold when it is set instead of dying mid-file.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}
