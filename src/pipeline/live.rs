//! Live graphs: microphone capture → resample → live transcriber → events, and the recogniser
//! thread of each network stream (`spawn_stream_recogniser`). The capture thread
//! owns the device: it reopens it with back-off when it is lost, and never blocks on the
//! transcriber (a full channel drops audio with a counted warning). Stopping closes the graph
//! from the source, so the transcriber finishes the utterance in progress before it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::{AudioChunk, EnhanceStage, Stage, join, spawn_stage};
use crate::audio::SAMPLE_RATE;
use crate::audio::capture::Capture;
use crate::audio::resample::Resampler;
use crate::error::Result;
use crate::live::{Event, LiveEngines, LiveOptions, LiveTranscriber};

/// Audio chunks the transcriber may fall behind by before capture drops audio (~20 s of 20 ms
/// chunks: a second-pass decode must not cost audio, a stuck transcriber must not cost memory).
const LIVE_CHANNEL_DEPTH: usize = 1000;
/// How often the capture thread collects audio from the device's ring.
const POLL: Duration = Duration::from_millis(20);

/// Counters the service exports and `hark listen` reports.
#[derive(Default, Debug)]
pub struct CaptureStats {
    pub dropped_samples: AtomicU64,
    pub reopens: AtomicU64,
    pub captured_samples: AtomicU64,
}

/// The live transcriber as a pipeline stage.
pub struct LiveStage(pub LiveTranscriber);

impl Stage for LiveStage {
    type In = AudioChunk;
    type Out = Event;
    const NAME: &'static str = "live";

    fn process(&mut self, input: AudioChunk, out: &mut Vec<Event>) -> Result<()> {
        self.0.push(&input.samples, out)
    }

    fn finish(&mut self, out: &mut Vec<Event>) -> Result<()> {
        self.0.finish(out)
    }
}

/// A running microphone graph.
pub struct LiveGraph {
    pub events: Receiver<Event>,
    pub stats: Arc<CaptureStats>,
    stop: Arc<AtomicBool>,
    capture: JoinHandle<Result<()>>,
    enhancer: Option<JoinHandle<Result<()>>>,
    transcriber: JoinHandle<Result<()>>,
}

impl LiveGraph {
    /// Starts capturing from `device` (None: the default input) and transcribing.
    pub fn start(
        device: Option<String>,
        engines: LiveEngines,
        opts: LiveOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<Self> {
        let (audio_tx, audio_rx) = bounded(LIVE_CHANNEL_DEPTH);
        let (event_tx, events) = bounded(LIVE_CHANNEL_DEPTH);
        let stats = Arc::new(CaptureStats::default());
        // Open once here so that a wrong device name is an error, not a retry loop.
        let first = Capture::open(device.as_deref())?;
        let (stop2, stats2) = (stop.clone(), stats.clone());
        let capture = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture_loop(first, device, audio_tx, stop2, stats2))
            .expect("spawning the capture thread");
        let (enhancer, audio_rx) = match &engines.enhancer {
            Some(factory) => {
                let (enhanced_tx, enhanced_rx) = bounded(LIVE_CHANNEL_DEPTH);
                (
                    Some(spawn_stage(
                        EnhanceStage::new(factory.make_for_recognition()),
                        audio_rx,
                        enhanced_tx,
                    )),
                    enhanced_rx,
                )
            }
            None => (None, audio_rx),
        };
        let transcriber = spawn_stage(LiveStage(LiveTranscriber::new(engines, opts)), audio_rx, event_tx);
        Ok(Self { events, stats, stop, capture, enhancer, transcriber })
    }

    /// Asks the graph to stop; `events` then delivers the last finals and closes.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn join(self) -> Result<()> {
        let capture = join(self.capture);
        let enhancer = self.enhancer.map_or(Ok(()), join);
        let transcriber = join(self.transcriber);
        capture.and(enhancer).and(transcriber)
    }
}

