//! `hark serve`: the system service. HTTP (axum on tokio) with an OpenAI-compatible upload
//! endpoint, WebSocket streams, the daemon's own microphone on `/v1/events`, `/healthz` and
//! `/metrics`. Recognition runs on plain threads (one per stream, blocking tasks for uploads);
//! the async side only moves bytes. systemd: READY/WATCHDOG/RELOADING/STOPPING via sd_notify,
//! SIGHUP re-reads the config, SIGTERM stops taking audio, flushes every stream's final, exits 0.

mod metrics;
mod openai;
mod realtime;
mod speech;
mod stream;
pub mod wyoming;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{broadcast, watch};

use crate::asr::whisper::WhisperEngine;
use crate::config::Config;
use crate::live;
use crate::live::{LiveEngines, LiveOptions};
use crate::models;
use crate::pipeline::live::{CaptureStats, LiveGraph};
use crate::separation::EnhanceMode;
use crate::tts::Tts;
use metrics::Metrics;

/// What every request handler shares.
pub struct AppState {
    pub engines: LiveEngines,
    /// Whisper for uploads (the finals' engine when finals come from Whisper).
    pub whisper: Arc<WhisperEngine>,
    pub config: RwLock<Config>,
    pub metrics: Metrics,
    /// Flips to true on SIGTERM: streams finish and close.
    pub shutdown: watch::Receiver<bool>,
    /// The daemon's microphone transcript, as JSON event lines (when capture is enabled).
    pub mic_events: Option<broadcast::Sender<String>>,
    pub capture_stats: Arc<CaptureStats>,
    /// The text-to-speech voice, loaded by the first `/v1/audio/speech` request.
    pub tts: Arc<std::sync::Mutex<Option<Arc<Tts>>>>,
}

impl AppState {
    pub fn config(&self) -> Config {
        self.config.read().expect("config lock").clone()
    }

    pub fn live_options(&self) -> LiveOptions {
        live_options(&self.config())
    }
}

/// A JSON error body in OpenAI's shape.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let kind = if status.is_server_error() { "server_error" } else { "invalid_request_error" };
    (status, axum::Json(serde_json::json!({"error": {"message": message.into(), "type": kind}})))
        .into_response()
}

fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

