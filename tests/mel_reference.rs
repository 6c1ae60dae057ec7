//! The streaming log-mel front end against faster-whisper's numpy features (reference values
//! computed once by tests/reference/mel_reference.py and committed).

mod common;

use hark::audio::FileSource;
use hark::features::{MelFrontend, N_MELS, normalize_whisper};

#[test]
fn mel_matches_whisper_reference_to_1e4() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("tests/reference/mel_speech-16k.json")).unwrap(),
    )
    .unwrap();
    let n = reference["samples"].as_u64().unwrap() as usize;
    let expected: Vec<Vec<f32>> = reference["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
        .collect();
    let samples = FileSource::open(&common::fixture("speech-16k-mono.wav")).unwrap().read_all().unwrap();
    let samples = &samples[..n];

    // Streamed in uneven chunks, as a microphone would deliver them.
    let mut fe = MelFrontend::new();
    let mut frames = Vec::new();
    for chunk in samples.chunks(333) {
        fe.push(chunk, &mut frames);
    }
    fe.finish(&mut frames);
    assert_eq!(frames.len(), expected.len());
    let mut flat: Vec<f32> = frames.iter().flat_map(|f| f.values).collect();
    normalize_whisper(&mut flat);
    let mut worst = 0f32;
    for (i, exp) in expected.iter().enumerate() {
        for m in 0..N_MELS {
            worst = worst.max((flat[i * N_MELS + m] - exp[m]).abs());
        }
    }
    eprintln!("mel vs reference: max abs difference {worst:e}");
    assert!(worst <= 1e-4, "max abs difference {worst}");
}
