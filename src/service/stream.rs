//! `GET /v1/stream?sample_rate=16000&encoding=pcm_s16le`: a WebSocket that takes binary PCM
//! frames and a final text frame {"type":"end"}, and answers with the live transcriber's JSON
//! events, then {"type":"done"}. Each stream's recognition runs on its own pipeline thread; the socket
//! is read only as fast as that thread takes audio, so a fast client is slowed, never dropped.
//! Bad parameters or frames end that stream with {"type":"error","message":...}; others go on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::response::Response;
use tokio::sync::mpsc;

use super::{ActiveStream, AppState};
use crate::audio::SAMPLE_RATE;
use crate::audio::pcm::{PcmFormat, SampleFormat};
use crate::pipeline::live::{StreamInput, StreamOutput, spawn_stream_recogniser};

/// PCM frames in flight to a stream's recogniser (back-pressure beyond this).
const AUDIO_QUEUE: usize = 32;
/// The largest binary frame accepted (10 s of 48 kHz f32).
const MAX_FRAME_BYTES: usize = 48_000 * 4 * 10;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    PcmS16le,
    PcmF32le,
}

impl Encoding {
    /// Mono PCM in this encoding.
    fn pcm(self) -> PcmFormat {
        let sample = match self {
            Encoding::PcmS16le => SampleFormat::Int(2),
            Encoding::PcmF32le => SampleFormat::F32,
        };
        PcmFormat { sample, channels: 1 }
    }

    fn bytes_per_sample(self) -> usize {
        self.pcm().bytes_per_frame()
    }
}

fn parse_params(q: &HashMap<String, String>) -> Result<(u32, Encoding), String> {
    if let Some(unknown) = q.keys().find(|k| !["sample_rate", "encoding", "token"].contains(&k.as_str())) {
        return Err(format!("unknown parameter '{unknown}' (sample_rate, encoding)"));
    }
    let rate =
        match q.get("sample_rate") {
            None => SAMPLE_RATE,
            Some(r) => r.parse::<u32>().ok().filter(|r| (8000..=192_000).contains(r)).ok_or_else(|| {
                format!("sample_rate '{r}' must be a whole number of Hz from 8000 to 192000")
            })?,
        };
    let encoding = match q.get("encoding").map(String::as_str) {
        None | Some("pcm_s16le") => Encoding::PcmS16le,
        Some("pcm_f32le") => Encoding::PcmF32le,
        Some(other) => return Err(format!("encoding '{other}' is not supported (pcm_s16le, pcm_f32le)")),
    };
    Ok((rate, encoding))
}

pub async fn stream(
    ws: WebSocketUpgrade,
    Query(q): Query<HashMap<String, String>>,
    State(state): State<Arc<AppState>>,
) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES + 1024).on_upgrade(move |socket| async move {
        let result = run(socket, q, state.clone()).await;
        if result.is_err() {
            state.metrics.errors_total.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn json(event: &impl serde::Serialize) -> Message {
    Message::Text(serde_json::to_string(event).unwrap_or_default().into())
}

async fn send_error(socket: &mut WebSocket, message: &str) {
    tracing::info!("stream error: {message}");
    let _ = socket.send(json(&serde_json::json!({"type": "error", "message": message}))).await;
    // A close code too, for clients that only look at the close: 1008, the request is refused.
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close_code::POLICY,
            reason: "error: see the error event".into(),
        })))
        .await;
}

