//! Token search over one 30-second (or shorter) window: greedy, beam search or seeded sampling
//! at a temperature (Whisper's fallback), with Whisper's logit rules (no special tokens,
//! timestamps in pairs and non-decreasing, no blank start).

use candle_core::{Result, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::WhisperConfig;
use super::model::{DecoderState, Whisper};

#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// 1 = greedy.
    pub beam_size: usize,
    pub max_tokens: usize,
    pub timestamps: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self { beam_size: 1, max_tokens: 224, timestamps: true }
    }
}

#[derive(Debug, Clone)]
pub struct Hypothesis {
    /// Generated tokens, timestamps included, end-of-text excluded.
    pub tokens: Vec<u32>,
    pub sum_logprob: f32,
    /// True when the search stopped at `max_tokens` instead of at end-of-text.
    pub truncated: bool,
    /// Probability of `<|nospeech|>` at the start-of-transcript position (Whisper's silence test).
    pub no_speech_prob: f32,
}

impl Hypothesis {
    fn empty(no_speech_prob: f32) -> Self {
        Self { tokens: Vec::new(), sum_logprob: 0.0, truncated: false, no_speech_prob }
    }

    pub fn avg_logprob(&self) -> f32 {
        self.sum_logprob / (self.tokens.len() + 1) as f32
    }
}

/// Whisper's decoding rules, applied to one hypothesis' logits in place.
pub struct LogitRules<'a> {
    cfg: &'a WhisperConfig,
    timestamps: bool,
    /// The last timestamp index that lies inside the audio of this window.
    max_timestamp: u32,
}

/// Whisper allows the first timestamp to be at most 1 s into the window.
const MAX_INITIAL_TIMESTAMP: u32 = 50;

impl<'a> LogitRules<'a> {
    pub fn new(cfg: &'a WhisperConfig, timestamps: bool, content_frames: usize) -> Self {
        // Timestamps step by 20 ms = 2 mel frames.
        Self { cfg, timestamps, max_timestamp: (content_frames / 2).min(1500) as u32 }
    }

    pub fn apply(&self, logits: &mut [f32], generated: &[u32]) {
        let t = &self.cfg.tokens;
        let ninf = f32::NEG_INFINITY;
        let ts = t.timestamp_begin as usize;
        let vocab = logits.len();
        // Special tokens between end-of-text and the timestamps are never produced.
        for l in &mut logits[t.eot as usize + 1..ts.min(vocab)] {
            *l = ninf;
        }
        for &id in &self.cfg.suppress_ids {
            if let Some(l) = logits.get_mut(id as usize) {
                *l = ninf;
            }
        }
        if generated.is_empty() {
            for &id in &self.cfg.suppress_ids_begin {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = ninf;
                }
            }
        }
        if !self.timestamps {
            logits[ts.min(vocab)..].fill(ninf);
            return;
        }
        let is_ts = |id: u32| id >= t.timestamp_begin;
        let last_ts = generated.last().is_some_and(|&id| is_ts(id));
        let penultimate_ts = generated.len() < 2 || is_ts(generated[generated.len() - 2]);
        if last_ts {
            if penultimate_ts {
                logits[ts..].fill(ninf); // a pair just closed: text must follow
            } else {
                logits[..t.eot as usize].fill(ninf); // a segment just ended: timestamp or end
            }
        }
        if let Some(&last) = generated.iter().rev().find(|&&id| is_ts(id)) {
            // Non-decreasing; a new segment may start where the previous ended.
            let floor = if last_ts && !penultimate_ts { last } else { last + 1 };
            logits[ts..(floor as usize).min(vocab)].fill(ninf);
        }
        if generated.is_empty() {
            logits[..ts].fill(ninf);
            let cap = ts + MAX_INITIAL_TIMESTAMP.min(self.max_timestamp) as usize + 1;
            logits[cap.min(vocab)..].fill(ninf);
        }
        // Nothing after the audio's end.
        let end = ts + self.max_timestamp as usize + 1;
        if end < vocab {
            logits[end..].fill(ninf);
        }
        // If a timestamp is likelier in total than any single text token, emit a timestamp.
        let lse = |xs: &[f32]| {
            let m = xs.iter().copied().fold(ninf, f32::max);
            if m == ninf { ninf } else { m + xs.iter().map(|x| (x - m).exp()).sum::<f32>().ln() }
        };
        let norm = lse(logits);
        let ts_logprob = lse(&logits[ts..]) - norm;
        let max_text = logits[..ts].iter().copied().fold(ninf, f32::max) - norm;
        if ts_logprob > max_text {
            logits[..ts].fill(ninf);
        }
    }
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + logits.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
    logits.iter().map(|x| x - lse).collect()
}

