//! Words in no dictionary: the package's character Transformer (0.65 M parameters, trained on
//! espeak-ng's readings of 225k words), on candle. Each character gets four output slots; the
//! phonemes are the slots' best symbols with repeats collapsed and blanks dropped (CTC style).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::tts::model::{EncoderLayer, layer_norm};

const LAYERS: usize = 4;
const HEADS: usize = 4;

#[derive(Deserialize)]
struct Symbols {
    #[serde(rename = "in")]
    input: Vec<String>,
    #[serde(rename = "out")]
    output: Vec<String>,
    slots: usize,
    maxlen: usize,
}

pub struct OovModel {
    char_ids: HashMap<char, u32>,
    symbols: Vec<String>,
    slots: usize,
    max_len: usize,
    embedding: Tensor,
    positions: Tensor,
    layers: Vec<EncoderLayer<Linear>>,
    norm: LayerNorm,
    head: Linear,
}

impl OovModel {
    pub fn load(dir: &Path) -> Result<Self> {
        let meta_path = dir.join("oov.json");
        let meta: Symbols =
            serde_json::from_slice(&std::fs::read(&meta_path).map_err(|e| Error::io(&meta_path, e))?)
                .map_err(|e| Error::Model(format!("{}: {e}", meta_path.display())))?;
        // SAFETY: the file is only read; hark never modifies an installed model in place.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[dir.join("oov.safetensors")], DType::F32, &Device::Cpu)?
        };
        let linear = |w: &str, b: &str| Ok(Linear::new(vb.get_unchecked(w)?, Some(vb.get_unchecked(b)?)));
        let loaded = (|| -> candle_core::Result<Self> {
            Ok(Self {
                char_ids: meta
                    .input
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.chars().next().map(|c| (c, i as u32 + 1)))
                    .collect(),
                symbols: meta.output.clone(),
                slots: meta.slots,
                max_len: meta.maxlen,
                embedding: vb.get_unchecked("m.emb.weight")?,
                positions: vb.get_unchecked("m.pos")?,
                layers: (0..LAYERS)
                    .map(|i| EncoderLayer::load(&vb, &format!("m.layers.{i}"), HEADS, linear))
                    .collect::<candle_core::Result<_>>()?,
                norm: layer_norm(&vb, "m.norm")?,
                head: linear("m.head.weight", "m.head.bias")?,
            })
        })();
        loaded.map_err(|e| Error::Model(format!("{}: not hibari's OOV model: {e}", dir.display())))
    }
    /// The phonemes of one word, or None when it has no character the model knows.
    pub fn read(&self, word: &str) -> Result<Option<String>> {
        let ids: Vec<u32> =
            word.chars().filter_map(|c| self.char_ids.get(&c).copied()).take(self.max_len).collect();
        if ids.is_empty() {
            return Ok(None);
        }
        let n = ids.len();
        let run = || -> candle_core::Result<Vec<u32>> {
            let x = self.embedding.embedding(&Tensor::new(ids.as_slice(), &Device::Cpu)?)?;
            let mut x = (x + self.positions.narrow(0, 0, n)?)?.unsqueeze(0)?;
            for layer in &self.layers {
                x = layer.forward(&x)?;
            }
            let logits = self.head.forward(&self.norm.forward(&x)?)?;
            logits.reshape((n * self.slots, ()))?.argmax(1)?.to_vec1::<u32>()
        };
        let best = run()?;
        let mut phonemes = String::new();
        let mut prev = 0;
        for id in best {
            if id != prev && id != 0 {
                phonemes.push_str(self.symbols.get(id as usize - 1).map_or("", String::as_str));
            }
            prev = id;
        }
        Ok(Some(phonemes))
    }
}
