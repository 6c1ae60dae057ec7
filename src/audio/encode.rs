//! Encoding speech for network replies, in every format OpenAI's `/v1/audio/speech` offers:
//! MP3 (LAME), Opus in Ogg (libopus, RFC 7845 headers), AAC-LC in ADTS (Fraunhofer FDK AAC),
//! FLAC (flacenc), WAV and raw 16-bit PCM. Each encoder takes audio as it is made and returns
//! the bytes it can already send, so a reply starts before the last sentence is spoken (FLAC,
//! whose header holds the total length, is written whole at the end).

use std::str::FromStr;

use super::pcm::to_s16le;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechFormat {
    Mp3,
    Opus,
    Aac,
    Flac,
    Wav,
    Pcm,
}

impl FromStr for SpeechFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "mp3" => Self::Mp3,
            "opus" => Self::Opus,
            "aac" => Self::Aac,
            "flac" => Self::Flac,
            "wav" => Self::Wav,
            "pcm" => Self::Pcm,
            other => {
                return Err(Error::InvalidInput(format!(
                    "response_format '{other}' is not supported (mp3, opus, aac, flac, wav, pcm)"
                )));
            }
        })
    }
}

impl SpeechFormat {
    /// The MIME type OpenAI's API answers with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::Opus => "audio/ogg",
            Self::Aac => "audio/aac",
            Self::Flac => "audio/flac",
            Self::Wav => "audio/wav",
            Self::Pcm => "audio/pcm",
        }
    }

    /// An encoder for mono audio at `rate` Hz.
    pub fn encoder(self, rate: u32) -> Result<Box<dyn StreamEncoder>> {
        Ok(match self {
            Self::Mp3 => Box::new(Mp3Encoder::new(rate)?),
            Self::Opus => Box::new(OpusEncoder::new(rate)?),
            Self::Aac => Box::new(AacEncoder::new(rate)?),
            Self::Flac => Box::new(FlacEncoder { rate, samples: Vec::new() }),
            Self::Wav => Box::new(WavEncoder { rate, header_sent: false }),
            Self::Pcm => Box::new(PcmEncoder),
        })
    }
}

/// Audio in (mono, [-1, 1]), bytes out.
pub trait StreamEncoder: Send {
    /// Encodes more audio; returns the bytes ready to send (possibly none).
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>>;
    /// The audio has ended: the remaining bytes.
    fn finish(&mut self) -> Result<Vec<u8>>;
}

/// Encodes a whole clip.
pub fn encode(format: SpeechFormat, samples: &[f32], rate: u32) -> Result<Vec<u8>> {
    let mut encoder = format.encoder(rate)?;
    let mut out = encoder.push(samples)?;
    out.extend(encoder.finish()?);
    Ok(out)
}

fn codec_error(codec: &str, e: impl std::fmt::Debug) -> Error {
    Error::Model(format!("{codec} encoder: {e:?}"))
}

fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16).collect()
}

struct PcmEncoder;

impl StreamEncoder for PcmEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>> {
        Ok(to_s16le(samples))
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }
}

struct WavEncoder {
    rate: u32,
    header_sent: bool,
}

/// A WAV header for a stream of unknown length: the sizes are the largest possible (the data size
/// even, a whole number of samples), which players and decoders read as "to the end of the file".
pub fn streaming_wav_header(rate: u32) -> Vec<u8> {
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

impl StreamEncoder for WavEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>> {
        let mut out = if std::mem::replace(&mut self.header_sent, true) {
            Vec::new()
        } else {
            streaming_wav_header(self.rate)
        };
        out.extend(to_s16le(samples));
        Ok(out)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        self.push(&[])
    }
}

struct Mp3Encoder(mp3lame_encoder::Encoder);

