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
    /// the audio's length plus 3 s of silence, several times faster on short clips at equal
    /// accuracy for tiny.en (README); models that lose accuracy say so in their config.
    pub pad_to_30s: bool,
    /// Feed the previous window's text as a prompt (continuity across windows).
    pub condition_on_previous_text: bool,
    /// When the first decode of a window fails (loops, never ends), decode it again with the full
    /// 30 s window and then a wider beam. Off, a failed window gives no text: for a guess that may
    /// be thrown away (a live final decoded before the endpoint is certain), the retries cost
    /// seconds that the live stream would wait for.
    pub fallback: bool,
}

impl Default for WhisperOptions {
    fn default() -> Self {
        Self { search: SearchOptions::default(), pad_to_30s: false, condition_on_previous_text: true, fallback: true }
    }
}

/// 30 s of mel frames.
const WINDOW: usize = 3000;
/// Log10 energy of digital silence (Whisper clamps power at 1e-10).
const SILENCE_LOG_MEL: f32 = -10.0;
/// Silence appended after the audio of a short window: Whisper decides where speech ends by
/// seeing it end; without this tail it tends to loop over short clips.
const TAIL_SILENCE_FRAMES: usize = 300;
/// Shortest window given to the encoder (10 s): shorter ones loop more often than they save time.
const MIN_WINDOW_FRAMES: usize = 1000;
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
            if self.frames.is_empty() {
                self.first_frame = f.index;
            }
            self.frames.extend_from_slice(&f.values);
        }
        // Wait for one frame beyond the window so a window is never mistaken for the last.
        while self.pending() > WINDOW {
            self.decode_window(WINDOW, false, out)?;
        }
        Ok(())
    }

    /// Decodes what is left at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<Segment>) -> Result<()> {
        while self.pending() >= MIN_TAIL_FRAMES {
            let n = self.pending().min(WINDOW);
            let before = self.pending();
            self.decode_window(n, before <= WINDOW, out)?;
            if self.pending() >= before {
                break;
            }
        }
        self.frames.clear();
        Ok(())
    }

    /// Normalised log-mel of the first `n` pending frames, padded with silence to `target` frames.
    fn window_mel(&self, n: usize, target: usize) -> Result<Tensor> {
        let mut mel = self.frames[..n * N_MELS].to_vec();
        mel.resize(target * N_MELS, SILENCE_LOG_MEL);
        normalize_whisper(&mut mel);
        let device = self.engine.model.device();
        Ok(Tensor::from_vec(mel, (target, N_MELS), device)?.t()?.unsqueeze(0)?.contiguous()?)
    }

    /// Decodes the first `n` pending frames; `last` says they reach the end of the stream.
    fn decode_window(&mut self, n: usize, last: bool, out: &mut Vec<Segment>) -> Result<()> {
        let _span = tracing::debug_span!("whisper_window", start_frame = self.first_frame, frames = n).entered();
        let model = &self.engine.model;
        let cfg = &model.config;
        let mut sot = cfg.sot_sequence();
        if !self.opts.search.timestamps {
            sot.push(cfg.tokens.no_timestamps);
        }
        let mut prompt = Vec::new();
        if self.opts.condition_on_previous_text && !self.history.is_empty() {
            let keep = cfg.n_text_ctx / 2 - 1;
            prompt.push(cfg.tokens.sot_prev);
            prompt.extend_from_slice(&self.history[self.history.len().saturating_sub(keep)..]);
        }
        prompt.extend_from_slice(&sot);
        let rules = LogitRules::new(cfg, self.opts.search.timestamps, n);

        // First try: the audio plus a short stretch of silence, which lets Whisper see the speech
        // end; then, if that decode loops or never ends, the full 30 s window it was trained on,
        // and finally a wider beam without the prompt.
        let short = (n + TAIL_SILENCE_FRAMES).clamp(MIN_WINDOW_FRAMES, WINDOW);
        let wide = SearchOptions { beam_size: self.opts.search.beam_size.max(5), ..self.opts.search.clone() };
        let mut attempts = vec![(short, &prompt, &self.opts.search), (WINDOW, &prompt, &self.opts.search), (WINDOW, &sot, &wide)];
        if self.opts.pad_to_30s || cfg.pad_to_30s || short == WINDOW {
            attempts.remove(0);
        }
        if !self.opts.fallback {
            attempts.truncate(1);
        }
        let mut encoded: Option<(usize, Tensor)> = None;
        let mut best: Option<Hypothesis> = None;
        let mut all_failed = true;
        for (frames, prompt, search_opts) in attempts {
            if encoded.as_ref().is_none_or(|(f, _)| *f != frames) {
                let mel = self.window_mel(n, frames + frames % 2)?;
                encoded = Some((frames, model.encode(&mel)?));
            }
            let audio = &encoded.as_ref().expect("just encoded").1;
            let hyp = search(model, audio, prompt, &rules, search_opts)?;
            let closing = (last && self.opts.search.timestamps).then_some(cfg.tokens.timestamp_begin);
            let failed = looks_degenerate(&hyp, closing);
            tracing::debug!(frames, tokens = hyp.tokens.len(), avg_logprob = hyp.avg_logprob(), failed, "window decoded");
            if best.as_ref().is_none_or(|b| hyp.avg_logprob() > b.avg_logprob()) || !failed {
                best = Some(hyp);
            }
            if !failed {
                all_failed = false;
                break;
            }
        }
        let hyp = best.expect("at least one attempt");
        let hyp = if all_failed && !self.opts.fallback { Hypothesis { tokens: Vec::new(), ..hyp } } else { hyp };
        let (segments, advance) = split_segments(&hyp.tokens, cfg.tokens.timestamp_begin, n);
        let offset = self.first_frame as f64 * 0.01;
        for seg in segments {
            let text = self.engine.tokenizer.decode(&seg.tokens).trim().to_string();
            self.history.extend(&seg.tokens);
            if !text.is_empty() {
                out.push(Segment {
                    start: offset + seg.start_frame as f64 * 0.01,
                    end: offset + seg.end_frame as f64 * 0.01,
                    text,
                    confidence: hyp.avg_logprob().exp(),
                });
            }
        }
        let advance = if advance == 0 { n } else { advance.min(n) };
        self.frames.drain(..advance * N_MELS);
        self.first_frame += advance as u64;
        Ok(())
    }
}

/// Signs of a failed decode: it never ended, it repeats itself, or (with timestamps) its text
/// ends the audio without a closing timestamp — Whisper's way of looping on audio it cannot place.
fn looks_degenerate(h: &Hypothesis, closing_timestamp_from: Option<u32>) -> bool {
    if h.truncated {
        return true;
    }
    // The same 4 tokens three times in one window is a loop, not speech.
    let mut counts = std::collections::HashMap::new();
    for w in h.tokens.windows(4) {
        *counts.entry(w).or_insert(0) += 1;
    }
    if counts.values().any(|&c| c >= 3) {
        return true;
    }
    // At the end of the audio, speech must be closed by a timestamp.
    if let Some(ts_begin) = closing_timestamp_from {
        let has_text = h.tokens.iter().any(|&t| t < ts_begin);
        if has_text && h.tokens.last().is_some_and(|&t| t < ts_begin) {
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
