//! The text-to-speech node: text in, audio out, on its own threads. Each sentence's audio is sent
//! as soon as it is made, so a consumer (a speaker, a file, a network reply) starts while the
//! rest is still being synthesised. The channel is bounded: a consumer slower than synthesis
//! (real-time playback) holds the node back instead of letting audio pile up in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::asr::transducer::init::Rng;
use crate::error::Error;
use crate::tts::synth::SentenceFrames;
use crate::tts::{SpeechOptions, SpokenSentence, Tts};

/// What the node sends for one request.
pub enum SpeechEvent {
    Sentence(SpokenSentence),
    /// All the text was spoken (`samples` in total).
    Done {
        samples: usize,
    },
    /// The request failed (bad text or options) or was stopped; nothing more follows.
    Failed(Error),
}

pub struct TtsNode {
    pub events: Receiver<SpeechEvent>,
    handle: JoinHandle<()>,
}

/// Sentences buffered between the node and its consumer.
const QUEUE: usize = 4;

impl TtsNode {
    /// Speaks `text`; `stop` (Ctrl-C, a closed connection) ends it after the current sentence.
    /// Two threads: the text front end and acoustic model, then the vocoder, so that one
    /// sentence is vocoded while the next goes through the model.
    pub fn start(tts: Arc<Tts>, text: String, opts: SpeechOptions, stop: Arc<AtomicBool>) -> Self {
        let (frames_tx, frames_rx) = bounded::<SentenceFrames>(1);
        let (tx, events): (Sender<SpeechEvent>, _) = bounded(QUEUE);
        let model_tts = tts.clone();
        let model_stop = stop.clone();
        let model = std::thread::Builder::new()
            .name("tts-model".into())
            .spawn(move || {
                model_tts.sentence_frames(&text, opts, |frames| {
                    if model_stop.load(Ordering::Relaxed) {
                        return Err(Error::InvalidInput("stopped".into()));
                    }
                    frames_tx.send(frames).map_err(|_| Error::InvalidInput("nobody is listening".into()))
                })
            })
            .expect("spawning the TTS model thread");
        let handle = std::thread::Builder::new()
            .name("tts-vocoder".into())
            .spawn(move || {
                let mut noise = Rng::new(opts.seed);
                let mut samples = 0;
                let vocoded = (|| -> Result<(), Error> {
                    for s in frames_rx.iter() {
                        let audio = tts.vocode(&s.frames, &mut noise)?;
                        samples += audio.len();
                        tx.send(SpeechEvent::Sentence(SpokenSentence {
                            text: s.text,
                            phonemes: s.phonemes,
                            samples: audio,
                        }))
                        .map_err(|_| Error::InvalidInput("nobody is listening".into()))?;
                    }
                    Ok(())
                })();
                drop(frames_rx);
                let modelled = model
                    .join()
                    .unwrap_or_else(|_| Err(Error::Model("the TTS model thread panicked".into())));
                // The vocoder's own error first: the model's would only say nobody was listening.
                let _ = tx.send(match vocoded.and(modelled) {
                    Ok(_) => SpeechEvent::Done { samples },
                    Err(e) => SpeechEvent::Failed(e),
                });
            })
            .expect("spawning the TTS vocoder thread");
        Self { events, handle }
    }

    pub fn join(self) {
        drop(self.events);
        let _ = self.handle.join();
    }
}
