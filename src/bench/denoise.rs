//! `hark bench denoise`: the denoisers on real speech in real noise, as the enhancement issue
//! measures them. Each recording of a manifest (default ../shared/speech/dev-real) is mixed with
//! each noise file (default ../shared/speech/separation/sources-16k/noise) at 0, 5 and 10 dB SNR;
//! for each mixture: SI-SDR against the clean speech before and after each denoiser, and Whisper
//! tiny.en's WER on the clean, noisy and denoised audio. Then speed: each denoiser's real-time
//! factor on one thread, and its output's lag behind its input when fed 10 ms blocks.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::asr::whisper::WhisperEngine;
use crate::audio::{FileSource, SAMPLE_RATE, write_wav};
use crate::eval::{read_manifest, wer_counts};
use crate::models;
use crate::pipeline;
use crate::pipeline::{Recognizer, transcribe_files};
use crate::separation::metrics::si_sdr;
use crate::separation::{DryMix, DryShare};
use crate::separation::{EnhanceMode, Enhancer, EnhancerFactory};
use crate::train::augment::add_noise;

pub struct DenoiseBench {
    pub manifest: PathBuf,
    pub noise: PathBuf,
    pub snrs: Vec<f64>,
    pub whisper: String,
    /// The denoisers to measure.
    pub denoisers: Vec<EnhanceMode>,
    /// Also run each denoiser with these shares of the noisy input added back.
    pub dry: Vec<DryShare>,
    /// Only the speed figures (no mixtures, no Whisper).
    pub speed_only: bool,
}

struct Condition {
    name: String,
    /// One per mixture, in order.
    audio: Vec<Vec<f32>>,
}

fn read(path: &Path) -> anyhow::Result<Vec<f32>> {
    FileSource::open(path).and_then(|s| s.read_all()).with_context(|| format!("reading {}", path.display()))
}

/// Whisper's WER over a set of clips with their references.
fn wer(
    recognizer: &Recognizer,
    clips: &[Vec<f32>],
    references: &[&str],
    dir: &Path,
) -> anyhow::Result<(usize, usize)> {
    let paths: Vec<PathBuf> = (0..clips.len()).map(|i| dir.join(format!("{i}.wav"))).collect();
    for (clip, path) in clips.iter().zip(&paths) {
        write_wav(path, clip, SAMPLE_RATE)?;
    }
    let mut hyps = vec![String::new(); clips.len()];
    let mut failed = None;
    transcribe_files(&paths, recognizer, None, pipeline::default_jobs(), |o| match o.result {
        Ok(t) => hyps[o.index] = t.text,
        Err(e) => failed = Some(e),
    });
    if let Some(e) = failed {
        bail!("transcribing: {e}");
    }
    Ok(hyps.iter().zip(references).fold((0, 0), |(e, n), (h, r)| {
        let (de, dn) = wer_counts(r, h);
        (e + de, n + dn)
    }))
}

