//! File decoding on symphonia: WAV, FLAC, MP3, Ogg Vorbis (and whatever else symphonia's default
//! registry reads), packet by packet, so memory stays flat however long the file is. Opus, which
//! symphonia demuxes but cannot decode, is decoded by libopus (the `opus` crate hark also encodes
//! with), its packets trimmed as the container says (pre-skip, end padding).

use std::fs::File;
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoder;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::audio::well_known::{CODEC_ID_AAC, CODEC_ID_AC3, CODEC_ID_OPUS, CODEC_ID_SPEEX};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: usize,
    /// Duration in seconds when the container states it.
    pub duration_s: Option<f64>,
}

/// What turns the container's packets into samples.
enum Codec {
    Symphonia(Box<dyn AudioDecoder>),
    /// libopus at 48 kHz; `pcm` holds one packet's interleaved output (at most 120 ms).
    Opus {
        decoder: opus::Decoder,
        pcm: Vec<f32>,
    },
}

/// libopus decodes at this rate (Opus's own; pre-skip and granules count in it).
const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz.
const OPUS_MAX_FRAMES: usize = 5760;

impl Codec {
    fn new(params: &symphonia::core::codecs::audio::AudioCodecParameters) -> Result<Self> {
        if params.codec == CODEC_ID_OPUS {
            let channels = match params.channels.as_ref().map(|c| c.count()) {
                Some(1) => opus::Channels::Mono,
                Some(2) => opus::Channels::Stereo,
                other => {
                    return Err(Error::UnsupportedCodec(format!(
                        "Opus with {} channels (multistream) cannot be decoded by hark",
                        other.unwrap_or(0)
                    )));
                }
            };
            let decoder = opus::Decoder::new(OPUS_RATE, channels)
                .map_err(|e| Error::UnsupportedCodec(format!("Opus decoder: {e}")))?;
            let n = channels as usize;
            return Ok(Self::Opus { decoder, pcm: vec![0.0; OPUS_MAX_FRAMES * n] });
        }
        symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map(Self::Symphonia)
            .map_err(|_| {
                Error::UnsupportedCodec(format!("{} cannot be decoded by hark", codec_name(params.codec)))
            })
    }

    /// The rate of the samples it puts out: libopus always decodes at 48 kHz, whatever rate the
    /// encoder was given; symphonia's decoders at the stream's own.
    fn output_rate(&self, params: &symphonia::core::codecs::audio::AudioCodecParameters) -> u32 {
        match self {
            Self::Opus { .. } => OPUS_RATE,
            Self::Symphonia(_) => params.sample_rate.unwrap_or(0),
        }
    }
}

pub struct FileDecoder {
    format: Box<dyn FormatReader>,
    codec: Codec,
    track_id: u32,
    info: AudioInfo,
    buf: Vec<f32>,
    frames_out: u64,
    decode_errors: usize,
}

/// Packets that fail to decode are skipped (a glitch, not a lost file) up to this many.
const MAX_DECODE_ERRORS: usize = 32;

fn codec_name(id: symphonia::core::codecs::audio::AudioCodecId) -> String {
    match id {
        CODEC_ID_OPUS => "Opus".into(),
        CODEC_ID_AAC => "AAC".into(),
        CODEC_ID_AC3 => "AC-3".into(),
        CODEC_ID_SPEEX => "Speex".into(),
        other => format!("codec id {other}"),
    }
}

/// Samples a streamed WAV's header states at least: a data size near 2^32 bytes over at most
/// 4 bytes per sample (no genuine WAV, capped at 4 GB, comes near it).
const STREAMED_WAV_SAMPLES: u64 = (u32::MAX as u64 - 0xFFFF) / 4;

