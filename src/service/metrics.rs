//! Counters for `/metrics`, in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::audio::SAMPLE_RATE;
use crate::tts::Tts;

#[derive(Default)]
pub struct Metrics {
    pub streams_active: AtomicU64,
    pub streams_total: AtomicU64,
    pub uploads_total: AtomicU64,
    /// Audio received, in samples at 16 kHz (streams and uploads).
    pub audio_samples: AtomicU64,
    /// Time spent recognising it, in microseconds.
    pub processing_us: AtomicU64,
    pub errors_total: AtomicU64,
    /// Text-to-speech requests, and the audio they produced (samples at 24 kHz).
    pub speech_total: AtomicU64,
    pub speech_samples: AtomicU64,
    pub rejected_total: AtomicU64,
}

impl Metrics {
    pub fn add_audio(&self, samples: u64, processing: std::time::Duration) {
        self.audio_samples.fetch_add(samples, Ordering::Relaxed);
        self.processing_us.fetch_add(processing.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn render(&self, capture_dropped: u64, capture_reopens: u64) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let audio_s = get(&self.audio_samples) as f64 / SAMPLE_RATE as f64;
        let processing_s = get(&self.processing_us) as f64 / 1e6;
        let rtf = if audio_s > 0.0 { processing_s / audio_s } else { 0.0 };
        let rows: [(&str, &str, &str, f64); 12] = [
            ("hark_streams_active", "gauge", "WebSocket streams open now", get(&self.streams_active) as f64),
            ("hark_streams_total", "counter", "WebSocket streams accepted", get(&self.streams_total) as f64),
            (
                "hark_uploads_total",
                "counter",
                "Files transcribed through /v1/audio/transcriptions",
                get(&self.uploads_total) as f64,
            ),
            ("hark_audio_seconds_total", "counter", "Seconds of audio recognised", audio_s),
            ("hark_processing_seconds_total", "counter", "Seconds spent recognising it", processing_s),
            ("hark_real_time_factor", "gauge", "Processing time over audio time since start", rtf),
            (
                "hark_errors_total",
                "counter",
                "Requests and streams ended by an error",
                get(&self.errors_total) as f64,
            ),
            (
                "hark_rejected_total",
                "counter",
                "Requests refused (auth, limits)",
                get(&self.rejected_total) as f64,
            ),
            ("hark_speech_total", "counter", "Requests to /v1/audio/speech", get(&self.speech_total) as f64),
            (
                "hark_speech_seconds_total",
                "counter",
                "Seconds of speech synthesised",
                get(&self.speech_samples) as f64 / f64::from(Tts::SAMPLE_RATE),
            ),
            (
                "hark_capture_dropped_seconds_total",
                "counter",
                "Microphone audio dropped because transcription fell behind",
                capture_dropped as f64 / 16000.0,
            ),
            (
                "hark_capture_reopens_total",
                "counter",
                "Times the microphone was reopened after it was lost",
                capture_reopens as f64,
            ),
        ];
        rows.iter()
            .map(|(name, kind, help, v)| format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"))
            .collect()
    }
}
