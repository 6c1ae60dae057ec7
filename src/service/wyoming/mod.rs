//! The Wyoming server (`[wyoming] listen = "tcp://HOST:PORT"`, `hark serve --wyoming ADDR`):
//! Home Assistant's voice pipeline and other Wyoming clients reach hark's recognisers and voice
//! over it. Per connection, any number of requests in turn:
//! - `describe` → `info` (an ASR program with hark's models, a TTS program with hibari);
//! - `transcribe`? + `audio-start` + `audio-chunk`* + `audio-stop` → `transcript-start`,
//!   `transcript-chunk`s with the transducer's words as they are heard, then `transcript`
//!   (every utterance's final) and `transcript-stop`;
//! - `synthesize` (or `synthesize-start` + `synthesize-chunk`* + `synthesize-stop`) →
//!   `audio-start` + `audio-chunk`s + `audio-stop` (+ `synthesize-stopped`);
//! - `ping` → `pong`.
//!
//! Audio may come at any rate, width and channel count the client declares. A malformed or
//! unexpected event gets an `error` event and that connection closes; others are unaffected.

mod event;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::speech::voice;
use super::{ActiveStream, AppState, until_stopping};
use crate::audio::pcm::{PcmFormat, to_s16le};
use crate::live::TranscriptDeltas;
use crate::pipeline::live::{StreamInput, StreamOutput, spawn_stream_recogniser};
use crate::pipeline::tts::{SpeechEvent, TtsNode};
use crate::tts::{SpeechOptions, Tts};
pub use event::{Event, ReadError, read_event};

/// Samples of synthesised audio per `audio-chunk` (as wyoming-piper sends them).
const SAMPLES_PER_CHUNK: usize = 1024;
/// Audio chunks in flight to a transcription's recogniser (back-pressure beyond this).
const AUDIO_QUEUE: usize = 32;
/// Where hark comes from, for `info`'s attributions (no public home page yet).
const ATTRIBUTION_URL: &str = "";

/// Accepts connections until the service stops; each runs on its own task.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    tracing::debug!(%peer, "wyoming connection");
                    tokio::spawn(connection(socket, state.clone()));
                }
                Err(e) => {
                    tracing::warn!("wyoming: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = until_stopping(&mut shutdown) => return,
        }
    }
}

/// Why a connection ends early: what the client is told, then the connection closes.
struct Refusal {
    text: String,
    code: &'static str,
}

fn refuse(code: &'static str, text: impl Into<String>) -> Refusal {
    Refusal { text: text.into(), code }
}

/// A transcription in progress on a connection.
struct Transcription {
    format: PcmFormat,
    rate: u64,
    to_worker: mpsc::Sender<StreamInput>,
    from_worker: mpsc::UnboundedReceiver<StreamOutput>,
    deltas: TranscriptDeltas,
    /// `transcript-start` was sent.
    started: bool,
    /// `audio-stop` (or the service stopping) was passed on: only the result is awaited.
    ended: bool,
    _active: ActiveStream,
}

struct Connection {
    state: Arc<AppState>,
    writer: OwnedWriteHalf,
    transcription: Option<Transcription>,
    /// Text of a streamed synthesis (`synthesize-start` … `synthesize-stop`).
    streamed_text: Option<String>,
}