impl Mp3Encoder {
    fn new(rate: u32) -> Result<Self> {
        let err = |e| codec_error("MP3", e);
        let mut b = mp3lame_encoder::Builder::new()
            .ok_or_else(|| Error::Model("MP3 encoder: LAME could not be initialised".into()))?;
        b.set_num_channels(1).map_err(err)?;
        b.set_sample_rate(rate).map_err(err)?;
        b.set_brate(mp3lame_encoder::Bitrate::Kbps64).map_err(err)?;
        b.set_quality(mp3lame_encoder::Quality::Good).map_err(err)?;
        Ok(Self(b.build().map_err(err)?))
    }
}

impl StreamEncoder for Mp3Encoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>> {
        let pcm = to_i16(samples);
        let mut out = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(pcm.len()));
        self.0.encode_to_vec(mp3lame_encoder::MonoPcm(&pcm), &mut out).map_err(|e| codec_error("MP3", e))?;
        Ok(out)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(7200);
        self.0.flush_to_vec::<mp3lame_encoder::FlushNoGap>(&mut out).map_err(|e| codec_error("MP3", e))?;
        Ok(out)
    }
}

/// Opus in Ogg (RFC 7845): 20 ms packets; granule positions count 48 kHz samples from the start
/// of the pre-skip, and the last page's position trims the padding of the final packet.
struct OpusEncoder {
    encoder: opus::Encoder,
    frame: usize,
    /// The encoder's delay in 48 kHz samples (skipped by decoders).
    pre_skip: u64,
    /// Samples not yet a whole frame.
    pending: Vec<f32>,
    /// Input samples so far (at `rate`).
    consumed: u64,
    rate: u32,
    /// The encoded packet held back so the last one can end the stream.
    held: Option<(Vec<u8>, u64)>,
    /// Once finishing: the real input length (the padding that drains the encoder is not audio).
    end: Option<u64>,
    writer: ogg::PacketWriter<'static, Vec<u8>>,
}

const OGG_SERIAL: u32 = 0x6861_726b; // "hark"

impl OpusEncoder {
    fn new(rate: u32) -> Result<Self> {
        if ![8000, 12000, 16000, 24000, 48000].contains(&rate) {
            return Err(Error::InvalidInput(format!("Opus encodes 8, 12, 16, 24 or 48 kHz, not {rate} Hz")));
        }
        let err = |e| codec_error("Opus", e);
        let mut encoder =
            opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Audio).map_err(err)?;
        let pre_skip = encoder.get_lookahead().map_err(err)? as u64 * 48_000 / rate as u64;
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(1); // channels
        head.extend((pre_skip as u16).to_le_bytes());
        head.extend(rate.to_le_bytes());
        head.extend(0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family: mono/stereo
        let vendor = concat!("hark ", env!("CARGO_PKG_VERSION"));
        let mut tags = b"OpusTags".to_vec();
        tags.extend((vendor.len() as u32).to_le_bytes());
        tags.extend(vendor.as_bytes());
        tags.extend(0u32.to_le_bytes()); // no comments
        let mut writer = ogg::PacketWriter::new(Vec::new());
        let io = |e: std::io::Error| codec_error("Ogg", e);
        writer.write_packet(head, OGG_SERIAL, ogg::PacketWriteEndInfo::EndPage, 0).map_err(io)?;
        writer.write_packet(tags, OGG_SERIAL, ogg::PacketWriteEndInfo::EndPage, 0).map_err(io)?;
        Ok(Self {
            encoder,
            frame: rate as usize / 50,
            pre_skip,
            pending: Vec::new(),
            consumed: 0,
            rate,
            held: None,
            end: None,
            writer,
        })
    }

    /// The granule position after `samples` input samples: decoded samples including the
    /// pre-skip, never past the real end.
    fn granule(&self, samples: u64) -> u64 {
        self.pre_skip + samples.min(self.end.unwrap_or(u64::MAX)) * 48_000 / self.rate as u64
    }

    fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(self.writer.inner_mut())
    }

    fn encode_frames(&mut self, last: bool) -> Result<()> {
        while self.pending.len() >= self.frame || (last && !self.pending.is_empty()) {
            let n = self.frame.min(self.pending.len());
            let mut frame: Vec<f32> = self.pending.drain(..n).collect();
            frame.resize(self.frame, 0.0);
            let packet = self.encoder.encode_vec_float(&frame, 4000).map_err(|e| codec_error("Opus", e))?;
            self.consumed += n as u64;
            let granule = self.granule(self.consumed);
            if let Some((held, at)) = self.held.replace((packet, granule)) {
                self.writer
                    .write_packet(held, OGG_SERIAL, ogg::PacketWriteEndInfo::NormalPacket, at)
                    .map_err(|e| codec_error("Ogg", e))?;
            }
        }
        Ok(())
    }
}

impl StreamEncoder for OpusEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>> {
        self.pending.extend(samples.iter().map(|s| s.clamp(-1.0, 1.0)));
        self.encode_frames(false)?;
        Ok(self.take_output())
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        // The encoder's delay: the last real audio leaves it `pre_skip` samples later.
        self.end = Some(self.consumed + self.pending.len() as u64);
        let delay = (self.pre_skip * self.rate as u64).div_ceil(48_000) as usize;
        self.pending.extend(std::iter::repeat_n(0.0, delay));
        self.encode_frames(true)?;
        let (packet, granule) = match self.held.take() {
            Some(held) => held,
            // No audio at all: one silent packet, so the stream is still valid.
            None => (
                self.encoder
                    .encode_vec_float(&vec![0.0; self.frame], 4000)
                    .map_err(|e| codec_error("Opus", e))?,
                self.pre_skip,
            ),
        };
        self.writer
            .write_packet(packet, OGG_SERIAL, ogg::PacketWriteEndInfo::EndStream, granule)
            .map_err(|e| codec_error("Ogg", e))?;
        Ok(self.take_output())
    }
}

/// AAC-LC in ADTS frames of 1024 samples; the end is padded with silence so the encoder's
/// delay drains (decoders play that as a short tail of silence).
struct AacEncoder {
    encoder: fdk_aac::enc::Encoder,
    pending: Vec<i16>,
}

const AAC_FRAME: usize = 1024;

