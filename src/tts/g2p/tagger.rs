//! The package's averaged-perceptron part-of-speech tagger (Penn Treebank tags, trained on spaCy
//! en_core_web_sm's tags): the lexicon reads "read", "live" and "record" by their tag. A word
//! with one dominant tag is answered from the tag dictionary, everything else from the weights.

use std::collections::HashMap;

use rustc_hash::{FxHashMap, FxHashSet};

use serde::Deserialize;

use super::text::{is_alpha, is_lower, is_upper};
use crate::error::{Error, Result};

/// The model file as stored: tag names, the tag dictionary, the vocabulary and, per feature,
/// a weight for some tags.
#[derive(Deserialize)]
struct TaggerFile {
    tags: Vec<String>,
    tagdict: FxHashMap<String, String>,
    vocab: FxHashSet<String>,
    weights: FxHashMap<String, FxHashMap<String, f64>>,
}

pub struct Tagger {
    tags: Vec<String>,
    tagdict: FxHashMap<String, String>,
    vocab: FxHashSet<String>,
    /// Per feature, (index into `tags`, weight), in the file's order.
    weights: FxHashMap<String, Vec<(usize, f64)>>,
}

fn is_digit(w: &str) -> bool {
    !w.is_empty() && w.chars().all(|c| c.is_numeric())
}

fn norm(w: &str) -> String {
    if w.contains('-') && !w.starts_with('-') {
        "!HYPHEN".into()
    } else if is_digit(w) && w.chars().count() == 4 {
        "!YEAR".into()
    } else if w.chars().next().is_some_and(|c| c.is_numeric()) {
        "!DIGITS".into()
    } else {
        w.to_lowercase()
    }
}

fn shape(w: &str) -> String {
    if is_alpha(w) {
        let rest: String = w.chars().skip(1).collect();
        return if is_lower(w) {
            "x".into()
        } else if is_upper(w) {
            if w.chars().count() > 1 { "XX".into() } else { "X1".into() }
        } else if w.chars().next().is_some_and(char::is_uppercase) && is_lower(&rest) {
            "Xx".into()
        } else {
            "xX".into()
        };
    }
    if is_digit(w) {
        return "d".into();
    }
    w.chars()
        .take(4)
        .map(|c| {
            if c.is_numeric() {
                'd'
            } else if c.is_alphabetic() {
                'x'
            } else {
                c
            }
        })
        .collect()
}

/// The last three characters (Python's `w[-3:]`).
fn last3(w: &str) -> String {
    let chars: Vec<char> = w.chars().collect();
    chars[chars.len().saturating_sub(3)..].iter().collect()
}

impl Tagger {
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let file: TaggerFile =
            serde_json::from_slice(json).map_err(|e| Error::Model(format!("tagger.json: {e}")))?;
        let index: HashMap<&str, usize> =
            file.tags.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        let weights = file
            .weights
            .into_iter()
            .map(|(feature, ws)| {
                (
                    feature,
                    ws.into_iter().filter_map(|(t, w)| index.get(t.as_str()).map(|&i| (i, w))).collect(),
                )
            })
            .collect();
        Ok(Self { tags: file.tags, tagdict: file.tagdict, vocab: file.vocab, weights })
    }

    fn predict(&self, feats: &[String]) -> String {
        let mut scores: Vec<Option<f64>> = vec![None; self.tags.len()];
        for f in feats {
            if let Some(ws) = self.weights.get(f) {
                for &(t, w) in ws {
                    *scores[t].get_or_insert(0.0) += w;
                }
            }
        }
        if scores.iter().all(Option::is_none) {
            return "NN".into();
        }
        // Highest score; ties go to the greater tag name (Python's max over (score, tag)).
        (0..self.tags.len())
            .max_by(|&a, &b| {
                let (sa, sb) = (scores[a].unwrap_or(0.0), scores[b].unwrap_or(0.0));
                sa.total_cmp(&sb).then_with(|| self.tags[a].cmp(&self.tags[b]))
            })
            .map_or_else(|| "NN".into(), |i| self.tags[i].clone())
    }

    pub fn tag(&self, words: &[String]) -> Vec<String> {
        let mut ctx: Vec<String> = vec!["-START2-".into(), "-START-".into()];
        for w in words {
            let n = norm(w);
            ctx.push(if self.vocab.contains(&n) { n } else { format!("<{}>", shape(w)) });
        }
        ctx.extend(["-END-".to_string(), "-END2-".to_string()]);
        let (mut prev, mut prev2) = ("-START-".to_string(), "-START2-".to_string());
        let mut tags = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let tag = match self.tagdict.get(w) {
                Some(t) => t.clone(),
                None => {
                    let j = i + 2;
                    let feats = [
                        "b".to_string(),
                        format!("s3={}", last3(w)),
                        format!("p1={}", w.chars().next().unwrap_or(' ')),
                        format!("w={}", ctx[j]),
                        format!("sh={}", shape(w)),
                        if i == 0 { "i0".into() } else { "i+".into() },
                        format!("t-1={prev}"),
                        format!("t-2={prev2}"),
                        format!("t-12={prev},{prev2}"),
                        format!("w-1={}", ctx[j - 1]),
                        format!("s3-1={}", last3(&ctx[j - 1])),
                        format!("w-2={}", ctx[j - 2]),
                        format!("w+1={}", ctx[j + 1]),
                        format!("s3+1={}", last3(&ctx[j + 1])),
                        format!("w+2={}", ctx[j + 2]),
                    ];
                    self.predict(&feats)
                }
            };
            prev2 = std::mem::replace(&mut prev, tag.clone());
            tags.push(tag);
        }
        tags
    }
}