async fn connection(socket: TcpStream, state: Arc<AppState>) {
    let _ = socket.set_nodelay(true);
    let (read_half, writer) = socket.into_split();
    // Reading runs on its own task: a half-read event is never lost to the select below.
    let (events_tx, mut events) = mpsc::channel::<Result<Event, ReadError>>(4);
    tokio::spawn(async move {
        let mut reader = BufReader::new(read_half);
        loop {
            let read = read_event(&mut reader).await;
            let stop = !matches!(read, Ok(Some(_)));
            let sent = match read {
                Ok(Some(e)) => events_tx.send(Ok(e)).await,
                Ok(None) => break,
                Err(e) => events_tx.send(Err(e)).await,
            };
            if stop || sent.is_err() {
                break;
            }
        }
    });
    let mut shutdown = state.shutdown.clone();
    let idle = Duration::from_secs(state.config().server.idle_timeout_s);
    let mut conn = Connection { state, writer, transcription: None, streamed_text: None };
    let result = loop {
        let streaming = conn.transcription.as_ref().is_some_and(|t| !t.ended);
        tokio::select! {
            event = events.recv() => match event {
                None => break Ok(()),
                Some(Err(ReadError::Io(_))) => break Ok(()), // the client went away
                Some(Err(e)) => break Err(refuse(e.code(), e.to_string())),
                Some(Ok(event)) => if let Err(r) = conn.handle(event).await { break Err(r) },
            },
            output = worker_output(&mut conn.transcription) => match conn.forward(output).await {
                Ok(true) if *shutdown.borrow() => break Ok(()),
                Ok(_) => {}
                Err(r) => break Err(r),
            },
            _ = tokio::time::sleep(idle), if streaming => {
                break Err(refuse("timeout", format!("no audio for {} s: closing the idle transcription", idle.as_secs())));
            }
            _ = until_stopping(&mut shutdown), if streaming || conn.transcription.is_none() => {
                // The service is stopping: what was heard is still transcribed, then the connection closes.
                match conn.transcription.as_mut() {
                    Some(t) => { t.ended = true; let _ = t.to_worker.send(StreamInput::End).await; }
                    None => break Ok(()),
                }
            }
        }
    };
    if let Err(refusal) = result {
        tracing::info!("wyoming: {}", refusal.text);
        conn.state.metrics.errors_total.fetch_add(1, Ordering::Relaxed);
        let _ = conn.send(Event::error(&refusal.text, refusal.code)).await;
    }
    let _ = conn.writer.shutdown().await;
}

/// The next output of the connection's transcription; never resolves when there is none.
async fn worker_output(transcription: &mut Option<Transcription>) -> Option<StreamOutput> {
    match transcription {
        Some(t) => t.from_worker.recv().await,
        None => std::future::pending().await,
    }
}

impl Connection {
    async fn send(&mut self, event: Event) -> Result<(), Refusal> {
        self.writer.write_all(&event.encode()).await.map_err(|e| refuse("io", e.to_string()))
    }

    async fn handle(&mut self, event: Event) -> Result<(), Refusal> {
        match event.kind.as_str() {
            "describe" => self.send(self.info()).await,
            "ping" => self.send(Event::new("pong", json!({"text": event.str("text")}))).await,
            "select-program" => match event.str("name") {
                Some("hark") => Ok(()),
                other => Err(refuse("unknown-program", format!("no program {other:?} here (hark)"))),
            },
            "transcribe" => match event.str("language") {
                Some(lang) if !lang.to_lowercase().starts_with("en") => {
                    Err(refuse("unsupported-language", format!("hark recognises English only, not '{lang}'")))
                }
                _ => Ok(()),
            },
            "audio-start" => self.start_transcription(&event).await,
            "audio-chunk" => self.audio(event).await,
            "audio-stop" => {
                let t = self
                    .transcription
                    .as_mut()
                    .filter(|t| !t.ended)
                    .ok_or_else(|| refuse("audio-before-start", "audio-stop without audio-start"))?;
                t.ended = true;
                let _ = t.to_worker.send(StreamInput::End).await;
                Ok(())
            }
            "synthesize" if self.streamed_text.is_some() => Ok(()), // the streamed request's compatibility copy
            "synthesize" => {
                let text = event
                    .str("text")
                    .ok_or_else(|| refuse("malformed-event", "synthesize needs a \"text\" string"))?
                    .to_string();
                self.synthesize(text).await
            }
            "synthesize-start" => {
                self.streamed_text = Some(String::new());
                Ok(())
            }
            "synthesize-chunk" => {
                let text = event
                    .str("text")
                    .ok_or_else(|| refuse("malformed-event", "synthesize-chunk needs a \"text\" string"))?
                    .to_string();
                self.streamed_text
                    .as_mut()
                    .ok_or_else(|| {
                        refuse("synthesize-before-start", "synthesize-chunk without synthesize-start")
                    })?
                    .push_str(&text);
                Ok(())
            }
            "synthesize-stop" => {
                let text = self.streamed_text.take().ok_or_else(|| {
                    refuse("synthesize-before-start", "synthesize-stop without synthesize-start")
                })?;
                self.synthesize(text).await?;
                self.send(Event::new("synthesize-stopped", json!({}))).await
            }
            other => Err(refuse(
                "unknown-event",
                format!(
                    "unknown event type '{}' (describe, transcribe, audio-start/-chunk/-stop, synthesize, ping)",
                    other.chars().take(64).collect::<String>()
                ),
            )),
        }
    }

