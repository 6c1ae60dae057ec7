//! Text to speech with hibari (hibari-tts 0.2.1): the text front end (`g2p/`), the acoustic
//! model on candle (`model.rs`, weights taken from the package's ONNX file at install by
//! `convert.rs`), the vocoder (`vocoder.rs`), and `synth.rs`, which puts them together sentence
//! by sentence.

pub mod convert;
pub mod g2p;
pub mod model;
pub mod synth;
pub mod vocoder;

pub use model::{AcousticFrames, Hibari};
pub use synth::{SpeechOptions, SpokenSentence, Tts};

/// Files of the package's assets folder an installed hibari model keeps beside its weights: the
/// phoneme vocabulary and what the text front end reads.
pub const ASSET_FILES: [&str; 7] = [
    "vocab.json",
    "lexicon_us_gold.json.gz",
    "lexicon_us_silver.json.gz",
    "tagger.json.gz",
    "tokenizer_exceptions.json",
    "normalize.json",
    "oov.json",
];
