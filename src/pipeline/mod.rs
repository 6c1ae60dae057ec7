//! The only module that knows threads and channels. A stage is a plain struct implementing
//! [`Stage`]; [`spawn_stage`] runs it as a node — a thread reading a bounded crossbeam channel and
//! writing the next one. Closing a node's input drains it: the node calls `finish`, forwards
//! what that yields and closes its output, so shutting a graph down from the source loses nothing.

pub mod batch;
pub mod live;
mod stages;
pub mod tts;

pub use batch::{
    FileOutcome, Recognizer, Transcript, default_jobs, transcribe_file, transcribe_file_with,
    transcribe_files,
};
pub use stages::{EnhanceStage, MelStage, RecognizerEvent, TransducerNode, WhisperNode};

use crossbeam_channel::{Receiver, Sender};
use std::thread::JoinHandle;

use crate::error::Result;

/// Samples at 16 kHz; `start` is the index of the first sample in the stream.
#[derive(Debug, Clone)]
pub struct AudioChunk {
    pub start: u64,
    pub samples: Vec<f32>,
}

/// A processing step that knows nothing of threads: input in, zero or more outputs out.
pub trait Stage: Send + 'static {
    type In: Send + 'static;
    type Out: Send + 'static;
    const NAME: &'static str;
    fn process(&mut self, input: Self::In, out: &mut Vec<Self::Out>) -> Result<()>;
    /// The input has ended: emit whatever is still held.
    fn finish(&mut self, out: &mut Vec<Self::Out>) -> Result<()>;
}

/// Depth of the bounded channels between nodes: enough to keep every node busy, small enough that
/// a slow stage makes the source wait (batch back-pressure) instead of buffering a whole file.
pub const CHANNEL_DEPTH: usize = 16;

/// Runs a stage on its own thread. The thread ends when its input closes (after `finish`) or on
/// the first error, which it returns; either way its output closes, so downstream nodes finish.
pub fn spawn_stage<S: Stage>(
    mut stage: S,
    rx: Receiver<S::In>,
    tx: Sender<S::Out>,
) -> JoinHandle<Result<()>> {
    std::thread::Builder::new()
        .name(S::NAME.into())
        .spawn(move || {
            let _span = tracing::debug_span!("stage", name = S::NAME).entered();
            let mut out = Vec::new();
            for input in rx.iter() {
                stage.process(input, &mut out)?;
                for o in out.drain(..) {
                    if tx.send(o).is_err() {
                        return Ok(()); // downstream has gone: nothing left to do
                    }
                }
            }
            stage.finish(&mut out)?;
            for o in out.drain(..) {
                let _ = tx.send(o);
            }
            Ok(())
        })
        .expect("spawning a pipeline thread")
}

/// Joins a node, turning a panic into an error so one broken stream never takes the process down.
pub fn join(handle: JoinHandle<Result<()>>) -> Result<()> {
    handle.join().unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(crate::error::Error::Model(format!("internal error in a pipeline stage: {msg}")))
    })
}
