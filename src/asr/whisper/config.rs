//! Whisper's dimensions and special tokens, written as `config.json` beside the weights when a
//! model is installed, so loading needs nothing from the original package.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WhisperConfig {
    pub n_mels: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    /// Encoder positions (1500 = 30 s at 50 frames/s).
    pub n_audio_ctx: usize,
    /// Decoder positions (448 tokens).
    pub n_text_ctx: usize,
    pub vocab_size: usize,
    pub multilingual: bool,
    pub tokens: SpecialTokens,
    /// Tokens never to be produced (non-speech symbols), from the package's config.
    pub suppress_ids: Vec<u32>,
    /// Tokens never to be produced first (a blank, end of text).
    pub suppress_ids_begin: Vec<u32>,
    /// The model loses accuracy on windows shorter than 30 s, so always pad (from the registry).
    #[serde(default)]
    pub pad_to_30s: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpecialTokens {
    pub eot: u32,
    pub sot: u32,
    pub sot_prev: u32,
    pub transcribe: u32,
    pub translate: u32,
    pub no_timestamps: u32,
    /// `<|0.00|>`; later timestamps follow in 20 ms steps.
    pub timestamp_begin: u32,
    /// `<|en|>` for multilingual models; English-only models have no language token.
    pub english: Option<u32>,
    /// `<|nospeech|>` (`<|nocaptions|>` in English-only models), whose probability at the
    /// start-of-transcript position says a window holds no speech. Configs written before it was
    /// recorded lack it; every Whisper vocabulary has it just before `<|notimestamps|>`.
    #[serde(default)]
    pub no_speech: Option<u32>,
}

impl SpecialTokens {
    pub fn no_speech(&self) -> u32 {
        self.no_speech.unwrap_or(self.no_timestamps - 1)
    }
}

impl WhisperConfig {
    /// The token sequence that starts every window: SOT, language, task, as Whisper was trained.
    pub fn sot_sequence(&self) -> Vec<u32> {
        let mut seq = vec![self.tokens.sot];
        if self.multilingual {
            if let Some(en) = self.tokens.english {
                seq.push(en);
            }
            seq.push(self.tokens.transcribe);
        }
        seq
    }
}
