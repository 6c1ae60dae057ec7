//! A word-piece n-gram language model for shallow fusion in the transducer's beam search:
//! interpolated Kneser-Ney over the transducer's own vocabulary, trained on plain text, stored in
//! safetensors (n-gram keys and their probabilities) with the fusion weights tuned for it.
//!
//! P(w | h) = α(h, w) + γ(h) · P(w | h'), where h' drops h's oldest token, α is the discounted
//! (continuation) count and γ the mass the discount set aside; the recursion ends in a unigram
//! interpolated with the uniform distribution.

use std::collections::HashMap;
use std::path::Path;

use rustc_hash::FxHashMap;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};

/// The token that stands for the start of a sentence in a context: the blank, which the
/// transducer never emits as text.
pub const SENTENCE_START: u32 = 0;

/// How the LM's scores join the transducer's in the search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmFusion {
    /// Weight of the LM's log-probability of each emitted token.
    pub weight: f32,
    /// Added per emitted token (the insertion bonus that offsets the LM's pull towards short text).
    pub bonus: f32,
}

pub struct NgramLm {
    order: usize,
    vocab_size: usize,
    bits: u32,
    /// α of every kept n-gram (context and word), by packed key.
    alpha: FxHashMap<u64, f32>,
    /// γ of every context seen, by packed key.
    gamma: FxHashMap<u64, f32>,
    /// The fusion settings tuned for this LM (stored with it).
    pub fusion: LmFusion,
    /// The beam the fusion settings were tuned with.
    pub beam: usize,
}

/// Options for [`NgramLm::train`].
#[derive(Debug, Clone, Copy)]
pub struct LmTraining {
    pub order: usize,
    /// N-grams of order 3 and above seen fewer times than this are dropped (their mass goes to
    /// the context's back-off weight).
    pub min_count: u32,
}

fn bits_for(vocab_size: usize) -> u32 {
    usize::BITS - (vocab_size.max(2) - 1).leading_zeros()
}

impl NgramLm {
    fn key(&self, tokens: &[u32]) -> u64 {
        pack(tokens, self.bits)
    }

    pub fn order(&self) -> usize {
        self.order
    }

    /// Trains on token sequences (each a sentence, without the start token).
    pub fn train(
        sentences: impl Iterator<Item = Vec<u32>>,
        vocab_size: usize,
        opts: LmTraining,
    ) -> Result<Self> {
        let bits = bits_for(vocab_size);
        let order = opts.order;
        if !keys_fit(order, bits) {
            return Err(Error::Model(format!(
                "an order-{order} LM over {vocab_size} tokens does not fit 56-bit keys"
            )));
        }
        // Raw counts of every n-gram up to `order`, keyed by packed tokens, per order.
        let mut raw: Vec<FxHashMap<u64, u32>> = vec![FxHashMap::default(); order + 1];
        for sentence in sentences {
            if let Some(&bad) = sentence.iter().find(|&&t| t as usize >= vocab_size || t == SENTENCE_START) {
                return Err(Error::Model(format!(
                    "token {bad} is not a word piece of a {vocab_size}-token vocabulary"
                )));
            }
            let seq: Vec<u32> = std::iter::once(SENTENCE_START).chain(sentence).collect();
            for end in 1..seq.len() {
                for k in 1..=order.min(end + 1) {
                    let gram = &seq[end + 1 - k..=end];
                    *raw[k].entry(pack(gram, bits)).or_insert(0) += 1;
                }
            }
        }
        // Kneser-Ney: below the top order, an n-gram counts the distinct tokens seen before it
        // (how many contexts it continues), except where it starts a sentence (nothing precedes).
        let mut counts: Vec<FxHashMap<u64, u32>> = vec![FxHashMap::default(); order + 1];
        counts[order] = raw[order].clone();
        for k in (1..order).rev() {
            let mut cont: FxHashMap<u64, u32> = FxHashMap::default();
            for &key in raw[k + 1].keys() {
                let gram = unpack(key, bits);
                *cont.entry(pack(&gram[1..], bits)).or_insert(0) += 1;
            }
            for (&key, &c) in &raw[k] {
                let gram = unpack(key, bits);
                let value = if gram[0] == SENTENCE_START { c } else { cont.get(&key).copied().unwrap_or(0) };
                if value > 0 {
                    counts[k].insert(key, value);
                }
            }
        }
        let mut alpha = FxHashMap::default();
        let mut gamma = FxHashMap::default();
        for k in 1..=order {
            let discount = discount(counts[k].values().copied());
            let mut totals: HashMap<u64, (u64, u32)> = HashMap::new();
            for (&key, &c) in &counts[k] {
                let gram = unpack(key, bits);
                let t = totals.entry(pack(&gram[..k - 1], bits)).or_insert((0, 0));
                t.0 += c as u64;
                t.1 += 1;
            }
            let mut set_aside: HashMap<u64, f32> = HashMap::new();
            for (&key, &c) in &counts[k] {
                let gram = unpack(key, bits);
                let context = pack(&gram[..k - 1], bits);
                let total = totals[&context].0 as f32;
                let a = (c as f32 - discount).max(0.0) / total;
                let raw_count = raw[k].get(&key).copied().unwrap_or(0);
                if k >= 3 && raw_count < opts.min_count {
                    *set_aside.entry(context).or_insert(0.0) += a;
                } else {
                    alpha.insert(key, a);
                }
            }
            for (context, (total, types)) in totals {
                let g =
                    discount * types as f32 / total as f32 + set_aside.get(&context).copied().unwrap_or(0.0);
                gamma.insert(context, g);
            }
        }
        Ok(Self {
            order,
            vocab_size,
            bits,
            alpha,
            gamma,
            fusion: LmFusion { weight: 0.3, bonus: 0.5 },
            beam: 4,
        })
    }

