//! OpenAI's realtime transcription, `GET /v1/realtime?intent=transcription` (a WebSocket), with
//! the event flow OpenAI documents: the client configures the session (`session.update`, or the
//! beta `transcription_session.update`: pcm16 input, server VAD or none) and sends
//! `input_audio_buffer.append` (base64 PCM), `.commit` and `.clear`; the server answers with
//! `input_audio_buffer.speech_started` / `speech_stopped` / `committed` / `cleared`,
//! `conversation.item.input_audio_transcription.delta` (the transducer's words as they are
//! heard) and `.completed` (the final), and `error` events in OpenAI's shape, after which the
//! session goes on. Same token, limits and metrics as the other endpoints.
//!
//! With server VAD each utterance the endpointer finds is an item; without it, everything
//! appended between commits is one item. Settings changed by `session.update` apply from the
//! next buffer (after a commit or clear).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ActiveStream, AppState, until_stopping};
use crate::audio::pcm::PcmFormat;
use crate::live::{EventKind, LiveOptions, TranscriptDeltas};
use crate::pipeline::live::{StreamInput, StreamOutput, spawn_stream_recogniser};

/// OpenAI's limit on one appended audio chunk.
const MAX_APPEND_BYTES: usize = 15 * 1024 * 1024;
/// Messages are read up to twice that, so an oversize one still gets an error event.
const MAX_MESSAGE_BYTES: usize = 2 * MAX_APPEND_BYTES;
/// Appended chunks in flight to the recogniser (back-pressure beyond this).
const AUDIO_QUEUE: usize = 32;
/// The input rate OpenAI's `audio/pcm` (and the beta's `pcm16`) means.
const DEFAULT_RATE: u32 = 24_000;

pub async fn realtime(
    ws: WebSocketUpgrade,
    Query(q): Query<HashMap<String, String>>,
    State(state): State<Arc<AppState>>,
) -> Response {
    ws.max_message_size(MAX_MESSAGE_BYTES).max_frame_size(MAX_MESSAGE_BYTES).on_upgrade(move |socket| async move {
        let (mut session, mut wire) = Session::new(socket, state.clone());
        match q.get("intent").map(String::as_str) {
            Some("transcription") => session.run(&mut wire).await,
            other => {
                let message = format!("hark serves realtime transcription only: connect with ?intent=transcription (got intent {other:?})");
                session.error("invalid_request_error", "unsupported_intent", &message, None);
                wire.flush().await;
            }
        }
        let _ = wire.socket.send(Message::Close(None)).await;
    })
}

/// Server VAD settings (OpenAI's `turn_detection`), mapped onto hark's endpointer.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TurnDetection {
    threshold: f32,
    silence_duration_ms: u32,
}

/// The audio buffer being filled: a recogniser and what it has been given.
struct Buffer {
    to_worker: mpsc::Sender<StreamInput>,
    samples: u64,
    /// The item it becomes (no VAD: the whole buffer is one item).
    item_id: Option<String>,
}

/// What the recognisers' forwarders share with the session.
struct Shared {
    outbox: mpsc::UnboundedSender<Value>,
    next_item: AtomicU64,
    previous_item: Mutex<Option<String>>,
}

impl Shared {
    fn new_item(&self) -> String {
        format!("item_{:06}", self.next_item.fetch_add(1, Ordering::Relaxed))
    }

    fn send(&self, event: Value) {
        let _ = self.outbox.send(event);
    }
}

/// The socket and the queue of server events waiting for it.
struct Wire {
    socket: WebSocket,
    outbox: mpsc::UnboundedReceiver<Value>,
    next_event: u64,
}

impl Wire {
    /// Sends every queued event.
    async fn flush(&mut self) -> bool {
        while let Ok(event) = self.outbox.try_recv() {
            if !self.send(event).await {
                return false;
            }
        }
        true
    }

