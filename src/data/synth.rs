//! `hark data synth`: a synthetic training corpus spoken by every English voice the machine has
//! (espeak-ng's accents and voice variants, flite's voices, festival's voices; install them with
//! `scripts/install-voices.sh`) and, when chosen, by speakers made from hibari's voice, reading
//! sentences from Debian's fortune databases.
//!
//! Each utterance gets its own sentence, a voice drawn evenly per synthesiser family (so the many
//! espeak-ng variants do not crowd out the more natural flite and festival voices), and a random
//! speaking rate and pitch. Audio is stored as 16 kHz mono WAV beside a manifest in the format of
//! ../shared/speech. A run can be interrupted and continued: finished utterances are kept and
//! listed, and the next run renders only what is missing.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};

use crate::asr::transducer::init::Rng;
use crate::audio::{FileSource, Resampler, write_wav};
use crate::data::sentences;
use crate::models;
use crate::tts::{SpeechOptions, Tts};

/// The synthesisers `hark data synth` can speak with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Synthesiser {
    /// espeak-ng's English accents × voice variants (Debian espeak-ng).
    EspeakNg,
    /// flite's voices (Debian flite).
    Flite,
    /// festival's English voices (Debian festival, festvox-*).
    Festival,
    /// hibari, hark's own text-to-speech model, its one voice reshaped into several speakers
    /// (installed on first use).
    Hibari,
}

/// The command-line synthesisers: the corpus the default model was trained on.
pub const DEFAULT_SYNTHESISERS: [Synthesiser; 3] =
    [Synthesiser::EspeakNg, Synthesiser::Flite, Synthesiser::Festival];

/// A synthesiser and one of its voices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voice {
    Espeak(String),
    Flite(String),
    Festival(String),
    /// One of `HIBARI_VOICES`.
    Hibari(String),
}

impl Voice {
    pub fn name(&self) -> String {
        match self {
            Voice::Espeak(v) => format!("espeak-ng:{v}"),
            Voice::Flite(v) => format!("flite:{v}"),
            Voice::Festival(v) => format!("festival:{v}"),
            Voice::Hibari(v) => format!("hibari:{v}"),
        }
    }
}

/// Speakers made from hibari's one (female, US-English) voice: name, F0 factor, formant factor.
/// Lower formants and F0 together sound like a longer vocal tract, i.e. a larger, male speaker.
pub const HIBARI_VOICES: [(&str, f32, f32); 6] = [
    ("heart", 1.0, 1.0),
    ("heart-bright", 1.15, 1.07),
    ("heart-low", 0.82, 0.94),
    ("tenor", 0.62, 0.88),
    ("baritone", 0.52, 0.84),
    ("bass", 0.45, 0.8),
];

/// hibari reading `text` as the preset `voice` at speaking rate `rate`, F0 moved by up to ±10%
/// with `pitch` (−1…1); 16 kHz samples. `seed` draws the vocoder's noise.
fn speak_hibari(
    tts: &Tts,
    voice: &str,
    text: &str,
    rate: f32,
    pitch: f32,
    seed: u64,
) -> anyhow::Result<Vec<f32>> {
    let &(_, pitch_factor, formant_factor) = HIBARI_VOICES
        .iter()
        .find(|(name, ..)| *name == voice)
        .with_context(|| format!("no hibari voice {voice}"))?;
    let mut noise = Rng::new(seed);
    let mut samples = Vec::new();
    tts.sentence_frames(text, SpeechOptions { speed: rate, seed }, |mut sentence| {
        sentence.frames.reshape_voice(pitch_factor * (1.0 + 0.1 * pitch), formant_factor);
        samples.extend(tts.vocode(&sentence.frames, &mut noise)?);
        Ok(())
    })?;
    Ok(Resampler::resample_all(&samples, Tts::SAMPLE_RATE, 16_000)?)
}

