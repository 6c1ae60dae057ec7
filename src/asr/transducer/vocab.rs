//! The output vocabulary: one token per line in `vocabulary.txt`; line 1 is the blank `<blk>`.
//! Either characters — `▁` (word boundary), a–z and the apostrophe — or word pieces learnt by
//! byte-pair encoding from training text, where a piece that begins a word starts with `▁`. The
//! characters are always in the vocabulary, so every normalised word can be written.

use std::path::Path;

use crate::error::{Error, Result};
use crate::eval;

pub const BLANK: &str = "<blk>";
pub const WORD_BOUNDARY: char = '▁';

#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    tokens: Vec<String>,
}

impl Vocabulary {
    pub fn characters() -> Self {
        let mut tokens = vec![BLANK.to_string(), WORD_BOUNDARY.to_string(), "'".to_string()];
        tokens.extend(('a'..='z').map(|c| c.to_string()));
        Self { tokens }
    }

    /// Characters plus word pieces learnt by byte-pair encoding from `texts` (normalised as the
    /// labels are), `size` tokens in all, blank included.
    pub fn learn_pieces<'a>(texts: impl Iterator<Item = &'a str>, size: usize) -> Result<Self> {
        use tokenizers::Trainer;
        let chars = Self::characters();
        if size <= chars.len() {
            return Err(Error::Model(format!(
                "{size} word pieces leave no room beyond the {} characters",
                chars.len()
            )));
        }
        let words: Vec<String> = texts
            .flat_map(|t| {
                eval::normalize(t)
                    .split_whitespace()
                    .map(|w| format!("{WORD_BOUNDARY}{w}"))
                    .collect::<Vec<_>>()
            })
            .collect();
        let alphabet = chars.tokens[1..].iter().filter_map(|t| t.chars().next()).collect();
        let mut trainer = tokenizers::models::bpe::BpeTrainer::builder()
            .vocab_size(size.saturating_sub(1))
            .min_frequency(2)
            .show_progress(false)
            .initial_alphabet(alphabet)
            .build();
        let mut bpe = tokenizers::models::bpe::BPE::default();
        trainer
            .feed(words.iter(), |w| Ok(vec![w.to_string()]))
            .and_then(|_| trainer.train(&mut bpe))
            .map_err(|e| Error::Model(format!("learning word pieces: {e}")))?;
        let mut pieces: Vec<(String, u32)> = bpe.get_vocab().into_iter().collect();
        pieces.sort_by_key(|(_, id)| *id);
        let mut tokens = chars.tokens;
        for (piece, _) in pieces {
            if tokens.len() >= size {
                break;
            }
            if !tokens.contains(&piece) {
                tokens.push(piece);
            }
        }
        Ok(Self { tokens })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let tokens: Vec<String> = text.lines().map(str::to_string).collect();
        if tokens.first().map(String::as_str) != Some(BLANK) {
            return Err(Error::Model(format!("{}: the first token must be {BLANK}", path.display())));
        }
        Ok(Self { tokens })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.tokens.join("\n") + "\n").map_err(|e| Error::io(path, e))
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn token(&self, id: u32) -> &str {
        self.tokens.get(id as usize).map_or("", String::as_str)
    }

    /// Token ids of normalised text (see `eval::normalize`): each word, `▁` first, split into
    /// the fewest pieces of the vocabulary (ties: the longer first piece). Characters outside
    /// the vocabulary are dropped.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let index: std::collections::HashMap<&str, u32> =
            self.tokens.iter().enumerate().skip(1).map(|(i, t)| (t.as_str(), i as u32)).collect();
        let longest = self.tokens.iter().map(|t| t.chars().count()).max().unwrap_or(1);
        let mut ids = Vec::new();
        for word in eval::normalize(text).split_whitespace() {
            let chars: Vec<char> = std::iter::once(WORD_BOUNDARY)
                .chain(word.chars().filter(|c| index.contains_key(c.to_string().as_str())))
                .collect();
            ids.extend(fewest_pieces(&chars, &index, longest));
        }
        ids
    }

    /// Text of token ids; the word boundary becomes a space.
    pub fn decode(&self, ids: &[u32]) -> String {
        let text: String = ids.iter().filter(|&&id| id != 0).map(|&id| self.token(id)).collect();
        text.replace(WORD_BOUNDARY, " ").trim().to_string()
    }

    /// Does this token start a new word?
    pub fn starts_word(&self, id: u32) -> bool {
        self.token(id).starts_with(WORD_BOUNDARY)
    }
}

/// The split of `chars` into the fewest known pieces, by dynamic programming from the end
/// (`best[i]` = pieces needed for `chars[i..]`); every single character must be known.
fn fewest_pieces(chars: &[char], index: &std::collections::HashMap<&str, u32>, longest: usize) -> Vec<u32> {
    let n = chars.len();
    let mut best = vec![(usize::MAX, 0usize, 0u32); n + 1]; // (pieces, next position, id)
    best[n].0 = 0;
    for i in (0..n).rev() {
        for j in (i + 1..=(i + longest).min(n)).rev() {
            let piece: String = chars[i..j].iter().collect();
            if let Some(&id) = index.get(piece.as_str())
                && best[j].0 != usize::MAX
                && best[j].0 + 1 < best[i].0
            {
                best[i] = (best[j].0 + 1, j, id);
            }
        }
    }
    let mut ids = Vec::new();
    let mut i = 0;
    while i < n && best[i].0 != usize::MAX {
        ids.push(best[i].2);
        i = best[i].1;
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transducer_vocabulary_round_trip() {
        let v = Vocabulary::characters();
        assert_eq!(v.len(), 29);
        let ids = v.encode("Don't stop, 2 go!");
        assert_eq!(v.decode(&ids), "don't stop two go");
        assert!(v.starts_word(ids[0]));
        let dir = tempfile::tempdir().unwrap();
        v.save(&dir.path().join("vocabulary.txt")).unwrap();
        assert_eq!(Vocabulary::load(&dir.path().join("vocabulary.txt")).unwrap(), v);
    }

    #[test]
    fn word_pieces_cover_every_word_and_decode_back() {
        let text = ["the cat sat on the mat", "the other cats sat there", "that theatre is the best"];
        let v = Vocabulary::learn_pieces(text.iter().copied().cycle().take(30), 40).unwrap();
        assert_eq!(v.len(), 40);
        assert_eq!(v.token(0), BLANK);
        // Frequent words become single pieces; an unseen word falls back to smaller ones.
        assert_eq!(v.encode("the").len(), 1, "{:?}", v.encode("the"));
        for s in ["the cat sat on the mat", "zebra's quizzical jokes"] {
            let ids = v.encode(s);
            assert_eq!(v.decode(&ids), s);
            assert_eq!(ids.iter().filter(|&&i| v.starts_word(i)).count(), s.split(' ').count());
        }
        assert!(v.encode("the theatre").len() < Vocabulary::characters().encode("the theatre").len());
    }
}
