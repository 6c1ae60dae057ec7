//! `POST /v1/audio/speech`, compatible with OpenAI's API: a JSON body with `input` (the text,
//! at most 4096 characters), `model` and `voice` (accepted; hark has one voice), `response_format`
//! (`wav` or `pcm`: 16-bit mono at 24 kHz; compressed formats are refused with a clear error) and
//! `speed` (0.25–4). The reply streams: each sentence's audio is sent as soon as it is made. A
//! client that goes away stops the synthesis after the sentence in hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{AppState, json_error};
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

/// A WAV header for a stream of unknown length: the sizes are the largest possible (the data size
/// even, a whole number of samples), which players and decoders read as "to the end of the file".
fn streaming_wav_header(rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&(u32::MAX - 1).to_le_bytes());
    h
}

fn pcm16(samples: &[f32]) -> Bytes {
    Bytes::from(samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()).collect::<Vec<u8>>())
}

/// The voice, loaded (and installed) by the first request that needs it; a failed load is
/// tried again by the next request.
async fn voice(state: &Arc<AppState>) -> Result<Arc<Tts>, Response> {
    let slot = state.tts.clone();
    tokio::task::spawn_blocking(move || {
        let mut slot = slot.lock().map_err(|_| "the voice's lock is poisoned".to_string())?;
        if slot.is_none() {
            let tts = crate::models::resolve("hibari").and_then(|dir| Tts::load(&dir)).map_err(|e| e.to_string())?;
            *slot = Some(Arc::new(tts));
        }
        Ok::<_, String>(slot.clone().expect("loaded above"))
    })
    .await
    .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| json_error(StatusCode::SERVICE_UNAVAILABLE, format!("text to speech is unavailable: {e}")))
}

pub async fn speech(State(state): State<Arc<AppState>>, body: Result<Json<SpeechRequest>, JsonRejection>) -> Response {
    let response = handle(&state, body).await;
    if response.is_err() {
        state.metrics.errors_total.fetch_add(1, Ordering::Relaxed);
    }
    response.unwrap_or_else(|r| r)
}

async fn handle(state: &Arc<AppState>, body: Result<Json<SpeechRequest>, JsonRejection>) -> Result<Response, Response> {
    let bad = |m: String| json_error(StatusCode::BAD_REQUEST, m);
    let Json(req) = body.map_err(|e| bad(format!("expected a JSON body with \"input\": {}", e.body_text())))?;
    let format = req.response_format.as_deref().unwrap_or("wav");
    let wav = match format {
        "wav" => true,
        "pcm" => false,
        other => return Err(bad(format!("response_format '{other}' is not supported (wav, pcm: 16-bit mono, 24 kHz)"))),
    };
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
        let send = |bytes: Bytes| tx.blocking_send(Ok(bytes)).is_ok();
        let mut open = (!wav || send(Bytes::from(streaming_wav_header(Tts::SAMPLE_RATE)))) && first.is_none_or(|s| send(pcm16(&s.samples)));
        while open {
            match node.events.recv() {
                Ok(SpeechEvent::Sentence(s)) => open = send(pcm16(&s.samples)),
                Ok(SpeechEvent::Done { samples }) => {
                    metrics.metrics.speech_samples.fetch_add(samples as u64, Ordering::Relaxed);
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
    let content_type = if wav { "audio/wav" } else { "audio/pcm" };
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_header_is_a_readable_wav() {
        let mut bytes = streaming_wav_header(24_000);
        bytes.extend_from_slice(&pcm16(&[0.0, 0.5, -0.5]));
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(reader.spec().sample_rate, 24_000);
        // The declared length runs past the end: the reader stops at the real end.
        let samples: Vec<i16> = reader.into_samples::<i16>().map_while(Result::ok).collect();
        assert_eq!(samples, vec![0, 16384, -16384]);
    }
}
