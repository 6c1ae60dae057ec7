//! Input level normalisation around a frame denoiser. DeepFilterNet3 learnt speech at ordinary
//! recording levels and takes very quiet input for noise: FLEURS's recordings (speech around
//! −60 dBFS) came out silenced. Each frame is raised towards a nominal speech level by a gain
//! that follows the input's level (quick to rise, slow to fall, so pauses do not pump it), and
//! each output frame is divided by the gain its input went in with, so the output keeps the
//! input's level.

use std::collections::VecDeque;

use crate::separation::framed::FrameDenoiser;

/// The level speech is raised to (RMS): −26 dBFS.
const TARGET_RMS: f32 = 0.05;
/// At most +40 dB; input is never attenuated.
const MAX_GAIN: f32 = 100.0;
/// Level tracking per 10 ms frame: rises with a 50 ms time constant, falls with a 5 s one.
const RISE: f32 = 0.8;
const FALL: f32 = 0.998;
/// Below this mean power a frame is digital silence and leaves the level as it was.
const SILENCE: f32 = 1e-12;

pub struct LevelNormalised<D> {
    inner: D,
    /// The tracked mean power; `None` until the first frame with sound.
    power: Option<f32>,
    /// Gains of the frames inside the denoiser, oldest first: the next output frame is the
    /// oldest one's.
    gains: VecDeque<f32>,
    scaled: Vec<f32>,
}

impl<D: FrameDenoiser> LevelNormalised<D> {
    pub fn new(inner: D) -> Self {
        let in_flight = inner.delay().div_ceil(inner.frame_len());
        let gains = std::iter::repeat_n(1.0, in_flight).collect();
        let scaled = vec![0.0; inner.frame_len()];
        Self { inner, power: None, gains, scaled }
    }

    fn gain(&mut self, frame: &[f32]) -> f32 {
        let power = frame.iter().map(|v| v * v).sum::<f32>() / frame.len() as f32;
        if power > SILENCE {
            self.power = Some(match self.power {
                None => power,
                Some(level) => {
                    let alpha = if power > level { RISE } else { FALL };
                    alpha * level + (1.0 - alpha) * power
                }
            });
        }
        self.power.map_or(1.0, |p| (TARGET_RMS / p.sqrt()).clamp(1.0, MAX_GAIN))
    }
}

impl<D: FrameDenoiser> FrameDenoiser for LevelNormalised<D> {
    fn rate(&self) -> u32 {
        self.inner.rate()
    }

    fn frame(&mut self, input: &[f32], output: &mut [f32]) {
        let gain = self.gain(input);
        for (s, &x) in self.scaled.iter_mut().zip(input) {
            *s = x * gain;
        }
        self.inner.frame(&self.scaled, output);
        self.gains.push_back(gain);
        let applied = self.gains.pop_front().expect("one gain per frame in flight");
        output.iter_mut().for_each(|v| *v /= applied);
    }

    fn delay(&self) -> usize {
        self.inner.delay()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.power = None;
        self.gains.iter_mut().for_each(|g| *g = 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps what is above a fixed level and silences the rest, one frame late: a denoiser whose
    /// output depends on the input's level.
    struct Gate;

    impl FrameDenoiser for Gate {
        fn rate(&self) -> u32 {
            48_000
        }

        fn frame(&mut self, input: &[f32], output: &mut [f32]) {
            for (o, &x) in output.iter_mut().zip(input) {
                *o = if x.abs() > 0.01 { x } else { 0.0 };
            }
        }

        fn delay(&self) -> usize {
            0
        }

        fn reset(&mut self) {}
    }

    #[test]
    fn quiet_input_reaches_the_denoiser_at_speech_level_and_leaves_at_its_own() {
        // A tone at −66 dBFS: the gate alone would silence all of it.
        let tone: Vec<f32> = (0..48_000).map(|i| 0.0007 * (i as f32 * 0.05).sin()).collect();
        let mut d = LevelNormalised::new(Gate);
        let mut out = vec![0f32; tone.len()];
        for (i, o) in tone.chunks_exact(480).zip(out.chunks_exact_mut(480)) {
            d.frame(i, o);
        }
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let (a, b) = (rms(&tone[4800..]), rms(&out[4800..]));
        assert!((b / a - 1.0).abs() < 0.05, "output level {b} for input level {a}");
    }
}
