//! Live transcription of one stream, as a plain struct (audio in, events out, no threads): the
//! VAD and endpoint rules cut the audio into utterances; the ANCAT transducer shows partials while
//! each is spoken; at each endpoint a second pass (Whisper by default) gives the final text.
//! `hark listen` and every WebSocket client of `hark serve` run one of these.

mod deltas;

/// Re-exported where the live engines take it; the type lives with the configuration.
pub use crate::config::FinalPass;
pub use deltas::TranscriptDeltas;

use std::sync::Arc;

use serde::Serialize;

use crate::asr::transducer::search::Word;
use crate::asr::transducer::{Lookahead, TransducerEngine, TransducerOptions, TransducerStage};
use crate::asr::whisper::{WhisperEngine, WhisperOptions, WhisperStage};
use crate::audio::SAMPLE_RATE;
use crate::config::Config;
use crate::error::Result;
use crate::features::MelFrontend;
use crate::features::mel::HOP_LENGTH;
use crate::features::mel::MelFrame;
use crate::models;
use crate::separation::EnhancerFactory;
use crate::separation::load_enhancer;
use crate::vad::silero::CHUNK;
use crate::vad::{Endpoint, EndpointConfig, EndpointReason, Endpointer, SileroModel, SileroVad};

/// Audio kept before the first speech chunk for the second pass: the VAD is sure of speech only
/// a few chunks in (more after its reset at an endpoint), and a soft first word is lost with less.
const PREROLL_SAMPLES: u64 = SAMPLE_RATE as u64 * 4 / 5;

/// The models a live stream uses, loaded once and shared by every stream.
#[derive(Clone)]
pub struct LiveEngines {
    pub transducer: Arc<TransducerEngine>,
    pub vad: Arc<SileroModel>,
    /// Present when finals come from Whisper.
    pub whisper: Option<Arc<WhisperEngine>>,
    /// Enhancement in front of recognition (each stream gets its own enhancer).
    pub enhancer: Option<EnhancerFactory>,
}

/// The live engines and options a configuration asks for (after flag overrides), with its
/// enhancer; what is missing is installed.
pub fn setup(config: &Config) -> anyhow::Result<(LiveEngines, LiveOptions)> {
    let rec = &config.recognition;
    let mut engines = LiveEngines::load(
        &rec.transducer,
        rec.lookahead().map_err(anyhow::Error::msg)?,
        rec.final_pass,
        &rec.whisper,
    )?;
    engines.enhancer = load_enhancer(rec.enhance().map_err(anyhow::Error::msg)?.as_ref())?;
    if !engines.transducer.model.config.trained {
        eprintln!("hark: warning: {} is untrained: partials are meaningless", engines.transducer.name);
    }
    let opts = LiveOptions::from_config(config).map_err(anyhow::Error::msg)?;
    Ok((engines, opts))
}

impl LiveEngines {
    /// Loads the transducer, the VAD and (for Whisper finals) Whisper, installing what is missing.
    /// `final_pass: None` means Whisper when it is installed, else the transducer.
    pub fn load(
        transducer: &str,
        lookahead: Lookahead,
        final_pass: Option<FinalPass>,
        whisper: &str,
    ) -> Result<Self> {
        let final_pass = final_pass.unwrap_or_else(|| {
            let installed = models::is_installed(&models::model_root().join(whisper))
                || std::path::Path::new(whisper).is_dir();
            if installed { FinalPass::Whisper } else { FinalPass::Transducer }
        });
        let whisper = match final_pass {
            FinalPass::Whisper => Some(WhisperEngine::load(&models::resolve(whisper)?)?),
            FinalPass::Transducer => None,
        };
        Ok(Self {
            transducer: TransducerEngine::load(&models::resolve_transducer(transducer)?, lookahead)?,
            vad: SileroModel::load(&models::resolve("silero-vad")?)?,
            whisper,
            enhancer: None,
        })
    }

