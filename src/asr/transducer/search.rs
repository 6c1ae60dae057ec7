//! Token search over encoder frames: greedy (up to `max_symbols` per frame) and modified beam
//! search (at most one symbol per frame, hypotheses with equal text merged), optionally with a
//! word-piece LM fused in (shallow fusion). The joiner and the stateless predictor are small, so
//! they run here on plain slices (weights copied at load).

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Result;

use super::lm::{LmFusion, NgramLm, SENTENCE_START};
use super::model::TransducerModel;
use super::vocab::Vocabulary;

/// The joiner and predictor as plain matrices.
pub struct Joiner {
    pub vocab: usize,
    pub dim: usize,
    pub blank: u32,
    pub context_size: usize,
    embedding: Vec<f32>,
    pred_w: Vec<f32>,
    pred_b: Vec<f32>,
    out_w: Vec<f32>,
    out_b: Vec<f32>,
}

fn matvec(w: &[f32], b: &[f32], x: &[f32]) -> Vec<f32> {
    let n = x.len();
    b.iter()
        .enumerate()
        .map(|(o, bias)| bias + w[o * n..(o + 1) * n].iter().zip(x).map(|(a, c)| a * c).sum::<f32>())
        .collect()
}

pub fn log_softmax(x: &mut [f32]) {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + x.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
    x.iter_mut().for_each(|v| *v -= lse);
}

fn log_add(a: f32, b: f32) -> f32 {
    let m = a.max(b);
    if m == f32::NEG_INFINITY { m } else { m + ((a - m).exp() + (b - m).exp()).ln() }
}

impl Joiner {
    pub fn from_model(m: &TransducerModel) -> Result<Self> {
        let flat = |t: &candle_core::Tensor| t.flatten_all()?.to_vec1::<f32>();
        let c = &m.config;
        Ok(Self {
            vocab: c.vocab_size,
            dim: c.joiner_dim,
            blank: c.blank_id,
            context_size: c.context_size,
            embedding: flat(&m.embedding)?,
            pred_w: flat(&m.pred_proj.weight_t.t()?)?,
            pred_b: m.pred_proj.bias.as_ref().map(flat).transpose()?.unwrap_or(vec![0.0; c.joiner_dim]),
            out_w: flat(&m.joiner_out.weight_t.t()?)?,
            out_b: m.joiner_out.bias.as_ref().map(flat).transpose()?.unwrap_or(vec![0.0; c.vocab_size]),
        })
    }

    /// Predictor output for a context of previous tokens (oldest first).
    pub fn predict(&self, context: &[u32]) -> Vec<f32> {
        let x: Vec<f32> = context
            .iter()
            .flat_map(|&id| &self.embedding[id as usize * self.dim..(id as usize + 1) * self.dim])
            .copied()
            .collect();
        matvec(&self.pred_w, &self.pred_b, &x)
    }

    /// Log-probabilities over the vocabulary for one encoder frame and predictor output.
    pub fn log_probs(&self, enc: &[f32], pred: &[f32]) -> Vec<f32> {
        let h: Vec<f32> = enc.iter().zip(pred).map(|(a, b)| (a + b).tanh()).collect();
        let mut logits = matvec(&self.out_w, &self.out_b, &h);
        log_softmax(&mut logits);
        logits
    }

    pub fn initial_context(&self) -> Vec<u32> {
        vec![self.blank; self.context_size]
    }
}

/// A token as decoded: which encoder frame emitted it and how sure the model was.
#[derive(Debug, Clone, PartialEq)]
pub struct Emission {
    pub token: u32,
    pub frame: u64,
    pub prob: f32,
}

#[derive(Debug, Clone)]
pub struct Hypothesis {
    pub emissions: Vec<Emission>,
    context: Vec<u32>,
    pub log_prob: f32,
}

impl Hypothesis {
    fn new(joiner: &Joiner) -> Self {
        Self { emissions: Vec::new(), context: joiner.initial_context(), log_prob: 0.0 }
    }

    pub fn tokens(&self) -> Vec<u32> {
        self.emissions.iter().map(|e| e.token).collect()
    }

