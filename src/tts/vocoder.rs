//! hibari's vocoder: the acoustic model predicts, per 12.5 ms frame, a harmonic gain and phase
//! shift, a noise gain and a free residual (gain and phase); this turns them into 24 kHz audio.
//! A band-limited pulse train at the F0 curve is taken to the STFT domain, shaped by the harmonic
//! branch, shaped Gaussian noise and the residual are added, and one inverse STFT (n_fft 1200,
//! hop 300, periodic Hann, overlap-add normalised by the summed squared window) gives the wave:
//!
//! S = exp(lh)·e^{iπ·tanh θ}·STFT(pulses(f0)) + exp(ln)·Z + exp(lr)·e^{iφ}
//!
//! The same arithmetic as the package's dsp.py (numpy/scipy), in f32 on realfft.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::model::{AcousticFrames, BINS};
use crate::asr::transducer::init::Rng;
use crate::error::{Error, Result};

pub const SAMPLE_RATE: u32 = 24_000;
pub const N_FFT: usize = 1200;
pub const HOP: usize = 300;
/// Below this F0 (Hz) a frame is unvoiced: no pulses.
const VOICED_HZ: f32 = 40.0;
/// Harmonics above this frequency are left out of the pulse train (no aliasing below Nyquist).
const MAX_HARMONIC_HZ: f32 = 11_000.0;
/// Gains are exp(x) with x capped here, as in the package.
const MAX_LOG_GAIN: f32 = 7.0;

pub struct Vocoder {
    window: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl Default for Vocoder {
    fn default() -> Self {
        Self::new()
    }
}

fn gain(x: f32) -> f32 {
    x.min(MAX_LOG_GAIN).exp()
}

impl Vocoder {
    pub fn new() -> Self {
        let mut planner = RealFftPlanner::new();
        let window = (0..N_FFT)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos())
            .map(|w| w as f32)
            .collect();
        Self { window, forward: planner.plan_fft_forward(N_FFT), inverse: planner.plan_fft_inverse(N_FFT) }
    }

    /// The band-limited pulse train of an F0 curve (one value per frame), one value per sample:
    /// every harmonic below 11 kHz at unit amplitude, Σ_{h≤H} cos(h·t) = sin((H+½)t) / (2 sin(t/2)) − ½.
    pub fn pulses(&self, f0: &[f32]) -> Vec<f32> {
        let frames = f0.len();
        let at = |k: isize| f0[k.clamp(0, frames as isize - 1) as usize];
        let mut out = Vec::with_capacity(frames * HOP);
        let mut phase = 0f64;
        for k in 0..frames as isize {
            for j in 0..HOP {
                // Linear interpolation between frame centres (PyTorch's align_corners=False).
                let u = ((j as f32 + 0.5) / HOP as f32 - 0.5).rem_euclid(1.0);
                let f = if j < HOP / 2 {
                    at(k - 1) * (1.0 - u) + at(k) * u
                } else {
                    at(k) * (1.0 - u) + at(k + 1) * u
                };
                let voiced = f > VOICED_HZ;
                let f = f.max(VOICED_HZ);
                phase += f64::from(f);
                let t = ((phase / f64::from(SAMPLE_RATE)).fract() * 2.0 * std::f64::consts::PI) as f32;
                let harmonics = (MAX_HARMONIC_HZ / f).floor() + 0.5;
                let s = 2.0 * (t * 0.5).sin();
                let e = if s.abs() <= 2e-3 { harmonics } else { (harmonics * t).sin() / s };
                out.push(if voiced { e - 0.5 } else { 0.0 });
            }
        }
        out
    }

