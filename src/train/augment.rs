//! Data augmentation for training: speed perturbation (resampling, as in Kaldi's 0.9/1.0/1.1
//! recipe), additive noise at a random SNR, and SpecAugment time and frequency masks on the
//! normalised log-mel features. Because the frozen encoder blocks are run once and cached,
//! augmentation makes extra copies of each utterance at encoding time.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::asr::transducer::init::Rng;
use crate::audio::{FileSource, Resampler};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Augmented copies per utterance (besides the clean one).
    #[serde(default)]
    pub copies: usize,
    /// Speed factors drawn from (1.0 = unchanged).
    #[serde(default = "default_speeds")]
    pub speeds: Vec<f32>,
    /// Folder of noise recordings (any format hark reads); none = no noise.
    #[serde(default)]
    pub noise_dir: Option<std::path::PathBuf>,
    /// Signal-to-noise ratio range in dB.
    #[serde(default = "default_snr")]
    pub snr_db: [f32; 2],
    /// SpecAugment: time masks per utterance and their maximum width in mel frames.
    #[serde(default = "default_time_masks")]
    pub time_masks: usize,
    #[serde(default = "default_time_width")]
    pub time_mask_frames: usize,
    /// SpecAugment: frequency masks and their maximum width in mel bins.
    #[serde(default = "default_freq_masks")]
    pub freq_masks: usize,
    #[serde(default = "default_freq_width")]
    pub freq_mask_bins: usize,
}

fn default_speeds() -> Vec<f32> {
    vec![0.9, 1.0, 1.1]
}
fn default_snr() -> [f32; 2] {
    [5.0, 25.0]
}
fn default_time_masks() -> usize {
    2
}
fn default_time_width() -> usize {
    30
}
fn default_freq_masks() -> usize {
    2
}
fn default_freq_width() -> usize {
    10
}

/// Draws augmentations; a plain struct, deterministic for a seed.
pub struct Augmenter {
    config: AugmentConfig,
    noises: Vec<Vec<f32>>,
    rng: Rng,
}

impl Augmenter {
    /// Loads the noise recordings (16 kHz mono) once.
    pub fn new(config: AugmentConfig, base: &Path, seed: u64) -> anyhow::Result<Self> {
        let mut noises = Vec::new();
        if let Some(dir) = &config.noise_dir {
            let dir = if dir.is_absolute() { dir.clone() } else { base.join(dir) };
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| anyhow::anyhow!("noise folder {}: {e}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            for f in files {
                let samples = FileSource::open(&f)?.read_all()?;
                if samples.iter().any(|s| s.abs() > 1e-4) {
                    noises.push(samples);
                }
            }
            if noises.is_empty() {
                anyhow::bail!("no usable noise recordings in {}", dir.display());
            }
        }
        Ok(Self { config, noises, rng: Rng::new(seed) })
    }

    pub fn copies(&self) -> usize {
        self.config.copies
    }

    /// A perturbed copy of 16 kHz `samples`: a random speed, then noise at a random SNR.
    pub fn audio(&mut self, samples: &[f32]) -> crate::error::Result<Vec<f32>> {
        let speeds = &self.config.speeds;
        let speed = if speeds.is_empty() {
            1.0
        } else {
            speeds[(self.rng.next_u64() % speeds.len() as u64) as usize]
        };
        let mut out = change_speed(samples, speed)?;
        if !self.noises.is_empty() {
            let noise = &self.noises[(self.rng.next_u64() % self.noises.len() as u64) as usize];
            let [lo, hi] = self.config.snr_db;
            let snr = lo + (hi - lo) * self.rng.uniform();
            let offset = (self.rng.next_u64() % noise.len() as u64) as usize;
            add_noise(&mut out, noise, offset, snr);
        }
        Ok(out)
    }

    /// SpecAugment masks on normalised mel frames `[T × n_mels]` (masked values set to 0, the
    /// normalised mean).
    pub fn mask_mel(&mut self, mel: &mut [f32], n_mels: usize) {
        let t = mel.len() / n_mels;
        for _ in 0..self.config.time_masks {
            let width = (self.rng.next_u64() % (self.config.time_mask_frames as u64 + 1)) as usize;
            let width = width.min(t / 5); // never more than a fifth of a short utterance
            let start = (self.rng.next_u64() % (t - width + 1) as u64) as usize;
            mel[start * n_mels..(start + width) * n_mels].iter_mut().for_each(|v| *v = 0.0);
        }
        for _ in 0..self.config.freq_masks {
            let width = (self.rng.next_u64() % (self.config.freq_mask_bins as u64 + 1)) as usize;
            let start = (self.rng.next_u64() % (n_mels - width + 1) as u64) as usize;
            for frame in mel.chunks_mut(n_mels) {
                frame[start..start + width].iter_mut().for_each(|v| *v = 0.0);
            }
        }
    }
}