/// Serves one stream; `Err` when it ended with an error the client was told about.
async fn run(mut socket: WebSocket, q: HashMap<String, String>, state: Arc<AppState>) -> Result<(), ()> {
    let (rate, encoding) = match parse_params(&q) {
        Ok(p) => p,
        Err(message) => {
            send_error(&mut socket, &message).await;
            return Err(());
        }
    };
    let config = state.config();
    let (_active, active) = ActiveStream::enter(&state);
    if active > config.server.max_streams as u64 {
        state.metrics.rejected_total.fetch_add(1, Ordering::Relaxed);
        send_error(
            &mut socket,
            &format!("too many streams: the server takes {} at once", config.server.max_streams),
        )
        .await;
        return Ok(());
    }
    state.metrics.streams_total.fetch_add(1, Ordering::Relaxed);
    let idle = Duration::from_secs(config.server.idle_timeout_s);

    let (to_worker, worker_rx) = mpsc::channel::<StreamInput>(AUDIO_QUEUE);
    let (worker_tx, mut from_worker) = mpsc::unbounded_channel::<StreamOutput>();
    let metrics_state = state.clone();
    spawn_stream_recogniser(
        state.engines.clone(),
        state.live_options(),
        rate,
        worker_rx,
        worker_tx,
        move |samples, took| metrics_state.metrics.add_audio(samples, took),
    );

    let mut shutdown = state.shutdown.clone();
    let mut ended = false; // {"type":"end"} (or shutdown) passed on to the worker
    let mut result = Ok(());
    loop {
        tokio::select! {
            msg = tokio::time::timeout(idle, socket.recv()), if !ended => {
                let message = match msg {
                    Err(_) => {
                        send_error(&mut socket, &format!("no data for {} s: closing the idle stream", idle.as_secs())).await;
                        result = Err(());
                        break;
                    }
                    Ok(None) | Ok(Some(Err(_))) => break, // the client went away: drop the stream
                    Ok(Some(Ok(m))) => m,
                };
                let problem = match message {
                    Message::Binary(bytes) if bytes.len() % encoding.bytes_per_sample() != 0 => {
                        Some(format!("a {} frame must hold whole samples ({} bytes each); got {} bytes", if encoding == Encoding::PcmS16le { "pcm_s16le" } else { "pcm_f32le" }, encoding.bytes_per_sample(), bytes.len()))
                    }
                    Message::Binary(bytes) => match encoding.pcm().decode_mono(&bytes) {
                        Ok(samples) => {
                            if to_worker.send(StreamInput::Audio(samples)).await.is_err() { break; }
                            None
                        }
                        Err(e) => Some(format!("bad frame: {e}")),
                    },
                    Message::Text(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(v) if v["type"] == "end" => {
                            ended = true;
                            let _ = to_worker.send(StreamInput::End).await;
                            None
                        }
                        _ => Some(format!("unexpected text frame (only {{\"type\":\"end\"}} is understood): {}", text.chars().take(100).collect::<String>())),
                    },
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(problem) = problem {
                    send_error(&mut socket, &problem).await;
                    result = Err(());
                    break;
                }
            }
            out = from_worker.recv() => match out {
                Some(StreamOutput::Event(e)) => { if socket.send(json(&e)).await.is_err() { break; } }
                Some(StreamOutput::Failed(message)) => { send_error(&mut socket, &message).await; result = Err(()); break; }
                Some(StreamOutput::Done) | None => {
                    let _ = socket.send(json(&serde_json::json!({"type": "done"}))).await;
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            },
            _ = super::until_stopping(&mut shutdown), if !ended => {
                // The service is stopping: no more audio; the final of what was heard still goes out.
                ended = true;
                let _ = to_worker.send(StreamInput::End).await;
            }
        }
    }
    // Dropping the sender ends the worker if it is still running (client gone).
    drop(to_worker);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(parse_params(&q(&[])).unwrap(), (16000, Encoding::PcmS16le));
        assert_eq!(
            parse_params(&q(&[("sample_rate", "48000"), ("encoding", "pcm_f32le")])).unwrap(),
            (48000, Encoding::PcmF32le)
        );
        assert!(parse_params(&q(&[("sample_rate", "abc")])).unwrap_err().contains("sample_rate"));
        assert!(parse_params(&q(&[("sample_rate", "100")])).is_err());
        assert!(parse_params(&q(&[("encoding", "mp3")])).unwrap_err().contains("mp3"));
        assert!(parse_params(&q(&[("rate", "16000")])).unwrap_err().contains("unknown parameter"));
    }

    #[test]
    fn pcm_decoding() {
        assert_eq!(Encoding::PcmS16le.pcm().decode_mono(&[0x00, 0x40, 0x00, 0xc0]).unwrap(), vec![0.5, -0.5]);
        assert_eq!(Encoding::PcmF32le.pcm().decode_mono(&0.25f32.to_le_bytes()).unwrap(), vec![0.25]);
    }
}
