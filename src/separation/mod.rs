//! Speech enhancement and separation stages, run before recognition: denoisers (DeepFilterNet3,
//! GTCRN, RNNoise, and the mean of the first two) that stream, target-speaker extraction, and
//! blind two-speaker separation. Each is a plain struct; `pipeline` runs them as nodes.

pub mod deepfilternet;
mod dry_mix;
pub mod ensemble;
pub mod framed;
pub mod gtcrn;
pub mod metrics;
pub mod mossformer;
pub mod rnnoise;
pub mod stft;
pub mod voicefilter;

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;

use crate::audio::FileSource;
use crate::audio::Resampler;
use crate::audio::SAMPLE_RATE;
use crate::audio::WavOut;
use crate::error::{Error, Result};
use crate::models;

pub use dry_mix::{DryMix, DryShare};

/// A streaming enhancer of 16 kHz mono audio. Output sample i corresponds to input sample i:
/// `process` hands out what is final (it lags the input by at most the latency) and `finish`
/// the rest, so the whole output is exactly as long as the input. After `finish` the enhancer
/// starts a new stream.
pub trait Enhancer: Send {
    fn process(&mut self, input: &[f32]) -> Vec<f32>;
    fn finish(&mut self) -> Vec<f32>;
    /// How far the output can lag the input, in samples (the algorithmic latency).
    fn latency_samples(&self) -> usize;

    /// A whole recording at once.
    fn enhance_all(&mut self, input: &[f32]) -> Vec<f32> {
        let mut out = self.process(input);
        out.extend(self.finish());
        out
    }
}

/// What an `--enhance` / `--mode` argument asks for in front of recognition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnhanceMode {
    /// GTCRN (16 kHz, 32 ms latency, the fastest).
    DenoiseGtcrn,
    /// RNNoise through nnnoiseless (48 kHz, resampled around it).
    DenoiseRnnoise,
    /// DeepFilterNet3, the default denoiser (48 kHz, run on the 16 kHz spectrum; 40 ms latency).
    DenoiseDeepFilterNet,
    /// The mean of DeepFilterNet3's and GTCRN's outputs: the closest to clean speech (40 ms).
    DenoiseEnsemble,
    /// Keep only an enrolled speaker's voice (`hark enroll NAME FILE`).
    Target(String),
}

impl std::fmt::Display for EnhanceMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DenoiseGtcrn => write!(f, "denoise:gtcrn"),
            Self::DenoiseRnnoise => write!(f, "denoise:rnnoise"),
            Self::DenoiseDeepFilterNet => write!(f, "denoise:deepfilternet"),
            Self::DenoiseEnsemble => write!(f, "denoise:ensemble"),
            Self::Target(name) => write!(f, "target:{name}"),
        }
    }
}

impl FromStr for EnhanceMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "denoise:gtcrn" => Ok(Self::DenoiseGtcrn),
            "denoise:rnnoise" => Ok(Self::DenoiseRnnoise),
            "denoise" | "denoise:deepfilternet" => Ok(Self::DenoiseDeepFilterNet),
            "denoise:ensemble" => Ok(Self::DenoiseEnsemble),
            _ => match s.strip_prefix("target:") {
                Some(name) if !name.is_empty() => Ok(Self::Target(name.to_string())),
                _ => Err(Error::InvalidInput(format!(
                    "unknown enhancement '{s}': use denoise (DeepFilterNet3), denoise:gtcrn, denoise:rnnoise, denoise:ensemble (DeepFilterNet3 and GTCRN averaged) or target:NAME (a speaker enrolled with `hark enroll`){}",
                    if s == "two-speakers" {
                        "; two-speakers is for `hark separate` (two outputs), not in front of recognition"
                    } else {
                        ""
                    }
                ))),
            },
        }
    }
}

/// Share of the input added back to GTCRN's and RNNoise's output in front of a recogniser:
/// denoiser artifacts cost Whisper more than moderate noise. Chosen on dev-real in three real
/// noises (`hark bench denoise --dry 0.25,0.5`, Whisper tiny.en): with 0.5, GTCRN's WER is below
/// the noisy input's at 0, 5 and 10 dB SNR (−2.5, −0.4, −2.6% relative), with 0.25 above it at 5
/// and 10 dB; the adaptive share is worse for GTCRN at 5 and 10 dB (+1.5, +11.6%).
pub const RECOGNITION_DRY_SHARE: DryShare = DryShare::Fixed(0.5);

