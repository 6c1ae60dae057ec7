//! The output vocabulary: one token per line in `vocabulary.txt`; line 1 is the blank `<blk>`.
//! The default is characters: `▁` (word boundary), a–z and the apostrophe.

use std::path::Path;

use crate::error::{Error, Result};

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

    /// Character ids of normalised text (see `eval::normalize`); other characters are dropped.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let boundary = self.id_of(&WORD_BOUNDARY.to_string());
        let mut ids = Vec::new();
        for word in crate::eval::normalize(text).split_whitespace() {
            ids.push(boundary);
            ids.extend(word.chars().map(|c| self.id_of(&c.to_string())));
        }
        ids.retain(|&id| id != 0);
        ids
    }

    fn id_of(&self, piece: &str) -> u32 {
        self.tokens.iter().position(|t| t == piece).unwrap_or(0) as u32
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
}
