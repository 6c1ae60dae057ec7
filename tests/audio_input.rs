//! Decoding every supported container, codec, rate and channel layout to 16 kHz mono, and the
//! errors for files that cannot be read.

mod common;

use hark::Error;
use hark::audio::FileSource;

const SPEECH_S: f64 = 2.616; // the clip's length in the source recording

#[test]
fn every_format_and_rate_decodes_to_16k_mono_of_the_right_length() {
    for (name, rate, channels) in [
        ("speech-16k-mono.wav", 16_000, 1),
        ("speech-8k-mono.wav", 8_000, 1),
        ("speech-8k-mono.flac", 8_000, 1),
        ("speech-44k1-stereo.wav", 44_100, 2),
        ("speech-44k1-stereo.flac", 44_100, 2),
        ("speech-44k1-stereo.mp3", 44_100, 2),
        ("speech-48k-stereo-f32.wav", 48_000, 2),
        ("speech-48k-stereo.mp3", 48_000, 2),
        ("speech-48k-stereo.ogg", 48_000, 2),
        ("speech-16k-mono.mp3", 16_000, 1),
        ("speech-16k-mono.ogg", 16_000, 1),
        // Opus decodes at 48 kHz whatever the encoder's input was.
        ("speech-48k-stereo.opus", 48_000, 2),
    ] {
        let src = FileSource::open(&common::fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(src.info().sample_rate, rate, "{name}");
        assert_eq!(src.info().channels, channels, "{name}");
        let samples = src.read_all().unwrap();
        let seconds = samples.len() as f64 / 16_000.0;
        // MP3 adds encoder delay and padding (< 0.1 s); the others (Opus trimmed by its pre-skip and
        // end granule) are exact to a sample.
        assert!((seconds - SPEECH_S).abs() < 0.1, "{name}: {seconds} s");
        let rms = (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt();
        assert!(rms > 0.01, "{name}: decoded to near-silence (rms {rms})");
    }
}

#[test]
fn unreadable_inputs_give_clear_errors() {
    let err = |name: &str| FileSource::open(&common::fixture(name)).and_then(|s| s.read_all()).unwrap_err();
    assert!(matches!(err("empty.wav"), Error::EmptyAudio));
    assert!(matches!(err("not-audio.wav"), Error::NotAudio(_)));
    for truncated in ["truncated.flac", "truncated.wav"] {
        let e = err(truncated);
        assert!(e.to_string().contains("truncated"), "{truncated}: {e}");
    }
    assert!(matches!(err("no-such-file.wav"), Error::Unreadable(_)));
}