/// DeepFilterNet3's share in front of a recogniser (and the ensemble's): the adaptive one, which
/// alone keeps clean speech as recognised without enhancement (13/232 errors on dev-real; 0.5
/// gives 14) while lowering Whisper's WER at 0, 5 and 10 dB SNR (−9.3, −8.5, −9.7% relative;
/// `hark bench denoise --dry 0.5,adaptive`).
pub const DEEPFILTERNET_RECOGNITION_SHARE: DryShare = DryShare::ADAPTIVE;

/// A loaded enhancement model that makes one [`Enhancer`] per stream (the weights are shared).
#[derive(Clone)]
pub enum EnhancerFactory {
    Gtcrn(Arc<gtcrn::Gtcrn>),
    Rnnoise,
    DeepFilterNet(Arc<deepfilternet::DeepFilterNet3>),
    Ensemble(Arc<deepfilternet::DeepFilterNet3>, Arc<gtcrn::Gtcrn>),
    /// VoiceFilter-Lite with one enrolled speaker's embedding.
    Target(Arc<voicefilter::VoiceFilter>, Arc<Vec<f32>>),
}

/// The enhancer an `--enhance` option asks for, loaded (and installed on first use).
pub fn load_enhancer(mode: Option<&EnhanceMode>) -> anyhow::Result<Option<EnhancerFactory>> {
    mode.map(|m| EnhancerFactory::load(m).with_context(|| format!("loading the {m} enhancer"))).transpose()
}

impl EnhancerFactory {
    /// Loads what `mode` needs, installing the model on first use.
    pub fn load(mode: &EnhanceMode) -> Result<Self> {
        match mode {
            EnhanceMode::DenoiseGtcrn => Ok(Self::Gtcrn(load_gtcrn()?)),
            EnhanceMode::DenoiseRnnoise => Ok(Self::Rnnoise),
            EnhanceMode::DenoiseDeepFilterNet => Ok(Self::DeepFilterNet(load_deepfilternet()?)),
            EnhanceMode::DenoiseEnsemble => Ok(Self::Ensemble(load_deepfilternet()?, load_gtcrn()?)),
            EnhanceMode::Target(name) => {
                // The speaker first: a missing enrolment is the user's to fix, before any install.
                let speaker = voicefilter::load_speaker(name)?;
                let model = voicefilter::VoiceFilter::load(&models::resolve("voicefilter-lite")?)?;
                Ok(Self::Target(Arc::new(model), Arc::new(speaker.embedding)))
            }
        }
    }

    /// The enhancer in front of a recogniser: a denoiser's output with its share of the input
    /// added back.
    pub fn make_for_recognition(&self) -> Box<dyn Enhancer> {
        let denoiser = self.make_recognition_denoiser();
        match self.recognition_share() {
            Some(share) => Box::new(DryMix::new(denoiser, share)),
            None => denoiser,
        }
    }

    /// The denoiser under a recogniser's share of the input. DeepFilterNet3's is the model run
    /// at 48 kHz between resamplers (42.5 ms, not the 16 kHz stream's 40): with the adaptive
    /// share, Whisper tiny.en made 752 errors through it over dev-real's clean and 0/5/10 dB
    /// mixtures against 772 through the 16 kHz stream, which made more than the noisy input at
    /// 10 dB (159 against 155; `hark bench denoise --dry adaptive`).
    pub fn make_recognition_denoiser(&self) -> Box<dyn Enhancer> {
        match self {
            Self::DeepFilterNet(model) => {
                Box::new(deepfilternet::DeepFilterNet3::enhancer_at_48k(model.clone()))
            }
            _ => self.make(),
        }
    }