    /// The waveform of one utterance. `noise` draws the noise branch (the package draws it from
    /// numpy's generator; any standard normal source is the same model); `None` leaves the
    /// branch out, which makes the output deterministic (for comparing with a reference).
    /// Frames are made in parallel (each an FFT of the pulses, the spectral sum and an inverse
    /// FFT), then overlap-added in order.
    pub fn synthesise(&self, a: &AcousticFrames, noise: Option<&mut Rng>) -> Result<Vec<f32>> {
        use rayon::prelude::*;
        let frames = a.frames;
        if frames == 0 {
            return Ok(Vec::new());
        }
        let pulses = self.pulses(&a.f0);
        // Each frame draws its noise from its own generator, seeded from the caller's, so frames
        // can be made in parallel and a seed still gives one sound.
        let noise_seed = noise.map(|n| n.next_u64());
        let n = pulses.len() as isize;
        let reflect = |mut i: isize| -> f32 {
            if n == 1 {
                return pulses[0];
            }
            while i < 0 || i >= n {
                i = if i < 0 { -i } else { 2 * (n - 1) - i };
            }
            pulses[i as usize]
        };
        let half = N_FFT / 2;
        // A unit cosine peaks at sum(window)/2 = N/4 in the STFT: exp(lh) is the harmonic's magnitude.
        let pulse_scale = 1.0 / (N_FFT as f32 / 4.0);
        let made: Vec<Result<Vec<f32>>> = (0..frames)
            .into_par_iter()
            .map_init(
                || {
                    (
                        self.forward.make_input_vec(),
                        self.forward.make_output_vec(),
                        self.inverse.make_output_vec(),
                    )
                },
                |(input, spectrum, frame), k| {
                    // The pulses' STFT: centred, reflect-padded.
                    for (i, x) in input.iter_mut().enumerate() {
                        *x = reflect((k * HOP + i) as isize - half as isize) * self.window[i] * pulse_scale;
                    }
                    self.forward
                        .process(input, spectrum)
                        .map_err(|e| Error::Model(format!("vocoder FFT: {e}")))?;
                    let mut noise = noise_seed
                        .map(|seed| Rng::new(seed ^ (k as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)));
                    for (b, s) in spectrum.iter_mut().enumerate() {
                        let at = b * frames + k;
                        let rotation = Complex::from_polar(
                            gain(a.log_harmonic[at]),
                            std::f32::consts::PI * a.theta[at].tanh(),
                        );
                        let z = noise.as_mut().map_or(Complex::new(0.0, 0.0), |n| {
                            let (re, im) = n.normal_pair();
                            Complex::new(re, im) * gain(a.log_noise[at])
                        });
                        *s = *s * rotation + z + Complex::from_polar(gain(a.log_residual[at]), a.phi[at]);
                    }
                    // A real signal's DC and Nyquist bins are real (numpy's irfft ignores their imaginary part).
                    spectrum[0].im = 0.0;
                    spectrum[BINS - 1].im = 0.0;
                    self.inverse
                        .process(spectrum, frame)
                        .map_err(|e| Error::Model(format!("vocoder inverse FFT: {e}")))?;
                    Ok(frame.iter().zip(&self.window).map(|(v, w)| v / N_FFT as f32 * w).collect())
                },
            )
            .collect();
        let mut output = vec![0f32; (frames + N_FFT / HOP - 1) * HOP];
        let mut weight = vec![0f32; output.len()];
        for (k, frame) in made.into_iter().enumerate() {
            for (i, v) in frame?.into_iter().enumerate() {
                output[k * HOP + i] += v;
                weight[k * HOP + i] += self.window[i] * self.window[i];
            }
        }
        Ok((half..half + frames * HOP).map(|i| output[i] / weight[i].max(1e-11)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulse_train_of_a_steady_pitch_repeats_at_that_pitch() {
        let v = Vocoder::new();
        let p = v.pulses(&[200.0; 8]);
        assert_eq!(p.len(), 8 * HOP);
        // 200 Hz at 24 kHz: a period of 120 samples.
        let period = 120;
        let mid = &p[HOP..HOP + 4 * period];
        let err = (0..3 * period).map(|i| (mid[i] - mid[i + period]).abs()).fold(0f32, f32::max);
        assert!(err < 1e-2, "{err}");
        assert!(v.pulses(&[0.0; 4]).iter().all(|&x| x == 0.0), "unvoiced frames are silent");
    }

    #[test]
    fn residual_alone_is_inverted_exactly() {
        // A residual-only spectrum (no harmonic, no noise) of a 1 kHz cosine, built from its STFT,
        // comes back as that cosine.
        let v = Vocoder::new();
        let frames = 12;
        let freq = 1000.0;
        let bin = (freq * N_FFT as f32 / SAMPLE_RATE as f32) as usize; // 50
        let mut a = AcousticFrames {
            frames,
            log_harmonic: vec![-100.0; BINS * frames],
            theta: vec![0.0; BINS * frames],
            log_noise: vec![-100.0; BINS * frames],
            log_residual: vec![-100.0; BINS * frames],
            phi: vec![0.0; BINS * frames],
            f0: vec![0.0; frames],
        };
        for k in 0..frames {
            // The STFT of a unit cosine on a bin under a periodic Hann window: N/4 on its bin and
            // −N/8 on each neighbour; its phase (frames start 600 samples, 25 whole periods,
            // before their centre k·HOP) advances by 2π·f·k·HOP/SR.
            let phase = (2.0 * std::f32::consts::PI * freq * (k * HOP) as f32 / SAMPLE_RATE as f32)
                .rem_euclid(2.0 * std::f32::consts::PI);
            for (b, magnitude, shift) in
                [(bin - 1, 8.0, std::f32::consts::PI), (bin, 4.0, 0.0), (bin + 1, 8.0, std::f32::consts::PI)]
            {
                a.log_residual[b * frames + k] = (N_FFT as f32 / magnitude).ln();
                a.phi[b * frames + k] = phase + shift;
            }
        }
        let wave = v.synthesise(&a, None).unwrap();
        assert_eq!(wave.len(), frames * HOP);
        let err = (HOP * 2..HOP * (frames - 2))
            .map(|i| {
                (wave[i] - (2.0 * std::f32::consts::PI * freq * i as f32 / SAMPLE_RATE as f32).cos()).abs()
            })
            .fold(0f32, f32::max);
        assert!(err < 1e-3, "{err}");
    }
}