/// Decodes one window. `audio` = encoder output `[1, T, d]`; `prompt` = the tokens fed before
/// generation (previous text and the start-of-transcript sequence).
pub fn search(
    model: &Whisper,
    audio: &Tensor,
    prompt: &[u32],
    rules: &LogitRules,
    opts: &SearchOptions,
) -> Result<Hypothesis> {
    if opts.beam_size <= 1 {
        greedy(model, audio, prompt, rules, opts)
    } else {
        beam(model, audio, prompt, rules, opts)
    }
}

fn greedy(
    model: &Whisper,
    audio: &Tensor,
    prompt: &[u32],
    rules: &LogitRules,
    opts: &SearchOptions,
) -> Result<Hypothesis> {
    let eot = model.config.tokens.eot;
    let mut state = model.start(audio, 1)?;
    let (mut logits, no_speech_prob) = feed_prompt(model, &mut state, prompt)?;
    let mut hyp = Hypothesis::empty(no_speech_prob);
    let limit = token_limit(model, prompt, opts);
    loop {
        if hyp.tokens.len() >= limit {
            hyp.truncated = true;
            return Ok(hyp);
        }
        rules.apply(&mut logits, &hyp.tokens);
        let logprobs = log_softmax(&logits);
        let (best, lp) = logprobs
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
        hyp.sum_logprob += lp;
        if best as u32 == eot {
            return Ok(hyp);
        }
        hyp.tokens.push(best as u32);
        logits = model.step(&Tensor::new(&[[best as u32]], model.device())?, &mut state)?.remove(0);
    }
}

/// Tokens a search may generate after `prompt`: the options' bound, within the decoder's context.
fn token_limit(model: &Whisper, prompt: &[u32], opts: &SearchOptions) -> usize {
    opts.max_tokens.min(model.config.n_text_ctx - prompt.len())
}

/// Feeds the prompt; returns the logits for the first generated token and the no-speech
/// probability, read (before any logit rule) where the start-of-transcript token was fed.
fn feed_prompt(model: &Whisper, state: &mut DecoderState, prompt: &[u32]) -> Result<(Vec<f32>, f32)> {
    let tokens = &model.config.tokens;
    let sot_at = prompt.iter().position(|&t| t == tokens.sot).unwrap_or(prompt.len() - 1);
    let (head, rest) = prompt.split_at(sot_at + 1);
    let mut logits = model.step(&Tensor::new(head, model.device())?.unsqueeze(0)?, state)?.remove(0);
    let no_speech_prob = log_softmax(&logits).get(tokens.no_speech() as usize).map_or(0.0, |lp| lp.exp());
    if !rest.is_empty() {
        logits = model.step(&Tensor::new(rest, model.device())?.unsqueeze(0)?, state)?.remove(0);
    }
    Ok((logits, no_speech_prob))
}

/// How to sample in Whisper's fallback decode.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    pub temperature: f32,
    /// Hypotheses drawn; the one with the best mean log-probability wins.
    pub best_of: usize,
    /// The same seed gives the same text for the same window.
    pub seed: u64,
}

