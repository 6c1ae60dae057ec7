//! `hark bench separation`: the separation issue's figures.
//! - Blind two-speaker separation on ../shared/speech/separation/libri2mix-8k (ten Libri2Mix test
//!   mixtures with both clean sources): SI-SDR improvement over the mixture per source, in the
//!   better speaker order, averaged; and the separator's real-time factor.
//! - Target-speaker extraction (VoiceFilter-Lite) on ../shared/speech/separation/sources-16k: each
//!   of the eight speakers enrolled from its first 4 s, then its last 5 s mixed at 0 dB with the
//!   next speaker's last 5 s; SI-SDR improvement of the extracted target. The same mixtures go
//!   through the blind separator too (at 8 kHz, the better of its two outputs), for comparison.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::audio::FileSource;
use crate::audio::SAMPLE_RATE;
use crate::audio::{FileDecoder, Resampler, downmix_into};
use crate::models;
use crate::separation::Enhancer;
use crate::separation::metrics::si_sdr;
use crate::separation::mossformer::{TwoSpeakerSeparator, resolve_separator};
use crate::separation::voicefilter::{VoiceFilter, VoiceFilterEnhancer};

pub struct SeparationBench {
    pub libri2mix: PathBuf,
    pub sources: PathBuf,
    pub model: Option<PathBuf>,
}

/// A file at its own rate, mono.
fn read_native(path: &Path) -> anyhow::Result<(u32, Vec<f32>)> {
    let mut d = FileDecoder::open(path).with_context(|| format!("reading {}", path.display()))?;
    let (rate, channels) = (d.info().sample_rate, d.info().channels);
    let mut out = Vec::new();
    while let Some(chunk) = d.next_interleaved()? {
        downmix_into(chunk, channels, &mut out);
    }
    Ok((rate, out))
}

/// SI-SDR improvement of two estimates over the mixture, in the better order (mean of the two).
fn pit_improvement(est: &[Vec<f32>], refs: [&[f32]; 2], mix: &[f32]) -> f64 {
    let gain = |e: &[f32], r: &[f32]| si_sdr(e, r) - si_sdr(mix, r);
    let same = gain(&est[0], refs[0]) + gain(&est[1], refs[1]);
    let swapped = gain(&est[0], refs[1]) + gain(&est[1], refs[0]);
    same.max(swapped) / 2.0
}

pub fn run(b: SeparationBench) -> anyhow::Result<()> {
    let dir = match &b.model {
        Some(d) => d.clone(),
        None => resolve_separator()?,
    };
    let separator = TwoSpeakerSeparator::load(&dir)?;
    let rate = separator.config.sample_rate;
    println!("## Two-speaker separation ({}) on {}", dir.display(), b.libri2mix.display());
    let mut names: Vec<PathBuf> = std::fs::read_dir(&b.libri2mix)
        .with_context(|| format!("reading {}", b.libri2mix.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{} holds no mixtures", b.libri2mix.display());
    }
    let (mut total, mut audio_s, mut compute_s) = (0.0, 0.0, 0.0);
    println!(
        "| mixture | seconds | SI-SDR of the mixture (dB, mean of the two sources) | SI-SDR improvement (dB) |"
    );
    println!("|---|---|---|---|");
    for ex in &names {
        let (r_mix, mix) = read_native(&ex.join("mixture.wav"))?;
        let (_, s0) = read_native(&ex.join("s0.wav"))?;
        let (_, s1) = read_native(&ex.join("s1.wav"))?;
        // (Equal rates pass through unchanged.)
        let (mix, s0, s1) = (
            Resampler::resample_all(&mix, r_mix, rate)?,
            Resampler::resample_all(&s0, r_mix, rate)?,
            Resampler::resample_all(&s1, r_mix, rate)?,
        );
        let started = Instant::now();
        let est = separator.separate_long(&mix)?;
        compute_s += started.elapsed().as_secs_f64();
        let seconds = mix.len() as f64 / rate as f64;
        audio_s += seconds;
        let gain = pit_improvement(&est, [&s0, &s1], &mix);
        total += gain;
        println!(
            "| {} | {seconds:.1} | {:.2} | {gain:+.2} |",
            ex.file_name().unwrap().to_string_lossy(),
            (si_sdr(&mix, &s0) + si_sdr(&mix, &s1)) / 2.0
        );
    }
    println!(
        "mean SI-SDR improvement over {} mixtures: {:+.2} dB; separator RTF {:.3} ({} threads)",
        names.len(),
        total / names.len() as f64,
        compute_s / audio_s,
        rayon::current_num_threads()
    );

    println!("\n## Target-speaker extraction (VoiceFilter-Lite) on {}", b.sources.display());
    let mut speakers: Vec<PathBuf> = std::fs::read_dir(&b.sources)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    speakers.sort();
    let clips: Vec<Vec<f32>> = speakers
        .iter()
        .map(|p| FileSource::open(p).and_then(|s| s.read_all()).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<_>>()?;
    let vf = Arc::new(VoiceFilter::load(&models::resolve("voicefilter-lite")?)?);
    let sr = SAMPLE_RATE as usize;
    println!(
        "| target | interferer | mixture SI-SDR (dB) | VoiceFilter-Lite SI-SDRi (dB) | blind separator SI-SDRi (dB) |"
    );
    println!("|---|---|---|---|---|");
    let (mut vf_total, mut blind_total) = (0.0, 0.0);
    for i in 0..clips.len() {
        let j = (i + 1) % clips.len();
        let (target, other) = (&clips[i], &clips[j]);
        if target.len() < 10 * sr || other.len() < 10 * sr {
            bail!("{} and {} must hold 10 s each", speakers[i].display(), speakers[j].display());
        }
        let clean = &target[5 * sr..10 * sr];
        let scale = (clean.iter().map(|v| v * v).sum::<f32>()
            / other[5 * sr..10 * sr].iter().map(|v| v * v).sum::<f32>().max(1e-12))
        .sqrt();
        let mixture: Vec<f32> =
            clean.iter().zip(&other[5 * sr..10 * sr]).map(|(a, b)| a + scale * b).collect();
        let embedding = vf.embed(&target[..4 * sr])?;
        let out = VoiceFilterEnhancer::new(vf.clone(), &embedding)?.enhance_all(&mixture);
        let base = si_sdr(&mixture, clean);
        let vf_gain = si_sdr(&out, clean) - base;
        // The blind separator at its rate: the better of its outputs against the target.
        let low_mix = Resampler::resample_all(&mixture, SAMPLE_RATE, rate)?;
        let low_clean = Resampler::resample_all(clean, SAMPLE_RATE, rate)?;
        let est = separator.separate_long(&low_mix)?;
        let blind_gain =
            est.iter().map(|e| si_sdr(e, &low_clean)).fold(f64::MIN, f64::max) - si_sdr(&low_mix, &low_clean);
        vf_total += vf_gain;
        blind_total += blind_gain;
        let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
        println!(
            "| {} | {} | {base:.2} | {vf_gain:+.2} | {blind_gain:+.2} |",
            stem(&speakers[i]),
            stem(&speakers[j])
        );
    }
    println!(
        "mean target SI-SDR improvement over {} mixtures: VoiceFilter-Lite {:+.2} dB, blind separator (best output) {:+.2} dB",
        clips.len(),
        vf_total / clips.len() as f64,
        blind_total / clips.len() as f64
    );
    Ok(())
}