/// Plays `samples` `speed` times faster (pitch moves with it), by resampling.
pub fn change_speed(samples: &[f32], speed: f32) -> crate::error::Result<Vec<f32>> {
    if (speed - 1.0).abs() < 1e-6 {
        return Ok(samples.to_vec());
    }
    Resampler::resample_all(samples, (16_000.0 * speed).round() as u32, 16_000)
}

/// Adds `noise` (looped from `offset`) scaled so that the signal-to-noise power ratio is `snr_db`.
pub fn add_noise(signal: &mut [f32], noise: &[f32], offset: usize, snr_db: f32) {
    let power = |x: &mut dyn Iterator<Item = f32>| -> f64 {
        let (sum, n) = x.fold((0f64, 0usize), |(s, n), v| (s + (v as f64).powi(2), n + 1));
        sum / n.max(1) as f64
    };
    let looped = |i: usize| noise[(offset + i) % noise.len()];
    let p_signal = power(&mut signal.iter().copied());
    let p_noise = power(&mut (0..signal.len()).map(looped));
    if p_signal == 0.0 || p_noise == 0.0 {
        return;
    }
    let gain = (p_signal / (p_noise * 10f64.powf(snr_db as f64 / 10.0))).sqrt() as f32;
    for (i, s) in signal.iter_mut().enumerate() {
        *s += gain * looped(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, hz: f32) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / 16_000.0).sin() * 0.3).collect()
    }

    #[test]
    fn noise_is_mixed_at_the_requested_snr() {
        let clean = tone(16_000, 440.0);
        let mut rng = Rng::new(1);
        let noise: Vec<f32> = (0..5_000).map(|_| rng.normal()).collect();
        for snr in [0.0f32, 5.0, 17.0] {
            let mut mixed = clean.clone();
            add_noise(&mut mixed, &noise, 123, snr);
            let p = |x: &[f32]| x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
            let residual: Vec<f32> = mixed.iter().zip(&clean).map(|(m, c)| m - c).collect();
            let measured = 10.0 * (p(&clean) / p(&residual)).log10();
            assert!((measured - snr as f64).abs() < 0.01, "{snr}: {measured}");
        }
    }

    #[test]
    fn speed_perturbation_changes_duration_and_pitch() {
        let x = tone(32_000, 500.0);
        for speed in [0.9f32, 1.1] {
            let y = change_speed(&x, speed).unwrap();
            let expected = 32_000.0 / speed;
            assert!((y.len() as f32 - expected).abs() <= 2.0, "{speed}: {}", y.len());
            // Zero crossings per second scale with the speed: 1000/s becomes 1000·speed.
            let crossings =
                y[2000..y.len() - 2000].windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count() as f32;
            let per_second = crossings / ((y.len() - 4000) as f32 / 16_000.0);
            assert!((per_second / 1000.0 - speed).abs() < 0.01, "{speed}: {per_second}");
        }
    }

    #[test]
    fn spec_augment_masks_bounded_spans() {
        let config = AugmentConfig {
            copies: 1,
            speeds: vec![],
            noise_dir: None,
            snr_db: [0.0, 0.0],
            time_masks: 2,
            time_mask_frames: 30,
            freq_masks: 2,
            freq_mask_bins: 10,
        };
        let mut a = Augmenter { config, noises: vec![], rng: Rng::new(5) };
        let (t, m) = (300, 80);
        let mut mel = vec![1.0f32; t * m];
        a.mask_mel(&mut mel, m);
        let masked_frames = mel.chunks(m).filter(|f| f.iter().all(|&v| v == 0.0)).count();
        let masked_bins = (0..m).filter(|&b| mel.chunks(m).all(|f| f[b] == 0.0)).count();
        assert!(masked_frames <= 60 && masked_bins <= 20, "{masked_frames} {masked_bins}");
        assert!(masked_frames + masked_bins > 0, "seed 5 draws some mask");
        assert!(mel.iter().filter(|&&v| v == 1.0).count() >= (t - 60) * (m - 20));
    }
}