    /// Sends one event, with its event id.
    async fn send(&mut self, mut event: Value) -> bool {
        event["event_id"] = format!("event_{:06}", self.next_event).into();
        self.next_event += 1;
        self.socket.send(Message::Text(event.to_string().into())).await.is_ok()
    }
}

struct Session {
    state: Arc<AppState>,
    shared: Arc<Shared>,
    rate: u32,
    turn_detection: Option<TurnDetection>,
    /// The client uses the beta names (`transcription_session.*`).
    beta: bool,
    buffer: Option<Buffer>,
    /// Samples appended in the whole session (VAD times count from its start).
    session_samples: u64,
    forwarders: Vec<JoinHandle<()>>,
}

impl Session {
    fn new(socket: WebSocket, state: Arc<AppState>) -> (Self, Wire) {
        let (tx, outbox) = mpsc::unbounded_channel();
        let endpoint = state.live_options().endpoint;
        let shared =
            Arc::new(Shared { outbox: tx, next_item: AtomicU64::new(1), previous_item: Mutex::new(None) });
        let session = Self {
            state,
            shared,
            rate: DEFAULT_RATE,
            // OpenAI's default for transcription sessions is server VAD.
            turn_detection: Some(TurnDetection {
                threshold: endpoint.threshold,
                silence_duration_ms: endpoint.silence_after_speech_ms,
            }),
            beta: false,
            buffer: None,
            session_samples: 0,
            forwarders: Vec::new(),
        };
        (session, Wire { socket, outbox, next_event: 1 })
    }

    fn error(&self, kind: &str, code: &str, message: &str, client_event: Option<&str>) {
        tracing::info!("realtime: {message}");
        self.state.metrics.errors_total.fetch_add(1, Ordering::Relaxed);
        self.shared.send(json!({"type": "error", "error": {"type": kind, "code": code, "message": message, "param": null, "event_id": client_event}}));
    }

