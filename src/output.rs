//! Transcript formats: text, JSON, SRT, WebVTT, TSV.

use crate::pipeline::Transcript;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Srt,
    Vtt,
    Tsv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Json => "json",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Tsv => "tsv",
        }
    }
}

fn clock(seconds: f64, decimal: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{decimal}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Text for one file. `file` is the path exactly as the user gave it.
pub fn render(format: Format, file: &str, t: &Transcript) -> String {
    match format {
        Format::Text => format!("{}\n", t.text),
        // Tabs and newlines would break the two-column shape.
        Format::Tsv => format!("{file}\t{}\n", t.text.replace(['\t', '\n', '\r'], " ")),
        Format::Json => {
            let mut v = serde_json::json!({
                "file": file,
                "text": t.text,
                "duration": t.duration,
                "segments": t.segments,
            });
            if !t.words.is_empty() {
                v["words"] = serde_json::json!(t.words);
            }
            format!("{v}\n")
        }
        Format::Srt => t
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!("{}\n{} --> {}\n{}\n\n", i + 1, clock(s.start, ','), clock(s.end, ','), s.text)
            })
            .collect(),
        Format::Vtt => {
            let cues: String = t
                .segments
                .iter()
                .map(|s| format!("{} --> {}\n{}\n\n", clock(s.start, '.'), clock(s.end, '.'), s.text))
                .collect();
            format!("WEBVTT\n\n{cues}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Segment;

    fn t() -> Transcript {
        Transcript {
            text: "Hello there. General Kenobi.".into(),
            duration: 3725.5,
            segments: vec![
                Segment { start: 0.0, end: 1.5, text: "Hello there.".into(), confidence: 1.0 },
                Segment { start: 3723.25, end: 3725.5, text: "General Kenobi.".into(), confidence: 1.0 },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn subtitle_clocks() {
        let srt = render(Format::Srt, "a.wav", &t());
        assert!(
            srt.starts_with(
                "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n01:02:03,250 --> 01:02:05,500\n"
            ),
            "{srt}"
        );
        let vtt = render(Format::Vtt, "a.wav", &t());
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n"), "{vtt}");
    }

    #[test]
    fn tsv_and_json() {
        assert_eq!(render(Format::Tsv, "dir/a b.wav", &t()), "dir/a b.wav\tHello there. General Kenobi.\n");
        let v: serde_json::Value = serde_json::from_str(&render(Format::Json, "a.wav", &t())).unwrap();
        assert_eq!(v["segments"][1]["start"], 3723.25);
        assert_eq!(v["file"], "a.wav");
    }
}
