//! A denoiser's output blended with its input in front of a recogniser ("observation adding",
//! Iwamoto et al. 2022): recognisers suffer more from a denoiser's artifacts than from moderate
//! noise, and some of the original signal masks the artifacts. The share of input is fixed, or
//! follows the local SNR that the denoiser itself implies, so that clean speech passes untouched.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use crate::audio::SAMPLE_RATE;
use crate::error::{Error, Result};
use crate::separation::Enhancer;

/// How much of the input goes back into the output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DryShare {
    /// `output + share × input`.
    Fixed(f32),
    /// `(1 − v) × output + v × input`, v rising from `min` at or below `low_db` of local SNR to
    /// 1 at or above `high_db`. The SNR is the denoiser's own reading: the energy of what it kept
    /// over the energy of what it removed, both smoothed over [`SNR_WINDOW_SECONDS`].
    Adaptive { min: f32, low_db: f32, high_db: f32 },
}

/// Time constant of the speech and noise energies behind the adaptive share.
pub const SNR_WINDOW_SECONDS: f32 = 0.5;

/// The adaptive share's input share in noise: `output + 0.5 × input`, scaled to unit gain.
const ADAPTIVE_MIN_SHARE: f32 = 1.0 / 3.0;

impl DryShare {
    /// The adaptive share with its measured settings (`hark bench denoise --dry adaptive`).
    pub const ADAPTIVE: DryShare =
        DryShare::Adaptive { min: ADAPTIVE_MIN_SHARE, low_db: 10.0, high_db: 20.0 };
}

impl fmt::Display for DryShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Fixed(share) => write!(f, "{share} × input"),
            Self::Adaptive { min, low_db, high_db } => {
                write!(f, "adaptive input share ({min:.2} below {low_db} dB SNR, 1 above {high_db} dB)")
            }
        }
    }
}

impl FromStr for DryShare {
    type Err = Error;

    /// `0.5` (fixed), `adaptive` (the default settings) or `adaptive:LOW_DB:HIGH_DB`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidInput(format!(
                "'{s}' is not a dry share: give a number (0.5), adaptive, or adaptive:LOW_DB:HIGH_DB"
            ))
        };
        match s.strip_prefix("adaptive") {
            Some("") => Ok(Self::ADAPTIVE),
            Some(rest) => {
                let (low, high) = rest.strip_prefix(':').and_then(|r| r.split_once(':')).ok_or_else(bad)?;
                let (low_db, high_db): (f32, f32) =
                    (low.parse().map_err(|_| bad())?, high.parse().map_err(|_| bad())?);
                if !low_db.is_finite() || !high_db.is_finite() || low_db >= high_db {
                    return Err(bad());
                }
                Ok(Self::Adaptive { min: ADAPTIVE_MIN_SHARE, low_db, high_db })
            }
            None => match s.parse::<f32>() {
                Ok(share) if share.is_finite() && share >= 0.0 => Ok(Self::Fixed(share)),
                _ => Err(bad()),
            },
        }
    }
}

pub struct DryMix {
    inner: Box<dyn Enhancer>,
    share: DryShare,
    /// Input not yet matched by output (the output is aligned with the input).
    input: VecDeque<f32>,
    /// Smoothed energies of the kept (speech) and removed (noise) signal.
    speech_energy: f32,
    noise_energy: f32,
    smoothing: f32,
}

impl DryMix {
    pub fn new(inner: Box<dyn Enhancer>, share: DryShare) -> Self {
        let smoothing = (-1.0 / (SNR_WINDOW_SECONDS * SAMPLE_RATE as f32)).exp();
        Self { inner, share, input: VecDeque::new(), speech_energy: 0.0, noise_energy: 0.0, smoothing }
    }

