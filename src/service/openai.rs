//! `POST /v1/audio/transcriptions`, compatible with OpenAI's API: multipart fields `file`
//! (required), `model`, `response_format` (json, text, srt, vtt, verbose_json), `language`,
//! `prompt`, `temperature` (accepted; Whisper tiny.en is English-only and greedy here), and
//! `stream` (true: server-sent `transcript.text.delta` events, one per segment as it is
//! decoded, then `transcript.text.done`, as OpenAI's API sends them). The upload streams to a
//! temporary file, counted against the size limit as it arrives.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};

use super::{AppState, json_error};
use crate::asr::Segment;
use crate::audio::SAMPLE_RATE;
use crate::output::{Format, render};
use crate::pipeline::{Recognizer, Transcript, transcribe_file_with};

#[derive(Clone, Copy, PartialEq)]
enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

fn parse_format(s: &str) -> Result<ResponseFormat, String> {
    Ok(match s {
        "json" => ResponseFormat::Json,
        "text" => ResponseFormat::Text,
        "srt" => ResponseFormat::Srt,
        "vtt" => ResponseFormat::Vtt,
        "verbose_json" => ResponseFormat::VerboseJson,
        other => {
            return Err(format!(
                "response_format '{other}' is not supported (json, text, srt, vtt, verbose_json)"
            ));
        }
    })
}

pub async fn transcriptions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let response = handle(&state, &headers, multipart).await;
    match &response {
        Ok(_) => {}
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE || r.status() == StatusCode::UNAUTHORIZED => {
            state.metrics.rejected_total.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            state.metrics.errors_total.fetch_add(1, Ordering::Relaxed);
        }
    }
    response.unwrap_or_else(|r| r)
}

