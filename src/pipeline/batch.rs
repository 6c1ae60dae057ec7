//! Batch transcription: each file runs as a small graph (decode → mel → recogniser), and files
//! run in parallel on a pool of workers. One bad file never stops the others.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::bounded;

use super::{
    AudioChunk, CHANNEL_DEPTH, EnhanceStage, MelStage, RecognizerEvent, TransducerNode, WhisperNode, join,
    spawn_stage,
};
use crate::asr::Segment;
use crate::asr::transducer::search::Word;
use crate::asr::transducer::{LookaheadHistogram, TransducerEngine, TransducerOptions};
use crate::asr::whisper::{WhisperEngine, WhisperOptions};
use crate::audio::{FileSource, SAMPLE_RATE};
use crate::error::{Error, Result};
use crate::separation::EnhancerFactory;

/// A loaded recogniser and how to run it; shared by every file.
#[derive(Clone)]
pub enum Recognizer {
    Whisper(Arc<WhisperEngine>, WhisperOptions),
    Transducer(Arc<TransducerEngine>, TransducerOptions),
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Transcript {
    pub text: String,
    /// Seconds of audio decoded.
    pub duration: f64,
    pub segments: Vec<Segment>,
    /// Word times and confidences, where the recogniser gives them (the transducer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
    /// The transducer's algorithmic lookahead over every encoder frame.
    #[serde(skip)]
    pub lookahead: LookaheadHistogram,
}

/// Transcribes one file through the pipeline graph (decode → [enhance] → mel → recogniser).
pub fn transcribe_file(
    path: &Path,
    recognizer: &Recognizer,
    enhance: Option<&EnhancerFactory>,
) -> Result<Transcript> {
    transcribe_file_with(path, recognizer, enhance, |_| {})
}

/// [`transcribe_file`], also handing each segment to `on_segment` as soon as it is decoded (a
/// streaming upload's deltas).
pub fn transcribe_file_with(
    path: &Path,
    recognizer: &Recognizer,
    enhance: Option<&EnhancerFactory>,
    mut on_segment: impl FnMut(&Segment) + Send + 'static,
) -> Result<Transcript> {
    let _span = tracing::info_span!("transcribe", file = %path.display()).entered();
    let mut source = FileSource::open(path)?;
    let (audio_tx, audio_rx) = bounded::<AudioChunk>(CHANNEL_DEPTH);
    let (mel_tx, mel_rx) = bounded(CHANNEL_DEPTH);
    let (event_tx, event_rx) = bounded(CHANNEL_DEPTH);
    let (enhancer, audio_rx) = match enhance {
        Some(factory) => {
            let (enhanced_tx, enhanced_rx) = bounded(CHANNEL_DEPTH);
            (
                Some(spawn_stage(EnhanceStage::new(factory.make_for_recognition()), audio_rx, enhanced_tx)),
                enhanced_rx,
            )
        }
        None => (None, audio_rx),
    };
    let mel = spawn_stage(MelStage::default(), audio_rx, mel_tx);
    let asr = match recognizer {
        Recognizer::Whisper(engine, opts) => {
            spawn_stage(WhisperNode::new(engine.clone(), opts.clone()), mel_rx, event_tx)
        }
        Recognizer::Transducer(engine, opts) => {
            spawn_stage(TransducerNode::new(engine.clone(), *opts), mel_rx, event_tx)
        }
    };
    let collector = std::thread::spawn(move || {
        let mut t = Transcript::default();
        for event in event_rx.iter() {
            match event {
                RecognizerEvent::Segment(s) => {
                    on_segment(&s);
                    t.segments.push(s);
                }
                RecognizerEvent::Partial(_) => {}
                RecognizerEvent::Final(r) => {
                    if let (Some(first), Some(last)) = (r.words.first(), r.words.last()) {
                        let segment = Segment {
                            start: first.start,
                            end: last.end,
                            text: r.text.clone(),
                            confidence: mean_confidence(&r.words),
                        };
                        on_segment(&segment);
                        t.segments.push(segment);
                    }
                    t.words = r.words;
                    t.lookahead = r.lookahead;
                }
            }
        }
        t
    });

    // The source runs here: decode chunk by chunk; dropping the sender ends the graph in order.
    let mut samples = 0u64;
    let read = (|| -> Result<()> {
        let _span = tracing::debug_span!("decode").entered();
        while let Some(chunk) = source.next_chunk()? {
            let n = chunk.len() as u64;
            if audio_tx.send(AudioChunk { start: samples, samples: chunk }).is_err() {
                break; // a downstream stage failed; its error is reported below
            }
            samples += n;
        }
        Ok(())
    })();
    drop(audio_tx);
    let enhance_result = enhancer.map_or(Ok(()), join);
    let mel_result = join(mel);
    let asr_result = join(asr);
    let mut transcript = collector.join().unwrap_or_default();
    read?;
    enhance_result?;
    mel_result?;
    asr_result?;
    if source.non_finite_samples() > 0 {
        tracing::warn!(file = %path.display(), count = source.non_finite_samples(), "NaN or infinite samples were replaced by silence");
    }
    if samples == 0 {
        return Err(Error::EmptyAudio);
    }
    transcript.text = transcript.segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
    transcript.duration = samples as f64 / SAMPLE_RATE as f64;
    Ok(transcript)
}

fn mean_confidence(words: &[Word]) -> f32 {
    words.iter().map(|w| w.confidence).sum::<f32>() / words.len().max(1) as f32
}

pub struct FileOutcome {
    pub index: usize,
    pub path: PathBuf,
    pub result: Result<Transcript>,
    pub wall_s: f64,
}

/// Files transcribed at once when not told: one per CPU core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Transcribes files on `jobs` workers, calling `on_done` (on the caller's thread) as each ends.
pub fn transcribe_files(
    paths: &[PathBuf],
    recognizer: &Recognizer,
    enhance: Option<&EnhancerFactory>,
    jobs: usize,
    mut on_done: impl FnMut(FileOutcome),
) {
    let jobs = jobs.clamp(1, paths.len().max(1));
    let (work_tx, work_rx) = bounded::<(usize, PathBuf)>(paths.len().max(1));
    for (i, p) in paths.iter().enumerate() {
        work_tx.send((i, p.clone())).expect("queue sized for every file");
    }
    drop(work_tx);
    let (done_tx, done_rx) = bounded::<FileOutcome>(paths.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                for (index, path) in work_rx.iter() {
                    let t0 = Instant::now();
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        transcribe_file(&path, recognizer, enhance)
                    }))
                    .unwrap_or_else(|_| Err(Error::Model("internal error while transcribing".into())));
                    let _ =
                        done_tx.send(FileOutcome { index, path, result, wall_s: t0.elapsed().as_secs_f64() });
                }
            });
        }
        drop(done_tx);
        for outcome in done_rx.iter() {
            on_done(outcome);
        }
    });
}