impl AacEncoder {
    fn new(rate: u32) -> Result<Self> {
        let encoder = fdk_aac::enc::Encoder::new(fdk_aac::enc::EncoderParams {
            bit_rate: fdk_aac::enc::BitRate::Cbr(64_000),
            sample_rate: rate,
            transport: fdk_aac::enc::Transport::Adts,
            channels: fdk_aac::enc::ChannelMode::Mono,
            audio_object_type: fdk_aac::enc::AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(|e| codec_error("AAC", e))?;
        Ok(Self { encoder, pending: Vec::new() })
    }

    fn encode_frames(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        while self.pending.len() >= AAC_FRAME {
            let info = self
                .encoder
                .encode(&self.pending[..AAC_FRAME], &mut buf)
                .map_err(|e| codec_error("AAC", e))?;
            self.pending.drain(..info.input_consumed.min(AAC_FRAME));
            out.extend_from_slice(&buf[..info.output_size]);
            if info.input_consumed == 0 {
                break;
            }
        }
        Ok(out)
    }
}

impl StreamEncoder for AacEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>> {
        self.pending.extend(to_i16(samples));
        self.encode_frames()
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let whole = self.pending.len().div_ceil(AAC_FRAME) * AAC_FRAME;
        self.pending.resize(whole + 2 * AAC_FRAME, 0);
        self.encode_frames()
    }
}

/// FLAC's STREAMINFO carries the total length and checksum: the stream is written at the end.
struct FlacEncoder {
    rate: u32,
    samples: Vec<i32>,
}

impl StreamEncoder for FlacEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>> {
        self.samples.extend(to_i16(samples).into_iter().map(i32::from));
        Ok(Vec::new())
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        use flacenc::component::BitRepr;
        use flacenc::error::Verify;
        let config =
            flacenc::config::Encoder::default().into_verified().map_err(|e| codec_error("FLAC", e))?;
        let source = flacenc::source::MemSource::from_samples(&self.samples, 1, 16, self.rate as usize);
        let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
            .map_err(|e| codec_error("FLAC", e))?;
        let mut sink = flacenc::bitsink::ByteSink::new();
        stream.write(&mut sink).map_err(|e| codec_error("FLAC", e))?;
        let mut bytes = sink.into_inner();
        // STREAMINFO's minimum block size leaves out the last block (the FLAC format's rule, as
        // libFLAC writes it); flacenc counts it, which makes a fixed-block stream look
        // variable-block and symphonia's reader lose sync. Bytes 8–9 and 10–11: min and max.
        if bytes.len() > 12 && &bytes[..4] == b"fLaC" {
            let max = [bytes[10], bytes[11]];
            bytes[8..10].copy_from_slice(&max);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::FileSource;

    /// One second of a 440 Hz tone at 24 kHz.
    fn tone() -> Vec<f32> {
        (0..24_000).map(|i| 0.5 * (i as f32 * 440.0 * std::f32::consts::TAU / 24_000.0).sin()).collect()
    }

    #[test]
    fn every_format_symphonia_reads_decodes_at_the_right_length() {
        for (format, ext) in [
            (SpeechFormat::Mp3, "mp3"),
            (SpeechFormat::Aac, "aac"),
            (SpeechFormat::Flac, "flac"),
            (SpeechFormat::Wav, "wav"),
        ] {
            // Encoded in pieces, as a reply is.
            let mut encoder = format.encoder(24_000).unwrap();
            let mut bytes = Vec::new();
            for piece in tone().chunks(7_000) {
                bytes.extend(encoder.push(piece).unwrap());
            }
            bytes.extend(encoder.finish().unwrap());
            let file = tempfile::Builder::new().suffix(&format!(".{ext}")).tempfile().unwrap();
            std::fs::write(file.path(), &bytes).unwrap();
            let decoded = FileSource::open(file.path())
                .and_then(FileSource::read_all)
                .unwrap_or_else(|e| panic!("{ext}: {e}"));
            let seconds = decoded.len() as f64 / 16_000.0;
            // MP3 and AAC add their encoder delay and padding (< 0.2 s).
            assert!((1.0..1.2).contains(&seconds), "{ext}: {seconds} s");
            let rms = (decoded.iter().map(|s| s * s).sum::<f32>() / decoded.len() as f32).sqrt();
            assert!(rms > 0.25, "{ext}: the tone is gone (rms {rms})");
        }
    }

    #[test]
    fn opus_pages_end_at_the_true_length() {
        let bytes = encode(SpeechFormat::Opus, &tone(), 24_000).unwrap();
        assert_eq!(&bytes[..4], b"OggS");
        let mut reader = ogg::PacketReader::new(std::io::Cursor::new(bytes));
        let mut packets = Vec::new();
        while let Some(p) = reader.read_packet().unwrap() {
            packets.push(p);
        }
        assert!(packets[0].data.starts_with(b"OpusHead") && packets[1].data.starts_with(b"OpusTags"));
        let last = packets.last().unwrap();
        let pre_skip = u16::from_le_bytes([packets[0].data[10], packets[0].data[11]]) as u64;
        assert!(last.last_in_stream());
        assert_eq!(last.absgp_page() - pre_skip, 48_000, "one second at 48 kHz");
        // 20 ms packets, enough of them to hold the pre-skip and the whole second.
        assert_eq!((packets.len() - 2) * 960, (48_000 + pre_skip as usize).div_ceil(960) * 960);
    }

    #[test]
    fn unknown_formats_are_named() {
        assert!(
            "ogg".parse::<SpeechFormat>().unwrap_err().to_string().contains("mp3, opus, aac, flac, wav, pcm")
        );
    }
}