/// Mean pitch of flite's voices in Hz (its `int_f0_target_mean` default differs per voice).
fn flite_pitch(voice: &str) -> f32 {
    match voice {
        "slt" => 170.0,
        _ => 105.0,
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// espeak-ng's English accents and the voice variants (pitch/formant presets) used with them.
const ESPEAK_ACCENTS: [&str; 7] =
    ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029"];
const ESPEAK_VARIANTS: [&str; 9] = ["", "+m1", "+m3", "+m5", "+m7", "+f1", "+f2", "+f3", "+f4"];

/// Every English voice of the chosen synthesisers that is installed, grouped by synthesiser
/// (in the order chosen); a missing synthesiser is reported and skipped.
pub fn installed_voices(chosen: &[Synthesiser]) -> Vec<Vec<Voice>> {
    let mut families = Vec::new();
    for &synthesiser in chosen {
        let voices = match synthesiser {
            Synthesiser::EspeakNg => espeak_voices(),
            Synthesiser::Flite => flite_voices(),
            Synthesiser::Festival => festival_voices(),
            Synthesiser::Hibari => {
                HIBARI_VOICES.iter().map(|(name, ..)| Voice::Hibari(name.to_string())).collect()
            }
        };
        if voices.is_empty() {
            eprintln!(
                "hark: no {} voice is installed; skipping it (scripts/install-voices.sh installs the Debian synthesisers)",
                synthesiser.to_possible_value().expect("named").get_name()
            );
        } else {
            families.push(voices);
        }
    }
    families
}

fn espeak_voices() -> Vec<Voice> {
    if !on_path("espeak-ng") {
        return Vec::new();
    }
    ESPEAK_ACCENTS
        .iter()
        .flat_map(|a| ESPEAK_VARIANTS.iter().map(move |v| Voice::Espeak(format!("{a}{v}"))))
        .collect()
}

fn flite_voices() -> Vec<Voice> {
    if !on_path("flite") {
        return Vec::new();
    }
    // `flite -lv` prints "Voices available: kal awb_time kal16 awb rms slt".
    let listed = Command::new("flite")
        .arg("-lv")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    listed
        .split_once(':')
        .map(|(_, v)| {
            v.split_whitespace()
                .filter(|v| !v.ends_with("_time"))
                .map(|v| Voice::Flite(v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn festival_voices() -> Vec<Voice> {
    if !on_path("text2wave") {
        return Vec::new();
    }
    let mut voices = Vec::new();
    for lang in ["english", "us"] {
        if let Ok(dir) = std::fs::read_dir(Path::new("/usr/share/festival/voices").join(lang)) {
            voices.extend(
                dir.filter_map(|e| e.ok())
                    .map(|e| Voice::Festival(e.file_name().to_string_lossy().to_string())),
            );
        }
    }
    voices.sort_by_key(Voice::name);
    voices
}

/// One planned utterance.
#[derive(Debug, Clone)]
pub struct Utterance {
    pub index: usize,
    pub sentence: String,
    pub voice: Voice,
    pub rate: f32,
    pub pitch: f32,
}

impl Utterance {
    pub fn file_name(&self) -> String {
        format!("synth-{:05}.wav", self.index)
    }

    /// Speaks the utterance: 16 kHz mono samples. The command-line synthesisers write their
    /// audio to `scratch` (removed afterwards); hibari's voices need its loaded model.
    pub fn speak(&self, scratch: &Path, hibari: Option<&Tts>) -> anyhow::Result<Vec<f32>> {
        let (text, rate, pitch) = (self.sentence.as_str(), self.rate, self.pitch);
        let run = match &self.voice {
            Voice::Hibari(v) => {
                return speak_hibari(
                    hibari.context("hibari's model is not loaded")?,
                    v,
                    text,
                    rate,
                    pitch,
                    self.index as u64,
                );
            }
            Voice::Espeak(v) => Command::new("espeak-ng")
                .args([
                    "-v",
                    v,
                    "-s",
                    &format!("{}", (165.0 * rate) as u32),
                    "-p",
                    &format!("{}", (50.0 + 25.0 * pitch) as u32),
                    "-w",
                ])
                .arg(scratch)
                .arg(text)
                .output(),
            Voice::Flite(v) => Command::new("flite")
                .args([
                    "-voice",
                    v,
                    "--setf",
                    &format!("duration_stretch={:.3}", 1.0 / rate),
                    "--setf",
                    &format!("int_f0_target_mean={:.0}", flite_pitch(v) * (1.0 + 0.15 * pitch)),
                    "-t",
                    text,
                    "-o",
                ])
                .arg(scratch)
                .output(),
            Voice::Festival(v) => {
                let scheme =
                    format!("(begin (voice_{v}) (Parameter.set 'Duration_Stretch {:.3}))", 1.0 / rate);
                let mut child = Command::new("text2wave")
                    .args(["-eval", &scheme, "-o"])
                    .arg(scratch)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .context("running text2wave")?;
                child.stdin.take().expect("piped").write_all(text.as_bytes())?;
                child.wait_with_output()
            }
        }
        .with_context(|| format!("running {}", self.voice.name()))?;
        if !run.status.success() || !scratch.is_file() {
            bail!("{} failed: {}", self.voice.name(), String::from_utf8_lossy(&run.stderr).trim());
        }
        let samples = FileSource::open(scratch).and_then(FileSource::read_all);
        let _ = std::fs::remove_file(scratch);
        Ok(samples?)
    }
}

/// Assigns sentences (shuffled with `seed`) to voices: families in turn, a random voice within
/// the family, speaking rate 0.85–1.2 and pitch −1…1. The plan depends only on its inputs, so an
/// interrupted run continues with the same utterances.
pub fn plan(sentences: &[String], families: &[Vec<Voice>], count: usize, seed: u64) -> Vec<Utterance> {
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    (0..count.min(sentences.len()))
        .map(|i| {
            let family = &families[i % families.len()];
            let voice = family[(rng.next_u64() % family.len() as u64) as usize].clone();
            Utterance {
                index: i,
                sentence: sentences[order[i]].clone(),
                voice,
                rate: 0.85 + 0.35 * rng.uniform(),
                pitch: 2.0 * rng.uniform() - 1.0,
            }
        })
        .collect()
}

pub struct SynthOptions {
    pub out: PathBuf,
    pub utterances: usize,
    pub seed: u64,
    pub jobs: usize,
    pub fortunes: PathBuf,
    /// A sentence file (one per line, plain or .gz) to read instead of the fortune databases.
    pub sentences: Option<PathBuf>,
    /// Which synthesisers speak, in this order (utterances go to them in turn).
    pub synthesisers: Vec<Synthesiser>,
}

/// Renders the corpus into `out` (WAV files and `manifest.tsv`). Returns how many utterances
/// were rendered by this run.
pub fn synth(opts: &SynthOptions) -> anyhow::Result<usize> {
    let families = installed_voices(&opts.synthesisers);
    if families.is_empty() {
        bail!(
            "no speech synthesiser found (espeak-ng, flite or festival's text2wave); install them with scripts/install-voices.sh"
        );
    }
    let (sentences, source) = match &opts.sentences {
        Some(file) => (
            sentences::load_sentence_file(file).with_context(|| format!("reading {}", file.display()))?,
            file,
        ),
        None => (
            sentences::load_fortunes(&opts.fortunes).with_context(|| {
                format!(
                    "reading the fortune databases in {} (Debian packages fortunes-min, fortunes)",
                    opts.fortunes.display()
                )
            })?,
            &opts.fortunes,
        ),
    };
    if sentences.is_empty() {
        bail!("no usable sentences in {}", source.display());
    }
    // The manifest's origin and license columns name where the text came from.
    let text = match &opts.sentences {
        Some(file) => {
            let name =
                file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into());
            (format!("{name} text"), format!("text: as {name}'s source states"))
        }
        None => ("fortune text".to_string(), "BSD (fortune-mod text)".to_string()),
    };
    let planned = plan(&sentences, &families, opts.utterances, opts.seed);
    if planned.len() < opts.utterances {
        eprintln!("hark: only {} usable sentences: rendering {} utterances", sentences.len(), planned.len());
    }
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let manifest_path = opts.out.join("manifest.tsv");
    let done: HashSet<String> = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text.lines().skip(1).filter_map(|l| l.split('\t').next()).map(str::to_string).collect(),
        Err(_) => {
            std::fs::write(
                &manifest_path,
                "file\tduration_seconds\treference_transcript\tspeaker\torigin\tlicense\n",
            )?;
            HashSet::new()
        }
    };
    let todo: Vec<&Utterance> = planned.iter().filter(|u| !done.contains(&u.file_name())).collect();
    // hibari's model is loaded (and installed) only when an utterance left to render needs it.
    let hibari = match todo.iter().any(|u| matches!(u.voice, Voice::Hibari(_))) {
        true => Some(Tts::load(&models::resolve("hibari")?).context("loading hibari")?),
        false => None,
    };
    let voices: usize = families.iter().map(Vec::len).sum();
    eprintln!(
        "hark: {} voices in {} synthesisers; {} utterances to render ({} already done)",
        voices,
        families.len(),
        todo.len(),
        planned.len() - todo.len()
    );
    let manifest = Mutex::new(std::fs::OpenOptions::new().append(true).open(&manifest_path)?);
    let pb = ProgressBar::new(todo.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("synthesising [{elapsed_precise}] {bar:30} {pos}/{len} eta {eta}")
            .expect("template"),
    );
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| {
                while let Some(u) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(e) = render_one(u, &opts.out, hibari.as_ref(), &text, &manifest) {
                        failures.fetch_add(1, Ordering::Relaxed);
                        pb.suspend(|| eprintln!("hark: utterance {} ({}): {e:#}", u.index, u.voice.name()));
                    }
                    pb.inc(1);
                }
            });
        }
    });
    pb.finish_and_clear();
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("hark: {failed} utterances failed (listed above); run again to retry them");
    }
    Ok(todo.len() - failed)
}