/// The capture thread: reads the device, resamples to 16 kHz, sends chunks; reopens a lost
/// device with back-off (0.5 s doubling to 8 s) until stopped.
fn capture_loop(
    first: Capture,
    device: Option<String>,
    tx: Sender<AudioChunk>,
    stop: Arc<AtomicBool>,
    stats: Arc<CaptureStats>,
) -> Result<()> {
    let mut capture = Some(first);
    let mut position = 0u64;
    let mut backoff = Duration::from_millis(500);
    let mut raw = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(cap) = capture.as_mut() else {
            std::thread::sleep(backoff.min(Duration::from_millis(200)));
            if let Err(e) = reopen(&device, &mut capture, &mut backoff, &stats) {
                tracing::warn!("{e}; retrying in {:.1} s", backoff.as_secs_f32());
            }
            continue;
        };
        let mut resampler = Resampler::new(cap.sample_rate, SAMPLE_RATE)?;
        let mut resampled = Vec::new();
        let mut last_drop_warning = Instant::now() - Duration::from_secs(60);
        loop {
            std::thread::sleep(POLL);
            raw.clear();
            cap.read(&mut raw);
            let stopping = stop.load(Ordering::Relaxed);
            resampled.clear();
            resampler.process(&raw, &mut resampled)?;
            if stopping || cap.is_lost() {
                resampler.finish(&mut resampled)?;
            }
            stats.captured_samples.fetch_add(resampled.len() as u64, Ordering::Relaxed);
            if tracing::enabled!(tracing::Level::TRACE) && !resampled.is_empty() {
                let rms = (resampled.iter().map(|s| s * s).sum::<f32>() / resampled.len() as f32).sqrt();
                tracing::trace!(position, samples = resampled.len(), rms, "captured");
            }
            let mut dropped = cap.take_dropped() * SAMPLE_RATE as u64 / cap.sample_rate as u64;
            if !resampled.is_empty() {
                let n = resampled.len() as u64;
                match tx.try_send(AudioChunk { start: position, samples: std::mem::take(&mut resampled) }) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => dropped += n,
                    Err(TrySendError::Disconnected(_)) => return Ok(()), // the transcriber failed
                }
                position += n;
            }
            if dropped > 0 {
                stats.dropped_samples.fetch_add(dropped, Ordering::Relaxed);
                if last_drop_warning.elapsed() > Duration::from_secs(5) {
                    tracing::warn!(
                        dropped_s = dropped as f64 / SAMPLE_RATE as f64,
                        "transcription is falling behind the microphone; audio dropped"
                    );
                    last_drop_warning = Instant::now();
                }
            }
            if stopping {
                return Ok(());
            }
            if cap.is_lost() {
                tracing::warn!(device = %cap.device, "input device lost; reopening");
                capture = None;
                break;
            }
        }
    }
    Ok(())
}

fn reopen(
    device: &Option<String>,
    capture: &mut Option<Capture>,
    backoff: &mut Duration,
    stats: &CaptureStats,
) -> Result<()> {
    match Capture::open(device.as_deref()) {
        Ok(c) => {
            tracing::warn!(device = %c.device, "input device reopened");
            stats.reopens.fetch_add(1, Ordering::Relaxed);
            *capture = Some(c);
            *backoff = Duration::from_millis(500);
            Ok(())
        }
        Err(e) => {
            std::thread::sleep(*backoff);
            *backoff = (*backoff * 2).min(Duration::from_secs(8));
            Err(e)
        }
    }
}

/// What a network client's stream feeds its recogniser.
pub enum StreamInput {
    /// Samples at the stream's own rate.
    Audio(Vec<f32>),
    /// The client ended the stream (or the service is stopping).
    End,
}

/// What the recogniser sends back.
pub enum StreamOutput {
    Event(Event),
    Failed(String),
    /// Every final of the stream has been sent.
    Done,
}

/// Runs one network stream's recognition (resample → live transcriber) on its own thread. Its
/// input is a bounded async channel, so a client is read only as fast as this thread takes
/// audio; `on_processed(samples_at_16k, time_taken)` reports each piece's cost. The thread ends
/// after `End` (with `Done`) or when the client's side of the channel closes.
pub fn spawn_stream_recogniser(
    engines: LiveEngines,
    opts: LiveOptions,
    rate: u32,
    mut rx: tokio::sync::mpsc::Receiver<StreamInput>,
    tx: tokio::sync::mpsc::UnboundedSender<StreamOutput>,
    on_processed: impl Fn(u64, Duration) + Send + 'static,
) {
    let run = move || {
        let mut enhancer = engines.enhancer.as_ref().map(|f| f.make_for_recognition());
        let mut live = LiveTranscriber::new(engines, opts);
        let mut events = Vec::new();
        let mut audio = Vec::new();
        let result = (|| -> Result<bool> {
            let mut resampler = Resampler::new(rate, SAMPLE_RATE)?;
            while let Some(msg) = rx.blocking_recv() {
                let started = Instant::now();
                audio.clear();
                let end = match msg {
                    StreamInput::Audio(samples) => {
                        resampler.process(&samples, &mut audio)?;
                        false
                    }
                    StreamInput::End => {
                        resampler.finish(&mut audio)?;
                        true
                    }
                };
                if let Some(enhancer) = enhancer.as_mut() {
                    let mut enhanced = enhancer.process(&audio);
                    if end {
                        enhanced.extend(enhancer.finish());
                    }
                    audio = enhanced;
                }
                live.push(&audio, &mut events)?;
                if end {
                    live.finish(&mut events)?;
                }
                on_processed(audio.len() as u64, started.elapsed());
                for e in events.drain(..) {
                    let _ = tx.send(StreamOutput::Event(e));
                }
                if end {
                    return Ok(true);
                }
            }
            Ok(false) // the client went away
        })();
        let _ = match result {
            Ok(true) => tx.send(StreamOutput::Done),
            Ok(false) => Ok(()),
            Err(e) => tx.send(StreamOutput::Failed(format!("recognition failed: {e}"))),
        };
    };
    std::thread::Builder::new().name("stream".into()).spawn(run).expect("spawning a stream thread");
}
