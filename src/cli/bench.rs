//! `hark bench`: the benchmarks (not part of the tests; figures in the README).

use std::path::PathBuf;

use clap::Subcommand;

use super::recognise::parse_lookahead;
use crate::asr::transducer::Lookahead;
use crate::bench;
use crate::bench::denoise;
use crate::bench::denoise::DenoiseBench;
use crate::bench::live;
use crate::bench::live::LiveBench;
use crate::bench::separation;
use crate::bench::separation::SeparationBench;
use crate::bench::serve;
use crate::bench::serve::ServeBench;
use crate::bench::tts;
use crate::bench::tts::TtsBench;
use crate::models;
use crate::separation::{DryShare, EnhanceMode};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Two-speaker separation (SI-SDR improvement on Libri2Mix examples) and target-speaker
    /// extraction (VoiceFilter-Lite on SiSEC sources).
    Separation {
        #[arg(long, default_value = "../shared/speech/separation/libri2mix-8k")]
        libri2mix: PathBuf,
        #[arg(long, default_value = "../shared/speech/separation/sources-16k")]
        sources: PathBuf,
        /// Separator model folder [default: the shipped models/separator-2spk].
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Denoisers on speech in noise: SI-SDR and Whisper WER at 0/5/10 dB SNR, RTF on one thread,
    /// latency.
    Denoise {
        /// Clean recordings with transcripts.
        #[arg(long, default_value = "../shared/speech/dev-real/manifest.tsv")]
        manifest: PathBuf,
        /// Folder of noise WAVs.
        #[arg(long, default_value = "../shared/speech/separation/sources-16k/noise")]
        noise: PathBuf,
        /// SNRs in dB, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,5,10")]
        snr: Vec<f64>,
        /// Whisper model for the WER.
        #[arg(long, default_value = "whisper-tiny.en")]
        whisper: String,
        /// Denoisers to measure, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "denoise:gtcrn,denoise:rnnoise,denoise:deepfilternet,denoise:ensemble"
        )]
        denoisers: Vec<EnhanceMode>,
        /// Also run each denoiser with these shares of the input added back (comma-separated):
        /// a number (0.5: output + 0.5 × input), `adaptive` (the share follows the local SNR the
        /// denoiser implies, the whole input where it removes little) or `adaptive:LOW_DB:HIGH_DB`.
        #[arg(long, value_delimiter = ',')]
        dry: Vec<DryShare>,
        /// Only the speed figures.
        #[arg(long)]
        speed_only: bool,
    },
    /// Text-to-speech speed: `hark say` of a text (one process, voice load included) over the
    /// audio's duration, and time to first audio for each sentence with the voice loaded.
    Tts {
        /// The text to speak.
        #[arg(long, default_value = "benches/text/paragraph.txt")]
        text: PathBuf,
        /// Runs of `hark say` (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Streaming transducer RTF per lookahead mode on 1 and 2 threads, and memory on a long stream.
    Transducer {
        /// Transducer model folder or name.
        #[arg(long, default_value = models::DEFAULT_TRANSDUCER)]
        model: String,
        /// Recording looped into the stream.
        #[arg(long, default_value = "audio-fixtures/jfk.flac")]
        audio: PathBuf,
        /// Seconds of audio per RTF measurement.
        #[arg(long, default_value_t = 120.0)]
        seconds: f64,
        /// Seconds of audio for the memory run.
        #[arg(long, default_value_t = 1800.0)]
        soak_seconds: f64,
        /// Mel frames (10 ms) per chunk fed to the engine (320 ms: a usual streaming chunk).
        #[arg(long, default_value_t = 32)]
        chunk_frames: usize,
    },
    /// WebSocket clients streaming real speech into `hark serve` at a multiple of real time:
    /// WER, dropped audio, lag, server memory (`--minutes` for a soak test).
    Serve {
        /// Recordings to stream (manifest.tsv with references).
        #[arg(long, default_value = "audio-fixtures/dev-real/manifest.tsv")]
        manifest: PathBuf,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Multiple of real time each client sends at.
        #[arg(long, default_value_t = 2.0)]
        speed: f64,
        /// Minutes of audio per client in one long stream, looping its recordings (0: each
        /// recording once, as its own stream).
        #[arg(long, default_value_t = 0.0)]
        minutes: f64,
        /// A running server (http://HOST:PORT); default: start one here.
        #[arg(long)]
        url: Option<String>,
        /// Config for the server started here.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Live latency through a capture device: recordings are played into it with paplay
    /// (scripts/bench-live.sh sets up a virtual microphone); first partial after word onset,
    /// final after end of speech, WER.
    Live {
        #[arg(long, default_value = "audio-fixtures/dev-real/manifest.tsv")]
        manifest: PathBuf,
        /// Capture device (as for `hark listen`).
        #[arg(long)]
        device: Option<String>,
        /// PulseAudio sink paplay plays into.
        #[arg(long, default_value = "virt")]
        sink: String,
        /// Silence between recordings, in seconds.
        #[arg(long, default_value_t = 2.0)]
        pause: f64,
    },
    /// One measurement (run by `bench transducer` in a child process).
    #[command(name = "transducer-run", hide = true)]
    TransducerRun {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        audio: PathBuf,
        #[arg(long, value_parser = parse_lookahead)]
        lookahead: Lookahead,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        chunk_frames: usize,
    },
}

pub fn run(command: BenchCommand) -> anyhow::Result<i32> {
    match command {
        BenchCommand::Denoise { manifest, noise, snr, whisper, denoisers, dry, speed_only } => {
            denoise::run(DenoiseBench { manifest, noise, snrs: snr, whisper, denoisers, dry, speed_only })?
        }
        BenchCommand::Separation { libri2mix, sources, model } => {
            separation::run(SeparationBench { libri2mix, sources, model })?
        }
        BenchCommand::Tts { text, runs } => tts::run(TtsBench { text, runs })?,
        BenchCommand::Transducer { model, audio, seconds, soak_seconds, chunk_frames } => bench::transducer(
            &models::resolve_transducer(&model)?,
            &audio,
            seconds,
            soak_seconds,
            chunk_frames,
        )?,
        BenchCommand::Serve { manifest, clients, speed, minutes, url, config } => {
            serve::run(ServeBench { manifest, clients, speed, minutes, url, config })?
        }
        BenchCommand::Live { manifest, device, sink, pause } => {
            live::run(LiveBench { manifest, device, sink, pause_s: pause })?
        }
        BenchCommand::TransducerRun { model, audio, lookahead, seconds, chunk_frames } => {
            bench::run_one(&model, &audio, lookahead, seconds, chunk_frames)?
        }
    }
    Ok(0)
}
