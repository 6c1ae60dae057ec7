//! The Whisper stage: takes log-mel frames as they arrive, decodes them in windows of up to 30 s,
//! and moves the window forward by the last complete segment's end (as Whisper was trained to),
//! so audio of any length is transcribed without words lost at window edges.

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::config::WhisperConfig;
use super::decode::{Hypothesis, LogitRules, SearchOptions, search};
use super::model::Whisper;
use super::tokenizer::Tokenizer;
use crate::asr::Segment;
use crate::error::Result;
use crate::features::mel::{MelFrame, N_MELS, normalize_whisper};

/// A loaded model and its tokenizer, shared by every stream.
pub struct WhisperEngine {
    pub model: Whisper,
    pub tokenizer: Tokenizer,
    pub name: String,
}

impl WhisperEngine {
    pub fn load(dir: &Path) -> Result<Arc<Self>> {
        let _span = tracing::info_span!("load_whisper", dir = %dir.display()).entered();
        let model = Whisper::load(dir, &Device::Cpu)?;
        let tokenizer = Tokenizer::load(&dir.join("tokenizer.json"))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Arc::new(Self { model, tokenizer, name }))
    }

    pub fn config(&self) -> &WhisperConfig {
        &self.model.config
    }
}

#[derive(Debug, Clone)]
pub struct WhisperOptions {
    pub search: SearchOptions,
    /// Pad every window to 30 s as Whisper was trained. Off by default: the encoder then runs on
    /// the audio's own length, which is several times faster on short clips at equal accuracy
    /// (README, "Accuracy and speed").
    pub pad_to_30s: bool,
    /// Feed the previous window's text as a prompt (continuity across windows).
    pub condition_on_previous_text: bool,
}

impl Default for WhisperOptions {
    fn default() -> Self {
        Self { search: SearchOptions::default(), pad_to_30s: false, condition_on_previous_text: true }
    }
}

/// 30 s of mel frames.
const WINDOW: usize = 3000;
/// Log10 energy of digital silence (Whisper clamps power at 1e-10).
const SILENCE_LOG_MEL: f32 = -10.0;
/// A leftover shorter than this at the end of a stream is not decoded alone (it would only invite
/// a hallucination); 20 ms is half of Whisper's shortest token.
const MIN_TAIL_FRAMES: usize = 2;

pub struct WhisperStage {
    engine: Arc<WhisperEngine>,
    opts: WhisperOptions,
    /// Pending frames, `N_MELS` values each; `frames[0]` is stream frame `first_frame`.
    frames: Vec<f32>,
    first_frame: u64,
    history: Vec<u32>,
}

impl WhisperStage {
    pub fn new(engine: Arc<WhisperEngine>, opts: WhisperOptions) -> Self {
        Self { engine, opts, frames: Vec::new(), first_frame: 0, history: Vec::new() }
    }

    fn pending(&self) -> usize {
        self.frames.len() / N_MELS
    }

    /// Adds frames; decodes every full 30 s window that is now available.
    pub fn push(&mut self, frames: &[MelFrame], out: &mut Vec<Segment>) -> Result<()> {
        for f in frames {
            if self.pending() == 0 && self.frames.is_empty() {
                self.first_frame = f.index;
            }
            self.frames.extend_from_slice(&f.values);
        }
        // Wait for one frame beyond the window so a window is never mistaken for the last.
        while self.pending() > WINDOW {
            self.decode_window(WINDOW, out)?;
        }
        Ok(())
    }

    /// Decodes what is left at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<Segment>) -> Result<()> {
        while self.pending() >= MIN_TAIL_FRAMES {
            let n = self.pending().min(WINDOW);
            let before = self.pending();
            self.decode_window(n, out)?;
            if self.pending() >= before {
                break;
            }
        }
        self.frames.clear();
        Ok(())
    }

    fn decode_window(&mut self, n: usize, out: &mut Vec<Segment>) -> Result<()> {
        let _span = tracing::debug_span!("whisper_window", start_frame = self.first_frame, frames = n).entered();
        let model = &self.engine.model;
        let cfg = &model.config;
        let target = if self.opts.pad_to_30s { WINDOW } else { n + n % 2 };
        let mut mel = self.frames[..n * N_MELS].to_vec();
        mel.resize(target * N_MELS, SILENCE_LOG_MEL);
        normalize_whisper(&mut mel);
        let mel = Tensor::from_vec(mel, (target, N_MELS), model.device())?.t()?.unsqueeze(0)?.contiguous()?;
        let audio = model.encode(&mel)?;

        let mut prompt = Vec::new();
        if self.opts.condition_on_previous_text && !self.history.is_empty() {
            let keep = cfg.n_text_ctx / 2 - 1;
            prompt.push(cfg.tokens.sot_prev);
            prompt.extend_from_slice(&self.history[self.history.len().saturating_sub(keep)..]);
        }
        let with_history = !prompt.is_empty();
        prompt.extend(cfg.sot_sequence());
        if !self.opts.search.timestamps {
            prompt.push(cfg.tokens.no_timestamps);
        }
        let rules = LogitRules::new(cfg, self.opts.search.timestamps, n);
        let mut hyp = search(model, &audio, &prompt, &rules, &self.opts.search)?;
        if looks_degenerate(&hyp) {
            // A loop or a collapse: try once more with a wider search and no prompt.
            tracing::debug!(avg_logprob = hyp.avg_logprob(), truncated = hyp.truncated, "retrying window with beam search");
            let retry_prompt = if with_history { prompt[prompt.len() - cfg.sot_sequence().len() - usize::from(!self.opts.search.timestamps)..].to_vec() } else { prompt.clone() };
            let opts = SearchOptions { beam_size: self.opts.search.beam_size.max(5), ..self.opts.search.clone() };
            let retry = search(model, &audio, &retry_prompt, &rules, &opts)?;
            if !looks_degenerate(&retry) || retry.avg_logprob() > hyp.avg_logprob() {
                hyp = retry;
            }
        }
        let (segments, advance) = split_segments(&hyp.tokens, cfg.tokens.timestamp_begin, n);
        let offset = self.first_frame as f64 * 0.01;
        for seg in segments {
            let text = self.engine.tokenizer.decode(&seg.tokens).trim().to_string();
            self.history.extend(&seg.tokens);
            if !text.is_empty() {
                out.push(Segment { start: offset + seg.start_frame as f64 * 0.01, end: offset + seg.end_frame as f64 * 0.01, text });
            }
        }
        let advance = if advance == 0 { n } else { advance.min(n) };
        self.frames.drain(..advance * N_MELS);
        self.first_frame += advance as u64;
        Ok(())
    }
}