/// Whisper's fallback decode: hypotheses sampled at a temperature, decoded together as one
/// batch. Log-probabilities are the untempered model's, as in Whisper.
pub fn sample(
    model: &Whisper,
    audio: &Tensor,
    prompt: &[u32],
    rules: &LogitRules,
    opts: &SearchOptions,
    sampling: Sampling,
) -> Result<Hypothesis> {
    let Sampling { temperature, best_of, seed } = sampling;
    let eot = model.config.tokens.eot;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state = model.start(audio, 1)?;
    let (first, no_speech_prob) = feed_prompt(model, &mut state, prompt)?;
    let best_of = best_of.max(1);
    state.select(&vec![0; best_of])?;
    let limit = token_limit(model, prompt, opts);
    let mut live: Vec<Hypothesis> = (0..best_of).map(|_| Hypothesis::empty(no_speech_prob)).collect();
    let mut rows = vec![first; best_of];
    let mut done = Vec::with_capacity(best_of);
    while !live.is_empty() {
        let mut still = Vec::with_capacity(live.len());
        let mut parents = Vec::with_capacity(live.len());
        let mut next_tokens = Vec::with_capacity(live.len());
        for (i, (mut hyp, mut logits)) in live.into_iter().zip(rows).enumerate() {
            rules.apply(&mut logits, &hyp.tokens);
            let logprobs = log_softmax(&logits);
            let token = sample_index(&logprobs, temperature, &mut rng);
            hyp.sum_logprob += logprobs[token];
            if token as u32 != eot {
                hyp.tokens.push(token as u32);
                hyp.truncated = hyp.tokens.len() >= limit;
            }
            if token as u32 == eot || hyp.truncated {
                done.push(hyp);
            } else {
                still.push(hyp);
                parents.push(i as u32);
                next_tokens.push(token as u32);
            }
        }
        live = still;
        if live.is_empty() {
            break;
        }
        state.select(&parents)?;
        rows = model.step(&Tensor::new(next_tokens.as_slice(), model.device())?.unsqueeze(1)?, &mut state)?;
    }
    Ok(done.into_iter().max_by(|a, b| a.avg_logprob().total_cmp(&b.avg_logprob())).expect("best_of >= 1"))
}

