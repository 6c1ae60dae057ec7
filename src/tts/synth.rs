//! Text → 24 kHz audio, one sentence at a time: cleaning, sentence splitting, the G2P, phoneme
//! ids, the acoustic model and the vocoder. A plain struct; the pipeline and the service decide
//! where the audio goes.

use std::collections::HashMap;
use std::path::Path;

use fancy_regex::Regex;

use super::g2p::G2p;
use super::model::{AcousticFrames, Hibari};
use super::vocoder::{SAMPLE_RATE, Vocoder};
use crate::asr::transducer::init::Rng;
use crate::error::{Error, Result};

/// Sentences longer than this many phonemes are split at clause punctuation (the package's limit).
pub const MAX_PHONEMES: usize = 400;
/// Text longer than this is refused (about an hour of speech); split it or stream it in parts.
pub const MAX_TEXT_CHARS: usize = 100_000;
/// Speeds the model is sensible at (1.0 = its natural pace).
pub const SPEEDS: std::ops::RangeInclusive<f32> = 0.25..=4.0;

#[derive(Debug, Clone, Copy)]
pub struct SpeechOptions {
    pub speed: f32,
    /// Seeds the vocoder's noise branch: the same text, speed and seed give the same audio.
    pub seed: u64,
}

impl Default for SpeechOptions {
    fn default() -> Self {
        Self { speed: 1.0, seed: 0 }
    }
}

/// One sentence (or a piece of a long one) through the acoustic model, before the vocoder.
pub struct SentenceFrames {
    pub text: String,
    pub phonemes: String,
    pub frames: AcousticFrames,
}

/// One synthesised piece of speech.
pub struct SpokenSentence {
    pub text: String,
    pub phonemes: String,
    pub samples: Vec<f32>,
}

pub struct Tts {
    g2p: G2p,
    model: Hibari,
    vocoder: Vocoder,
    vocab: HashMap<char, u32>,
    sentence_end: Regex,
    clause: Regex,
    markup: Regex,
}

impl Tts {
    pub const SAMPLE_RATE: u32 = SAMPLE_RATE;

