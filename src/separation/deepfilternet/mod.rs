//! The DeepFilterNet3 denoiser (48 kHz): a 960-point STFT with hop 480 and a Vorbis window, the
//! network ([`model`]) per frame, an ERB gain per band over the whole spectrum, and a five-tap
//! complex deep filter over the lowest 96 bins. It looks two frames ahead, so its algorithmic
//! latency is the window and two hops: 40 ms. The runtime around the network follows the
//! package's C runtime (libDF), against whose output `tests/reference/deepfilternet/` checks it.
//!
//! hark's streams are 16 kHz, and a 16 kHz signal's spectrum is the lowest 161 bins of its 48
//! kHz one (both are 50 Hz apart), the rest zero. So [`DeepFilterNet3::enhancer`] runs the
//! network on a 320-point STFT of the 16 kHz audio with the 48 kHz window's every third sample,
//! with no resampling either way: it costs no latency beyond the model's 40 ms, and the network
//! sees what it would see of the audio resampled to 48 kHz (`tests/enhance.rs` compares the two).

pub mod convert;
pub mod level;
pub mod model;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use level::LevelNormalised;
pub use model::Network;
use model::{DF_BINS, DF_ORDER, ERB_BANDS, NetworkState};

use super::framed::{FrameDenoiser, Framed};
use crate::audio::SAMPLE_RATE;
use crate::error::{Error, Result};

/// The model's rate, and its hop there (10 ms).
const RATE: u32 = 48_000;
const FRAME: usize = 480;
const FFT: usize = 2 * FRAME;
const BINS: usize = FFT / 2 + 1;
/// Frames the network looks ahead (its convolutions' and its deep filter's lookahead).
const LOOKAHEAD: usize = 2;
/// The feature normalisations' exponential decay per frame (a 1 s time constant at 10 ms hops,
/// rounded as libDF rounds it).
const NORM_ALPHA: f32 = 0.99;
/// The widths (in bins) of the 32 ERB bands of a 960-point spectrum at 48 kHz, as libDF
/// computes them: equal steps on the ERB scale, each band at least two bins wide.
fn erb_widths() -> Vec<usize> {
    let freq2erb = |f: f32| 9.265 * (f / (24.7 * 9.265)).ln_1p();
    let erb2freq = |e: f32| 24.7 * 9.265 * ((e / 9.265).exp() - 1.0);
    let freq_width = 48_000.0 / FFT as f32;
    let (low, high) = (freq2erb(0.0), freq2erb(24_000.0));
    let step = (high - low) / ERB_BANDS as f32;
    let (mut widths, mut prev, mut over) = (Vec::with_capacity(ERB_BANDS), 0i32, 0i32);
    for i in 1..=ERB_BANDS {
        let bin = (erb2freq(low + i as f32 * step) / freq_width).round() as i32;
        let mut n = bin - prev - over;
        if n < 2 {
            over = 2 - n;
            n = 2;
        } else {
            over = 0;
        }
        widths.push(n as usize);
        prev = bin;
    }
    widths[ERB_BANDS - 1] += 1; // the Nyquist bin
    let total: usize = widths.iter().sum();
    widths[ERB_BANDS - 1] -= total - BINS;
    widths
}

/// The Vorbis window: power-complementary at 50% overlap, so analysis and synthesis with it
/// reconstruct the input exactly.
fn vorbis_window() -> Vec<f32> {
    let half = FFT as f64 / 2.0;
    (0..FFT)
        .map(|i| {
            let s = (0.5 * std::f64::consts::PI * (i as f64 + 0.5) / half).sin();
            (0.5 * std::f64::consts::PI * s * s).sin() as f32
        })
        .collect()
}

/// A linear ramp from `a` to `b` in `n` steps (numpy's `linspace`).
fn linspace(a: f32, b: f32, n: usize) -> Vec<f32> {
    (0..n).map(|i| a + (b - a) * i as f32 / (n - 1) as f32).collect()
}

/// The loaded model; [`DeepFilterNet3::stream`] makes one enhancer per stream.
pub struct DeepFilterNet3 {
    network: Network,
    erb: Vec<usize>,
    window: Vec<f32>,
    /// The 960-point transforms at 48 kHz, and the 320-point ones at 16 kHz.
    transforms_48k: Transforms,
    transforms_16k: Transforms,
}

#[derive(Clone)]
struct Transforms {
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl Transforms {
    fn new(planner: &mut RealFftPlanner<f32>, len: usize) -> Self {
        Self { forward: planner.plan_fft_forward(len), inverse: planner.plan_fft_inverse(len) }
    }
}

impl DeepFilterNet3 {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
            .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        Self::from_network(Network::from_tensors(&tensors)?)
    }

