//! `POST /v1/audio/speech`, compatible with OpenAI's API: a JSON body with `input` (the text,
//! at most 4096 characters), `model` and `voice` (accepted; hark has one voice), `response_format`
//! (mp3 — the default, as OpenAI's —, opus, aac, flac, wav or pcm: 16-bit mono; all at 24 kHz)
//! and `speed` (0.25–4). The reply streams: each sentence's audio is encoded and sent as soon as
//! it is made (FLAC at the end). A client that goes away stops the synthesis after the sentence
//! in hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{AppState, json_error};
use crate::audio::encode::SpeechFormat;
use crate::models;
use crate::pipeline::tts::{SpeechEvent, TtsNode};
use crate::tts::{SpeechOptions, Tts};

/// OpenAI's limit on `input`.
pub const MAX_INPUT_CHARS: usize = 4096;

/// The request body; other fields (`model`, `voice`, …) are accepted and ignored.
#[derive(Deserialize)]
pub struct SpeechRequest {
    input: String,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    speed: Option<f32>,
}

/// The voice, loaded (and installed) by the first request that needs it; a failed load is
/// tried again by the next request.
pub(super) async fn voice(state: &Arc<AppState>) -> Result<Arc<Tts>, Response> {
    let slot = state.tts.clone();
    tokio::task::spawn_blocking(move || {
        let mut slot = slot.lock().map_err(|_| "the voice's lock is poisoned".to_string())?;
        if slot.is_none() {
            let tts = models::resolve("hibari").and_then(|dir| Tts::load(&dir)).map_err(|e| e.to_string())?;
            *slot = Some(Arc::new(tts));
        }
        Ok::<_, String>(slot.clone().expect("loaded above"))
    })
    .await
    .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| json_error(StatusCode::SERVICE_UNAVAILABLE, format!("text to speech is unavailable: {e}")))
}

pub async fn speech(
    State(state): State<Arc<AppState>>,
    body: Result<Json<SpeechRequest>, JsonRejection>,
) -> Response {
    let response = handle(&state, body).await;
    if response.is_err() {
        state.metrics.errors_total.fetch_add(1, Ordering::Relaxed);
    }
    response.unwrap_or_else(|r| r)
}

async fn handle(
    state: &Arc<AppState>,
    body: Result<Json<SpeechRequest>, JsonRejection>,
) -> Result<Response, Response> {
    let bad = |m: String| json_error(StatusCode::BAD_REQUEST, m);
    let Json(req) =
        body.map_err(|e| bad(format!("expected a JSON body with \"input\": {}", e.body_text())))?;
    let format: SpeechFormat = req
        .response_format
        .as_deref()
        .unwrap_or("mp3")
        .parse()
        .map_err(|e: crate::Error| bad(e.to_string()))?;
    let mut encoder = format
        .encoder(Tts::SAMPLE_RATE)
        .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if req.input.chars().count() > MAX_INPUT_CHARS {
        return Err(bad(format!("input is longer than {MAX_INPUT_CHARS} characters")));
    }
    let opts = SpeechOptions { speed: req.speed.unwrap_or(1.0), ..Default::default() };
    Tts::validate(&req.input, opts).map_err(|e| bad(e.to_string()))?;
    let tts = voice(state).await?;
    state.metrics.speech_total.fetch_add(1, Ordering::Relaxed);

    // The node runs on its own threads; a blocking task hands its sentences to the async body.
    let stop = Arc::new(AtomicBool::new(false));
    let node = TtsNode::start(tts, req.input, opts, stop.clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    // The first event decides the status: an error before any audio is a 400, not a cut stream.
    let first = tokio::task::block_in_place(|| node.events.recv()).ok();
    let first = match first {
        Some(SpeechEvent::Failed(e)) => return Err(bad(e.to_string())),
        Some(SpeechEvent::Sentence(s)) => Some(s),
        _ => None,
    };
    let metrics = state.clone();
    tokio::task::spawn_blocking(move || {
        let send = |bytes: crate::Result<Vec<u8>>| match bytes {
            Ok(b) if b.is_empty() => true,
            Ok(b) => tx.blocking_send(Ok(Bytes::from(b))).is_ok(),
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                false
            }
        };
        let mut open = first.is_none_or(|s| send(encoder.push(&s.samples)));
        while open {
            match node.events.recv() {
                Ok(SpeechEvent::Sentence(s)) => open = send(encoder.push(&s.samples)),
                Ok(SpeechEvent::Done { samples }) => {
                    metrics.metrics.speech_samples.fetch_add(samples as u64, Ordering::Relaxed);
                    send(encoder.finish());
                    break;
                }
                Ok(SpeechEvent::Failed(e)) => {
                    tracing::warn!("speech stopped mid-way: {e}");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    break;
                }
                Err(_) => break,
            }
        }
        if !open {
            stop.store(true, Ordering::Relaxed); // the client went away
        }
        node.join();
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(([(header::CONTENT_TYPE, format.content_type())], Body::from_stream(stream)).into_response())
}
