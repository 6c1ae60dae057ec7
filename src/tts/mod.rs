//! Text to speech with hibari (hibari-tts 0.2.1): the acoustic model on candle (`model.rs`), its
//! weights taken from the package's ONNX file at install (`convert.rs`).

pub mod convert;
pub mod g2p;
pub mod model;
pub mod vocoder;

pub use model::{AcousticFrames, Hibari};

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
