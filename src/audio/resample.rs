//! Streaming sample-rate conversion to 16 kHz on rubato's FFT resampler (fixed ratio, high
//! quality). Output is aligned with the input: the resampler's delay is trimmed and the tail
//! flushed, so N input samples give round(N * ratio) output samples.

use audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler as _, WindowFunction};

use crate::error::{Error, Result};

/// Input samples per resampler call for files: large blocks resample fastest.
const CHUNK: usize = 1024;

pub struct Resampler {
    inner: Option<Fft<f32>>,
    ratio: f64,
    chunk: usize,
    pending: Vec<f32>,
    in_buf: Vec<Vec<f32>>,
    out_buf: Vec<Vec<f32>>,
    /// Output samples still to drop (the resampler's start-up delay).
    to_skip: usize,
    /// That delay, in output samples: how much later than its input an output sample leaves.
    delay: usize,
    /// The part of it left in the output (`low_delay`): the caller trims it.
    kept: usize,
    consumed: u64,
    produced: u64,
}

impl Resampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self> {
        Self::with_chunk(from_hz, to_hz, CHUNK)
    }

    /// A resampler that works in blocks of `chunk` input samples: smaller blocks wait less for
    /// input (live audio), larger ones run faster.
    pub fn with_chunk(from_hz: u32, to_hz: u32, chunk: usize) -> Result<Self> {
        // rubato's own choice: FFT blocks of about 256 input samples.
        Self::build(from_hz, to_hz, chunk, (chunk / 256).max(1), true)
    }

    /// A block resampler next to a frame-based stage: FFT blocks of `chunk / sub_chunks` input
    /// samples, so a proportionally shorter delay (and a slightly softer anti-aliasing filter).
    pub fn low_delay(from_hz: u32, to_hz: u32, chunk: usize, sub_chunks: usize) -> Result<Self> {
        Self::build(from_hz, to_hz, chunk, sub_chunks, true)
    }

    /// Leaves the resampler's [`delay`](Self::delay) at the start of the output for the caller
    /// to trim (so the output's blocks stay aligned with the input's); call before any input.
    pub fn keeping_delay(mut self) -> Self {
        self.kept = self.to_skip;
        self.to_skip = 0;
        self
    }

    fn build(from_hz: u32, to_hz: u32, chunk: usize, sub_chunks: usize, trim: bool) -> Result<Self> {
        if from_hz == 0 || to_hz == 0 {
            return Err(Error::InvalidAudio(format!("sample rate {from_hz} Hz cannot be resampled")));
        }
        let ratio = to_hz as f64 / from_hz as f64;
        if from_hz == to_hz {
            return Ok(Self {
                inner: None,
                ratio,
                chunk,
                pending: vec![],
                in_buf: vec![],
                out_buf: vec![],
                to_skip: 0,
                delay: 0,
                kept: 0,
                consumed: 0,
                produced: 0,
            });
        }
        let inner = Fft::<f32>::new_custom(
            from_hz as usize,
            to_hz as usize,
            chunk,
            sub_chunks,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Input,
        )
        .map_err(|e| Error::InvalidAudio(format!("cannot resample {from_hz} Hz to {to_hz} Hz: {e}")))?;
        let delay = inner.output_delay();
        let out_len = inner.output_frames_max();
        Ok(Self {
            in_buf: vec![vec![0.0; chunk]],
            out_buf: vec![vec![0.0; out_len]],
            inner: Some(inner),
            ratio,
            chunk,
            pending: Vec::with_capacity(chunk * 2),
            to_skip: if trim { delay } else { 0 },
            delay,
            kept: if trim { 0 } else { delay },
            consumed: 0,
            produced: 0,
        })
    }

    /// A whole signal at once: `round(len · to / from)` samples, aligned with the input.
    pub fn resample_all(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>> {
        let mut r = Self::new(from_hz, to_hz)?;
        let mut out = Vec::with_capacity((samples.len() as f64 * r.ratio) as usize + 1);
        r.process(samples, &mut out)?;
        r.finish(&mut out)?;
        Ok(out)
    }

    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The resampler's own delay in output samples (beyond waiting for a whole block).
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Resamples `input`, appending what is ready to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.consumed += input.len() as u64;
        if self.inner.is_none() {
            out.extend_from_slice(input);
            self.produced += input.len() as u64;
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        let mut start = 0;
        while self.pending.len() - start >= self.chunk {
            self.in_buf[0].copy_from_slice(&self.pending[start..start + self.chunk]);
            self.run_chunk(None, out)?;
            start += self.chunk;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Flushes the tail at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<()> {
        if self.inner.is_none() {
            return Ok(());
        }
        let expected = (self.consumed as f64 * self.ratio).round() as u64 + self.kept as u64;
        let mut partial = std::mem::take(&mut self.pending);
        // Feed the partial chunk, then silence, until every expected sample has come out.
        let mut guard = 0;
        while self.produced < expected && guard < 64 {
            let n = partial.len();
            self.in_buf[0][..n].copy_from_slice(&partial);
            self.in_buf[0][n..].fill(0.0);
            partial.clear();
            self.run_chunk(Some(self.chunk), out)?;
            guard += 1;
        }
        let excess = self.produced.saturating_sub(expected) as usize;
        out.truncate(out.len().saturating_sub(excess));
        self.produced -= excess as u64;
        Ok(())
    }

    fn run_chunk(&mut self, partial: Option<usize>, out: &mut Vec<f32>) -> Result<()> {
        let inner = self.inner.as_mut().expect("only called when resampling");
        let input = SequentialSliceOfVecs::new(&self.in_buf[..], 1, self.chunk)
            .expect("buffer sized at construction");
        let out_len = self.out_buf[0].len();
        let mut output = SequentialSliceOfVecs::new_mut(&mut self.out_buf[..], 1, out_len)
            .expect("buffer sized at construction");
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, written) = inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| Error::InvalidAudio(format!("resampling failed: {e}")))?;
        let skip = self.to_skip.min(written);
        self.to_skip -= skip;
        out.extend_from_slice(&self.out_buf[0][skip..written]);
        self.produced += (written - skip) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()).collect()
    }

    #[test]
    fn lengths_and_phase_survive_streaming_in_odd_chunks() {
        for from in [8_000u32, 11_025, 22_050, 44_100, 48_000] {
            let n = from as usize * 2 + 123;
            let input = sine(440.0, from, n);
            let mut r = Resampler::new(from, 16_000).unwrap();
            let mut out = Vec::new();
            for chunk in input.chunks(777) {
                r.process(chunk, &mut out).unwrap();
            }
            r.finish(&mut out).unwrap();
            let expected = (n as f64 * 16_000.0 / from as f64).round() as usize;
            assert_eq!(out.len(), expected, "from {from}");
            // Aligned with the input to within half an input sample (rubato's FFT resampler delays
            // odd-sized FFT frames by that much): compare with the ideal 16 kHz sine, both ways.
            let max_err = |delay_s: f32| {
                (2000..expected - 2000)
                    .map(|i| {
                        let t = i as f32 / 16_000.0 - delay_s;
                        (out[i] - (2.0 * std::f32::consts::PI * 440.0 * t).sin()).abs()
                    })
                    .fold(0.0f32, f32::max)
            };
            let half = 0.5 / from as f32;
            let err = max_err(0.0).min(max_err(half)).min(max_err(-half));
            assert!(err < 0.005, "from {from}: max error {err}");
        }
    }

    #[test]
    fn same_rate_is_a_pass_through() {
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        let mut out = Vec::new();
        r.process(&[0.1, 0.2], &mut out).unwrap();
        r.finish(&mut out).unwrap();
        assert_eq!(out, vec![0.1, 0.2]);
        assert!(Resampler::new(0, 16_000).is_err());
    }
}