    /// Natural-log probabilities of every token after `context` (oldest first; only its last
    /// `order - 1` tokens count; start it with [`SENTENCE_START`] at a sentence's start).
    pub fn log_probs(&self, context: &[u32]) -> Vec<f32> {
        let h = &context[context.len().saturating_sub(self.order - 1)..];
        let mut probs = vec![1.0 / self.vocab_size as f32; self.vocab_size];
        let mut gram = Vec::with_capacity(self.order);
        // From the unigram up: P_k(w|h_k) = α(h_k w) + γ(h_k) P_{k-1}(w|h_{k-1}).
        for k in 0..=h.len() {
            let ctx = &h[h.len() - k..];
            let Some(&g) = self.gamma.get(&self.key(ctx)) else { break };
            for (w, p) in probs.iter_mut().enumerate() {
                gram.clear();
                gram.extend_from_slice(ctx);
                gram.push(w as u32);
                *p = self.alpha.get(&self.key(&gram)).copied().unwrap_or(0.0) + g * *p;
            }
        }
        probs.iter().map(|p| p.max(1e-12).ln()).collect()
    }

    /// Mean natural-log probability per token of sentences (for perplexity).
    pub fn mean_log_prob(&self, sentences: &[Vec<u32>]) -> f64 {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for s in sentences {
            let mut context = vec![SENTENCE_START];
            for &t in s {
                sum += self.log_probs(&context)[t as usize] as f64;
                n += 1;
                context.push(t);
            }
        }
        sum / n.max(1) as f64
    }