pub fn serve(
    config_path: Option<PathBuf>,
    listen: Option<String>,
    wyoming: Option<String>,
    enhance: Option<EnhanceMode>,
) -> anyhow::Result<i32> {
    let mut config = Config::load(config_path.as_deref())?;
    if let Some(l) = listen {
        config.server.listen = l;
    }
    if let Some(w) = wyoming {
        config.wyoming.listen = Some(w);
    }
    config.validate().map_err(anyhow::Error::msg)?;
    if let Some(e) = enhance {
        config.recognition.enhance = Some(e.to_string());
    }
    let (engines, _) = live::setup(&config)?;
    let whisper = match &engines.whisper {
        Some(w) => w.clone(),
        None => WhisperEngine::load(&models::resolve(&config.recognition.whisper)?)?,
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("hark-http").build()?;
    runtime.block_on(run(config, config_path, engines, whisper))
}

async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    engines: LiveEngines,
    whisper: Arc<WhisperEngine>,
) -> anyhow::Result<i32> {
    let addr: SocketAddr = config.server.listen.parse()?;
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let wyoming_listener = match config.wyoming.address().map_err(anyhow::Error::msg)? {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for Wyoming"))?,
        ),
        None => None,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    // The daemon's own microphone, published on /v1/events.
    let capture_stop = Arc::new(AtomicBool::new(false));
    let mut capture_stats = Arc::new(CaptureStats::default());
    let mut capture_thread = None;
    let mic_events = if config.capture.enabled {
        let (tx, _) = broadcast::channel(256);
        let graph = LiveGraph::start(
            config.capture.device.clone(),
            engines.clone(),
            live_options(&config),
            capture_stop.clone(),
        )?;
        capture_stats = graph.stats.clone();
        let events_tx = tx.clone();
        capture_thread = Some(std::thread::spawn(move || {
            for e in graph.events.iter() {
                let _ = events_tx.send(serde_json::to_string(&e).unwrap_or_default());
            }
            if let Err(e) = graph.join() {
                tracing::error!("microphone transcription failed: {e}");
            }
        }));
        Some(tx)
    } else {
        None
    };

    let state = Arc::new(AppState {
        engines,
        whisper,
        config: RwLock::new(config),
        metrics: Metrics::default(),
        shutdown: shutdown_rx.clone(),
        mic_events,
        capture_stats,
        tts: Default::default(),
    });
    let app = Router::new()
        .route("/v1/audio/transcriptions", post(openai::transcriptions))
        .route("/v1/audio/speech", post(speech::speech))
        .route("/v1/stream", get(stream::stream))
        .route("/v1/realtime", get(realtime::realtime))
        .route("/v1/events", get(events))
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::from_fn_with_state(state.clone(), authorize))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state.clone());

    eprintln!("hark: listening on http://{local}");
    if let Some(listener) = wyoming_listener {
        eprintln!("hark: Wyoming on tcp://{}", listener.local_addr()?);
        tokio::spawn(wyoming::serve(listener, state.clone()));
    }
    // Signal handlers before READY: a SIGHUP or SIGTERM sent as soon as systemd (or a test) sees
    // READY must not meet the default action, which kills the process.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("listening on {local}")),
    ]);
    if let Some(period) = sd_notify::watchdog_enabled() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period / 2);
            loop {
                tick.tick().await;
                notify(&[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
    tokio::spawn(reload_on_sighup(state.clone(), config_path, hup));

    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        tracing::info!("stopping: finishing open streams");
        notify(&[sd_notify::NotifyState::Stopping]);
        // The microphone first: its last final reaches /v1/events clients before "done".
        capture_stop.store(true, Ordering::Relaxed);
        if let Some(t) = capture_thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = shutdown_tx.send(true);
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    // WebSocket streams run outside the server's connection tracking: wait for their finals.
    let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
    while state.metrics.streams_active.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(0)
}

/// The config was validated when it was loaded, so its options are valid.
fn live_options(config: &Config) -> LiveOptions {
    LiveOptions::from_config(config).unwrap_or_default()
}

/// SIGHUP: re-read the config file. Limits, token and endpoint rules apply to new requests and
/// streams; a bad file is logged and the running config kept.
async fn reload_on_sighup(state: Arc<AppState>, path: Option<PathBuf>, mut hup: tokio::signal::unix::Signal) {
    while hup.recv().await.is_some() {
        notify(&[sd_notify::NotifyState::Reloading]);
        match Config::load(path.as_deref()) {
            Ok(mut new) => {
                let mut current = state.config.write().expect("config lock");
                // The listening address and the models are fixed for the life of the process.
                new.server.listen = current.server.listen.clone();
                new.recognition = current.recognition.clone();
                new.capture = current.capture.clone();
                *current = new;
                tracing::info!("configuration reloaded");
            }
            Err(e) => tracing::error!("configuration not reloaded: {e:#}"),
        }
        notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// Bearer-token check for everything but /healthz.
async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let token = state.config.read().expect("config lock").server.token.clone();
    if let Some(token) = token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            state.metrics.rejected_total.fetch_add(1, Ordering::Relaxed);
            return json_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        }
    }
    next.run(request).await
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let dropped = state.capture_stats.dropped_samples.load(Ordering::Relaxed);
    let reopens = state.capture_stats.reopens.load(Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(dropped, reopens))
}

/// Server-sent events: the daemon's microphone transcript, one JSON event per message.
async fn events(State(state): State<Arc<AppState>>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let Some(tx) = &state.mic_events else {
        return json_error(
            StatusCode::NOT_FOUND,
            "the microphone is not enabled ([capture] enabled = true in the config)",
        );
    };
    let rx = tx.subscribe();
    let shutdown = state.shutdown.clone();
    let stream = futures_util::stream::unfold((rx, false), move |(mut rx, done)| {
        let mut shutdown = shutdown.clone();
        async move {
            if done {
                return None;
            }
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Ok(json) => return Some((Ok::<_, std::convert::Infallible>(Event::default().data(json)), (rx, false))),
                        Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "an /v1/events client fell behind"),
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = until_stopping(&mut shutdown) => return Some((Ok(Event::default().data(r#"{"type":"done"}"#)), (rx, true))),
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// A stream (WebSocket, realtime session, Wyoming transcription) counted in the active-stream
/// gauge for as long as it lives, however it ends.
pub struct ActiveStream(Arc<AppState>);

impl ActiveStream {
    /// Counts one more stream; also returns how many are active with it.
    pub fn enter(state: &Arc<AppState>) -> (Self, u64) {
        let active = state.metrics.streams_active.fetch_add(1, Ordering::SeqCst) + 1;
        (Self(state.clone()), active)
    }
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.metrics.streams_active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves when the service starts stopping.
pub async fn until_stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// How long a stream may wait for its last final on shutdown before the server closes anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
