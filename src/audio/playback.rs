//! Playback through cpal, the mirror of capture.rs: mono f32 at any rate goes in, is resampled to
//! the output device's own rate and sample format, and reaches the device through a lock-free
//! ring (rtrb) that the audio callback only reads — it never blocks, locks or allocates; when the
//! ring runs dry it plays silence. `write` waits for room, so a producer that is faster than real
//! time is paced by the device. A device that fails is reopened a few times.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use super::Resampler;
use super::capture::find_device;
use crate::error::{Error, Result};

/// Seconds of audio queued ahead of the device.
const RING_SECONDS: usize = 4;

#[derive(Default)]
struct Shared {
    /// The device reported an error.
    failed: AtomicBool,
    /// Times the device has asked for audio.
    callbacks: AtomicU64,
}

impl Shared {
    /// The device reported an error and has stopped asking for audio. The ALSA pulse plugin
    /// reports transient errors on a stream that goes on playing: those are not a failure.
    fn stalled(&self) -> bool {
        if !self.failed.load(Ordering::Relaxed) {
            return false;
        }
        let before = self.callbacks.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
        if self.callbacks.load(Ordering::Relaxed) > before {
            self.failed.store(false, Ordering::Relaxed);
            tracing::debug!("output device reported an error but plays on");
            return false;
        }
        true
    }
}

/// Times a device that fails is reopened before playback gives up (the ALSA pulse plugin can
/// fail a just-opened stream while the server connects).
const REOPEN_ATTEMPTS: usize = 3;

pub struct Playback {
    _stream: cpal::Stream,
    ring: rtrb::Producer<f32>,
    resampler: Resampler,
    shared: Arc<Shared>,
    pub sample_rate: u32,
    pub device: String,
    spec: Option<String>,
    input_rate: u32,
    reopened: usize,
}

impl Playback {
    /// Opens the output device (`None`: the default) for audio at `input_rate`.
    pub fn open(device: Option<&str>, input_rate: u32) -> Result<Self> {
        let (mut stream, mut ring, mut shared, mut sample_rate, mut label) = Self::start(device)?;
        // Nothing is queued until the device runs: a stream that fails as it starts (the ALSA
        // pulse plugin under load) is reopened before it could lose any audio.
        let mut attempts = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while shared.callbacks.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            if shared.stalled() {
                attempts += 1;
                if attempts > REOPEN_ATTEMPTS {
                    return Err(Error::Device(format!("{label}: the output device fails as it starts")));
                }
                tracing::info!(device = %label, "output device failed as it started; reopening it");
                drop(stream);
                std::thread::sleep(Duration::from_millis(200));
                (stream, ring, shared, sample_rate, label) = Self::start(device)?;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Self {
            _stream: stream,
            ring,
            resampler: Resampler::new(input_rate, sample_rate)?,
            shared,
            sample_rate,
            device: label,
            spec: device.map(String::from),
            input_rate,
            reopened: 0,
        })
    }

    #[allow(clippy::type_complexity)]
    fn start(device: Option<&str>) -> Result<(cpal::Stream, rtrb::Producer<f32>, Arc<Shared>, u32, String)> {
        let dev = find_device(device, true)
            .map_err(|e| Error::Device(format!("{e}; write a file with -o instead")))?;
        let label = dev.description().map(|d| d.name().to_string()).unwrap_or_default();
        let supported = dev
            .default_output_config()
            .map_err(|e| Error::Device(format!("{label}: no output configuration: {e}")))?;
        let sample_rate = supported.sample_rate();
        let (producer, ring) = rtrb::RingBuffer::new(sample_rate as usize * RING_SECONDS);
        let shared = Arc::new(Shared::default());
        let config: cpal::StreamConfig = supported.config();
        let stream = match supported.sample_format() {
            SampleFormat::I16 => build::<i16>(&dev, config, ring, shared.clone()),
            SampleFormat::U16 => build::<u16>(&dev, config, ring, shared.clone()),
            SampleFormat::I32 => build::<i32>(&dev, config, ring, shared.clone()),
            SampleFormat::F32 => build::<f32>(&dev, config, ring, shared.clone()),
            SampleFormat::F64 => build::<f64>(&dev, config, ring, shared.clone()),
            SampleFormat::I8 => build::<i8>(&dev, config, ring, shared.clone()),
            SampleFormat::U8 => build::<u8>(&dev, config, ring, shared.clone()),
            other => return Err(Error::Device(format!("{label}: unsupported sample format {other}"))),
        }
        .map_err(|e| Error::Device(format!("{label}: cannot open the output stream: {e}")))?;
        stream.play().map_err(|e| Error::Device(format!("{label}: cannot start playback: {e}")))?;
        tracing::info!(device = %label, sample_rate, format = %supported.sample_format(), "playback started");
        Ok((stream, producer, shared, sample_rate, label))
    }