    pub fn from_network(network: Network) -> Result<Self> {
        let mut planner = RealFftPlanner::new();
        Ok(Self {
            network,
            erb: erb_widths(),
            window: vorbis_window(),
            transforms_48k: Transforms::new(&mut planner, FFT),
            transforms_16k: Transforms::new(&mut planner, FFT / DECIMATION_16K),
        })
    }

    /// A 16 kHz enhancer over this model ([`DeepFilterStream::at_16k`]), its input raised to
    /// speech level ([`level`]).
    pub fn enhancer(model: Arc<Self>) -> Framed<LevelNormalised<DeepFilterStream>> {
        Framed::new(LevelNormalised::new(DeepFilterStream::at_16k(model)))
    }

    /// The same at 48 kHz inside, the audio resampled up and back: libDF's own arithmetic, to
    /// compare the 16 kHz stream with.
    pub fn enhancer_at_48k(model: Arc<Self>) -> Framed<LevelNormalised<DeepFilterStream>> {
        Framed::new(LevelNormalised::new(DeepFilterStream::new(model)))
    }
}

/// 48 kHz over 16 kHz.
const DECIMATION_16K: usize = (RATE / SAMPLE_RATE) as usize;

/// One stream through DeepFilterNet3, at 48 kHz or at 16 kHz.
pub struct DeepFilterStream {
    model: Arc<DeepFilterNet3>,
    /// 1 at 48 kHz, 3 at 16 kHz: the stream's samples are every this many of the model's.
    decimation: usize,
    transforms: Transforms,
    /// The model's window at the stream's rate.
    window: Vec<f32>,
    net: NetworkState,
    analysis_memory: Vec<f32>,
    synthesis_memory: Vec<f32>,
    erb_norm: Vec<f32>,
    unit_norm: Vec<f32>,
    /// The last `DF_ORDER` input spectra, oldest first: the deep filter's taps; the middle one
    /// (`LOOKAHEAD` frames old) is the frame the network's outputs are applied to.
    spectra: VecDeque<Vec<Complex32>>,
    time: Vec<f32>,
    /// The 48 kHz spectrum the network works on, and the stream's own (its lowest bins).
    spectrum: Vec<Complex32>,
    own_spectrum: Vec<Complex32>,
    forward_scratch: Vec<Complex32>,
    inverse_scratch: Vec<Complex32>,
}

impl DeepFilterStream {
    /// A 48 kHz stream: libDF's runtime.
    pub fn new(model: Arc<DeepFilterNet3>) -> Self {
        Self::decimated(model, 1)
    }

    /// A 16 kHz stream (see the module's comment).
    pub fn at_16k(model: Arc<DeepFilterNet3>) -> Self {
        Self::decimated(model, DECIMATION_16K)
    }

    fn decimated(model: Arc<DeepFilterNet3>, decimation: usize) -> Self {
        let net = model.network.state();
        let transforms =
            if decimation == 1 { model.transforms_48k.clone() } else { model.transforms_16k.clone() };
        let (forward_scratch, inverse_scratch) =
            (transforms.forward.make_scratch_vec(), transforms.inverse.make_scratch_vec());
        let window = model.window.iter().step_by(decimation).copied().collect();
        let (hop, fft) = (FRAME / decimation, FFT / decimation);
        Self {
            model,
            decimation,
            transforms,
            window,
            net,
            analysis_memory: vec![0.0; hop],
            synthesis_memory: vec![0.0; hop],
            erb_norm: linspace(-60.0, -90.0, ERB_BANDS),
            unit_norm: linspace(0.001, 0.0001, DF_BINS),
            spectra: (0..DF_ORDER).map(|_| vec![Complex32::default(); BINS]).collect(),
            time: vec![0.0; fft],
            spectrum: vec![Complex32::default(); BINS],
            own_spectrum: vec![Complex32::default(); fft / 2 + 1],
            forward_scratch,
            inverse_scratch,
        }
    }

