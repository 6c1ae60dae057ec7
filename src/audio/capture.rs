//! Microphone capture through cpal. The device's own rate, sample format and channel count are
//! used as they are; the audio callback only converts to mono f32 and pushes into a preallocated
//! lock-free ring (rtrb) — it never blocks, locks or allocates. When the ring is full (the reader
//! fell behind) samples are dropped and counted. A lost device raises a flag the reader polls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use crate::error::{Error, Result};

/// Seconds of audio the ring holds: enough to ride out a slow second-pass decode.
const RING_SECONDS: usize = 20;
/// Audio per callback the device is asked for.
const CALLBACK_MS: u32 = 10;

/// One row of `hark devices`.
#[derive(Debug, Clone)]
pub struct InputDevice {
    pub index: usize,
    /// The host's identifier (ALSA: the PCM name, e.g. `pulse`, `hw:0,0`).
    pub id: String,
    pub name: String,
    pub is_default: bool,
    /// The default input configuration, e.g. "48000 Hz, 2 ch, f32".
    pub config: Option<String>,
}

fn device_id(d: &cpal::Device) -> String {
    d.id().map(|id| id.id().to_string()).unwrap_or_default()
}

/// Input devices of the default host, in the host's order (the index `--device` accepts).
pub fn input_devices() -> Result<Vec<InputDevice>> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().map(|d| device_id(&d));
    let devices =
        host.input_devices().map_err(|e| Error::Device(format!("cannot list input devices: {e}")))?;
    Ok(devices
        .enumerate()
        // ALSA lists every plugin (rate converters, upmixers); only those that capture are inputs.
        .filter(|(_, d)| d.default_input_config().is_ok())
        .map(|(index, d)| {
            let id = device_id(&d);
            InputDevice {
                index,
                name: d.description().map(|desc| desc.name().to_string()).unwrap_or_else(|_| id.clone()),
                is_default: default_id.as_deref() == Some(id.as_str()),
                config: d
                    .default_input_config()
                    .ok()
                    .map(|c| format!("{} Hz, {} ch, {}", c.sample_rate(), c.channels(), c.sample_format())),
                id,
            }
        })
        .collect())
}

/// Finds an input or output device by index, host id or name (exact first, then a
/// case-insensitive substring); `None` is the host's default.
pub(super) fn find_device(spec: Option<&str>, output: bool) -> Result<cpal::Device> {
    let host = cpal::default_host();
    let kind = if output { "output" } else { "input" };
    let Some(spec) = spec else {
        let default = if output { host.default_output_device() } else { host.default_input_device() };
        return default.ok_or_else(|| Error::Device(format!("no default {kind} device")));
    };
    let devices: Vec<cpal::Device> = if output {
        host.output_devices().map(|d| d.collect())
    } else {
        host.input_devices().map(|d| d.collect())
    }
    .map_err(|e| Error::Device(format!("cannot list {kind} devices: {e}")))?;
    let name = |d: &cpal::Device| d.description().map(|desc| desc.name().to_string()).unwrap_or_default();
    let found = match spec.parse::<usize>() {
        Ok(i) => devices.get(i).cloned(),
        Err(_) => devices
            .iter()
            .find(|d| device_id(d) == spec || name(d) == spec)
            .or_else(|| devices.iter().find(|d| name(d).to_lowercase().contains(&spec.to_lowercase())))
            .cloned(),
    };
    found.ok_or_else(|| Error::Device(format!("no {kind} device '{spec}' (see `hark devices`)")))
}

/// Counters shared between the audio callback and the reader.
#[derive(Default)]
struct Shared {
    dropped: AtomicU64,
    lost: AtomicBool,
}

/// An open input stream. Not `Send` on every platform: keep it on the thread that opened it.
pub struct Capture {
    _stream: cpal::Stream,
    ring: rtrb::Consumer<f32>,
    shared: Arc<Shared>,
    pub sample_rate: u32,
    pub channels: u16,
    pub device: String,
}