    /// Loads an installed hibari model folder (`hark models install hibari`).
    pub fn load(dir: &Path) -> Result<Self> {
        let vocab_path = dir.join("vocab.json");
        let vocab: HashMap<String, u32> =
            serde_json::from_slice(&std::fs::read(&vocab_path).map_err(|e| Error::io(&vocab_path, e))?)
                .map_err(|e| Error::Model(format!("{}: {e}", vocab_path.display())))?;
        Ok(Self {
            g2p: G2p::load(dir)?,
            model: Hibari::load(dir)?,
            vocoder: Vocoder::new(),
            vocab: vocab.into_iter().filter_map(|(k, v)| k.chars().next().map(|c| (c, v))).collect(),
            sentence_end: Regex::new(r#"(?<=[.!?…])["”’)\]]*\s+(?=\S)"#).expect("sentence pattern"),
            clause: Regex::new(r"(?<=[,;:—])\s+").expect("clause pattern"),
            // Tags of HTML/XML/SSML: not read out ("less than b greater than"), just dropped.
            markup: Regex::new(r"</?[A-Za-z][^<>]{0,200}>").expect("markup pattern"),
        })
    }

    /// Control characters become spaces and markup tags disappear; the rest is the G2P's.
    fn clean(&self, text: &str) -> String {
        let text: String = text.chars().map(|c| if c.is_control() && c != '\n' { ' ' } else { c }).collect();
        self.markup.replace_all(&text, " ").into_owned()
    }

    /// False for a period after a title or an initial ("Dr. Smith", "J. K. Rowling"), or before a
    /// lower-case word.
    fn ends_sentence(&self, para: &str, end: usize, next: char) -> bool {
        if next.is_lowercase() {
            return false;
        }
        if !para[..end].ends_with('.') {
            return true;
        }
        let start = para[..end].rfind(' ').map_or(0, |i| i + 1);
        let word = para[start..end - 1].trim_start_matches(['(', '"', '“', '\'', '‘']);
        !(self.g2p.is_title(word) || (word.chars().count() == 1 && word.chars().all(char::is_uppercase)))
    }

    /// The text's sentences (paragraph breaks and end punctuation), as the package splits them.
    pub fn sentences(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for para in text.trim().split('\n') {
            let para = para.trim();
            let mut cut = 0;
            for m in self.sentence_end.find_iter(para).flatten() {
                let next = para[m.end()..].chars().next().unwrap_or(' ');
                if self.ends_sentence(para, m.start(), next) {
                    out.push(para[cut..m.start()].to_string());
                    cut = m.end();
                }
            }
            out.push(para[cut..].to_string());
        }
        out.into_iter().filter(|s| !s.trim().is_empty()).collect()
    }

    /// A sentence's phonemes in pieces of at most `MAX_PHONEMES`, split at clause punctuation (and,
    /// for a run-on without any, between words).
    fn phoneme_chunks(&self, sentence: &str) -> Result<Vec<String>> {
        let ps = self.g2p.phonemize(sentence)?;
        if ps.is_empty() {
            return Ok(Vec::new());
        }
        if ps.chars().count() <= MAX_PHONEMES {
            return Ok(vec![ps]);
        }
        let mut chunks = Vec::new();
        let mut current = String::new();
        let parts: Vec<String> = self
            .clause
            .split(&ps)
            .flatten()
            .flat_map(|part| {
                if part.chars().count() <= MAX_PHONEMES {
                    vec![part.to_string()]
                } else {
                    part.split(' ').map(String::from).collect()
                }
            })
            .collect();
        for part in parts {
            if !current.is_empty() && current.chars().count() + part.chars().count() + 1 > MAX_PHONEMES {
                chunks.push(std::mem::take(&mut current));
                current = part;
            } else if current.is_empty() {
                current = part;
            } else {
                current = format!("{current} {part}");
            }
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        Ok(chunks)
    }

    /// Phoneme ids with the model's padding at both ends; phonemes outside its alphabet are dropped.
    pub fn ids(&self, phonemes: &str) -> Vec<u32> {
        std::iter::once(0)
            .chain(phonemes.chars().filter_map(|c| self.vocab.get(&c).copied()))
            .chain(std::iter::once(0))
            .collect()
    }

    /// The acoustic model's output for a phoneme string (None when no phoneme is in its alphabet).
    pub fn frames(&self, phonemes: &str, opts: SpeechOptions) -> Result<Option<AcousticFrames>> {
        let ids = self.ids(phonemes);
        if ids.len() < 3 {
            return Ok(None);
        }
        Ok(Some(self.model.forward(&ids, opts.speed)?))
    }

    /// The vocoder's audio of the acoustic model's output.
    pub fn vocode(&self, frames: &AcousticFrames, noise: &mut Rng) -> Result<Vec<f32>> {
        self.vocoder.synthesise(frames, Some(noise))
    }

    /// Checks what `sentence_frames` would refuse, before any work is done (or a voice loaded).
    pub fn validate(text: &str, opts: SpeechOptions) -> Result<()> {
        if !SPEEDS.contains(&opts.speed) {
            return Err(Error::InvalidInput(format!(
                "speed {} is outside {}–{}",
                opts.speed,
                SPEEDS.start(),
                SPEEDS.end()
            )));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(Error::InvalidInput(format!(
                "text of {} characters is longer than {MAX_TEXT_CHARS}; send it in parts",
                text.chars().count()
            )));
        }
        if text.trim().is_empty() {
            return Err(Error::InvalidInput("no text to speak".into()));
        }
        Ok(())
    }

    /// Runs the text front end and the acoustic model over `text`, handing each sentence's
    /// frames to `sink` as soon as they are made; the vocoder is left to the caller (the TTS node
    /// runs it on another core). Returns the number of sentences.
    pub fn sentence_frames(
        &self,
        text: &str,
        opts: SpeechOptions,
        mut sink: impl FnMut(SentenceFrames) -> Result<()>,
    ) -> Result<usize> {
        Self::validate(text, opts)?;
        let mut count = 0;
        for sentence in self.sentences(&self.clean(text)) {
            let _span = tracing::debug_span!("sentence", chars = sentence.len()).entered();
            for phonemes in self.phoneme_chunks(&sentence)? {
                if let Some(frames) = self.frames(&phonemes, opts)? {
                    count += 1;
                    sink(SentenceFrames { text: sentence.clone(), phonemes, frames })?;
                }
            }
        }
        if count == 0 {
            return Err(Error::InvalidInput(
                "nothing in the text can be spoken (no English words, numbers or letters)".into(),
            ));
        }
        Ok(count)
    }
}
