//! Audio in: decoding files (symphonia), downmixing and resampling to the 16 kHz mono that every
//! later stage expects, and writing WAV (hound).

pub mod capture;
pub mod decode;
pub mod encode;
pub mod pcm;
pub mod playback;
pub mod resample;

pub use decode::{AudioInfo, FileDecoder};
pub use resample::Resampler;

use std::path::Path;

use crate::error::Result;

/// The rate of every stage after audio input.
pub const SAMPLE_RATE: u32 = 16_000;

/// Averages interleaved channels into one. Non-finite samples (NaN, ±inf from a broken float
/// file) become silence, and are counted so the caller can warn.
pub fn downmix_into(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) -> usize {
    let mut non_finite = 0;
    let scale = 1.0 / channels as f32;
    for frame in interleaved.chunks_exact(channels) {
        let mut sum = 0.0;
        for &s in frame {
            if s.is_finite() {
                sum += s;
            } else {
                non_finite += 1;
            }
        }
        out.push(sum * scale);
    }
    non_finite
}

/// Streams a file as 16 kHz mono chunks: decode, downmix, resample — never the whole file at once.
pub struct FileSource {
    decoder: FileDecoder,
    resampler: Resampler,
    mono: Vec<f32>,
    finished: bool,
    non_finite: usize,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self> {
        let decoder = FileDecoder::open(path)?;
        let resampler = Resampler::new(decoder.info().sample_rate, SAMPLE_RATE)?;
        Ok(Self { decoder, resampler, mono: Vec::new(), finished: false, non_finite: 0 })
    }

    pub fn info(&self) -> &AudioInfo {
        self.decoder.info()
    }

    /// Samples replaced by silence because they were NaN or infinite.
    pub fn non_finite_samples(&self) -> usize {
        self.non_finite
    }

    /// The next chunk of 16 kHz mono samples, or None at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>> {
        let mut out = Vec::new();
        while out.is_empty() {
            if self.finished {
                return Ok(None);
            }
            let channels = self.decoder.info().channels;
            match self.decoder.next_interleaved()? {
                Some(samples) => {
                    self.mono.clear();
                    self.non_finite += downmix_into(samples, channels, &mut self.mono);
                    self.resampler.process(&self.mono, &mut out)?;
                }
                None => {
                    self.finished = true;
                    self.resampler.finish(&mut out)?;
                    if out.is_empty() {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(out))
    }

    /// Reads everything (for tests and short clips).
    pub fn read_all(mut self) -> Result<Vec<f32>> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            all.extend(chunk);
        }
        Ok(all)
    }
}

/// Writes 16-bit PCM WAV (atomically, through [`WavOut`]).
pub fn write_wav(path: &Path, samples: &[f32], sample_rate: u32) -> Result<()> {
    let mut w = WavOut::with_rate(path, sample_rate)?;
    w.write(samples)?;
    w.commit()
}

/// A 16-bit WAV file written under a temporary name beside its destination, renamed into place
/// only by `commit` (dropped uncommitted, it is deleted).
pub struct WavOut {
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    temp: tempfile::TempPath,
    path: std::path::PathBuf,
}

impl WavOut {
    pub fn create(path: &std::path::Path) -> Result<Self> {
        Self::with_rate(path, SAMPLE_RATE)
    }

    pub fn with_rate(path: &std::path::Path, rate: u32) -> Result<Self> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let file = tempfile::Builder::new()
            .prefix(".hark-")
            .suffix(".wav.part")
            .tempfile_in(dir)
            .map_err(|e| crate::error::Error::io(path, e))?;
        // tempfile creates private (0600) files; a recording is as readable as any file the user writes.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(|e| crate::error::Error::io(path, e))?;
        }
        let (file, temp) = file.into_parts();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::new(std::io::BufWriter::new(file), spec)
            .map_err(|e| crate::error::Error::io(path, std::io::Error::other(e)))?;
        Ok(Self { writer, temp, path: path.to_path_buf() })
    }

    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        for &s in samples {
            self.writer
                .write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
                .map_err(|e| crate::error::Error::io(&self.path, std::io::Error::other(e)))?;
        }
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        self.writer.finalize().map_err(|e| crate::error::Error::io(&self.path, std::io::Error::other(e)))?;
        self.temp.persist(&self.path).map_err(|e| crate::error::Error::io(&self.path, e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_and_silences_nan() {
        let mut out = Vec::new();
        let bad = downmix_into(&[1.0, 0.0, 0.5, 0.5, f32::NAN, 1.0], 2, &mut out);
        assert_eq!(out, vec![0.5, 0.5, 0.5]);
        assert_eq!(bad, 1);
    }
}
