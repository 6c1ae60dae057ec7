//! The transducer's shape, stored as `config.json` in a model folder.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TransducerConfig {
    pub n_mels: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    pub ffn_dim: usize,
    /// Keys a query may see in the past, in encoder frames (50 per second), itself excluded.
    pub left_context: usize,
    /// Future encoder frames a query at layer l may see when its scheduler gate is on.
    pub lookahead_frames: Vec<usize>,
    /// Width of the predictor's and joiner's hidden layers.
    pub joiner_dim: usize,
    /// Stateless predictor: how many previous tokens it sees.
    pub context_size: usize,
    pub vocab_size: usize,
    pub blank_id: u32,
    /// False until a training run has produced the head (the weights are then random).
    pub trained: bool,
    /// Free text on where the weights come from.
    pub origin: String,
}

impl TransducerConfig {
    /// Whisper tiny's encoder shape with a character vocabulary.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            n_mels: 80,
            d_model: 384,
            n_heads: 6,
            n_layers: 4,
            ffn_dim: 1536,
            left_context: 150,
            lookahead_frames: vec![4; 4],
            joiner_dim: 320,
            context_size: 2,
            vocab_size,
            blank_id: 0,
            trained: false,
            origin: String::new(),
        }
    }
}
