//! Endpointing rules in the style of sherpa-onnx, driven by the VAD's per-chunk decisions: an
//! utterance ends after enough trailing silence (a short wait once speech was heard, a long one
//! when nothing was), or when it grows too long.

use serde::{Deserialize, Serialize};

use super::silero::CHUNK;

use crate::audio::SAMPLE_RATE;

const CHUNK_MS: u32 = (CHUNK * 1000 / SAMPLE_RATE as usize) as u32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// A chunk whose speech probability reaches this is speech.
    pub threshold: f32,
    /// A chunk below this is silence; in between, the previous decision holds (hysteresis).
    pub neg_threshold: f32,
    /// Less speech than this in an utterance (a click, a breath) does not count as speech.
    pub min_speech_ms: u32,
    /// Rule 1: an utterance without speech ends after this much silence (keeps state bounded).
    pub silence_without_speech_ms: u32,
    /// Rule 2: an utterance with speech ends after this much trailing silence.
    pub silence_after_speech_ms: u32,
    /// Rule 3: an utterance is cut at this length.
    pub max_utterance_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 160,
            silence_without_speech_ms: 2400,
            silence_after_speech_ms: 480,
            max_utterance_ms: 20_000,
        }
    }
}

impl EndpointConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.threshold) || !(0.0..=self.threshold).contains(&self.neg_threshold) {
            return Err(format!(
                "endpoint thresholds must satisfy 0 <= neg_threshold <= threshold <= 1 (got {} and {})",
                self.neg_threshold, self.threshold
            ));
        }
        if self.silence_after_speech_ms < CHUNK_MS || self.max_utterance_ms < 1000 {
            return Err(format!(
                "silence_after_speech_ms must be at least {CHUNK_MS} and max_utterance_ms at least 1000"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointReason {
    SilenceAfterSpeech,
    SilenceWithoutSpeech,
    MaxLength,
}

/// The utterance being built, in chunks from the start of the stream.
#[derive(Debug, Clone, Copy, Default)]
struct Utterance {
    start: u64,
    chunks: u32,
    speech_chunks: u32,
    trailing_silence: u32,
    first_speech: Option<u64>,
    last_speech: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Endpointer {
    config: EndpointConfig,
    in_speech: bool,
    chunk: u64,
    utt: Utterance,
}

/// Where speech was heard in an utterance that just ended, in samples from the stream start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Endpoint {
    pub reason: EndpointReason,
    /// The utterance's first and one-past-last sample.
    pub start: u64,
    pub end: u64,
    /// First and one-past-last sample of the speech the VAD heard (at least `min_speech_ms`).
    pub speech: Option<(u64, u64)>,
    /// The recogniser decoded words in the utterance (with or without the VAD hearing speech).
    pub decoded: bool,
}

impl Endpointer {
    pub fn new(config: EndpointConfig) -> Self {
        Self { config, in_speech: false, chunk: 0, utt: Utterance::default() }
    }

    /// Whether the chunk just seen was speech.
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// First sample of the current utterance's speech, if it has any yet.
    pub fn speech_start(&self) -> Option<u64> {
        self.utt.first_speech.map(|c| c * CHUNK as u64)
    }

    /// The speech heard so far in this utterance (first and one-past-last sample), once it is
    /// enough to count, and how long the silence after it has lasted (ms).
    pub fn pending_speech(&self) -> Option<((u64, u64), u32)> {
        self.heard().map(|span| (span, self.utt.trailing_silence * CHUNK_MS))
    }

    /// The current utterance's speech (first and one-past-last sample), when there is at least
    /// `min_speech_ms` of it.
    fn heard(&self) -> Option<(u64, u64)> {
        let u = &self.utt;
        if u.speech_chunks * CHUNK_MS < self.config.min_speech_ms {
            return None;
        }
        Some((u.first_speech? * CHUNK as u64, (u.last_speech? + 1) * CHUNK as u64))
    }

    /// One chunk's speech probability; `decoded_text` says the recogniser has heard words in this
    /// utterance (reported with the endpoint; the rules follow the VAD alone, because the
    /// streaming recogniser also "hears" words in noise). Returns the endpoint this chunk completes.
    pub fn push(&mut self, probability: f32, decoded_text: bool) -> Option<Endpoint> {
        let c = &self.config;
        self.in_speech =
            if self.in_speech { probability >= c.neg_threshold } else { probability >= c.threshold };
        let u = &mut self.utt;
        u.chunks += 1;
        if self.in_speech {
            u.speech_chunks += 1;
            u.trailing_silence = 0;
            u.first_speech.get_or_insert(self.chunk);
            u.last_speech = Some(self.chunk);
        } else {
            u.trailing_silence += 1;
        }
        self.chunk += 1;
        let ms = |chunks: u32| chunks * CHUNK_MS;
        let (trailing_silence, chunks) = (u.trailing_silence, u.chunks);
        let heard = self.heard().is_some();
        let c = &self.config;
        let reason = if heard && ms(trailing_silence) >= c.silence_after_speech_ms {
            Some(EndpointReason::SilenceAfterSpeech)
        } else if !heard && ms(trailing_silence) >= c.silence_without_speech_ms {
            Some(EndpointReason::SilenceWithoutSpeech)
        } else if ms(chunks) >= c.max_utterance_ms {
            Some(EndpointReason::MaxLength)
        } else {
            None
        };
        reason.map(|reason| self.cut(reason, decoded_text))
    }

    /// Ends the utterance now (end of stream).
    pub fn flush(&mut self, decoded_text: bool) -> Endpoint {
        self.cut(EndpointReason::SilenceAfterSpeech, decoded_text)
    }

    fn cut(&mut self, reason: EndpointReason, decoded: bool) -> Endpoint {
        let speech = self.heard();
        let u = std::mem::take(&mut self.utt);
        self.utt.start = self.chunk;
        let sample = |chunk: u64| chunk * CHUNK as u64;
        Endpoint { reason, start: sample(u.start), end: sample(self.chunk), speech, decoded }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(e: &mut Endpointer, probs: &[f32]) -> Vec<(usize, Endpoint)> {
        probs.iter().enumerate().filter_map(|(i, &p)| e.push(p, false).map(|ep| (i, ep))).collect()
    }

    #[test]
    fn speech_then_silence_ends_after_the_configured_wait() {
        let mut e = Endpointer::new(EndpointConfig::default());
        // 5 silent chunks, 20 speech chunks (640 ms), then silence: 480 ms = 15 chunks.
        let probs: Vec<f32> = [vec![0.1; 5], vec![0.9; 20], vec![0.05; 40]].concat();
        let eps = run(&mut e, &probs);
        assert_eq!(eps.len(), 1, "{eps:?}");
        let (at, ep) = eps[0];
        assert_eq!(at, 5 + 20 + 15 - 1);
        assert_eq!(ep.reason, EndpointReason::SilenceAfterSpeech);
        assert_eq!(ep.speech, Some((5 * 512, 25 * 512)));
        assert_eq!((ep.start, ep.end), (0, 40 * 512));
    }

    #[test]
    fn hysteresis_keeps_speech_through_a_dip() {
        let mut e = Endpointer::new(EndpointConfig::default());
        // 0.4 is below the threshold but above neg_threshold: still speech once speech started.
        let probs: Vec<f32> = [vec![0.9; 10], vec![0.4; 30], vec![0.9; 10]].concat();
        assert!(run(&mut e, &probs).is_empty());
        assert!(e.in_speech());
    }

    #[test]
    fn a_click_is_not_speech_and_silence_alone_ends_late() {
        let mut e = Endpointer::new(EndpointConfig::default());
        // 2 chunks (64 ms) of "speech" < 160 ms: rule 1's 2.4 s applies, not rule 2's 0.48 s.
        let probs: Vec<f32> = [vec![0.9; 2], vec![0.0; 100]].concat();
        let eps = run(&mut e, &probs);
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].1.reason, EndpointReason::SilenceWithoutSpeech);
        assert_eq!(eps[0].1.speech, None);
        assert_eq!(eps[0].0, 2 + 75 - 1, "2400 ms of silence = 75 chunks");
    }

    #[test]
    fn decoded_words_without_speech_wait_for_the_long_rule() {
        let mut e = Endpointer::new(EndpointConfig::default());
        let eps: Vec<_> = (0..100).filter_map(|i| e.push(0.1, true).map(|ep| (i, ep))).collect();
        assert_eq!(eps.len(), 1, "no endpoint every 480 ms while the recogniser decodes noise");
        assert_eq!(eps[0].0, 74);
        assert_eq!(eps[0].1.reason, EndpointReason::SilenceWithoutSpeech);
        assert_eq!(eps[0].1.speech, None, "the VAD heard nothing");
        assert!(eps[0].1.decoded);
    }

    #[test]
    fn long_speech_is_cut_at_the_maximum_length() {
        let mut e = Endpointer::new(EndpointConfig { max_utterance_ms: 3200, ..Default::default() });
        let eps = run(&mut e, &vec![0.9; 250]);
        assert_eq!(eps.len(), 2);
        assert!(eps.iter().all(|(_, ep)| ep.reason == EndpointReason::MaxLength));
        assert_eq!(eps[1].1.start, 100 * 512, "the next utterance starts where the last one was cut");
    }

    #[test]
    fn bad_thresholds_are_refused() {
        assert!(EndpointConfig { neg_threshold: 0.8, ..Default::default() }.validate().is_err());
        assert!(EndpointConfig::default().validate().is_ok());
    }
}
