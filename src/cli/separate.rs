//! `hark separate` and `hark enroll`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::stop_on_signals;
use crate::audio::{FileDecoder, FileSource, SAMPLE_RATE};
use crate::models;
use crate::separation::voicefilter::{Speaker, VoiceFilter, check_name, save_speaker};
use crate::separation::{EnhanceMode, EnhancerFactory, enhance_file, separate_file};

#[derive(Args)]
pub struct SeparateArgs {
    /// The recording (any format and rate hark reads).
    pub input: PathBuf,
    /// denoise:ensemble (DeepFilterNet3's and GTCRN's outputs averaged: the cleanest), denoise
    /// (DeepFilterNet3), denoise:gtcrn, denoise:rnnoise, target:NAME (a speaker enrolled with
    /// `hark enroll`) or two-speakers.
    #[arg(long, default_value = "denoise:ensemble")]
    pub mode: String,
    /// Output WAV (16 kHz); for two-speakers a folder that receives speaker-1.wav and speaker-2.wav.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct EnrollArgs {
    /// Name to use in target:NAME (letters, digits, '-', '_').
    pub name: String,
    /// A recording of the speaker alone.
    pub file: PathBuf,
}

pub fn run(a: SeparateArgs) -> anyhow::Result<i32> {
    if a.mode == "two-speakers" {
        let seconds = separate_file(&a.input, &a.output).with_context(|| format!("{}", a.input.display()))?;
        eprintln!(
            "hark: {} ({seconds:.1} s, two-speakers) → {}/speaker-1.wav, speaker-2.wav",
            a.input.display(),
            a.output.display()
        );
        return Ok(0);
    }
    let mode: EnhanceMode = a.mode.parse()?;
    let mut enhancer = EnhancerFactory::load(&mode)?.make();
    let duration = FileDecoder::open(&a.input).ok().and_then(|d| d.info().duration_s);
    let pb = match duration {
        Some(d) if d > 10.0 => {
            let pb = ProgressBar::new((d * 10.0) as u64);
            pb.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                    .expect("valid template"),
            );
            pb
        }
        _ => ProgressBar::hidden(),
    };
    // Ctrl-C or SIGTERM stops between chunks, and the unfinished output is removed.
    let stop = stop_on_signals()?;
    let seconds = enhance_file(&a.input, &a.output, enhancer.as_mut(), |s| {
        pb.set_position((s * 10.0) as u64);
        pb.set_message(format!("{s:.0} s"));
        !stop.load(Ordering::Relaxed)
    })
    .with_context(|| format!("{}", a.input.display()))?;
    pb.finish_and_clear();
    eprintln!("hark: {} ({seconds:.1} s, {mode}) → {}", a.input.display(), a.output.display());
    Ok(0)
}

pub fn enroll(a: EnrollArgs) -> anyhow::Result<i32> {
    let EnrollArgs { name, file } = a;
    check_name(&name)?;
    let audio =
        FileSource::open(&file).and_then(|s| s.read_all()).with_context(|| format!("{}", file.display()))?;
    if audio.is_empty() {
        bail!("{}: empty audio: the file holds no samples", file.display());
    }
    let model = VoiceFilter::load(&models::resolve("voicefilter-lite")?)?;
    let seconds = audio.len() as f64 / SAMPLE_RATE as f64;
    let embedding = model.embed(&audio)?;
    let path = save_speaker(&Speaker {
        name: name.clone(),
        embedding,
        seconds,
        source: file.display().to_string(),
    })?;
    if seconds < 3.0 {
        eprintln!(
            "hark: warning: {seconds:.1} s of enrolment audio; 3–10 s of the speaker alone gives a steadier voice print"
        );
    }
    eprintln!("hark: enrolled '{name}' from {seconds:.1} s of {} → {}", file.display(), path.display());
    Ok(0)
}