/// Whisper's own signs of a failed decode: it never ended, or it repeats itself.
fn looks_degenerate(h: &Hypothesis) -> bool {
    if h.truncated {
        return true;
    }
    let text: Vec<u32> = h.tokens.clone();
    // A 4-gram seen more than 3 times in one window is a loop, not speech.
    if text.len() >= 16 {
        let mut counts = std::collections::HashMap::new();
        for w in text.windows(4) {
            *counts.entry(w).or_insert(0) += 1;
        }
        if counts.values().any(|&c| c > 3) {
            return true;
        }
    }
    false
}

#[derive(Debug, PartialEq)]
struct RawSegment {
    tokens: Vec<u32>,
    start_frame: usize,
    end_frame: usize,
}

/// Splits a window's tokens into timestamped segments and says how many mel frames the stream
/// may move on by (up to the last complete segment; the whole window if it ended cleanly).
fn split_segments(tokens: &[u32], ts_begin: u32, window_frames: usize) -> (Vec<RawSegment>, usize) {
    let is_ts = |t: u32| t >= ts_begin;
    let frame = |t: u32| (t - ts_begin) as usize * 2;
    let text = |s: &[u32]| s.iter().copied().filter(|&t| !is_ts(t)).collect::<Vec<_>>();
    let single_ending = tokens.len() >= 2 && !is_ts(tokens[tokens.len() - 2]) && is_ts(tokens[tokens.len() - 1]);
    let mut cuts: Vec<usize> = (1..tokens.len()).filter(|&i| is_ts(tokens[i - 1]) && is_ts(tokens[i])).collect();
    if cuts.is_empty() {
        let end = tokens.iter().rev().find(|&&t| is_ts(t)).filter(|&&t| t != ts_begin).map_or(window_frames, |&t| frame(t));
        let start = tokens.first().filter(|&&t| is_ts(t)).map_or(0, |&t| frame(t));
        return (vec![RawSegment { tokens: text(tokens), start_frame: start, end_frame: end.max(start) }], window_frames);
    }
    if single_ending {
        cuts.push(tokens.len());
    }
    let mut segments = Vec::new();
    let mut last = 0;
    for &cut in &cuts {
        let s = &tokens[last..cut];
        segments.push(RawSegment { tokens: text(s), start_frame: frame(s[0]), end_frame: frame(s[s.len() - 1]) });
        last = cut;
    }
    let advance = if single_ending { window_frames } else { frame(tokens[last - 1]) };
    (segments, advance)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u32 = 100;

    #[test]
    fn segments_from_timestamp_pairs() {
        // <0.00> a b <1.00><1.00> c <2.00> then end: two segments, the window is finished.
        let toks = [TS, 1, 2, TS + 50, TS + 50, 3, TS + 100];
        let (segs, adv) = split_segments(&toks, TS, 3000);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0], RawSegment { tokens: vec![1, 2], start_frame: 0, end_frame: 100 });
        assert_eq!(segs[1], RawSegment { tokens: vec![3], start_frame: 100, end_frame: 200 });
        assert_eq!(adv, 3000);
    }

    #[test]
    fn unfinished_last_segment_is_decoded_again() {
        // <0.00> a <1.00><1.00> b c   (cut off without a closing timestamp)
        let toks = [TS, 1, TS + 50, TS + 50, 2, 3];
        let (segs, adv) = split_segments(&toks, TS, 3000);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].tokens, vec![1]);
        assert_eq!(adv, 100, "the stream moves on to the last complete segment's end only");
    }

    #[test]
    fn single_segment_and_no_timestamps() {
        let (segs, adv) = split_segments(&[TS, 1, 2, TS + 20], TS, 600);
        assert_eq!(segs, vec![RawSegment { tokens: vec![1, 2], start_frame: 0, end_frame: 40 }]);
        assert_eq!(adv, 600);
        let (segs, adv) = split_segments(&[1, 2], TS, 600);
        assert_eq!(segs, vec![RawSegment { tokens: vec![1, 2], start_frame: 0, end_frame: 600 }]);
        assert_eq!(adv, 600);
    }
}
