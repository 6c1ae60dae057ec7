//! The Whisper stage: takes log-mel frames as they arrive, decodes them in windows of up to 30 s,
//! and moves the window forward by the last complete segment's end (as Whisper was trained to),
//! so audio of any length is transcribed without words lost at window edges.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use flate2::Compression;
use flate2::write::ZlibEncoder;

use super::config::WhisperConfig;
use super::decode::{Hypothesis, LogitRules, Sampling, SearchOptions, sample, search};
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
    /// When the first decode of a window fails Whisper's quality tests (repetitive, unlikely,
    /// more words than the audio holds, never ends), decode it again with the full 30 s window and
    /// then Whisper's temperature fallback. Off, a failed window gives no text: for a guess that
    /// may be thrown away (a live final decoded before the endpoint is certain), the retries cost
    /// seconds that the live stream would wait for.
    pub fallback: bool,
}

impl Default for WhisperOptions {
    fn default() -> Self {
        Self {
            search: SearchOptions::default(),
            pad_to_30s: false,
            condition_on_previous_text: true,
            fallback: true,
        }
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
        let _span =
            tracing::debug_span!("whisper_window", start_frame = self.first_frame, frames = n).entered();
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
        let closing = (last && self.opts.search.timestamps).then_some(cfg.tokens.timestamp_begin);
        let audio_seconds = n as f32 * 0.01;
        // A decode that outgrows what the audio can hold is a loop: stop it there, not at 224 tokens.
        let max_tokens = self.opts.search.max_tokens.min(MAX_TOKENS_PER_WORD * max_words(audio_seconds));
        let search_opts = SearchOptions { max_tokens, ..self.opts.search.clone() };

        // First the audio plus a short stretch of silence, which lets Whisper see the speech end
        // (several times faster than 30 s); if that decode fails Whisper's quality tests, the
        // full 30 s window it was trained on, then Whisper's own temperature fallback on it.
        let short = (n + TAIL_SILENCE_FRAMES).clamp(MIN_WINDOW_FRAMES, WINDOW);
        let mut attempts: Vec<(usize, f32)> = vec![(short, 0.0)];
        if self.opts.pad_to_30s || cfg.pad_to_30s || short == WINDOW {
            attempts.clear();
        }
        attempts.extend(TEMPERATURES.iter().map(|&t| (WINDOW, t)));
        if !self.opts.fallback {
            attempts.truncate(1);
        }
        let mut encoded: Option<(usize, Tensor)> = None;
        let mut tried: Vec<(Hypothesis, Quality, f32)> = Vec::new();
        let mut outcome = None;
        for (frames, temperature) in attempts {
            if encoded.as_ref().is_none_or(|(f, _)| *f != frames) {
                let mel = self.window_mel(n, frames + frames % 2)?;
                encoded = Some((frames, model.encode(&mel)?));
            }
            let audio = &encoded.as_ref().expect("just encoded").1;
            let hyp = if temperature == 0.0 {
                search(model, audio, &prompt, &rules, &search_opts)?
            } else {
                // Seeded by the window's place in the stream: the same input gives the same text.
                let seed = self.first_frame ^ (temperature * 10.0) as u64;
                sample(
                    model,
                    audio,
                    &prompt,
                    &rules,
                    &search_opts,
                    Sampling { temperature, best_of: BEST_OF, seed },
                )?
            };
            let text = self.engine.tokenizer.decode(&hyp.tokens);
            let quality = Quality::of(&hyp, &text, audio_seconds, closing);
            let verdict = quality.verdict();
            tracing::debug!(
                frames,
                temperature,
                tokens = hyp.tokens.len(),
                ?quality,
                ?verdict,
                "window decoded"
            );
            match verdict {
                Verdict::Speech => {
                    outcome = Some((hyp, temperature));
                    break;
                }
                Verdict::Silence => {
                    outcome = Some((Hypothesis { tokens: Vec::new(), ..hyp }, temperature));
                    break;
                }
                Verdict::Failed => tried.push((hyp, quality, temperature)),
            }
        }
        let (hyp, temperature) = match outcome {
            Some(done) => done,
            // A guess that may be thrown away (a live final decoded before the endpoint is
            // certain) gives no text rather than a failed decode.
            None if !self.opts.fallback => (Hypothesis { tokens: Vec::new(), ..tried.swap_remove(0).0 }, 0.0),
            None => {
                let (hyp, quality, temperature) = best_failed(tried);
                if quality.silence() {
                    (Hypothesis { tokens: Vec::new(), ..hyp }, temperature)
                } else {
                    let tokens =
                        repair(&hyp.tokens, cfg.tokens.timestamp_begin, n, max_words(audio_seconds), |t| {
                            self.engine.tokenizer.decode(t)
                        });
                    (Hypothesis { tokens, ..hyp }, temperature)
                }
            }
        };
        // As in Whisper: text decoded at a high temperature is a poor prompt for the next window.
        if temperature > PROMPT_RESET_TEMPERATURE {
            self.history.clear();
        }
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

/// Whisper's temperature schedule: a window whose greedy (or beam) decode fails the quality
/// tests is sampled again at each temperature in turn.
const TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
/// Samples drawn at each fallback temperature (Whisper's and faster-whisper's `best_of`).
const BEST_OF: usize = 5;
/// Text that gzip shrinks more than this is repetitive (Whisper's `compression_ratio_threshold`).
const MAX_COMPRESSION_RATIO: f32 = 2.4;
/// A mean token log-probability below this is a poor decode (Whisper's `logprob_threshold`).
const MIN_AVG_LOGPROB: f32 = -1.0;
/// Above this no-speech probability, a poor decode is taken for silence (`no_speech_threshold`).
const NO_SPEECH_PROB: f32 = 0.6;
/// After a window decoded above this temperature, the next window gets no prompt (Whisper's
/// `prompt_reset_on_temperature`).
const PROMPT_RESET_TEMPERATURE: f32 = 0.5;
/// No window yields more words than its audio can hold: read speech peaks near 5 words/s in
/// LibriSpeech and CMU ARCTIC, single digits at 7/s over a 0.14 s clip.
const MAX_WORDS_PER_SECOND: f32 = 6.0;
const MAX_WORDS_SLACK: f32 = 3.0;
/// Tokens a word may take at most, timestamps and punctuation included (English text averages
/// about 1.5 with Whisper's vocabulary).
const MAX_TOKENS_PER_WORD: usize = 3;

fn max_words(audio_seconds: f32) -> usize {
    (MAX_WORDS_SLACK + MAX_WORDS_PER_SECOND * audio_seconds) as usize
}

/// What Whisper's reference decoder (and faster-whisper) measure of a window's decode, plus
/// hark's own loop signs.
#[derive(Debug, Clone, Copy)]
struct Quality {
    compression_ratio: f32,
    avg_logprob: f32,
    no_speech_prob: f32,
    /// More words than the audio can hold.
    too_many_words: bool,
    /// It never ended, repeats itself, or leaves the audio's end open (see [`looks_degenerate`]).
    degenerate: bool,
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Speech,
    /// Whisper's silence rule: likely no speech, and nothing confidently decoded.
    Silence,
    Failed,
}

impl Quality {
    fn of(h: &Hypothesis, text: &str, audio_seconds: f32, closing_timestamp_from: Option<u32>) -> Self {
        Self {
            compression_ratio: compression_ratio(text.trim()),
            avg_logprob: h.avg_logprob(),
            no_speech_prob: h.no_speech_prob,
            too_many_words: text.split_whitespace().count() > max_words(audio_seconds),
            degenerate: looks_degenerate(h, closing_timestamp_from),
        }
    }

    fn silence(&self) -> bool {
        self.no_speech_prob > NO_SPEECH_PROB && self.avg_logprob < MIN_AVG_LOGPROB
    }

    fn verdict(&self) -> Verdict {
        if self.silence() {
            Verdict::Silence
        } else if self.compression_ratio > MAX_COMPRESSION_RATIO
            || self.avg_logprob < MIN_AVG_LOGPROB
            || self.too_many_words
            || self.degenerate
        {
            Verdict::Failed
        } else {
            Verdict::Speech
        }
    }
}

/// Bytes of text per byte of its zlib stream, as Whisper computes it.
fn compression_ratio(text: &str) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(text.as_bytes()).expect("writing to memory");
    let compressed = z.finish().expect("writing to memory");
    text.len() as f32 / compressed.len() as f32
}

/// When every attempt failed: as faster-whisper, the likeliest decode among those gzip does not
/// call repetitive, else the likeliest of all.
fn best_failed(tried: Vec<(Hypothesis, Quality, f32)>) -> (Hypothesis, Quality, f32) {
    let by_logprob = |a: &(Hypothesis, Quality, f32), b: &(Hypothesis, Quality, f32)| {
        a.1.avg_logprob.total_cmp(&b.1.avg_logprob)
    };
    let any_plain = tried.iter().any(|t| t.1.compression_ratio <= MAX_COMPRESSION_RATIO);
    tried
        .into_iter()
        .filter(|t| !any_plain || t.1.compression_ratio <= MAX_COMPRESSION_RATIO)
        .max_by(by_logprob)
        .expect("at least one attempt")
}

/// Makes a decode that failed every test safe to emit: a run of three or more repeats at its
/// tail is cut to one copy, it is cut to the words the audio can hold, and an open last segment
/// is closed at the audio's end so that the stream moves past it instead of decoding it again.
fn repair(
    tokens: &[u32],
    ts_begin: u32,
    content_frames: usize,
    max_words: usize,
    decode: impl Fn(&[u32]) -> String,
) -> Vec<u32> {
    let is_ts = |t: u32| t >= ts_begin;
    let text_at: Vec<usize> = (0..tokens.len()).filter(|&i| !is_ts(tokens[i])).collect();
    let text: Vec<u32> = text_at.iter().map(|&i| tokens[i]).collect();
    let mut keep_text = cut_tail_repeats(&text, 3);
    // Cut at the last word boundary that keeps within the bound.
    while keep_text > 0 && decode(&text[..keep_text]).split_whitespace().count() > max_words {
        keep_text -= 1;
        while keep_text > 0 && !decode(&text[keep_text..keep_text + 1]).starts_with(' ') {
            keep_text -= 1;
        }
    }
    let end = if keep_text == text.len() { tokens.len() } else { text_at[keep_text] };
    let mut out = tokens[..end].to_vec();
    // Drop a dangling opening timestamp, then close the last segment.
    while out.len() >= 2 && is_ts(out[out.len() - 1]) && is_ts(out[out.len() - 2]) {
        out.pop();
    }
    if out.last().is_some_and(|&t| !is_ts(t)) && out.iter().any(|&t| is_ts(t)) {
        let last_ts = out.iter().rev().find(|&&t| is_ts(t)).copied().unwrap_or(ts_begin);
        out.push(last_ts.max(ts_begin + (content_frames / 2).min(1500) as u32));
    }
    out
}

/// The length of `tokens` once a tail made of `min_repeats` or more copies of one n-gram keeps
/// only its first copy (the shortest repeating n-gram is cut first).
fn cut_tail_repeats(tokens: &[u32], min_repeats: usize) -> usize {
    let mut len = tokens.len();
    'shorter: loop {
        for period in 1..=len / min_repeats {
            let unit = &tokens[len - period..len];
            let mut copies = 1;
            while copies * period + period <= len
                && &tokens[len - (copies + 1) * period..len - copies * period] == unit
            {
                copies += 1;
            }
            if copies >= min_repeats {
                len -= (copies - 1) * period;
                continue 'shorter;
            }
        }
        return len;
    }
}