pub fn run(b: DenoiseBench) -> anyhow::Result<()> {
    let entries = read_manifest(&b.manifest)?;
    let mut noises = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&b.noise)
        .with_context(|| format!("reading {}", b.noise.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    names.sort();
    for path in &names {
        noises.push(read(path)?);
    }
    if entries.is_empty() || noises.is_empty() {
        bail!("need recordings and noise files");
    }
    let speech: Vec<Vec<f32>> = entries.iter().map(|e| read(&e.path)).collect::<anyhow::Result<_>>()?;
    let denoisers = &b.denoisers;
    let factories: Vec<EnhancerFactory> =
        denoisers.iter().map(EnhancerFactory::load).collect::<crate::Result<_>>()?;
    if b.speed_only {
        return speed(&speech, denoisers, &factories);
    }
    let whisper = WhisperEngine::load(&models::resolve(&b.whisper)?)?;
    let recognizer = Recognizer::Whisper(whisper, Default::default());
    let tmp = tempfile::tempdir()?;
    eprintln!(
        "{} recordings × {} noises ({}) per SNR",
        speech.len(),
        noises.len(),
        names.iter().map(|p| p.file_stem().unwrap().to_string_lossy()).collect::<Vec<_>>().join(", ")
    );

    let mut references = Vec::new();
    let mut clean = Vec::new();
    for (e, s) in entries.iter().zip(&speech) {
        for _ in &noises {
            references.push(e.reference.as_str());
            clean.push(s.clone());
        }
    }
    let (ce, cn) = wer(&recognizer, &clean, &references, tmp.path())?;
    let clean_wer = 100.0 * ce as f64 / cn as f64;
    println!("clean speech: Whisper WER {clean_wer:.2}% ({ce}/{cn})");
    // A denoiser in front of recognition must not hurt clean speech either.
    let clean_refs: Vec<&str> = entries.iter().map(|e| e.reference.as_str()).collect();
    for (mode, factory) in denoisers.iter().zip(&factories) {
        for dry in std::iter::once(DryShare::Fixed(0.0)).chain(b.dry.iter().copied()) {
            let audio: Vec<Vec<f32>> = speech.iter().map(|s| denoise(factory, dry).enhance_all(s)).collect();
            let (e, n) = wer(&recognizer, &audio, &clean_refs, tmp.path())?;
            println!(
                "clean speech through {}: Whisper WER {:.2}% ({e}/{n})",
                condition_name(mode, factory, dry),
                100.0 * e as f64 / n as f64
            );
        }
    }
    // The ceiling: recordings are rarely noise-free, and what a denoiser removes from the
    // reference itself counts against it.
    for (mode, factory) in denoisers.iter().zip(&factories) {
        let own: Vec<f64> = speech.iter().map(|s| si_sdr(&factory.make().enhance_all(s), s)).collect();
        let names: Vec<String> =
            entries.iter().zip(&own).map(|(e, v)| format!("{} {v:.1}", e.name)).collect();
        println!(
            "{mode} on the clean recordings themselves: SI-SDR {:.2} dB against them on average ({})",
            own.iter().sum::<f64>() / own.len() as f64,
            names.join(", ")
        );
    }
    println!(
        "| SNR | condition | SI-SDR (dB) | SI-SDR improvement (dB) | Whisper {} WER | WER change |",
        b.whisper
    );
    println!("|---|---|---|---|---|---|");
    for &snr in &b.snrs {
        let mut noisy = Vec::new();
        for (i, s) in speech.iter().enumerate() {
            for (j, n) in noises.iter().enumerate() {
                // A different stretch of each noise for each recording, the same for every run.
                let offset = (i * 7919 * 16 + j * 104_729) % n.len();
                let mut mixed = s.clone();
                add_noise(&mut mixed, n, offset, snr as f32);
                noisy.push(mixed);
            }
        }
        let mut conditions = vec![Condition { name: "noisy".into(), audio: noisy.clone() }];
        for (mode, factory) in denoisers.iter().zip(&factories) {
            let audio = noisy.iter().map(|x| factory.make().enhance_all(x)).collect();
            conditions.push(Condition { name: mode.to_string(), audio });
        }
        for (mode, factory) in denoisers.iter().zip(&factories) {
            for &dry in &b.dry {
                let audio = noisy.iter().map(|x| denoise(factory, dry).enhance_all(x)).collect();
                conditions.push(Condition { name: condition_name(mode, factory, dry), audio });
            }
        }
        let sdr = |audio: &[Vec<f32>]| {
            audio.iter().zip(&clean).map(|(a, c)| si_sdr(a, c)).sum::<f64>() / audio.len() as f64
        };
        let noisy_sdr = sdr(&conditions[0].audio);
        let mut noisy_wer = 0.0;
        for c in &conditions {
            let (e, n) = wer(&recognizer, &c.audio, &references, tmp.path())?;
            let w = 100.0 * e as f64 / n as f64;
            let s = sdr(&c.audio);
            if c.name == "noisy" {
                noisy_wer = w;
                println!("| {snr} dB | noisy | {s:.2} | — | {w:.2}% ({e}/{n}) | — |");
            } else {
                println!(
                    "| {snr} dB | {} | {s:.2} | {:+.2} | {w:.2}% ({e}/{n}) | {:+.1}% relative |",
                    c.name,
                    s - noisy_sdr,
                    100.0 * (w - noisy_wer) / noisy_wer.max(1e-9)
                );
            }
        }
    }
    speed(&speech, denoisers, &factories)
}

/// The denoiser alone as `hark separate` runs it, or with a share of its input as a recogniser's
/// front end runs it.
fn denoise(factory: &EnhancerFactory, dry: DryShare) -> Box<dyn Enhancer> {
    if dry == DryShare::Fixed(0.0) {
        factory.make()
    } else {
        Box::new(DryMix::new(factory.make_recognition_denoiser(), dry))
    }
}

fn condition_name(mode: &EnhanceMode, factory: &EnhancerFactory, dry: DryShare) -> String {
    let default = if factory.recognition_share() == Some(dry) { " (as --enhance)" } else { "" };
    if dry == DryShare::Fixed(0.0) { mode.to_string() } else { format!("{mode} + {dry}{default}") }
}

/// Each denoiser's RTF on one thread (this loop is the only thread working) and output lag.
fn speed(
    speech: &[Vec<f32>],
    denoisers: &[EnhanceMode],
    factories: &[EnhancerFactory],
) -> anyhow::Result<()> {
    let audio: Vec<f32> = speech.concat();
    let seconds = audio.len() as f64 / SAMPLE_RATE as f64;
    for (mode, factory) in denoisers.iter().zip(factories) {
        let mut enhancer = factory.make();
        let block = SAMPLE_RATE as usize / 100;
        let (mut received, mut emitted, mut worst_lag) = (0usize, 0usize, 0usize);
        let started = Instant::now();
        for chunk in audio.chunks(block) {
            received += chunk.len();
            emitted += enhancer.process(chunk).len();
            worst_lag = worst_lag.max(received - emitted);
        }
        enhancer.finish();
        let rtf = started.elapsed().as_secs_f64() / seconds;
        println!(
            "{mode}: RTF {rtf:.4} on one thread ({seconds:.1} s of audio in 10 ms blocks); algorithmic latency {:.1} ms; output lag at most {:.1} ms (with the 10 ms block)",
            enhancer.latency_samples() as f64 * 1000.0 / SAMPLE_RATE as f64,
            worst_lag as f64 * 1000.0 / SAMPLE_RATE as f64
        );
    }
    Ok(())
}