    fn mix(&mut self, mut out: Vec<f32>) -> Vec<f32> {
        match self.share {
            DryShare::Fixed(share) => {
                for v in &mut out {
                    *v += share * self.input.pop_front().unwrap_or(0.0);
                }
            }
            DryShare::Adaptive { min, low_db, high_db } => {
                let a = self.smoothing;
                for v in &mut out {
                    let x = self.input.pop_front().unwrap_or(0.0);
                    let removed = x - *v;
                    self.speech_energy = a * self.speech_energy + (1.0 - a) * *v * *v;
                    self.noise_energy = a * self.noise_energy + (1.0 - a) * removed * removed;
                    // Silence reads as 0 dB: a floor keeps the ratio defined.
                    let snr_db = 10.0 * ((self.speech_energy + 1e-10) / (self.noise_energy + 1e-10)).log10();
                    let ramp = ((snr_db - low_db) / (high_db - low_db)).clamp(0.0, 1.0);
                    let share = min + (1.0 - min) * ramp;
                    *v = (1.0 - share) * *v + share * x;
                }
            }
        }
        out
    }
}

impl Enhancer for DryMix {
    fn process(&mut self, input: &[f32]) -> Vec<f32> {
        self.input.extend(input);
        let out = self.inner.process(input);
        self.mix(out)
    }

    fn finish(&mut self) -> Vec<f32> {
        let out = self.inner.finish();
        let out = self.mix(out);
        self.input.clear();
        out
    }

    fn latency_samples(&self) -> usize {
        self.inner.latency_samples()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes a fixed share of its input: a denoiser that reads the SNR as (1−r)²/r².
    struct Attenuate(f32);

    impl Enhancer for Attenuate {
        fn process(&mut self, input: &[f32]) -> Vec<f32> {
            input.iter().map(|x| x * (1.0 - self.0)).collect()
        }
        fn finish(&mut self) -> Vec<f32> {
            Vec::new()
        }
        fn latency_samples(&self) -> usize {
            0
        }
    }

    fn tone(seconds: f32) -> Vec<f32> {
        (0..(seconds * SAMPLE_RATE as f32) as usize).map(|i| (i as f32 * 0.05).sin() * 0.1).collect()
    }

    #[test]
    fn parses_fixed_and_adaptive_shares() {
        assert_eq!("0.5".parse::<DryShare>().unwrap(), DryShare::Fixed(0.5));
        assert_eq!("adaptive".parse::<DryShare>().unwrap(), DryShare::ADAPTIVE);
        assert!(matches!(
            "adaptive:5:15".parse::<DryShare>().unwrap(),
            DryShare::Adaptive { low_db, high_db, .. } if low_db == 5.0 && high_db == 15.0
        ));
        for bad in ["-1", "nan", "adaptive:9", "adaptive:20:10", "adaptivex", "half"] {
            assert!(bad.parse::<DryShare>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_denoiser_that_removes_little_is_passed_through_as_the_input() {
        // Removing 1% of the amplitude reads as ~40 dB SNR: the input comes back unchanged.
        let input = tone(2.0);
        let out = DryMix::new(Box::new(Attenuate(0.01)), DryShare::ADAPTIVE).enhance_all(&input);
        let tail = input.len() / 2;
        for (o, x) in out[tail..].iter().zip(&input[tail..]) {
            assert!((o - x).abs() < 1e-6, "{o} vs {x}");
        }
    }

    #[test]
    fn a_denoiser_that_removes_much_keeps_the_minimum_share() {
        // Removing half the amplitude reads as 0 dB: a third of the input, two thirds the output.
        let input = tone(2.0);
        let out = DryMix::new(Box::new(Attenuate(0.5)), DryShare::ADAPTIVE).enhance_all(&input);
        let tail = input.len() / 2;
        for (o, x) in out[tail..].iter().zip(&input[tail..]) {
            let expected = (2.0 / 3.0) * 0.5 * x + (1.0 / 3.0) * x;
            assert!((o - expected).abs() < 1e-6, "{o} vs {expected}");
        }
    }

    #[test]
    fn the_fixed_share_adds_the_input() {
        let input = tone(0.1);
        let out = DryMix::new(Box::new(Attenuate(0.5)), DryShare::Fixed(0.5)).enhance_all(&input);
        assert_eq!(out.len(), input.len());
        for (o, x) in out.iter().zip(&input) {
            assert!((o - x).abs() < 1e-7);
        }
    }
}