impl Capture {
    /// Opens and starts the device (`None`: the default input).
    pub fn open(device: Option<&str>) -> Result<Self> {
        let dev = find_device(device, false)?;
        let label = format!(
            "{} ({})",
            dev.description().map(|d| d.name().to_string()).unwrap_or_default(),
            device_id(&dev)
        );
        let supported = dev
            .default_input_config()
            .map_err(|e| Error::Device(format!("{label}: no input configuration: {e}")))?;
        let (sample_rate, channels) = (supported.sample_rate(), supported.channels());
        let (producer, ring) = rtrb::RingBuffer::new(sample_rate as usize * RING_SECONDS);
        let shared = Arc::new(Shared::default());
        let mut config: cpal::StreamConfig = supported.into();
        // Small device periods: with the host's default, ALSA's pulse plugin hands over audio in
        // large blocks, and every block's length is added to the latency of partials and finals.
        if let cpal::SupportedBufferSize::Range { min, max } = *supported.buffer_size() {
            config.buffer_size = cpal::BufferSize::Fixed((sample_rate * CALLBACK_MS / 1000).clamp(min, max));
        }
        let stream = match supported.sample_format() {
            SampleFormat::I16 => build::<i16>(&dev, config, producer, shared.clone()),
            SampleFormat::U16 => build::<u16>(&dev, config, producer, shared.clone()),
            SampleFormat::I32 => build::<i32>(&dev, config, producer, shared.clone()),
            SampleFormat::F32 => build::<f32>(&dev, config, producer, shared.clone()),
            SampleFormat::F64 => build::<f64>(&dev, config, producer, shared.clone()),
            SampleFormat::I8 => build::<i8>(&dev, config, producer, shared.clone()),
            SampleFormat::U8 => build::<u8>(&dev, config, producer, shared.clone()),
            other => return Err(Error::Device(format!("{label}: unsupported sample format {other}"))),
        }
        .map_err(|e| Error::Device(format!("{label}: cannot open the input stream: {e}")))?;
        stream.play().map_err(|e| Error::Device(format!("{label}: cannot start capture: {e}")))?;
        tracing::info!(device = %label, sample_rate, channels, format = %supported.sample_format(), "capture started");
        Ok(Self { _stream: stream, ring, shared, sample_rate, channels, device: label })
    }

    /// Moves every captured (mono) sample into `out`.
    pub fn read(&mut self, out: &mut Vec<f32>) {
        let n = self.ring.slots();
        if let Ok(chunk) = self.ring.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            out.extend_from_slice(a);
            out.extend_from_slice(b);
            chunk.commit_all();
        }
    }

    /// Samples dropped because the reader fell behind, since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.shared.dropped.swap(0, Ordering::Relaxed)
    }

    /// The device went away (unplugged, sound server restarted): reopen it.
    pub fn is_lost(&self) -> bool {
        self.shared.lost.load(Ordering::Relaxed)
    }
}

fn build<T>(
    dev: &cpal::Device,
    config: cpal::StreamConfig,
    mut producer: rtrb::Producer<f32>,
    shared: Arc<Shared>,
) -> std::result::Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = config.channels.max(1) as usize;
    let scale = 1.0 / channels as f32;
    let on_error_shared = shared.clone();
    dev.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _| {
            // Runs on the audio thread: no locks, no allocation, no logging.
            let frames = data.len() / channels;
            let room = producer.slots().min(frames);
            if room < frames {
                shared.dropped.fetch_add((frames - room) as u64, Ordering::Relaxed);
            }
            if let Ok(mut chunk) = producer.write_chunk_uninit(room) {
                let (a, b) = chunk.as_mut_slices();
                for (slot, frame) in a.iter_mut().chain(b.iter_mut()).zip(data.chunks_exact(channels)) {
                    let sum: f32 = frame.iter().map(|&s| <f32 as FromSample<T>>::from_sample_(s)).sum();
                    slot.write(sum * scale);
                }
                // SAFETY: every slot of the chunk was written just above (`room` frames).
                unsafe { chunk.commit_all() };
            }
        },
        move |err: cpal::Error| {
            use cpal::ErrorKind::*;
            match err.kind() {
                Xrun => tracing::debug!("capture overrun: {err}"),
                DeviceChanged | RealtimeDenied => tracing::info!("capture: {err}"),
                _ => {
                    tracing::warn!("input device error: {err}");
                    on_error_shared.lost.store(true, Ordering::Relaxed);
                }
            }
        },
        None,
    )
}