/// Draws a token from the softmax of `logprobs / temperature`.
fn sample_index(logprobs: &[f32], temperature: f32, rng: &mut StdRng) -> usize {
    let m = logprobs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = logprobs.iter().map(|&lp| ((lp - m) / temperature).exp()).collect();
    let mut left = rng.random::<f32>() * weights.iter().sum::<f32>();
    for (i, w) in weights.iter().enumerate() {
        left -= w;
        if left <= 0.0 && *w > 0.0 {
            return i;
        }
    }
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

fn beam(
    model: &Whisper,
    audio: &Tensor,
    prompt: &[u32],
    rules: &LogitRules,
    opts: &SearchOptions,
) -> Result<Hypothesis> {
    let eot = model.config.tokens.eot;
    let k = opts.beam_size;
    let limit = token_limit(model, prompt, opts);
    let mut state: DecoderState = model.start(audio, 1)?;
    let (first, no_speech_prob) = feed_prompt(model, &mut state, prompt)?;
    let mut beams = vec![Hypothesis::empty(no_speech_prob)];
    let mut finished: Vec<Hypothesis> = Vec::new();
    let mut logits = vec![first];
    while finished.len() < k {
        // Every beam proposes its k+1 best continuations; the best k that do not end go on.
        let mut candidates: Vec<(f32, usize, u32)> = Vec::new();
        for (b, (mut row, hyp)) in logits.into_iter().zip(&beams).enumerate() {
            rules.apply(&mut row, &hyp.tokens);
            let lp = log_softmax(&row);
            let mut idx: Vec<usize> = (0..lp.len()).collect();
            let n = (k + 1).min(idx.len());
            idx.select_nth_unstable_by(n - 1, |&a, &c| lp[c].total_cmp(&lp[a]));
            for &i in &idx[..n] {
                if lp[i].is_finite() {
                    candidates.push((hyp.sum_logprob + lp[i], b, i as u32));
                }
            }
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut next = Vec::new();
        let mut parents = Vec::new();
        let mut last_tokens = Vec::new();
        for (score, b, tok) in candidates {
            // Only candidates ranked above the k-th live beam count, ended or not.
            if next.len() >= k {
                break;
            }
            if tok == eot {
                if finished.len() < k {
                    finished.push(Hypothesis {
                        tokens: beams[b].tokens.clone(),
                        sum_logprob: score,
                        ..Hypothesis::empty(no_speech_prob)
                    });
                }
            } else {
                let mut tokens = beams[b].tokens.clone();
                tokens.push(tok);
                next.push(Hypothesis { tokens, sum_logprob: score, ..Hypothesis::empty(no_speech_prob) });
                parents.push(b as u32);
                last_tokens.push(tok);
            }
        }
        if next.is_empty() {
            break;
        }
        if next[0].tokens.len() >= limit {
            for mut h in next {
                if finished.len() < k {
                    h.truncated = true;
                    finished.push(h);
                }
            }
            break;
        }
        state.select(&parents)?;
        beams = next;
        logits =
            model.step(&Tensor::new(last_tokens.as_slice(), model.device())?.unsqueeze(1)?, &mut state)?;
    }
    if finished.is_empty() {
        finished = beams;
    }
    // Whisper's default length normalisation: mean log-probability per token.
    Ok(finished
        .into_iter()
        .max_by(|a, b| a.avg_logprob().total_cmp(&b.avg_logprob()))
        .expect("at least one hypothesis"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::whisper::config::SpecialTokens;

    fn cfg() -> WhisperConfig {
        WhisperConfig {
            n_mels: 80,
            d_model: 4,
            n_heads: 1,
            encoder_layers: 1,
            decoder_layers: 1,
            n_audio_ctx: 1500,
            n_text_ctx: 448,
            vocab_size: 20,
            multilingual: false,
            tokens: SpecialTokens {
                eot: 5,
                sot: 6,
                sot_prev: 7,
                transcribe: 8,
                translate: 9,
                no_timestamps: 9,
                timestamp_begin: 10,
                english: None,
                no_speech: None,
            },
            suppress_ids: vec![1],
            suppress_ids_begin: vec![5],
            pad_to_30s: false,
        }
    }

    fn allowed(logits: &[f32]) -> Vec<usize> {
        logits.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, _)| i).collect()
    }

    #[test]
    fn timestamp_rules() {
        let c = cfg();
        let rules = LogitRules::new(&c, true, 16); // 8 timestamp steps of audio: ids 10..=18
        // First token: a timestamp within the first second and the audio.
        let mut l = vec![0.0; 20];
        rules.apply(&mut l, &[]);
        assert_eq!(allowed(&l), (10..=18).collect::<Vec<_>>());
        // After an opening timestamp: text (1 is suppressed) or end-of-text.
        let mut l = vec![0.0; 20];
        rules.apply(&mut l, &[12]);
        assert_eq!(allowed(&l), vec![0, 2, 3, 4, 5]);
        // After text then a closing timestamp: another timestamp (>= the last) or end-of-text.
        let mut l = vec![0.0; 20];
        l[5] = 5.0;
        rules.apply(&mut l, &[12, 3, 14]);
        assert_eq!(allowed(&l), vec![5, 14, 15, 16, 17, 18]);
        // …unless the timestamps together outweigh end-of-text: then a timestamp is forced.
        let mut l = vec![0.0; 20];
        rules.apply(&mut l, &[12, 3, 14]);
        assert_eq!(allowed(&l), vec![14, 15, 16, 17, 18]);
        // After a pair: text only.
        let mut l = vec![0.0; 20];
        l[2] = 9.0;
        rules.apply(&mut l, &[12, 3, 14, 14]);
        assert_eq!(allowed(&l), vec![0, 2, 3, 4, 5]);
    }

    #[test]
    fn without_timestamps_only_text_and_end() {
        let c = cfg();
        let rules = LogitRules::new(&c, false, 3000);
        let mut l = vec![0.0; 20];
        rules.apply(&mut l, &[3]);
        assert_eq!(allowed(&l), vec![0, 2, 3, 4, 5]);
    }
}