    /// A device that failed and stopped playing is reopened a few times (what was queued on it
    /// is lost, and said so).
    fn recover(&mut self) -> Result<()> {
        if !self.shared.stalled() {
            return Ok(());
        }
        if self.reopened >= REOPEN_ATTEMPTS {
            return Err(Error::Device(format!("{}: the output device went away", self.device)));
        }
        self.reopened += 1;
        let queued = self.ring.buffer().capacity() - self.ring.slots();
        tracing::warn!(device = %self.device, lost_s = queued as f64 / f64::from(self.sample_rate), "output device failed; reopening it");
        std::thread::sleep(Duration::from_millis(200));
        let (stream, ring, shared, sample_rate, label) = Self::start(self.spec.as_deref())?;
        if sample_rate != self.sample_rate {
            self.resampler = Resampler::new(self.input_rate, sample_rate)?;
        }
        (self._stream, self.ring, self.shared, self.sample_rate, self.device) =
            (stream, ring, shared, sample_rate, label);
        Ok(())
    }

    fn push(&mut self, samples: &[f32]) -> Result<()> {
        let mut rest = samples;
        while !rest.is_empty() {
            self.recover()?;
            let n = self.ring.slots().min(rest.len());
            if n == 0 {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            if let Ok(chunk) = self.ring.write_chunk_uninit(n) {
                chunk.fill_from_iter(rest[..n].iter().copied());
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Queues mono samples (at the rate given to `open`), waiting while the queue is full.
    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        let mut resampled = Vec::new();
        self.resampler.process(samples, &mut resampled)?;
        self.push(&resampled)
    }

    /// Plays out what is queued and returns when the device has taken it all.
    pub fn finish(mut self) -> Result<()> {
        let mut tail = Vec::new();
        self.resampler.finish(&mut tail)?;
        self.push(&tail)?;
        let queued = self.ring.buffer().capacity() - self.ring.slots();
        let deadline =
            Instant::now() + Duration::from_secs_f64(queued as f64 / f64::from(self.sample_rate) + 2.0);
        while self.ring.slots() < self.ring.buffer().capacity() && Instant::now() < deadline {
            self.recover()?;
            std::thread::sleep(Duration::from_millis(10));
        }
        // The device's own buffer still holds the last period or two.
        std::thread::sleep(Duration::from_millis(100));
        Ok(())
    }
}

fn build<T>(
    dev: &cpal::Device,
    config: cpal::StreamConfig,
    mut ring: rtrb::Consumer<f32>,
    shared: Arc<Shared>,
) -> std::result::Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = config.channels.max(1) as usize;
    let error_shared = shared.clone();
    dev.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], _| {
            // Runs on the audio thread: no locks, no allocation, no logging.
            let frames = data.len() / channels;
            let available = ring.slots().min(frames);
            let mut played = 0;
            shared.callbacks.fetch_add(1, Ordering::Relaxed);
            // Silence when nothing is queued (synthesis behind, or the end).
            if let Ok(chunk) = ring.read_chunk(available) {
                let (a, b) = chunk.as_slices();
                for (frame, &s) in data.chunks_exact_mut(channels).zip(a.iter().chain(b)) {
                    frame.fill(T::from_sample_(s));
                    played += 1;
                }
                chunk.commit_all();
            }
            for frame in data.chunks_exact_mut(channels).skip(played) {
                frame.fill(T::from_sample_(0.0f32));
            }
        },
        move |err: cpal::Error| {
            use cpal::ErrorKind::*;
            match err.kind() {
                Xrun => tracing::debug!("playback underrun: {err}"),
                DeviceChanged | RealtimeDenied => tracing::info!("playback: {err}"),
                _ => {
                    tracing::warn!("output device error: {err}");
                    error_shared.failed.store(true, Ordering::Relaxed);
                }
            }
        },
        None,
    )
}
