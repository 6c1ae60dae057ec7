//! Turning Whisper token ids back into text. Only decoding is needed (prompts are token ids),
//! so this reads the GPT-2 byte-level vocabulary from tokenizer.json and undoes its byte map.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

pub struct Tokenizer {
    /// Token id -> the bytes it stands for (special tokens map to their own text).
    pieces: Vec<Vec<u8>>,
    special_from: u32,
}

/// GPT-2's map from bytes to printable characters, inverted: char -> byte.
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable.into_iter().zip(chars).map(|(b, c)| (char::from_u32(c).unwrap(), b as u8)).collect()
}

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let json: serde_json::Value =
            serde_json::from_slice(&data).map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        let vocab = json["model"]["vocab"]
            .as_object()
            .ok_or_else(|| Error::Model(format!("{}: no model.vocab", path.display())))?;
        let byte_of = unicode_to_byte();
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        let mut put = |id: usize, bytes: Vec<u8>| {
            if pieces.len() <= id {
                pieces.resize(id + 1, Vec::new());
            }
            pieces[id] = bytes;
        };
        for (piece, id) in vocab {
            let id = id.as_u64().unwrap_or(0) as usize;
            put(id, piece.chars().map(|c| byte_of.get(&c).copied().unwrap_or(b'?')).collect());
        }
        let mut special_from = u32::MAX;
        for t in json["added_tokens"].as_array().into_iter().flatten() {
            if let (Some(id), Some(text)) = (t["id"].as_u64(), t["content"].as_str()) {
                special_from = special_from.min(id as u32);
                put(id as usize, text.as_bytes().to_vec());
            }
        }
        Ok(Self { pieces, special_from })
    }

    /// The text of ordinary tokens; special and timestamp tokens are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .filter(|&&id| id < self.special_from)
            .filter_map(|&id| self.pieces.get(id as usize))
            .flatten()
            .copied()
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_covers_all_bytes_once() {
        let m = unicode_to_byte();
        assert_eq!(m.len(), 256);
        assert_eq!(m[&'Ġ'], b' ');
        assert_eq!(m[&'a'], b'a');
    }
}