async fn handle(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, Response> {
    let limit = state.config().server.max_upload_mb * 1024 * 1024;
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload is larger than the server's limit of {} MB", limit / 1024 / 1024),
        )
    };
    // Refuse a declared oversize body before reading any of it.
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit + 64 * 1024) {
        return Err(too_large());
    }
    let mut multipart = multipart.map_err(|e| {
        json_error(StatusCode::BAD_REQUEST, format!("expected a multipart/form-data body: {e}"))
    })?;
    let bad = |m: String| json_error(StatusCode::BAD_REQUEST, m);
    let mut file: Option<(tempfile::NamedTempFile, String)> = None;
    let mut format = ResponseFormat::Json;
    let mut stream = false;
    let mut received = 0u64;
    while let Some(mut field) =
        multipart.next_field().await.map_err(|e| bad(format!("malformed multipart body: {e}")))?
    {
        match field.name().unwrap_or_default() {
            "file" => {
                let name = field.file_name().unwrap_or("upload").to_string();
                let mut tmp = tempfile::NamedTempFile::new().map_err(|e| {
                    json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store the upload: {e}"))
                })?;
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| bad(format!("the upload was cut off: {e}")))?
                {
                    received += chunk.len() as u64;
                    if received > limit {
                        return Err(too_large());
                    }
                    tmp.write_all(&chunk).map_err(|e| {
                        json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store the upload: {e}"))
                    })?;
                }
                file = Some((tmp, name));
            }
            "response_format" => {
                format =
                    parse_format(field.text().await.map_err(|e| bad(e.to_string()))?.trim()).map_err(bad)?
            }
            "stream" => {
                stream = match field.text().await.map_err(|e| bad(e.to_string()))?.trim() {
                    "true" | "True" | "1" => true,
                    "false" | "False" | "0" => false,
                    other => return Err(bad(format!("stream must be true or false, not '{other}'"))),
                }
            }
            // Accepted for compatibility; the configured Whisper model answers.
            "model" | "language" | "prompt" | "temperature" | "timestamp_granularities[]" => {
                let _ = field.text().await;
            }
            other => return Err(bad(format!("unknown field '{other}'"))),
        }
    }
    let (tmp, name) = file.ok_or_else(|| bad("the request has no 'file' field".into()))?;
    let recognizer = Recognizer::Whisper(state.whisper.clone(), Default::default());
    let enhancer = state.engines.enhancer.clone();
    let started = Instant::now();
    let path = tmp.path().to_path_buf();
    let (segments_tx, mut segments) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut job = tokio::task::spawn_blocking(move || {
        let on_segment = move |s: &Segment| {
            let _ = segments_tx.send(s.text.clone());
        };
        let r = transcribe_file_with(&path, &recognizer, enhancer.as_ref(), on_segment);
        drop(tmp);
        r
    });
    let state = state.clone();
    // The error is the reply itself (as `handle`'s), so its size is the response's.
    #[allow(clippy::result_large_err)]
    let finish = move |result: Result<crate::Result<Transcript>, tokio::task::JoinError>| {
        let transcript = result
            .map_err(|_| json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error while transcribing"))?
            .map_err(|e| bad(format!("{name}: {e}")))?;
        state.metrics.add_audio((transcript.duration * SAMPLE_RATE as f64) as u64, started.elapsed());
        state.metrics.uploads_total.fetch_add(1, Ordering::Relaxed);
        Ok::<_, Response>((transcript, name))
    };
    if !stream {
        let (transcript, name) = finish(job.await)?;
        return Ok(respond(format, &name, &transcript));
    }
    // Streaming: a file that cannot be read fails before the first segment, with a plain 400.
    let first = tokio::select! {
        segment = segments.recv() => segment,
        result = &mut job => return finish(result).map(|(t, _)| final_events(&t.text)),
    };
    let Some(first) = first else {
        return finish(job.await).map(|(t, _)| final_events(&t.text));
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut next = Some(first);
        let mut sent = false;
        while let Some(text) = next {
            let text = text.trim();
            if !text.is_empty() {
                let _ = tx.send(delta_event(&if sent { format!(" {text}") } else { text.to_string() }));
                sent = true;
            }
            next = segments.recv().await;
        }
        let _ = tx.send(match finish(job.await) {
            Ok((t, _)) => done_event(&t.text),
            Err(_) => Ok(Event::default().data(r#"{"type":"error","error":{"message":"the transcription failed part-way","type":"server_error"}}"#)),
        });
    });
    let events = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    Ok(Sse::new(events).into_response())
}

fn delta_event(delta: &str) -> Result<Event, Infallible> {
    Ok(Event::default().data(
        serde_json::json!({"type": "transcript.text.delta", "delta": delta, "logprobs": null}).to_string(),
    ))
}

fn done_event(text: &str) -> Result<Event, Infallible> {
    Ok(Event::default().data(
        serde_json::json!({"type": "transcript.text.done", "text": text, "logprobs": null}).to_string(),
    ))
}

/// The events of a transcript that was finished before any segment was streamed.
fn final_events(text: &str) -> Response {
    let mut events = Vec::new();
    if !text.is_empty() {
        events.push(delta_event(text));
    }
    events.push(done_event(text));
    Sse::new(futures_util::stream::iter(events)).into_response()
}

fn respond(format: ResponseFormat, name: &str, t: &Transcript) -> Response {
    let plain = |body: String, mime: &'static str| ([(header::CONTENT_TYPE, mime)], body).into_response();
    match format {
        ResponseFormat::Json => axum::Json(serde_json::json!({"text": t.text})).into_response(),
        ResponseFormat::Text => plain(render(Format::Text, name, t), "text/plain; charset=utf-8"),
        ResponseFormat::Srt => plain(render(Format::Srt, name, t), "application/x-subrip"),
        ResponseFormat::Vtt => plain(render(Format::Vtt, name, t), "text/vtt"),
        ResponseFormat::VerboseJson => {
            let segments: Vec<_> = t
                .segments
                .iter()
                .enumerate()
                .map(|(id, s)| {
                    serde_json::json!({
                        "id": id, "seek": 0, "start": s.start, "end": s.end, "text": s.text, "tokens": [],
                        "temperature": 0.0, "avg_logprob": s.confidence.max(1e-9).ln(), "compression_ratio": 1.0, "no_speech_prob": 0.0,
                    })
                })
                .collect();
            axum::Json(serde_json::json!({
                "task": "transcribe", "language": "english", "duration": t.duration, "text": t.text, "segments": segments,
            }))
            .into_response()
        }
    }
}
