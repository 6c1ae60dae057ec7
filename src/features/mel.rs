//! Streaming log-mel front end matching Whisper's: 16 kHz, n_fft 400, hop 160, periodic Hann,
//! 80 Slaney-normalised mel bands over 0–8 kHz, log10 of max(power, 1e-10). Like `torch.stft`
//! with `center=True`, the signal is reflect-padded by 200 samples at both ends and the last
//! frame is dropped, so N samples give N / 160 frames; frame i is centred on sample 160·i.
//!
//! Whisper's final scaling (clamp to max − 8, then (x + 4) / 4) needs the maximum over a window,
//! so it is a separate step, [`normalize_whisper`], applied by the consumer over its window.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

pub const N_FFT: usize = 400;
pub const HOP_LENGTH: usize = 160;
pub const N_MELS: usize = 80;
const N_BINS: usize = N_FFT / 2 + 1;
const PAD: usize = N_FFT / 2;

/// Slaney's mel scale (librosa's default, `htk=False`): linear below 1 kHz, logarithmic above.
fn hz_to_mel(f: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    if f < min_log_hz { f / f_sp } else { min_log_hz / f_sp + (f / min_log_hz).ln() / (6.4f64.ln() / 27.0) }
}

fn mel_to_hz(m: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    if m < min_log_mel { m * f_sp } else { min_log_hz * ((6.4f64.ln() / 27.0) * (m - min_log_mel)).exp() }
}

/// Triangular, area-normalised ("slaney") mel filters, `[N_MELS][N_BINS]`, as librosa builds them.
pub fn mel_filters(sample_rate: f64) -> Vec<[f32; N_BINS]> {
    slaney_filters(sample_rate, N_FFT, N_MELS)
        .into_iter()
        .map(|row| row.try_into().expect("N_BINS values"))
        .collect()
}

/// librosa's `filters.mel(sr, n_fft, n_mels)` (Slaney scale and area normalisation, up to sr/2):
/// `[n_mels][n_fft / 2 + 1]`.
pub fn slaney_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<Vec<f32>> {
    let max_mel = hz_to_mel(sample_rate / 2.0);
    let freqs: Vec<f64> =
        (0..n_mels + 2).map(|i| mel_to_hz(max_mel * i as f64 / (n_mels + 1) as f64)).collect();
    let fft_freq = |k: usize| k as f64 * sample_rate / n_fft as f64;
    (0..n_mels)
        .map(|m| {
            let enorm = 2.0 / (freqs[m + 2] - freqs[m]);
            (0..n_fft / 2 + 1)
                .map(|k| {
                    let lower = (fft_freq(k) - freqs[m]) / (freqs[m + 1] - freqs[m]);
                    let upper = (freqs[m + 2] - fft_freq(k)) / (freqs[m + 2] - freqs[m + 1]);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect()
        })
        .collect()
}

/// One frame of log10 mel energies and its index (frame i is centred on sample 160·i).
#[derive(Debug, Clone)]
pub struct MelFrame {
    pub index: u64,
    pub values: [f32; N_MELS],
}

pub struct MelFrontend {
    fft: Arc<dyn RealToComplex<f32>>,
    window: [f32; N_FFT],
    filters: Vec<[f32; N_BINS]>,
    /// Only the band of bins where each filter is non-zero, to skip the zeros.
    filter_span: Vec<(usize, usize)>,
    /// The reflect-padded signal not yet consumed; `padded[0]` is padded index `consumed`.
    padded: Vec<f32>,
    consumed: usize,
    /// The first 201 samples, held until the left reflection can be built.
    head: Vec<f32>,
    started: bool,
    samples_in: u64,
    next_frame: u64,
    scratch_in: Vec<f32>,
    scratch_out: Vec<Complex<f32>>,
    scratch_fft: Vec<Complex<f32>>,
}

impl Default for MelFrontend {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFrontend {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        let mut window = [0f32; N_FFT];
        for (n, w) in window.iter_mut().enumerate() {
            // Periodic Hann, computed in f64 like numpy's before the cast.
            *w = (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32;
        }
        let filters = mel_filters(16_000.0);
        let filter_span = filters
            .iter()
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(0, |l| l + 1);
                (first, last.max(first))
            })
            .collect();
        Self {
            scratch_in: fft.make_input_vec(),
            scratch_out: fft.make_output_vec(),
            scratch_fft: fft.make_scratch_vec(),
            fft,
            window,
            filters,
            filter_span,
            padded: Vec::new(),
            consumed: 0,
            head: Vec::new(),
            started: false,
            samples_in: 0,
            next_frame: 0,
        }
    }

    /// All frames of a whole recording at once.
    pub fn compute(samples: &[f32]) -> Vec<MelFrame> {
        let mut fe = Self::new();
        let mut frames = Vec::with_capacity(samples.len() / HOP_LENGTH);
        fe.push(samples, &mut frames);
        fe.finish(&mut frames);
        frames
    }

    /// Frames produced so far will number `samples / 160` once the stream ends.
    pub fn frames_emitted(&self) -> u64 {
        self.next_frame
    }

    /// Adds samples and appends every frame that can now be computed.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<MelFrame>) {
        self.samples_in += samples.len() as u64;
        if !self.started {
            self.head.extend_from_slice(samples);
            if self.head.len() <= PAD {
                return;
            }
            // Left reflection: x[200], x[199], …, x[1], then the signal itself.
            self.padded.extend((1..=PAD).rev().map(|i| self.head[i]));
            let head = std::mem::take(&mut self.head);
            self.padded.extend_from_slice(&head);
            self.started = true;
        } else {
            self.padded.extend_from_slice(samples);
        }
        self.emit(self.total_frames_so_far(), out);
    }

    /// Ends the stream: applies the right reflection and emits the last frames.
    pub fn finish(&mut self, out: &mut Vec<MelFrame>) {
        let total = self.samples_in / HOP_LENGTH as u64;
        if !self.started {
            // Too short for torch's reflection; pad with zeros instead (at most one frame).
            let head = std::mem::take(&mut self.head);
            self.padded.extend(std::iter::repeat_n(0.0, PAD));
            self.padded.extend_from_slice(&head);
            self.padded.extend(std::iter::repeat_n(0.0, PAD));
            self.started = true;
        } else {
            // Right reflection: x[N-2], x[N-3], …, x[N-201] (indices into the padded buffer).
            let n = self.padded.len();
            let tail: Vec<f32> = (0..PAD).map(|k| self.padded[n - 2 - k]).collect();
            self.padded.extend(tail);
        }
        self.emit(total, out);
    }

    /// Frames whose whole window is available without the right reflection.
    fn total_frames_so_far(&self) -> u64 {
        let available = (self.consumed + self.padded.len()) as u64; // padded length so far
        if available < N_FFT as u64 { 0 } else { (available - N_FFT as u64) / HOP_LENGTH as u64 + 1 }
    }

    fn emit(&mut self, upto: u64, out: &mut Vec<MelFrame>) {
        while self.next_frame < upto {
            let start = self.next_frame as usize * HOP_LENGTH - self.consumed;
            if start + N_FFT > self.padded.len() {
                break;
            }
            for (i, x) in self.scratch_in.iter_mut().enumerate() {
                *x = self.padded[start + i] * self.window[i];
            }
            self.fft
                .process_with_scratch(&mut self.scratch_in, &mut self.scratch_out, &mut self.scratch_fft)
                .expect("buffers come from the plan");
            let power: Vec<f32> = self.scratch_out.iter().map(|c| c.norm_sqr()).collect();
            let mut values = [0f32; N_MELS];
            for (m, v) in values.iter_mut().enumerate() {
                let (a, b) = self.filter_span[m];
                let e: f32 = self.filters[m][a..b].iter().zip(&power[a..b]).map(|(w, p)| w * p).sum();
                *v = e.max(1e-10).log10();
            }
            out.push(MelFrame { index: self.next_frame, values });
            self.next_frame += 1;
        }
        // Drop samples no later frame needs.
        let keep_from =
            (self.next_frame as usize * HOP_LENGTH).saturating_sub(self.consumed).min(self.padded.len());
        if keep_from > 4096 {
            self.padded.drain(..keep_from);
            self.consumed += keep_from;
        }
    }
}