/// Renders one utterance to 16 kHz mono WAV (written under a temporary name, then renamed) and
/// appends its manifest line.
fn render_one(
    u: &Utterance,
    out: &Path,
    hibari: Option<&Tts>,
    (text_origin, text_license): &(String, String),
    manifest: &Mutex<std::fs::File>,
) -> anyhow::Result<()> {
    let mut samples = u.speak(&out.join(format!(".raw-{:05}.wav", u.index)), hibari)?;
    let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    if peak < 1e-4 {
        bail!("the synthesiser produced silence");
    }
    if peak > 0.99 {
        samples.iter_mut().for_each(|s| *s *= 0.99 / peak);
    }
    let tmp = out.join(format!(".{}", u.file_name()));
    write_wav(&tmp, &samples, 16_000)?;
    std::fs::rename(&tmp, out.join(u.file_name()))?;
    let voice_license = match u.voice {
        Voice::Hibari(_) => "voice: hibari-tts 0.2.1, Apache-2.0",
        _ => "voice per its Debian package",
    };
    let line = format!(
        "{}\t{:.2}\t{}\t{}\tsynthesised by hark data synth ({text_origin})\t{text_license}; {voice_license}\n",
        u.file_name(),
        samples.len() as f64 / 16_000.0,
        u.sentence,
        u.voice.name()
    );
    manifest.lock().expect("manifest lock").write_all(line.as_bytes())?;
    Ok(())
}