    fn session_json(&self) -> Value {
        let turn_detection = match self.turn_detection {
            Some(t) => {
                json!({"type": "server_vad", "threshold": t.threshold, "silence_duration_ms": t.silence_duration_ms, "prefix_padding_ms": 300})
            }
            None => Value::Null,
        };
        let model = self.state.config().recognition.whisper;
        if self.beta {
            return json!({
                "object": "realtime.transcription_session", "input_audio_format": "pcm16",
                "input_audio_transcription": {"model": model, "language": "en"}, "turn_detection": turn_detection,
            });
        }
        json!({
            "type": "transcription", "object": "realtime.transcription_session",
            "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": self.rate},
                "transcription": {"model": model, "language": "en"},
                "turn_detection": turn_detection,
                "noise_reduction": null,
            }},
        })
    }

    async fn run(&mut self, wire: &mut Wire) {
        let state = self.state.clone();
        let max = state.config().server.max_streams as u64;
        let (_active, active) = ActiveStream::enter(&state);
        if active > max {
            state.metrics.rejected_total.fetch_add(1, Ordering::Relaxed);
            self.error(
                "server_error",
                "too_many_streams",
                &format!("too many streams: the server takes {max} at once"),
                None,
            );
            wire.flush().await;
            return;
        }
        state.metrics.streams_total.fetch_add(1, Ordering::Relaxed);
        self.shared.send(json!({"type": "session.created", "session": self.session_json()}));
        let idle = Duration::from_secs(state.config().server.idle_timeout_s);
        let mut shutdown = state.shutdown.clone();
        loop {
            tokio::select! {
                message = tokio::time::timeout(idle, wire.socket.recv()) => match message {
                    Err(_) => {
                        self.error("invalid_request_error", "idle_timeout", &format!("no events for {} s: closing the idle session", idle.as_secs()), None);
                        break;
                    }
                    Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return self.abandon(),
                    Ok(Some(Ok(Message::Text(text)))) => self.handle(&text).await,
                    Ok(Some(Ok(Message::Binary(_)))) => self.error("invalid_request_error", "invalid_event", "binary frames are not events: send audio as input_audio_buffer.append with base64 PCM", None),
                    Ok(Some(Ok(_))) => {}
                },
                Some(event) = wire.outbox.recv() => if !wire.send(event).await { return self.abandon() },
                _ = until_stopping(&mut shutdown) => break,
            }
        }
        // Stopping (service shutdown or idle): what was heard is still transcribed and sent.
        if let Some(buffer) = self.buffer.take() {
            let _ = buffer.to_worker.send(StreamInput::End).await;
        }
        for f in std::mem::take(&mut self.forwarders) {
            let _ = f.await;
        }
        wire.flush().await;
    }

    /// The client went away: recognition stops without finishing.
    fn abandon(&mut self) {
        self.buffer = None;
        for f in &self.forwarders {
            f.abort();
        }
    }

    async fn handle(&mut self, text: &str) {
        let bad = |s: &Self, code: &str, message: &str, id: Option<&str>| {
            s.error("invalid_request_error", code, message, id)
        };
        if text.len() > MAX_APPEND_BYTES * 4 / 3 + 1024 {
            return bad(
                self,
                "message_too_large",
                &format!(
                    "the event is {} bytes; an appended chunk may hold at most 15 MiB of audio",
                    text.len()
                ),
                None,
            );
        }
        let Ok(event) = serde_json::from_str::<Value>(text) else {
            return bad(self, "invalid_json", "the event is not valid JSON", None);
        };
        let id = event["event_id"].as_str().map(str::to_string);
        let id = id.as_deref();
        let Some(kind) = event["type"].as_str() else {
            return bad(self, "invalid_event", "the event has no \"type\"", id);
        };
        match kind {
            "session.update" | "transcription_session.update" => {
                self.beta = kind == "transcription_session.update";
                match self.update(&event["session"]) {
                    Ok(()) => {
                        let updated =
                            if self.beta { "transcription_session.updated" } else { "session.updated" };
                        self.shared.send(json!({"type": updated, "session": self.session_json()}));
                    }
                    Err(message) => bad(self, "invalid_value", &message, id),
                }
            }
            "input_audio_buffer.append" => {
                let Some(audio) = event["audio"].as_str() else {
                    return bad(
                        self,
                        "missing_required_parameter",
                        "input_audio_buffer.append needs \"audio\" (base64 PCM)",
                        id,
                    );
                };
                let bytes = match base64::engine::general_purpose::STANDARD.decode(audio) {
                    Ok(b) => b,
                    Err(e) => {
                        return bad(
                            self,
                            "invalid_value",
                            &format!("\"audio\" is not valid base64: {e}"),
                            id,
                        );
                    }
                };
                let samples = match PcmFormat::int(2, 1).and_then(|f| f.decode_mono(&bytes)) {
                    Ok(s) => s,
                    Err(e) => {
                        return bad(
                            self,
                            "invalid_value",
                            &format!("\"audio\" must be 16-bit little-endian mono PCM: {e}"),
                            id,
                        );
                    }
                };
                self.append(samples).await;
            }
            "input_audio_buffer.commit" => self.commit(id).await,
            "input_audio_buffer.clear" => {
                // Dropping the recogniser's input ends it without a final.
                self.buffer = None;
                self.shared.send(json!({"type": "input_audio_buffer.cleared"}));
            }
            other => bad(
                self,
                "invalid_value",
                &format!(
                    "unknown or unsupported event type '{}' in a transcription session (session.update, input_audio_buffer.append, input_audio_buffer.commit, input_audio_buffer.clear)",
                    other.chars().take(64).collect::<String>()
                ),
                id,
            ),
        }
    }

    fn update(&mut self, session: &Value) -> Result<(), String> {
        if let Some(kind) = session["type"].as_str().filter(|k| *k != "transcription") {
            return Err(format!("session.type '{kind}': hark serves transcription sessions only"));
        }
        let input = &session["audio"]["input"];
        let format =
            if input["format"].is_null() { &session["input_audio_format"] } else { &input["format"] };
        match format {
            Value::Null => {}
            Value::String(f) if f == "pcm16" => self.rate = DEFAULT_RATE,
            Value::Object(f) if f.get("type").and_then(Value::as_str) == Some("audio/pcm") => {
                let rate = f.get("rate").map_or(Some(DEFAULT_RATE as u64), Value::as_u64);
                self.rate = rate.filter(|r| (8000..=192_000).contains(r)).ok_or_else(|| {
                    format!(
                        "audio/pcm rate {:?} is not supported (8000 to 192000 Hz; OpenAI's is 24000)",
                        f.get("rate")
                    )
                })? as u32;
            }
            other => return Err(format!("input audio format {other} is not supported (audio/pcm, 16-bit)")),
        }
        let transcription = if input["transcription"].is_null() {
            &session["input_audio_transcription"]
        } else {
            &input["transcription"]
        };
        if let Some(lang) = transcription["language"].as_str().filter(|l| !l.to_lowercase().starts_with("en"))
        {
            return Err(format!("language '{lang}': hark transcribes English only"));
        }
        let turn = if input.get("turn_detection").is_some() {
            &input["turn_detection"]
        } else {
            &session["turn_detection"]
        };
        let mentioned = input.get("turn_detection").is_some() || session.get("turn_detection").is_some();
        match turn {
            Value::Null if mentioned => self.turn_detection = None,
            Value::Null => {}
            Value::Object(t) => {
                match t.get("type").and_then(Value::as_str) {
                    Some("server_vad") | Some("semantic_vad") | None => {}
                    Some(other) => {
                        return Err(format!(
                            "turn_detection.type '{other}' is not supported (server_vad, semantic_vad, or null)"
                        ));
                    }
                }
                let current =
                    self.turn_detection.unwrap_or(TurnDetection { threshold: 0.5, silence_duration_ms: 500 });
                let threshold =
                    t.get("threshold").and_then(Value::as_f64).map_or(current.threshold, |v| v as f32);
                if !(0.05..=0.95).contains(&threshold) {
                    return Err(format!(
                        "turn_detection.threshold {threshold} must be between 0.05 and 0.95"
                    ));
                }
                let silence = t
                    .get("silence_duration_ms")
                    .and_then(Value::as_u64)
                    .map_or(current.silence_duration_ms, |v| v as u32);
                if !(100..=10_000).contains(&silence) {
                    return Err(format!(
                        "turn_detection.silence_duration_ms {silence} must be between 100 and 10000"
                    ));
                }
                self.turn_detection = Some(TurnDetection { threshold, silence_duration_ms: silence });
            }
            other => return Err(format!("turn_detection must be an object or null, not {other}")),
        }
        Ok(())
    }

    /// The live options for a new buffer: the configured ones with this session's VAD settings.
    fn live_options(&self) -> LiveOptions {
        let mut opts = self.state.live_options();
        if let Some(t) = self.turn_detection {
            opts.endpoint.threshold = t.threshold;
            opts.endpoint.neg_threshold = opts.endpoint.neg_threshold.min(t.threshold - 0.05);
            opts.endpoint.silence_after_speech_ms = t.silence_duration_ms;
        }
        opts
    }

    async fn append(&mut self, samples: Vec<f32>) {
        if self.buffer.is_none() {
            self.buffer = Some(self.start_buffer());
        }
        let buffer = self.buffer.as_mut().expect("started above");
        buffer.samples += samples.len() as u64;
        self.session_samples += samples.len() as u64;
        let _ = buffer.to_worker.send(StreamInput::Audio(samples)).await;
    }

    fn start_buffer(&mut self) -> Buffer {
        let (to_worker, worker_rx) = mpsc::channel(AUDIO_QUEUE);
        let (worker_tx, from_worker) = mpsc::unbounded_channel();
        let metrics = self.state.clone();
        spawn_stream_recogniser(
            self.state.engines.clone(),
            self.live_options(),
            self.rate,
            worker_rx,
            worker_tx,
            move |samples, took| metrics.metrics.add_audio(samples, took),
        );
        let item_id = self.turn_detection.is_none().then(|| self.shared.new_item());
        let offset_ms = self.session_samples * 1000 / self.rate as u64;
        let items = match &item_id {
            Some(item) => Items::Manual(item.clone()),
            None => Items::Vad { offset_ms, current: None },
        };
        self.forwarders.retain(|f| !f.is_finished());
        self.forwarders.push(tokio::spawn(forward(from_worker, self.shared.clone(), items)));
        Buffer { to_worker, samples: 0, item_id }
    }

    async fn commit(&mut self, client_event: Option<&str>) {
        let Some(buffer) = self.buffer.take().filter(|b| b.samples > 0) else {
            return self.error(
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                "the input audio buffer is empty: append audio before committing",
                client_event,
            );
        };
        if let Some(item) = &buffer.item_id {
            let previous = self.shared.previous_item.lock().expect("item lock").replace(item.clone());
            self.shared.send(json!({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": previous}));
        }
        // With VAD, the utterance in progress ends here; its events follow from the forwarder.
        let _ = buffer.to_worker.send(StreamInput::End).await;
    }
}

/// How a buffer's utterances become items.
enum Items {
    /// The whole buffer is one item (committed by the client).
    Manual(String),
    /// Each utterance is an item; `offset_ms` is the buffer's start in the session's audio.
    Vad { offset_ms: u64, current: Option<String> },
}

/// Turns one buffer's recogniser output into OpenAI's events.
async fn forward(
    mut from_worker: mpsc::UnboundedReceiver<StreamOutput>,
    shared: Arc<Shared>,
    mut items: Items,
) {
    let mut deltas = TranscriptDeltas::new();
    let delta = |item: &str, text: String| json!({"type": "conversation.item.input_audio_transcription.delta", "item_id": item, "content_index": 0, "delta": text});
    let completed = |item: &str, text: String| json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": item, "content_index": 0, "transcript": text});
    while let Some(output) = from_worker.recv().await {
        match output {
            StreamOutput::Event(e) => match &mut items {
                Items::Manual(item) => {
                    if let Some(d) = deltas.push(&e) {
                        shared.send(delta(item, d));
                    }
                }
                Items::Vad { offset_ms, current } => {
                    // An empty partial starts nothing; an empty final (the second pass heard no
                    // words) still ends the item its partials started, so the next utterance
                    // is not folded into it.
                    if e.text.trim().is_empty() && (e.kind == EventKind::Partial || current.is_none()) {
                        continue;
                    }
                    let item = current.get_or_insert_with(|| {
                        let item = shared.new_item();
                        shared.send(json!({"type": "input_audio_buffer.speech_started", "item_id": item, "audio_start_ms": *offset_ms + (e.start * 1000.0) as u64}));
                        item
                    });
                    let item = item.clone();
                    if e.kind == EventKind::Final {
                        let previous = shared.previous_item.lock().expect("item lock").replace(item.clone());
                        shared.send(json!({"type": "input_audio_buffer.speech_stopped", "item_id": item, "audio_end_ms": *offset_ms + (e.end * 1000.0) as u64}));
                        shared.send(json!({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": previous}));
                    }
                    if let Some(d) = deltas.push(&e) {
                        shared.send(delta(&item, d));
                    }
                    if e.kind == EventKind::Final {
                        shared.send(completed(&item, e.text.clone()));
                        deltas.reset();
                        *current = None;
                    }
                }
            },
            StreamOutput::Failed(message) => {
                shared.send(json!({"type": "error", "error": {"type": "server_error", "code": "recognition_failed", "message": message, "param": null, "event_id": null}}));
                return;
            }
            StreamOutput::Done => {
                if let Items::Manual(item) = &items {
                    shared.send(completed(item, deltas.text()));
                }
                return;
            }
        }
    }
}