    fn push(&mut self, e: Emission) {
        self.context.remove(0);
        self.context.push(e.token);
        self.emissions.push(e);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchMode {
    Greedy { max_symbols: usize },
    Beam { beam: usize },
}

/// Incremental search: feed frames as the encoder emits them; read the best hypothesis any time.
pub struct Search {
    mode: SearchMode,
    hyps: Vec<Hypothesis>,
    pred_cache: HashMap<Vec<u32>, Vec<f32>>,
    /// Shallow fusion in beam search: each emitted token also scores `weight` × its LM
    /// log-probability plus `bonus`. Greedy search ignores it.
    lm: Option<(Arc<NgramLm>, LmFusion)>,
    lm_cache: HashMap<Vec<u32>, Vec<f32>>,
}

/// Entries kept in a search's predictor and LM caches before they are cleared (bounded memory
/// on endless streams).
const CACHE_ENTRIES: usize = 4096;

impl Search {
    pub fn new(mode: SearchMode, joiner: &Joiner) -> Self {
        Self {
            mode,
            hyps: vec![Hypothesis::new(joiner)],
            pred_cache: HashMap::new(),
            lm: None,
            lm_cache: HashMap::new(),
        }
    }

    pub fn with_lm(mut self, lm: Option<(Arc<NgramLm>, LmFusion)>) -> Self {
        self.lm = lm;
        self
    }

    /// The fused LM's score of every token after `hyp`'s text (a segment starts a sentence).
    fn lm_scores(&mut self, hyp: &Hypothesis) -> Option<Vec<f32>> {
        let (lm, fusion) = self.lm.as_ref()?;
        let keep = lm.order() - 1;
        let tokens = &hyp.emissions[hyp.emissions.len().saturating_sub(keep)..];
        let mut context: Vec<u32> = Vec::with_capacity(keep + 1);
        if hyp.emissions.len() < keep {
            context.push(SENTENCE_START);
        }
        context.extend(tokens.iter().map(|e| e.token));
        if self.lm_cache.len() > CACHE_ENTRIES {
            self.lm_cache.clear();
        }
        let fusion = *fusion;
        Some(
            self.lm_cache
                .entry(context)
                .or_insert_with_key(|c| {
                    lm.log_probs(c).into_iter().map(|l| fusion.weight * l + fusion.bonus).collect()
                })
                .clone(),
        )
    }

    fn predict(&mut self, joiner: &Joiner, context: &[u32]) -> Vec<f32> {
        if self.pred_cache.len() > CACHE_ENTRIES {
            self.pred_cache.clear();
        }
        self.pred_cache.entry(context.to_vec()).or_insert_with(|| joiner.predict(context)).clone()
    }

    pub fn step(&mut self, joiner: &Joiner, frame: u64, enc: &[f32]) {
        match self.mode {
            SearchMode::Greedy { max_symbols } => {
                let mut hyp = self.hyps.pop().expect("one hypothesis");
                for _ in 0..max_symbols.max(1) {
                    let pred = self.predict(joiner, &hyp.context);
                    let lp = joiner.log_probs(enc, &pred);
                    let (best, &best_lp) = lp.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
                    hyp.log_prob += best_lp;
                    if best as u32 == joiner.blank {
                        break;
                    }
                    hyp.push(Emission { token: best as u32, frame, prob: best_lp.exp() });
                }
                self.hyps.push(hyp);
            }
            SearchMode::Beam { beam } => {
                let mut next: Vec<Hypothesis> = Vec::new();
                let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
                let mut candidates: Vec<(f32, usize, u32, f32)> = Vec::new();
                let hyps = std::mem::take(&mut self.hyps);
                for (h, hyp) in hyps.iter().enumerate() {
                    let pred = self.predict(joiner, &hyp.context);
                    let lp = joiner.log_probs(enc, &pred);
                    let lm = self.lm_scores(hyp);
                    for (tok, &l) in lp.iter().enumerate() {
                        let fused = match &lm {
                            Some(scores) if tok as u32 != joiner.blank => scores[tok],
                            _ => 0.0,
                        };
                        candidates.push((hyp.log_prob + l + fused, h, tok as u32, l));
                    }
                }
                candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
                for (score, h, tok, l) in candidates {
                    let mut hyp = hyps[h].clone();
                    hyp.log_prob = score;
                    if tok != joiner.blank {
                        hyp.push(Emission { token: tok, frame, prob: l.exp() });
                    }
                    let key = hyp.tokens();
                    match index.get(&key) {
                        // The same text by another alignment: add the probabilities.
                        Some(&i) => next[i].log_prob = log_add(next[i].log_prob, score),
                        None if next.len() < beam => {
                            index.insert(key, next.len());
                            next.push(hyp);
                        }
                        None => {}
                    }
                }
                next.sort_by(|a, b| b.log_prob.total_cmp(&a.log_prob));
                self.hyps = next;
            }
        }
    }

    pub fn best(&self) -> &Hypothesis {
        self.hyps.iter().max_by(|a, b| a.log_prob.total_cmp(&b.log_prob)).expect("at least one hypothesis")
    }
}

/// A recognised word with times (seconds) and a confidence in [0, 1].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub confidence: f32,
}

/// Seconds per encoder output frame.
pub const FRAME_S: f64 = 0.04;

/// Groups emissions into words: a word starts at a word-boundary token; its time spans the frames
/// that emitted its tokens; its confidence is the geometric mean of their probabilities.
pub fn words(emissions: &[Emission], vocab: &Vocabulary) -> Vec<Word> {
    let mut words: Vec<(Vec<&Emission>, String)> = Vec::new();
    for e in emissions {
        if vocab.starts_word(e.token) || words.is_empty() {
            words.push((Vec::new(), String::new()));
        }
        let (es, text) = words.last_mut().unwrap();
        es.push(e);
        text.push_str(&vocab.decode(&[e.token]));
    }
    words
        .into_iter()
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(es, text)| Word {
            word: text.trim().to_string(),
            start: es[0].frame as f64 * FRAME_S,
            end: (es[es.len() - 1].frame + 1) as f64 * FRAME_S,
            confidence: (es.iter().map(|e| e.prob.max(1e-12).ln()).sum::<f32>() / es.len() as f32).exp(),
        })
        .collect()
}

/// What a viewer has been shown as a partial result, and how often it had to be taken back.
#[derive(Debug, Default)]
pub struct PartialTracker {
    pub shown: String,
    pub corrections: usize,
}

impl PartialTracker {
    /// Records a new partial; returns true when it changes what was already shown.
    pub fn update(&mut self, text: &str) -> bool {
        let corrected = !text.starts_with(&self.shown);
        if corrected {
            self.corrections += 1;
        }
        self.shown = text.to_string();
        corrected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transducer_partial_tracker_counts_corrections() {
        let mut p = PartialTracker::default();
        assert!(!p.update("he"));
        assert!(!p.update("hello"));
        assert!(p.update("help"));
        assert_eq!(p.corrections, 1);
    }
}