/// Signs of a failed decode: it never ended, it repeats itself, or (with timestamps) its text
/// ends the audio without a closing timestamp — Whisper's way of looping on audio it cannot place.
fn looks_degenerate(h: &Hypothesis, closing_timestamp_from: Option<u32>) -> bool {
    if h.truncated {
        return true;
    }
    // The same 4 tokens three times in one window is a loop, not speech.
    let mut counts = HashMap::new();
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

/// Audio left after a window's last segment, beyond which that audio is decoded again rather
/// than skipped: Whisper sometimes ends a 30 s window's text early (tiny.en stopped after 13 s of
/// a 30 s window of five recordings, losing two of them), and a final segment closed well before
/// the audio ends says so. Its timestamps can close a segment a second or more before the words
/// end, so a shorter tail would be heard twice (1 s: one librispeech/dev file's last words were).
const UNDECODED_TAIL_FRAMES: usize = 300;

/// Splits a window's tokens into timestamped segments and says how many mel frames the stream
/// may move on by: up to the last complete segment, or the whole window if its text ended
/// cleanly within [`UNDECODED_TAIL_FRAMES`] of the audio's end.
fn split_segments(tokens: &[u32], ts_begin: u32, window_frames: usize) -> (Vec<RawSegment>, usize) {
    let is_ts = |t: u32| t >= ts_begin;
    let frame = |t: u32| (t - ts_begin) as usize * 2;
    let text = |s: &[u32]| s.iter().copied().filter(|&t| !is_ts(t)).collect::<Vec<_>>();
    let ended_at = |end: usize| if end + UNDECODED_TAIL_FRAMES < window_frames { end } else { window_frames };
    let single_ending =
        tokens.len() >= 2 && !is_ts(tokens[tokens.len() - 2]) && is_ts(tokens[tokens.len() - 1]);
    let mut cuts: Vec<usize> =
        (1..tokens.len()).filter(|&i| is_ts(tokens[i - 1]) && is_ts(tokens[i])).collect();
    if cuts.is_empty() {
        let last_ts = tokens.iter().rev().find(|&&t| is_ts(t)).filter(|&&t| t != ts_begin).map(|&t| frame(t));
        let end = last_ts.unwrap_or(window_frames);
        let start = tokens.first().filter(|&&t| is_ts(t)).map_or(0, |&t| frame(t));
        let advance = if single_ending { ended_at(end) } else { window_frames };
        return (
            vec![RawSegment { tokens: text(tokens), start_frame: start, end_frame: end.max(start) }],
            advance,
        );
    }
    if single_ending {
        cuts.push(tokens.len());
    }
    let mut segments = Vec::new();
    let mut last = 0;
    for &cut in &cuts {
        let s = &tokens[last..cut];
        segments.push(RawSegment {
            tokens: text(s),
            start_frame: frame(s[0]),
            end_frame: frame(s[s.len() - 1]),
        });
        last = cut;
    }
    let advance =
        if single_ending { ended_at(frame(tokens[tokens.len() - 1])) } else { frame(tokens[last - 1]) };
    (segments, advance)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u32 = 100;

    #[test]
    fn segments_from_timestamp_pairs() {
        // <0.00> a b <1.00><1.00> c <2.00> then end, in 4.5 s: two segments, the window is finished.
        let toks = [TS, 1, 2, TS + 50, TS + 50, 3, TS + 100];
        let (segs, adv) = split_segments(&toks, TS, 450);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0], RawSegment { tokens: vec![1, 2], start_frame: 0, end_frame: 100 });
        assert_eq!(segs[1], RawSegment { tokens: vec![3], start_frame: 100, end_frame: 200 });
        assert_eq!(adv, 450);
        // The same text for 30 s of audio ended early: the rest is decoded again from 2.00.
        let (segs, adv) = split_segments(&toks, TS, 3000);
        assert_eq!(segs.len(), 2);
        assert_eq!(adv, 200);
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

    /// Token `i` of the fake vocabulary below.
    fn words(ids: &[u32]) -> String {
        ids.iter().map(|&i| [" you", ",", " the", " war", " was", " a", "."][i as usize]).collect()
    }

    #[test]
    fn tail_repeats_are_cut_to_one_copy() {
        // " the war was a war." then " you," five times.
        let toks = [2, 3, 4, 5, 3, 6, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        assert_eq!(cut_tail_repeats(&toks, 3), 8);
        // Two copies are speech, not a loop.
        assert_eq!(cut_tail_repeats(&[2, 3, 2, 3], 3), 4);
        // A repeated sentence is cut; repeats that are not at the tail stay.
        assert_eq!(cut_tail_repeats(&[0, 0, 0, 2, 3, 6, 2, 3, 6, 2, 3, 6], 3), 6);
    }

    #[test]
    fn repair_closes_the_cut_segment_at_the_audio_end() {
        // <0.00> the war was a war. <2.00><2.00> you, you, you, you,   (no end) over 5 s of audio
        let toks = [TS, 2, 3, 4, 5, 3, 6, TS + 100, TS + 100, 0, 1, 0, 1, 0, 1, 0, 1];
        let fixed = repair(&toks, TS, 500, 100, words);
        assert_eq!(fixed, vec![TS, 2, 3, 4, 5, 3, 6, TS + 100, TS + 100, 0, 1, TS + 250]);
        let (segs, advance) = split_segments(&fixed, TS, 500);
        assert_eq!(segs.len(), 2);
        assert_eq!(advance, 500, "a repaired window is finished");
        // The word bound keeps whole words: 3 words of " the war was a war."
        let fixed = repair(&[TS, 2, 3, 4, 5, 3, 6, TS + 100], TS, 500, 3, words);
        assert_eq!(words(&fixed.iter().copied().filter(|&t| t < TS).collect::<Vec<_>>()), " the war was");
        assert_eq!(*fixed.last().unwrap(), TS + 250);
    }

    fn quality(compression_ratio: f32, avg_logprob: f32, no_speech_prob: f32) -> Quality {
        Quality { compression_ratio, avg_logprob, no_speech_prob, too_many_words: false, degenerate: false }
    }

    #[test]
    fn verdicts_follow_whispers_thresholds() {
        assert_eq!(quality(1.2, -0.3, 0.1).verdict(), Verdict::Speech);
        assert_eq!(quality(2.6, -0.3, 0.1).verdict(), Verdict::Failed, "repetitive text");
        assert_eq!(quality(1.2, -1.3, 0.1).verdict(), Verdict::Failed, "unlikely text");
        assert_eq!(
            quality(1.2, -1.3, 0.8).verdict(),
            Verdict::Silence,
            "unlikely text where no speech is likely"
        );
        assert_eq!(quality(1.2, -0.3, 0.8).verdict(), Verdict::Speech, "confident text is kept even then");
        assert_eq!(Quality { too_many_words: true, ..quality(1.2, -0.3, 0.1) }.verdict(), Verdict::Failed);
        assert!(compression_ratio(&"you, ".repeat(40)) > MAX_COMPRESSION_RATIO);
        assert!(
            compression_ratio("And so my fellow Americans ask not what your country can do for you.")
                < MAX_COMPRESSION_RATIO
        );
    }

    #[test]
    fn single_segment_and_no_timestamps() {
        let (segs, adv) = split_segments(&[TS, 1, 2, TS + 20], TS, 320);
        assert_eq!(segs, vec![RawSegment { tokens: vec![1, 2], start_frame: 0, end_frame: 40 }]);
        assert_eq!(adv, 320);
        let (_, adv) = split_segments(&[TS, 1, 2, TS + 20], TS, 600);
        assert_eq!(adv, 40, "text that ends 5.6 s before the audio does leaves that audio to decode");
        let (segs, adv) = split_segments(&[1, 2], TS, 600);
        assert_eq!(segs, vec![RawSegment { tokens: vec![1, 2], start_frame: 0, end_frame: 600 }]);
        assert_eq!(adv, 600);
    }
}
