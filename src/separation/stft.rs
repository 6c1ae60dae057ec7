//! A streaming short-time Fourier transform and its overlap-add inverse, for enhancers that work
//! on spectra frame by frame (GTCRN). Frames are centred as librosa's `stft(center=True)` centres
//! them (half a window of zeros before the first sample), and the inverse divides by the summed
//! squared window exactly as `istft` does, so a whole file streamed through here equals the
//! offline transform sample for sample, and the output is aligned with the input.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

pub struct StreamingStft {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    /// Input not yet fully used, in padded coordinates from `pending_start`.
    pending: Vec<f32>,
    /// Frames analysed so far; frame t covers padded samples [t·hop, t·hop + n_fft).
    frames: usize,
    /// Input samples received.
    received: usize,
    /// Overlap-add sums and summed squared windows, from padded sample `synth_start`.
    synth: Vec<f32>,
    envelope: Vec<f32>,
    synth_start: usize,
    /// Output samples handed out (original coordinates).
    emitted: usize,
    spectrum: Vec<Complex32>,
    scratch: Vec<f32>,
}

impl StreamingStft {
    /// `window` is applied at analysis and at synthesis (e.g. the square root of a Hann window).
    pub fn new(n_fft: usize, hop: usize, window: Vec<f32>) -> Self {
        assert_eq!(window.len(), n_fft);
        assert!(hop <= n_fft / 2 && n_fft.is_multiple_of(2));
        let mut planner = RealFftPlanner::new();
        Self {
            n_fft,
            hop,
            window,
            forward: planner.plan_fft_forward(n_fft),
            inverse: planner.plan_fft_inverse(n_fft),
            pending: vec![0.0; n_fft / 2],
            frames: 0,
            received: 0,
            synth: Vec::new(),
            envelope: Vec::new(),
            synth_start: 0,
            emitted: 0,
            spectrum: vec![Complex32::default(); n_fft / 2 + 1],
            scratch: vec![0.0; n_fft],
        }
    }

    /// numpy's `hanning(n) ** 0.5`: the square root of a symmetric Hann window.
    pub fn sqrt_hann_symmetric(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos()).sqrt() as f32
            })
            .collect()
    }

    /// Samples from the input's start to the moment its last sample can be final: one window.
    pub fn latency_samples(&self) -> usize {
        self.n_fft
    }

    /// Feeds input; `enhance` changes each complete frame's spectrum in place. Returns the output
    /// samples that no later frame will change.
    pub fn process(&mut self, input: &[f32], mut enhance: impl FnMut(&mut [Complex32])) -> Vec<f32> {
        self.received += input.len();
        self.pending.extend_from_slice(input);
        while self.pending.len() >= self.n_fft {
            self.frame(&mut enhance);
        }
        // Padded samples before the next frame's start are final.
        let final_end = (self.frames * self.hop).saturating_sub(self.n_fft / 2);
        self.emit(final_end)
    }

    /// Ends the stream: the last frames (zeros after the input, as librosa pads) and the rest of
    /// the output, so that the output is exactly as long as the input.
    pub fn finish(&mut self, mut enhance: impl FnMut(&mut [Complex32])) -> Vec<f32> {
        // librosa makes 1 + len / hop frames.
        let total_frames = 1 + self.received / self.hop;
        while self.frames < total_frames {
            let missing = self.n_fft.saturating_sub(self.pending.len());
            self.pending.extend(std::iter::repeat_n(0.0, missing));
            self.frame(&mut enhance);
        }
        let out = self.emit(self.received);
        self.reset();
        out
    }

    fn reset(&mut self) {
        self.pending = vec![0.0; self.n_fft / 2];
        self.frames = 0;
        self.received = 0;
        self.synth.clear();
        self.envelope.clear();
        self.synth_start = 0;
        self.emitted = 0;
    }

    fn frame(&mut self, enhance: &mut impl FnMut(&mut [Complex32])) {
        for ((s, &x), &w) in self.scratch.iter_mut().zip(&self.pending[..self.n_fft]).zip(&self.window) {
            *s = x * w;
        }
        self.forward.process(&mut self.scratch, &mut self.spectrum).expect("FFT sizes are fixed");
        enhance(&mut self.spectrum);
        // The inverse real FFT needs real DC and Nyquist bins; numpy's irfft ignores their imaginary parts.
        self.spectrum[0].im = 0.0;
        self.spectrum[self.n_fft / 2].im = 0.0;
        self.inverse.process(&mut self.spectrum, &mut self.scratch).expect("FFT sizes are fixed");
        let start = self.frames * self.hop - self.synth_start;
        let end = start + self.n_fft;
        if self.synth.len() < end {
            self.synth.resize(end, 0.0);
            self.envelope.resize(end, 0.0);
        }
        let scale = 1.0 / self.n_fft as f32; // realfft's inverse is unnormalised
        for i in 0..self.n_fft {
            let w = self.window[i];
            self.synth[start + i] += self.scratch[i] * scale * w;
            self.envelope[start + i] += w * w;
        }
        self.pending.drain(..self.hop);
        self.frames += 1;
    }

    /// Hands out original samples [emitted, end), normalised by the summed squared window.
    fn emit(&mut self, end: usize) -> Vec<f32> {
        let offset = self.n_fft / 2; // original sample n is padded sample n + offset
        let mut out = Vec::with_capacity(end.saturating_sub(self.emitted));
        for n in self.emitted..end {
            let i = n + offset - self.synth_start;
            let (x, e) =
                (self.synth.get(i).copied().unwrap_or(0.0), self.envelope.get(i).copied().unwrap_or(0.0));
            out.push(if e > f32::MIN_POSITIVE { x / e } else { x });
        }
        self.emitted = self.emitted.max(end);
        // Drop what is handed out.
        let used = (self.emitted + offset).saturating_sub(self.synth_start).min(self.synth.len());
        self.synth.drain(..used);
        self.envelope.drain(..used);
        self.synth_start += used;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * 0.01).sin() + (i as f32 * 0.173).cos() * 0.3) * 0.5).collect()
    }

    #[test]
    fn identity_reconstructs_the_input_whatever_the_block_sizes() {
        let x = signal(16_000 + 123);
        for block in [1, 100, 256, 1000, 20_000] {
            let mut stft = StreamingStft::new(512, 256, StreamingStft::sqrt_hann_symmetric(512));
            let mut out = Vec::new();
            for chunk in x.chunks(block) {
                out.extend(stft.process(chunk, |_| {}));
            }
            out.extend(stft.finish(|_| {}));
            assert_eq!(out.len(), x.len(), "block {block}");
            let worst = out.iter().zip(&x).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-4, "block {block}: error {worst}");
        }
    }

    #[test]
    fn output_waits_at_most_one_window() {
        let mut stft = StreamingStft::new(512, 256, StreamingStft::sqrt_hann_symmetric(512));
        let mut received = 0;
        let mut emitted = 0;
        for chunk in signal(8000).chunks(64) {
            received += chunk.len();
            emitted += stft.process(chunk, |_| {}).len();
            assert!(received - emitted <= stft.latency_samples(), "{received} in, {emitted} out");
        }
    }

    #[test]
    fn short_and_empty_streams_keep_their_length() {
        for n in [0, 1, 255, 256, 257, 511] {
            let mut stft = StreamingStft::new(512, 256, StreamingStft::sqrt_hann_symmetric(512));
            let mut out = stft.process(&signal(n), |_| {});
            out.extend(stft.finish(|_| {}));
            assert_eq!(out.len(), n);
        }
    }
}