impl FileDecoder {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(Error::Unreadable)?;
        let len = file.metadata().map_err(Error::Unreadable)?.len();
        if file.metadata().map_err(Error::Unreadable)?.is_dir() {
            return Err(Error::Unreadable(std::io::Error::other("it is a directory")));
        }
        if len == 0 {
            return Err(Error::EmptyAudio);
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Error::NotAudio("no audio container recognised (file too short)".into())
                }
                SymError::Unsupported(_) => Error::NotAudio("no supported audio container recognised".into()),
                other => Error::NotAudio(other.to_string()),
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| Error::NotAudio("the file has no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| Error::NotAudio("the audio track has no codec parameters".into()))?
            .clone();
        let codec = Codec::new(&params)?;
        let sample_rate = codec.output_rate(&params);
        let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        // A WAV written while streaming (by hark's /v1/audio/speech, ffmpeg to a pipe) states the
        // largest size a 32-bit header holds: its length is unknown, not ~12 hours long.
        let streamed =
            track.num_frames.is_some_and(|n| n.saturating_mul(channels as u64) >= STREAMED_WAV_SAMPLES);
        let duration_s = match (track.num_frames, sample_rate) {
            (Some(n), r) if r > 0 && !streamed => Some(n as f64 / r as f64),
            _ => None,
        };
        let track_id = track.id;
        if sample_rate == 0 || channels == 0 {
            return Err(Error::InvalidAudio(format!("{sample_rate} Hz, {channels} channels")));
        }
        Ok(Self {
            format,
            codec,
            track_id,
            info: AudioInfo { sample_rate, channels, duration_s },
            buf: Vec::new(),
            frames_out: 0,
            decode_errors: 0,
        })
    }

    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    fn position_s(&self) -> f64 {
        self.frames_out as f64 / self.info.sample_rate as f64
    }

    /// The next decoded packet as interleaved f32, or None at the end of the stream.
    pub fn next_interleaved(&mut self) -> Result<Option<&[f32]>> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return self.end(),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    // Some demuxers report a clean end this way; a stated length that is not reached is truncation.
                    return self.end();
                }
                Err(e) => {
                    return Err(Error::CorruptAudio { position_s: self.position_s(), reason: e.to_string() });
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let position_s = self.position_s();
            let decoded = match &mut self.codec {
                Codec::Symphonia(decoder) => match decoder.decode(&packet) {
                    Ok(decoded) => {
                        let spec = decoded.spec();
                        if spec.rate() != self.info.sample_rate
                            || spec.channels().count() != self.info.channels
                        {
                            return Err(Error::CorruptAudio {
                                position_s,
                                reason: format!(
                                    "the stream changes format mid-file ({} Hz, {} channels)",
                                    spec.rate(),
                                    spec.channels().count()
                                ),
                            });
                        }
                        decoded.copy_to_vec_interleaved(&mut self.buf);
                        Ok(())
                    }
                    Err(SymError::DecodeError(reason)) => Err(reason.to_string()),
                    Err(e) => return Err(Error::CorruptAudio { position_s, reason: e.to_string() }),
                },
                Codec::Opus { decoder, pcm } => match decoder.decode_float(&packet.data, pcm, false) {
                    Ok(frames) => {
                        // Pre-skip at the start and padding at the end are not audio.
                        let channels = self.info.channels;
                        let start = (packet.trim_start.get() as usize).min(frames);
                        let end = frames.saturating_sub(packet.trim_end.get() as usize).max(start);
                        self.buf.clear();
                        self.buf.extend_from_slice(&pcm[start * channels..end * channels]);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            match decoded {
                Ok(()) => {
                    if self.buf.is_empty() {
                        continue;
                    }
                    self.frames_out += (self.buf.len() / self.info.channels) as u64;
                    return Ok(Some(&self.buf));
                }
                Err(reason) => {
                    self.decode_errors += 1;
                    tracing::warn!(position_s, reason, "skipping an undecodable packet");
                    if self.decode_errors > MAX_DECODE_ERRORS {
                        return Err(Error::CorruptAudio { position_s, reason });
                    }
                }
            }
        }
    }

    fn end(&mut self) -> Result<Option<&[f32]>> {
        if self.frames_out == 0 {
            return Err(Error::EmptyAudio);
        }
        if let Some(stated) = self.info.duration_s {
            let got = self.position_s();
            // Allow a codec's priming/padding frames; a real truncation loses far more.
            if got + 0.1 < stated * 0.99 {
                return Err(Error::CorruptAudio {
                    position_s: got,
                    reason: format!("the file is truncated: it states {stated:.2} s but ends at {got:.2} s"),
                });
            }
        }
        Ok(None)
    }
}
