//! The mean of several enhancers' outputs. Two denoisers built differently (DeepFilterNet3's deep
//! filter at 48 kHz, GTCRN's subband masks at 16 kHz) make different errors, and their average
//! is closer to the clean speech than either (`hark bench denoise`: +6.5 dB SI-SDR improvement
//! at 5 dB SNR, against +5.6 and +5.4 dB). Each member streams on its own; a sample leaves when
//! every member has produced it, so the latency is the slowest member's.

use std::collections::VecDeque;

use super::Enhancer;

pub struct Ensemble {
    members: Vec<Box<dyn Enhancer>>,
    /// Each member's output not yet matched by all the others.
    pending: Vec<VecDeque<f32>>,
}

impl Ensemble {
    pub fn new(members: Vec<Box<dyn Enhancer>>) -> Self {
        assert!(!members.is_empty(), "an ensemble needs a member");
        let pending = members.iter().map(|_| VecDeque::new()).collect();
        Self { members, pending }
    }

    /// The mean over the samples every member has produced.
    fn ready(&mut self) -> Vec<f32> {
        let n = self.pending.iter().map(VecDeque::len).min().unwrap_or(0);
        let mut out = vec![0f32; n];
        let scale = 1.0 / self.members.len() as f32;
        for queue in &mut self.pending {
            for (o, v) in out.iter_mut().zip(queue.drain(..n)) {
                *o += v * scale;
            }
        }
        out
    }
}

impl Enhancer for Ensemble {
    fn process(&mut self, input: &[f32]) -> Vec<f32> {
        for (member, queue) in self.members.iter_mut().zip(&mut self.pending) {
            queue.extend(member.process(input));
        }
        self.ready()
    }

    fn finish(&mut self) -> Vec<f32> {
        for (member, queue) in self.members.iter_mut().zip(&mut self.pending) {
            queue.extend(member.finish());
        }
        // Every member's whole output is as long as the input, so nothing is left over.
        let out = self.ready();
        self.pending.iter_mut().for_each(VecDeque::clear);
        out
    }

    fn latency_samples(&self) -> usize {
        self.members.iter().map(|m| m.latency_samples()).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scales its input and hands it out `delay` samples late (the output aligned with the input).
    struct Late {
        gain: f32,
        delay: usize,
        received: Vec<f32>,
        emitted: usize,
    }

    impl Late {
        fn boxed(gain: f32, delay: usize) -> Box<dyn Enhancer> {
            Box::new(Self { gain, delay, received: Vec::new(), emitted: 0 })
        }
    }

    impl Enhancer for Late {
        fn process(&mut self, input: &[f32]) -> Vec<f32> {
            self.received.extend(input.iter().map(|v| v * self.gain));
            let ready = self.received.len().saturating_sub(self.delay);
            let out = self.received[self.emitted..ready.max(self.emitted)].to_vec();
            self.emitted = ready.max(self.emitted);
            out
        }

        fn finish(&mut self) -> Vec<f32> {
            let out = self.received[self.emitted..].to_vec();
            (self.received, self.emitted) = (Vec::new(), 0);
            out
        }

        fn latency_samples(&self) -> usize {
            self.delay
        }
    }

    #[test]
    fn the_mean_of_members_with_different_latencies_stays_aligned_and_whole() {
        let input: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut ensemble = Ensemble::new(vec![Late::boxed(1.0, 0), Late::boxed(0.5, 512)]);
        assert_eq!(ensemble.latency_samples(), 512);
        for _ in 0..2 {
            let mut out = Vec::new();
            let mut received = 0;
            for chunk in input.chunks(160) {
                received += chunk.len();
                out.extend(ensemble.process(chunk));
                assert!(received - out.len() <= 512, "lags {} samples", received - out.len());
            }
            out.extend(ensemble.finish());
            assert_eq!(out.len(), input.len());
            for (o, x) in out.iter().zip(&input) {
                assert!((o - 0.75 * x).abs() < 1e-6);
            }
        }
    }
}