    /// How much of the input goes back in front of a recogniser (None: the enhancer's own output).
    pub fn recognition_share(&self) -> Option<DryShare> {
        match self {
            Self::Gtcrn(_) | Self::Rnnoise => Some(RECOGNITION_DRY_SHARE),
            Self::DeepFilterNet(_) | Self::Ensemble(..) => Some(DEEPFILTERNET_RECOGNITION_SHARE),
            // VoiceFilter-Lite blends with its input itself (adaptive suppression).
            Self::Target(..) => None,
        }
    }

    /// The enhancer for listening (`hark separate`): the denoiser's output alone, DeepFilterNet3
    /// as its 16 kHz stream.
    pub fn make(&self) -> Box<dyn Enhancer> {
        match self {
            Self::Gtcrn(model) => Box::new(gtcrn::GtcrnEnhancer::new(model.clone())),
            Self::Rnnoise => Box::new(rnnoise::RnnoiseEnhancer::default()),
            Self::DeepFilterNet(model) => Box::new(deepfilternet::DeepFilterNet3::enhancer(model.clone())),
            Self::Ensemble(deepfilternet, gtcrn) => Box::new(ensemble::Ensemble::new(vec![
                Box::new(deepfilternet::DeepFilterNet3::enhancer(deepfilternet.clone())),
                Box::new(gtcrn::GtcrnEnhancer::new(gtcrn.clone())),
            ])),
            Self::Target(model, embedding) => Box::new(
                voicefilter::VoiceFilterEnhancer::new(model.clone(), embedding)
                    .expect("embeddings are checked when loaded"),
            ),
        }
    }
}

fn load_gtcrn() -> Result<Arc<gtcrn::Gtcrn>> {
    Ok(Arc::new(gtcrn::Gtcrn::load(&models::resolve("gtcrn")?)?))
}

fn load_deepfilternet() -> Result<Arc<deepfilternet::DeepFilterNet3>> {
    Ok(Arc::new(deepfilternet::DeepFilterNet3::load(&models::resolve("deepfilternet3")?)?))
}

/// Splits a recording of two talkers into `dir/speaker-1.wav` and `dir/speaker-2.wav` (16 kHz),
/// each as long as the input. Returns the recording's duration in seconds.
pub fn separate_file(input: &std::path::Path, dir: &std::path::Path) -> Result<f64> {
    let model = mossformer::TwoSpeakerSeparator::load(&mossformer::resolve_separator()?)?;
    let audio = FileSource::open(input)?.read_all()?;
    if audio.is_empty() {
        return Err(Error::EmptyAudio);
    }
    let rate = model.config.sample_rate;
    let resample = Resampler::resample_all;
    let low = resample(&audio, SAMPLE_RATE, rate)?;
    let parts = model.separate_long(&low)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // Both files are complete before either is renamed into place.
    let mut outs = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let mut wav = WavOut::create(&dir.join(format!("speaker-{}.wav", i + 1)))?;
        let mut back = resample(part, rate, SAMPLE_RATE)?;
        back.resize(audio.len(), 0.0);
        wav.write(&back)?;
        outs.push(wav);
    }
    for wav in outs {
        wav.commit()?;
    }
    Ok(audio.len() as f64 / SAMPLE_RATE as f64)
}

/// Streams a recording through an enhancer into a 16 kHz WAV file, chunk by chunk. The file is
/// written beside `output` under a temporary name and renamed when complete, so a failure or an
/// interruption never leaves a half-written file. `progress(seconds_done)` is called per chunk
/// and returns false to stop (Ctrl-C): then nothing is written.
pub fn enhance_file(
    input: &std::path::Path,
    output: &std::path::Path,
    enhancer: &mut dyn Enhancer,
    mut progress: impl FnMut(f64) -> bool,
) -> Result<f64> {
    let mut source = FileSource::open(input)?;
    let mut writer = WavOut::create(output)?;
    let mut received = 0usize;
    while let Some(chunk) = source.next_chunk()? {
        received += chunk.len();
        writer.write(&enhancer.process(&chunk))?;
        if !progress(received as f64 / SAMPLE_RATE as f64) {
            return Err(Error::InvalidInput("interrupted; no output written".into()));
        }
    }
    if received == 0 {
        return Err(Error::EmptyAudio);
    }
    writer.write(&enhancer.finish())?;
    writer.commit()?;
    Ok(received as f64 / SAMPLE_RATE as f64)
}