    fn info(&self) -> Event {
        let config = self.state.config();
        let attribution = json!({"name": "hark", "url": ATTRIBUTION_URL});
        let version = env!("CARGO_PKG_VERSION");
        let model = |name: &str, description: &str| json!({"name": name, "languages": ["en"], "attribution": attribution, "installed": true, "description": description, "version": null});
        Event::new(
            "info",
            json!({
                "asr": [{
                    "name": "hark", "attribution": attribution, "installed": true, "version": version,
                    "description": "hark: streaming ANCAT transducer for words as they are spoken, Whisper for the final text",
                    "models": [
                        model(&config.recognition.whisper, "finals (Whisper)"),
                        model(&config.recognition.transducer, "partials (ANCAT streaming transducer)"),
                    ],
                    "supports_transcript_streaming": true,
                    "requires_external_vad": true,
                }],
                "tts": [{
                    "name": "hark", "attribution": attribution, "installed": true, "version": version,
                    "description": "hark's text to speech",
                    "voices": [{"name": "hibari", "languages": ["en"], "attribution": attribution, "installed": true, "description": "hibari (24 kHz)", "version": null, "speakers": null}],
                    "supports_synthesize_streaming": true,
                }],
            }),
        )
    }

    /// The declared audio format of an `audio-start` or `audio-chunk`.
    fn format(event: &Event) -> Result<(u64, PcmFormat), Refusal> {
        let field = |key: &str| {
            event.int(key).ok_or_else(|| {
                refuse("malformed-event", format!("{} needs a whole-number \"{key}\"", event.kind))
            })
        };
        let rate = field("rate")?;
        if !(8000..=192_000).contains(&rate) {
            return Err(refuse("bad-audio", format!("rate {rate} Hz is not supported (8000 to 192000)")));
        }
        let format = PcmFormat::int(field("width")?, field("channels")?)
            .map_err(|e| refuse("bad-audio", e.to_string()))?;
        Ok((rate, format))
    }

    async fn start_transcription(&mut self, event: &Event) -> Result<(), Refusal> {
        if self.transcription.is_some() {
            return Err(refuse(
                "busy",
                "audio-start while a transcription is still running on this connection",
            ));
        }
        let (rate, format) = Self::format(event)?;
        let state = &self.state;
        let (guard, active) = ActiveStream::enter(state);
        let max = state.config().server.max_streams as u64;
        if active > max {
            state.metrics.rejected_total.fetch_add(1, Ordering::Relaxed);
            return Err(refuse("busy", format!("too many streams: the server takes {max} at once")));
        }
        state.metrics.streams_total.fetch_add(1, Ordering::Relaxed);
        let (to_worker, worker_rx) = mpsc::channel(AUDIO_QUEUE);
        let (worker_tx, from_worker) = mpsc::unbounded_channel();
        let metrics = state.clone();
        spawn_stream_recogniser(
            state.engines.clone(),
            state.live_options(),
            rate as u32,
            worker_rx,
            worker_tx,
            move |samples, took| metrics.metrics.add_audio(samples, took),
        );
        self.transcription = Some(Transcription {
            format,
            rate,
            to_worker,
            from_worker,
            deltas: TranscriptDeltas::new(),
            started: false,
            ended: false,
            _active: guard,
        });
        Ok(())
    }

