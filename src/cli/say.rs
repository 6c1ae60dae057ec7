//! `hark say`: speak text with hibari's voice, to the speaker or a WAV file.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;

use super::stop_on_signals;
use crate::audio::Resampler;
use crate::audio::playback::Playback;
use crate::models;
use crate::pipeline::tts::{SpeechEvent, TtsNode};
use crate::tts::{SpeechOptions, Tts};

type WavFile = hound::WavWriter<BufWriter<std::fs::File>>;

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

pub fn run(a: SayArgs) -> anyhow::Result<i32> {
    let text = match a.text {
        Some(t) => t,
        None => std::io::read_to_string(std::io::stdin()).context("reading the text from standard input")?,
    };
    let opts = SpeechOptions { speed: a.speed, seed: a.seed };
    Tts::validate(&text, opts)?;
    if let Some(rate) = a.sample_rate.filter(|r| !(8000..=192_000).contains(r)) {
        bail!("--sample-rate {rate} is outside 8000–192000 Hz");
    }
    let started = Instant::now();
    let tts = Arc::new(Tts::load(&models::resolve(&a.model)?).context("loading the voice")?);
    let stop = stop_on_signals()?;
    let mut sink = match &a.output {
        Some(path) => SpeechSink::file(path, a.sample_rate.unwrap_or(Tts::SAMPLE_RATE))?,
        None => SpeechSink::Speaker(Playback::open(a.device.as_deref(), Tts::SAMPLE_RATE)?),
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
                tracing::info!(
                    audio_s = seconds,
                    first_audio_ms = first_audio.map(|d| d.as_millis() as u64),
                    wall_s = started.elapsed().as_secs_f64(),
                    "spoken"
                );
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

/// Where `hark say` puts the audio. The file is created with the first sentence's audio, so a
/// request that fails before any (unspeakable text) leaves no empty file behind.
enum SpeechSink {
    File { path: PathBuf, rate: u32, writer: Option<WavFile>, resampler: Option<Resampler> },
    Speaker(Playback),
}

impl SpeechSink {
    fn file(path: &Path, rate: u32) -> anyhow::Result<Self> {
        let resampler =
            (rate != Tts::SAMPLE_RATE).then(|| Resampler::new(Tts::SAMPLE_RATE, rate)).transpose()?;
        Ok(SpeechSink::File { path: path.to_path_buf(), rate, writer: None, resampler })
    }

    fn write_pcm(
        writer: &mut Option<WavFile>,
        path: &Path,
        rate: u32,
        samples: &[f32],
    ) -> anyhow::Result<()> {
        if writer.is_none() {
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            *writer = Some(
                hound::WavWriter::create(path, spec)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
        }
        let w = writer.as_mut().expect("created above");
        for &s in samples {
            w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
                .with_context(|| format!("writing {}", path.display()))?;
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
                writer
                    .expect("checked above")
                    .finalize()
                    .with_context(|| format!("writing {}", path.display()))
            }
            SpeechSink::Speaker(p) => Ok(p.finish()?),
        }
    }
}