/// Whisper's scaling over a window of frames (`[frames][N_MELS]` flattened): clamp each value to
/// at least (window max − 8), then map x to (x + 4) / 4.
pub fn normalize_whisper(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in values.iter_mut() {
        *v = (v.max(max - 8.0) + 4.0) / 4.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(samples: &[f32], chunk: usize) -> Vec<MelFrame> {
        let mut fe = MelFrontend::new();
        let mut out = Vec::new();
        for c in samples.chunks(chunk) {
            fe.push(c, &mut out);
        }
        fe.finish(&mut out);
        out
    }

    #[test]
    fn frame_count_and_chunking_do_not_change_the_result() {
        let x: Vec<f32> = (0..16_123)
            .map(|i| ((i as f32) * 0.01).sin() * 0.3 + ((i * 7919 % 101) as f32 - 50.0) * 1e-3)
            .collect();
        let whole = frames_of(&x, x.len());
        assert_eq!(whole.len(), 16_123 / 160);
        for chunk in [1, 160, 401, 4000] {
            let streamed = frames_of(&x, chunk);
            assert_eq!(streamed.len(), whole.len());
            for (a, b) in whole.iter().zip(&streamed) {
                assert_eq!(a.index, b.index);
                assert_eq!(a.values, b.values, "chunk {chunk}, frame {}", a.index);
            }
        }
    }

    #[test]
    fn filters_are_slaney_triangles() {
        let f = mel_filters(16_000.0);
        assert_eq!(f.len(), N_MELS);
        // Every band is non-empty and the peaks rise with the band index.
        let peaks: Vec<usize> =
            f.iter().map(|r| r.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0).collect();
        assert!(peaks.windows(2).all(|w| w[0] <= w[1]));
        assert!(f.iter().all(|r| r.iter().any(|&w| w > 0.0)));
    }
}