    pub fn final_pass(&self) -> FinalPass {
        if self.whisper.is_some() { FinalPass::Whisper } else { FinalPass::Transducer }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    pub endpoint: EndpointConfig,
    pub transducer: TransducerOptions,
    pub whisper: WhisperOptions,
}

impl LiveOptions {
    /// The options a configuration asks for.
    pub fn from_config(config: &Config) -> std::result::Result<Self, String> {
        Ok(Self {
            endpoint: config.endpoint.clone(),
            transducer: TransducerOptions::default(),
            ..Default::default()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Partial,
    Final,
}

/// What a live stream reports; serialises to the JSON the CLI and the service print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub text: String,
    /// Seconds from the start of the stream.
    pub start: f64,
    pub end: f64,
    pub words: Vec<Word>,
}

/// Silence after speech at which the second pass starts decoding, before the endpoint is certain:
/// if the speaker stays silent until the endpoint, the final is ready when it comes (the decode
/// takes longer than the rest of the wait); if speech resumes, the result is dropped.
const SPECULATE_AFTER_MS: u32 = 128;

pub struct LiveTranscriber {
    engines: LiveEngines,
    opts: LiveOptions,
    mel: MelFrontend,
    transducer: TransducerStage,
    vad: SileroVad,
    endpointer: Endpointer,
    /// Audio of the current utterance (plus pre-roll); `audio[0]` is stream sample `audio_start`.
    audio: Vec<f32>,
    audio_start: u64,
    /// Samples received so far.
    position: u64,
    partial: String,
    /// A second-pass final decoded early, keyed by the end of the speech it covers; `None` when it
    /// gave no text, which may be a failed decode that the endpoint then decodes again.
    speculative: Option<(u64, Option<Event>)>,
}

fn seconds(sample: u64) -> f64 {
    sample as f64 / SAMPLE_RATE as f64
}

impl LiveTranscriber {
    pub fn new(engines: LiveEngines, opts: LiveOptions) -> Self {
        Self {
            transducer: TransducerStage::new(engines.transducer.clone(), opts.transducer),
            vad: SileroVad::new(engines.vad.clone()),
            endpointer: Endpointer::new(opts.endpoint.clone()),
            mel: MelFrontend::new(),
            engines,
            opts,
            audio: Vec::new(),
            audio_start: 0,
            position: 0,
            partial: String::new(),
            speculative: None,
        }
    }

    /// Seconds of audio received.
    pub fn position_s(&self) -> f64 {
        seconds(self.position)
    }

    /// Feeds 16 kHz mono samples; appends the partials and finals they complete.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<Event>) -> Result<()> {
        // Pieces that end on VAD chunk boundaries, so an endpoint falls exactly where the VAD put
        // it and the transducer has seen no audio of the next utterance.
        let mut rest = samples;
        while !rest.is_empty() {
            let to_boundary = CHUNK - (self.position % CHUNK as u64) as usize;
            let (piece, tail) = rest.split_at(to_boundary.min(rest.len()));
            rest = tail;
            self.feed(piece, out)?;
        }
        Ok(())
    }

    fn feed(&mut self, piece: &[f32], out: &mut Vec<Event>) -> Result<()> {
        let clean: Vec<f32> =
            piece.iter().map(|s| if s.is_finite() { s.clamp(-1.0, 1.0) } else { 0.0 }).collect();
        self.audio.extend_from_slice(&clean);
        self.position += clean.len() as u64;
        let mut frames = Vec::new();
        self.mel.push(&clean, &mut frames);
        self.recognise(&frames, out)?;
        let mut probs = Vec::with_capacity(1);
        self.vad.push(&clean, &mut probs)?;
        for p in probs {
            if let Some(endpoint) = self.endpointer.push(p, !self.partial.is_empty()) {
                self.end_utterance(endpoint, out)?;
            } else if let (Some(whisper), Some(((start, end), silence_ms))) =
                (&self.engines.whisper, self.endpointer.pending_speech())
            {
                let stale = self.speculative.as_ref().is_none_or(|(key, _)| *key != end);
                if silence_ms >= SPECULATE_AFTER_MS && stale {
                    let event = self.whisper_final(whisper.clone(), start, end, self.position, false)?;
                    self.speculative = Some((end, event));
                }
            }
        }
        // Before any speech, keep only the pre-roll: silence must not grow the buffer.
        if self.endpointer.speech_start().is_none() && !self.endpointer.in_speech() {
            let excess = self.audio.len().saturating_sub(PREROLL_SAMPLES as usize);
            if excess > 0 {
                self.audio.drain(..excess);
                self.audio_start += excess as u64;
            }
        }
        Ok(())
    }

    /// Mel frames → the transducer → a partial event when its text changed.
    fn recognise(&mut self, frames: &[MelFrame], out: &mut Vec<Event>) -> Result<()> {
        if !frames.is_empty()
            && let Some(text) = self.transducer.push(frames)?
        {
            self.partial_event(text, out);
        }
        Ok(())
    }

    fn partial_event(&mut self, text: String, out: &mut Vec<Event>) {
        self.partial = text.trim().to_string();
        if self.partial.is_empty() {
            return;
        }
        let start = self
            .endpointer
            .speech_start()
            .unwrap_or(self.audio_start + PREROLL_SAMPLES.min(self.audio.len() as u64));
        out.push(Event {
            kind: EventKind::Partial,
            text: self.partial.clone(),
            start: seconds(start),
            end: seconds(self.position),
            words: Vec::new(),
        });
    }

    /// The end of the stream: the last utterance's final, if it had speech.
    pub fn finish(&mut self, out: &mut Vec<Event>) -> Result<()> {
        let mut frames = Vec::new();
        self.mel.finish(&mut frames);
        self.recognise(&frames, out)?;
        let endpoint = self.endpointer.flush(!self.partial.is_empty());
        let endpoint = Endpoint { end: self.position, ..endpoint };
        self.end_utterance(endpoint, out)
    }

    fn end_utterance(&mut self, endpoint: Endpoint, out: &mut Vec<Event>) -> Result<()> {
        let _span =
            tracing::debug_span!("endpoint", reason = ?endpoint.reason, end_s = seconds(endpoint.end))
                .entered();
        self.transducer.endpoint()?;
        // The VAD starts fresh too: its state carries the last speaker's level, and after a loud
        // speaker it can miss a quiet one entirely (seen with dev-real's fleurs-en-001 → 002).
        self.vad.reset();
        let transducer_finals = self.transducer.take_finals();
        let event = match (&self.engines.whisper, endpoint.speech) {
            // Whisper only hears what the VAD called speech: given noise, it invents words.
            // A guess that gave no text may have failed; the final decode may retry where it may not.
            (Some(whisper), Some((start, end))) => match self.speculative.take() {
                Some((key, Some(event))) if key == end => Some(event),
                _ => self.whisper_final(whisper.clone(), start, end, endpoint.end, true)?,
            },
            (Some(_), None) => None,
            (None, speech) if speech.is_some() || endpoint.decoded => {
                let text = transducer_finals
                    .iter()
                    .map(|f| f.text.trim())
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                let words: Vec<Word> = transducer_finals.into_iter().flat_map(|f| f.words).collect();
                let (start, end) = speech.unwrap_or((endpoint.start, endpoint.end));
                // The transducer may place a word a little outside the VAD's span.
                let start = words.first().map_or(seconds(start), |w| w.start.min(seconds(start)));
                let end = words.last().map_or(seconds(end), |w| w.end.max(seconds(end)));
                Some(Event { kind: EventKind::Final, text, start, end, words })
            }
            (None, _) => None,
        };
        if let Some(event) = event.filter(|e| e.text.chars().any(char::is_alphanumeric)) {
            out.push(event);
        }
        if endpoint.reason == EndpointReason::MaxLength {
            tracing::debug!("utterance cut at the maximum length");
        }
        // The next utterance keeps a little audio before its start, but none of this one's speech.
        let spoken_until = endpoint.speech.map_or(0, |(_, end)| end);
        let keep_from = endpoint
            .end
            .saturating_sub(PREROLL_SAMPLES)
            .max(spoken_until)
            .max(self.audio_start)
            .min(endpoint.end);
        self.audio.drain(..(keep_from - self.audio_start) as usize);
        self.audio_start = keep_from;
        self.partial.clear();
        self.speculative = None;
        Ok(())
    }

    /// Re-decodes the utterance's audio with Whisper; `fallback` as in [`WhisperOptions`].
    fn whisper_final(
        &self,
        whisper: Arc<WhisperEngine>,
        speech_start: u64,
        speech_end: u64,
        end: u64,
        fallback: bool,
    ) -> Result<Option<Event>> {
        let from = speech_start.saturating_sub(PREROLL_SAMPLES).max(self.audio_start);
        let to = end.min(self.audio_start + self.audio.len() as u64);
        if to <= from {
            return Ok(None);
        }
        let audio = &self.audio[(from - self.audio_start) as usize..(to - self.audio_start) as usize];
        let mut frames = MelFrontend::compute(audio);
        for f in &mut frames {
            f.index += from / HOP_LENGTH as u64;
        }
        let started = std::time::Instant::now();
        let mut stage = WhisperStage::new(whisper, WhisperOptions { fallback, ..self.opts.whisper.clone() });
        let mut segments = Vec::new();
        stage.push(&frames, &mut segments)?;
        stage.finish(&mut segments)?;
        tracing::debug!(
            audio_s = seconds(to - from),
            decode_ms = started.elapsed().as_millis() as u64,
            "second pass"
        );
        let text =
            segments.iter().map(|s| s.text.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return Ok(None);
        }
        let confidence = segments.iter().map(|s| s.confidence).sum::<f32>() / segments.len() as f32;
        let (start, end) = (seconds(speech_start), seconds(speech_end));
        Ok(Some(Event {
            kind: EventKind::Final,
            words: spread_words(&text, start, end, confidence),
            text,
            start,
            end,
        }))
    }
}

/// Word times for a second-pass final, which has none of its own: the speech span shared out
/// in proportion to each word's length (an estimate; the transducer's finals carry real times).
fn spread_words(text: &str, start: f64, end: f64, confidence: f32) -> Vec<Word> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let total: usize = words.iter().map(|w| w.chars().count() + 1).sum();
    let mut at = start;
    let per_char = (end - start).max(0.0) / total.max(1) as f64;
    words
        .iter()
        .map(|w| {
            let len = (w.chars().count() + 1) as f64 * per_char;
            let word = Word { word: w.to_string(), start: at, end: at + len - per_char, confidence };
            at += len;
            word
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_words_cover_the_span_in_order() {
        let w = spread_words("ask not what", 1.0, 2.3, 0.9);
        assert_eq!(w.len(), 3);
        assert!((w[0].start - 1.0).abs() < 1e-9);
        assert!(w.windows(2).all(|p| p[0].end <= p[1].start));
        assert!(w[2].end <= 2.3 + 1e-9);
        assert_eq!(w[1].word, "not");
    }
}