    async fn audio(&mut self, event: Event) -> Result<(), Refusal> {
        let Some(t) = self.transcription.as_ref().filter(|t| !t.ended) else {
            return Err(refuse("audio-before-start", "audio-chunk before audio-start"));
        };
        let (rate, format) = Self::format(&event)?;
        if (rate, format) != (t.rate, t.format) {
            return Err(refuse(
                "bad-audio",
                "an audio-chunk's rate, width or channels differ from its audio-start's",
            ));
        }
        let samples = format.decode_mono(&event.payload).map_err(|e| refuse("bad-audio", e.to_string()))?;
        // A closed worker has failed: its message arrives through `forward`.
        let _ = t.to_worker.send(StreamInput::Audio(samples)).await;
        Ok(())
    }

    /// Passes on one output of the transcription; true when its result has been sent.
    async fn forward(&mut self, output: Option<StreamOutput>) -> Result<bool, Refusal> {
        let t = self.transcription.as_mut().expect("outputs come only from a running transcription");
        match output {
            Some(StreamOutput::Event(e)) => {
                let Some(delta) = t.deltas.push(&e) else { return Ok(false) };
                let first = !std::mem::replace(&mut t.started, true);
                if first {
                    self.send(Event::new("transcript-start", json!({"language": "en"}))).await?;
                }
                self.send(Event::new("transcript-chunk", json!({"text": delta}))).await?;
                Ok(false)
            }
            Some(StreamOutput::Failed(message)) => Err(refuse("recognition-failed", message)),
            Some(StreamOutput::Done) | None => {
                let t = self.transcription.take().expect("checked above");
                if !t.started {
                    self.send(Event::new("transcript-start", json!({"language": "en"}))).await?;
                }
                self.send(Event::new("transcript", json!({"text": t.deltas.text(), "language": "en"})))
                    .await?;
                self.send(Event::new("transcript-stop", json!({}))).await?;
                Ok(true)
            }
        }
    }

    /// Speaks `text`, sending each sentence's audio as soon as it is made.
    async fn synthesize(&mut self, text: String) -> Result<(), Refusal> {
        let opts = SpeechOptions::default();
        Tts::validate(&text, opts).map_err(|e| refuse("bad-text", e.to_string()))?;
        let tts = voice(&self.state).await.map_err(|_| {
            refuse("tts-unavailable", "text to speech is unavailable (the voice could not be loaded)")
        })?;
        self.state.metrics.speech_total.fetch_add(1, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let node = TtsNode::start(tts, text, opts, stop.clone());
        let (tx, mut rx) = mpsc::channel::<SpeechEvent>(2);
        let forwarder = tokio::task::spawn_blocking(move || {
            for e in node.events.iter() {
                if tx.blocking_send(e).is_err() {
                    break;
                }
            }
            node.join();
        });
        let format = json!({"rate": Tts::SAMPLE_RATE, "width": 2, "channels": 1});
        self.send(Event::new("audio-start", format.clone())).await?;
        let result = async {
            while let Some(e) = rx.recv().await {
                match e {
                    SpeechEvent::Sentence(s) => {
                        for chunk in s.samples.chunks(SAMPLES_PER_CHUNK) {
                            self.send(
                                Event::new("audio-chunk", format.clone()).with_payload(to_s16le(chunk)),
                            )
                            .await?;
                        }
                    }
                    SpeechEvent::Done { samples } => {
                        self.state.metrics.speech_samples.fetch_add(samples as u64, Ordering::Relaxed);
                        return self.send(Event::new("audio-stop", json!({}))).await;
                    }
                    SpeechEvent::Failed(e) => return Err(refuse("tts-failed", e.to_string())),
                }
            }
            Err(refuse("tts-failed", "the voice stopped without finishing"))
        }
        .await;
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        drop(rx);
        let _ = forwarder.await;
        result
    }
}