    /// The network's inputs for the newest spectrum: 32 normalised log band energies, and the
    /// lowest 96 bins divided by a running mean magnitude, as `[re ×96, im ×96]`.
    fn features(&mut self, spectrum: &[Complex32]) -> (Vec<f32>, Vec<f32>) {
        let mut erb = Vec::with_capacity(ERB_BANDS);
        let mut start = 0;
        for (&width, state) in self.model.erb.iter().zip(&mut self.erb_norm) {
            let power: f32 =
                spectrum[start..start + width].iter().map(|c| c.norm_sqr()).sum::<f32>() / width as f32;
            start += width;
            let db = 10.0 * (power + 1e-10).log10();
            *state = db * (1.0 - NORM_ALPHA) + *state * NORM_ALPHA;
            erb.push((db - *state) / 40.0);
        }
        let mut spec = vec![0f32; 2 * DF_BINS];
        for (bin, state) in self.unit_norm.iter_mut().enumerate() {
            let c = spectrum[bin];
            *state = c.norm() * (1.0 - NORM_ALPHA) + *state * NORM_ALPHA;
            let scale = 1.0 / state.sqrt();
            spec[bin] = c.re * scale;
            spec[DF_BINS + bin] = c.im * scale;
        }
        (erb, spec)
    }
}

impl FrameDenoiser for DeepFilterStream {
    fn rate(&self) -> u32 {
        RATE / self.decimation as u32
    }

    fn frame(&mut self, input: &[f32], output: &mut [f32]) {
        let model = self.model.clone();
        let hop = input.len();
        // Analysis: the previous hop and this one, windowed; scaled as libDF scales it.
        for (i, t) in self.time.iter_mut().enumerate() {
            let x = if i < hop { self.analysis_memory[i] } else { input[i - hop] };
            *t = x * self.window[i];
        }
        self.analysis_memory.copy_from_slice(input);
        self.transforms
            .forward
            .process_with_scratch(&mut self.time, &mut self.own_spectrum, &mut self.forward_scratch)
            .expect("fixed sizes");
        // libDF's analysis scale, 1 / (FFT² / (2·hop)); the inverse transform is not scaled. At
        // 16 kHz, × 3: a band-limited signal's sum over every third sample is a third of its sum
        // over all of them.
        let norm = 2.0 * FRAME as f32 / (FFT * FFT) as f32 * self.decimation as f32;
        let own = self.own_spectrum.len();
        for (c, &bin) in self.spectrum.iter_mut().zip(&self.own_spectrum) {
            *c = bin * norm;
        }
        self.spectrum[own..].fill(Complex32::default());
        let newest = std::mem::take(&mut self.spectrum);
        let (erb, spec) = self.features(&newest);
        self.spectrum = self.spectra.pop_front().expect("DF_ORDER spectra");
        self.spectra.push_back(newest);

        // libDF's runtime thresholds on the local SNR (−15 and 35 dB) are the ends of the
        // network's range, so every frame gets the gains and the deep filter.
        let out = model.network.frame(&mut self.net, &erb, &spec);
        // The frame the outputs belong to, `LOOKAHEAD` frames back: ERB gains over the whole
        // spectrum, then the deep filter over the noisy (unmasked) low bins replaces them there.
        let target = &mut self.spectrum;
        target.copy_from_slice(&self.spectra[DF_ORDER - 1 - LOOKAHEAD]);
        let mut start = 0;
        for (&width, &gain) in model.erb.iter().zip(&out.gains) {
            target[start..start + width].iter_mut().for_each(|c| *c *= gain);
            start += width;
        }
        for (bin, taps) in out.coefs.chunks_exact(2 * DF_ORDER).enumerate() {
            let mut sum = Complex32::default();
            for (k, frame) in self.spectra.iter().enumerate() {
                sum += frame[bin] * Complex32::new(taps[2 * k], taps[2 * k + 1]);
            }
            target[bin] = sum;
        }
        // Synthesis: inverse transform of the stream's bins (a real signal's spectrum: DC and
        // Nyquist are real; above the stream's Nyquist there is nothing), window, overlap-add.
        // At 16 kHz this is the 48 kHz synthesis at every third sample.
        self.own_spectrum.copy_from_slice(&target[..own]);
        self.own_spectrum[0].im = 0.0;
        self.own_spectrum[own - 1].im = 0.0;
        self.transforms
            .inverse
            .process_with_scratch(&mut self.own_spectrum, &mut self.time, &mut self.inverse_scratch)
            .expect("fixed sizes");
        for (i, &t) in self.time.iter().enumerate() {
            let v = t * self.window[i];
            if i < hop {
                output[i] = v + self.synthesis_memory[i];
            } else {
                self.synthesis_memory[i - hop] = v;
            }
        }
    }

    fn delay(&self) -> usize {
        // The overlap-add's hop plus the lookahead.
        (1 + LOOKAHEAD) * FRAME / self.decimation
    }

    fn reset(&mut self) {
        *self = Self::decimated(self.model.clone(), self.decimation);
    }
}
