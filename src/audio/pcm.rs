//! Raw PCM as network clients send it: little-endian integer samples of 1–4 bytes (8-bit is
//! unsigned, as in WAV) or 32-bit floats, interleaved channels. Decoding checks what the client
//! declared (whole frames, finite floats) so a bad frame is a clear error, not noise.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Little-endian signed integers of this many bytes (1 = unsigned 8-bit).
    Int(u8),
    F32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcmFormat {
    pub sample: SampleFormat,
    pub channels: u16,
}

impl PcmFormat {
    /// Integer PCM as Wyoming declares it (`width` bytes per sample).
    pub fn int(width: u64, channels: u64) -> Result<Self> {
        if !(1..=4).contains(&width) {
            return Err(Error::InvalidInput(format!(
                "sample width {width} is not supported (1, 2, 3 or 4 bytes)"
            )));
        }
        if !(1..=32).contains(&channels) {
            return Err(Error::InvalidInput(format!("{channels} channels is not supported (1 to 32)")));
        }
        Ok(Self { sample: SampleFormat::Int(width as u8), channels: channels as u16 })
    }

    pub fn bytes_per_frame(self) -> usize {
        let width = match self.sample {
            SampleFormat::Int(w) => w as usize,
            SampleFormat::F32 => 4,
        };
        width * self.channels as usize
    }

    /// Mono samples in [-1, 1] (channels averaged).
    pub fn decode_mono(self, bytes: &[u8]) -> Result<Vec<f32>> {
        let frame = self.bytes_per_frame();
        if !bytes.len().is_multiple_of(frame) {
            return Err(Error::InvalidInput(format!(
                "audio of {} bytes is not a whole number of {frame}-byte frames",
                bytes.len()
            )));
        }
        let width = frame / self.channels as usize;
        let sample = |b: &[u8]| -> f32 {
            match self.sample {
                SampleFormat::Int(1) => (b[0] as f32 - 128.0) / 128.0,
                SampleFormat::Int(2) => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
                SampleFormat::Int(3) => (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0,
                SampleFormat::Int(_) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
                SampleFormat::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            }
        };
        let mut out = Vec::with_capacity(bytes.len() / frame);
        for f in bytes.chunks_exact(frame) {
            let sum: f32 = f.chunks_exact(width).map(sample).sum();
            if !sum.is_finite() {
                return Err(Error::InvalidInput("the audio holds NaN or infinite samples".into()));
            }
            out.push(sum / self.channels as f32);
        }
        Ok(out)
    }
}

/// 16-bit little-endian PCM of samples in [-1, 1] (clipped).
pub fn to_s16le(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_decodes_to_the_same_value() {
        let half = |w| PcmFormat::int(w, 1).unwrap();
        assert_eq!(half(1).decode_mono(&[192]).unwrap(), vec![0.5]);
        assert_eq!(half(2).decode_mono(&[0x00, 0x40]).unwrap(), vec![0.5]);
        assert_eq!(half(3).decode_mono(&[0x00, 0x00, 0xc0]).unwrap(), vec![-0.5]);
        assert_eq!(half(4).decode_mono(&[0, 0, 0, 0x40]).unwrap(), vec![0.5]);
        let f = PcmFormat { sample: SampleFormat::F32, channels: 1 };
        assert_eq!(f.decode_mono(&0.25f32.to_le_bytes()).unwrap(), vec![0.25]);
    }

    #[test]
    fn channels_are_averaged_and_bad_input_refused() {
        let stereo = PcmFormat::int(2, 2).unwrap();
        assert_eq!(stereo.decode_mono(&[0x00, 0x40, 0x00, 0x00]).unwrap(), vec![0.25]);
        assert!(stereo.decode_mono(&[0, 0, 0]).unwrap_err().to_string().contains("whole number"));
        assert!(PcmFormat::int(5, 1).unwrap_err().to_string().contains("width"));
        assert!(PcmFormat::int(2, 0).is_err());
        let f = PcmFormat { sample: SampleFormat::F32, channels: 1 };
        assert!(f.decode_mono(&f32::NAN.to_le_bytes()).is_err());
        assert_eq!(to_s16le(&[0.5, -2.0]), vec![0x00, 0x40, 0x01, 0x80]);
    }
}