    /// Writes the tables one order at a time, the keys without their length byte and as 32-bit
    /// integers where the tokens fit (every order up to 4 with 256 word pieces): a third smaller
    /// than 64-bit keys.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut columns: Vec<(String, Dtype, usize, Vec<u8>)> = Vec::new();
        for (name, table) in [("alpha", &self.alpha), ("gamma", &self.gamma)] {
            // Sorted by key, the entries come grouped by order (the length is the top byte).
            let mut entries: Vec<(u64, f32)> = table.iter().map(|(&k, &v)| (k, v)).collect();
            entries.sort_unstable_by_key(|e| e.0);
            for group in entries.chunk_by(|a, b| a.0 >> 56 == b.0 >> 56) {
                let (k, n) = ((group[0].0 >> 56) as usize, group.len());
                let tokens = |key: u64| key & ((1 << 56) - 1);
                let (dtype, key_bytes): (Dtype, Vec<u8>) = if narrow_keys(k, self.bits) {
                    (Dtype::U32, group.iter().flat_map(|e| (tokens(e.0) as u32).to_le_bytes()).collect())
                } else {
                    (Dtype::U64, group.iter().flat_map(|e| tokens(e.0).to_le_bytes()).collect())
                };
                let value_bytes = group.iter().flat_map(|e| e.1.to_le_bytes()).collect();
                columns.push((format!("{name}.{k}.keys"), dtype, n, key_bytes));
                columns.push((format!("{name}.{k}.values"), Dtype::F32, n, value_bytes));
            }
        }
        let tensors = columns
            .iter()
            .map(|(name, dtype, n, bytes)| Ok((name.as_str(), view(*dtype, *n, bytes)?)))
            .collect::<Result<Vec<_>>>()?;
        let metadata: HashMap<String, String> = [
            ("order", self.order.to_string()),
            ("vocab_size", self.vocab_size.to_string()),
            ("lm_weight", self.fusion.weight.to_string()),
            ("lm_bonus", self.fusion.bonus.to_string()),
            ("beam", self.beam.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let data = safetensors::serialize(tensors, Some(metadata))
            .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        std::fs::write(path, data).map_err(|e| Error::io(path, e))
    }

    pub fn load(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |what: String| Error::Model(format!("{}: {what}", path.display()));
        let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| bad(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |name: &str| meta.get(name).ok_or_else(|| bad(format!("no {name} in the metadata")));
        let num = |name: &str| -> Result<f64> {
            field(name)?.parse::<f64>().map_err(|e| bad(format!("{name}: {e}")))
        };
        let st = SafeTensors::deserialize(&data).map_err(|e| bad(e.to_string()))?;
        let column = |name: &str, dtype: Dtype| -> Result<Vec<u8>> {
            let t = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
            if t.dtype() != dtype {
                return Err(bad(format!("{name} is {:?}, not {dtype:?}", t.dtype())));
            }
            Ok(t.data().to_vec())
        };
        let order = num("order")? as usize;
        let vocab_size = num("vocab_size")? as usize;
        let bits = bits_for(vocab_size);
        if !keys_fit(order, bits) {
            return Err(bad(format!("an order-{order} LM over {vocab_size} tokens")));
        }
        let table = |name: &str| -> Result<FxHashMap<u64, f32>> {
            let mut map = FxHashMap::default();
            for k in 0..=order {
                let keys_name = format!("{name}.{k}.keys");
                if st.tensor(&keys_name).is_err() {
                    continue;
                }
                let (width, dtype) = if narrow_keys(k, bits) { (4, Dtype::U32) } else { (8, Dtype::U64) };
                let keys = column(&keys_name, dtype)?;
                let values = column(&format!("{name}.{k}.values"), Dtype::F32)?;
                if keys.len() / width != values.len() / 4 {
                    return Err(bad(format!(
                        "{name}.{k}: {} keys for {} values",
                        keys.len() / width,
                        values.len() / 4
                    )));
                }
                let length = (k as u64) << 56;
                map.extend(keys.chunks_exact(width).zip(values.chunks_exact(4)).map(|(key, v)| {
                    let mut wide = [0u8; 8];
                    wide[..width].copy_from_slice(key);
                    (length | u64::from_le_bytes(wide), f32::from_le_bytes(v.try_into().unwrap()))
                }));
            }
            if map.is_empty() {
                return Err(bad(format!("no {name} table")));
            }
            Ok(map)
        };
        Ok(Self {
            order,
            vocab_size,
            bits,
            alpha: table("alpha")?,
            gamma: table("gamma")?,
            fusion: LmFusion { weight: num("lm_weight")? as f32, bonus: num("lm_bonus")? as f32 },
            beam: num("beam")? as usize,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

fn view(dtype: Dtype, n: usize, data: &[u8]) -> Result<TensorView<'_>> {
    TensorView::new(dtype, vec![n], data).map_err(|e| Error::Model(format!("{e}")))
}

/// Whether n-grams up to `order` fit the 56 bits a key gives its tokens.
fn keys_fit(order: usize, bits: u32) -> bool {
    order >= 1 && order as u32 * bits <= 56
}

/// Whether keys of `k` tokens fit 32 bits in the file.
fn narrow_keys(k: usize, bits: u32) -> bool {
    k as u32 * bits <= 32
}

/// Kneser-Ney's discount for one order from its counts of counts: n1 / (n1 + 2 n2).
fn discount(counts: impl Iterator<Item = u32>) -> f32 {
    let (mut n1, mut n2) = (0u64, 0u64);
    for c in counts {
        match c {
            1 => n1 += 1,
            2 => n2 += 1,
            _ => {}
        }
    }
    if n1 == 0 { 0.5 } else { (n1 as f32 / (n1 + 2 * n2) as f32).clamp(0.1, 0.9) }
}

/// Tokens packed `bits` apiece, with the length in the top byte (so "a" and "<s> a" differ).
fn pack(tokens: &[u32], bits: u32) -> u64 {
    let mut key = (tokens.len() as u64) << 56;
    for (i, &t) in tokens.iter().enumerate() {
        key |= (t as u64) << (bits * i as u32);
    }
    key
}

fn unpack(key: u64, bits: u32) -> Vec<u32> {
    let n = (key >> 56) as usize;
    (0..n).map(|i| ((key >> (bits * i as u32)) & ((1 << bits) - 1)) as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<Vec<u32>> {
        // "a b c" often, "a b d" once, "d c" twice; vocabulary 0..6 (0 is the sentence start).
        let mut s = vec![vec![1, 2, 3]; 8];
        s.push(vec![1, 2, 4]);
        s.extend(vec![vec![4, 3]; 2]);
        s.push(vec![5]);
        s
    }

    #[test]
    fn distributions_sum_to_one_in_every_context() {
        let lm = NgramLm::train(corpus().into_iter(), 6, LmTraining { order: 3, min_count: 1 }).unwrap();
        for context in [vec![], vec![0], vec![0, 1], vec![1, 2], vec![2, 4], vec![5, 5]] {
            let total: f32 = lm.log_probs(&context).iter().map(|l| l.exp()).sum();
            assert!((total - 1.0).abs() < 1e-4, "context {context:?}: {total}");
        }
    }

    #[test]
    fn the_seen_continuation_is_likeliest_and_unseen_ones_stay_possible() {
        let lm = NgramLm::train(corpus().into_iter(), 6, LmTraining { order: 3, min_count: 1 }).unwrap();
        let lp = lm.log_probs(&[1, 2]);
        assert!(lp[3] > lp[4] && lp[4] > lp[5], "{lp:?}");
        assert!(lp[5].is_finite());
        // A sentence starts with "a" far more often than with "c".
        let start = lm.log_probs(&[SENTENCE_START]);
        assert!(start[1] > start[3] + 1.0, "{start:?}");
        // Kneser-Ney: "c" follows two different tokens, "b" only one, so after an unseen
        // context "c" is the likelier of the two even though "b" is as frequent.
        let unseen = lm.log_probs(&[5, 5]);
        assert!(unseen[3] > unseen[2], "{unseen:?}");
    }

    #[test]
    fn pruning_keeps_a_distribution_and_saving_keeps_every_probability() {
        let lm = NgramLm::train(corpus().into_iter(), 6, LmTraining { order: 3, min_count: 2 }).unwrap();
        let total: f32 = lm.log_probs(&[1, 2]).iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lm.safetensors");
        lm.save(&path).unwrap();
        let back = NgramLm::load(&path).unwrap();
        assert_eq!((back.order, back.vocab_size, back.beam), (3, 6, lm.beam));
        assert_eq!(back.fusion, lm.fusion);
        for context in [vec![0], vec![1, 2], vec![4]] {
            assert_eq!(back.log_probs(&context), lm.log_probs(&context));
        }
    }

    #[test]
    fn a_high_order_lm_over_many_tokens_round_trips() {
        // Orders above 4 of a 256-token vocabulary need 64-bit keys in the file.
        let sentences: Vec<Vec<u32>> =
            (0..40u32).map(|i| (0..9).map(|j| 1 + (i * 7 + j * 31) % 255).collect()).collect();
        let lm = NgramLm::train(sentences.into_iter(), 256, LmTraining { order: 6, min_count: 1 }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lm.safetensors");
        lm.save(&path).unwrap();
        let back = NgramLm::load(&path).unwrap();
        assert_eq!((back.alpha.len(), back.gamma.len()), (lm.alpha.len(), lm.gamma.len()));
        for context in [vec![0], vec![0, 1, 32, 63, 94, 125], vec![200, 3, 9]] {
            assert_eq!(back.log_probs(&context), lm.log_probs(&context));
            let total: f32 = back.log_probs(&context).iter().map(|l| l.exp()).sum();
            assert!((total - 1.0).abs() < 1e-4, "{total}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(NgramLm::train(vec![vec![7]].into_iter(), 6, LmTraining { order: 3, min_count: 1 }).is_err());
        assert!(
            NgramLm::train(vec![vec![0, 1]].into_iter(), 6, LmTraining { order: 3, min_count: 1 }).is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lm.safetensors");
        std::fs::write(&path, b"not a model").unwrap();
        assert!(NgramLm::load(&path).is_err());
    }

    #[test]
    fn keys_round_trip() {
        for gram in [vec![], vec![0], vec![255, 1, 0, 7]] {
            assert_eq!(unpack(pack(&gram, 8), 8), gram);
        }
        assert_ne!(pack(&[1], 8), pack(&[1, 0], 8));
    }
}
