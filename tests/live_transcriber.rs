//! The live transcriber (VAD, endpoints, partials, second-pass finals) on real recordings, fed
//! the way a microphone or a WebSocket client feeds it: small pieces of 16 kHz audio.

mod common;

use hark::asr::transducer::Lookahead;
use hark::audio::FileSource;
use hark::live::{EventKind, FinalPass, LiveEngines, LiveOptions, LiveTranscriber};
use hark::vad::{SileroModel, SileroVad};

#[test]
fn silero_vad_matches_the_packages_reference_model() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("tests/reference/silero-vad-fleurs-en-000.json"))
            .unwrap(),
    )
    .unwrap();
    let expected: Vec<f32> =
        reference["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let model = SileroModel::load(&hark::models::resolve("silero-vad").unwrap()).unwrap();
    let samples =
        FileSource::open(&common::fixture("dev-real/fleurs-en-000.flac")).unwrap().read_all().unwrap();
    let mut vad = SileroVad::new(model);
    let mut got = Vec::new();
    // Odd piece sizes: the chunking inside must not depend on how audio arrives.
    for piece in samples.chunks(700) {
        vad.push(piece, &mut got).unwrap();
    }
    assert_eq!(got.len(), expected.len());
    let worst = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-3, "largest difference from the package's tinygrad model: {worst}");
    // And it is a VAD: silence at the start, speech in the middle.
    assert!(got[..20].iter().all(|&p| p < 0.2));
    assert!(got.iter().filter(|&&p| p > 0.5).count() > got.len() / 2);
}

struct Run {
    finals: Vec<String>,
    partials: usize,
    first_partial_before_first_final: bool,
}

fn transcribe(engines: &LiveEngines, path: &std::path::Path) -> Run {
    let samples = FileSource::open(path).unwrap().read_all().unwrap();
    let mut live = LiveTranscriber::new(engines.clone(), LiveOptions::default());
    let mut events = Vec::new();
    for piece in samples.chunks(1600) {
        live.push(piece, &mut events).unwrap();
    }
    // A second of silence, as a speaker pausing, then the end of the stream.
    live.push(&vec![0.0; 16000], &mut events).unwrap();
    live.finish(&mut events).unwrap();
    let first_final = events.iter().position(|e| e.kind == EventKind::Final);
    let first_partial = events.iter().position(|e| e.kind == EventKind::Partial);
    for e in &events {
        assert!(e.start <= e.end && e.end <= live.position_s() + 1e-6, "{e:?}");
    }
    Run {
        finals: events.iter().filter(|e| e.kind == EventKind::Final).map(|e| e.text.clone()).collect(),
        partials: events.iter().filter(|e| e.kind == EventKind::Partial).count(),
        first_partial_before_first_final: matches!((first_partial, first_final), (Some(p), Some(f)) if p < f),
    }
}

#[test]
fn whisper_finals_of_dev_real_recordings_are_accurate() {
    let engines =
        LiveEngines::load("ancat-tiny.en", Lookahead::Adaptive, Some(FinalPass::Whisper), "whisper-tiny.en")
            .unwrap();
    let manifest = hark::eval::read_manifest(&common::fixture("dev-real/manifest.tsv")).unwrap();
    let (mut errors, mut words) = (0, 0);
    for entry in &manifest {
        let run = transcribe(&engines, &entry.path);
        let hyp = run.finals.join(" ");
        let (e, n) = hark::eval::wer_counts(&entry.reference, &hyp);
        eprintln!("{}: {e}/{n} finals={:?} partials={}", entry.path.display(), run.finals, run.partials);
        assert!(
            run.partials > 0 && run.first_partial_before_first_final,
            "partials must come while speech is heard"
        );
        errors += e;
        words += n;
    }
    let wer = errors as f64 / words as f64;
    assert!(wer <= 0.10, "WER {:.2}% ({errors}/{words})", wer * 100.0);
}

#[test]
fn silence_and_noise_give_no_finals() {
    let engines =
        LiveEngines::load("ancat-tiny.en", Lookahead::Adaptive, Some(FinalPass::Whisper), "whisper-tiny.en")
            .unwrap();
    let mut live = LiveTranscriber::new(engines, LiveOptions::default());
    let mut events = Vec::new();
    // 10 s of silence, then 2 s of faint white noise, fed as a microphone would.
    let mut noise = Vec::new();
    let mut x = 1u32;
    for _ in 0..32000 {
        x = x.wrapping_mul(1664525).wrapping_add(1013904223);
        noise.push(((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.002);
    }
    for piece in vec![0.0f32; 160000].chunks(320).chain(noise.chunks(320)) {
        live.push(piece, &mut events).unwrap();
    }
    live.finish(&mut events).unwrap();
    assert!(events.iter().all(|e| e.kind != EventKind::Final), "{events:?}");
}

#[test]
fn transducer_finals_carry_word_times() {
    let engines = LiveEngines::load(
        "ancat-tiny.en",
        Lookahead::Adaptive,
        Some(FinalPass::Transducer),
        "whisper-tiny.en",
    )
    .unwrap();
    let samples =
        FileSource::open(&common::fixture("dev-real/fleurs-en-003.flac")).unwrap().read_all().unwrap();
    let mut live = LiveTranscriber::new(engines, LiveOptions::default());
    let mut events = Vec::new();
    live.push(&samples, &mut events).unwrap();
    live.finish(&mut events).unwrap();
    let finals: Vec<_> = events.iter().filter(|e| e.kind == EventKind::Final).collect();
    assert!(!finals.is_empty());
    for f in finals {
        assert!(!f.words.is_empty());
        assert!(
            f.words
                .iter()
                .all(|w| w.start >= f.start && w.end <= f.end && (0.0..=1.0).contains(&w.confidence)),
            "{f:?}"
        );
        assert!(f.words.windows(2).all(|p| p[0].start <= p[1].start), "{f:?}");
        assert!(f.end <= 5.76 + 0.1, "inside the 5.76 s recording: {f:?}");
    }
}

#[test]
fn one_long_session_of_many_speakers_keeps_its_accuracy() {
    let engines =
        LiveEngines::load("ancat-tiny.en", Lookahead::Adaptive, Some(FinalPass::Whisper), "whisper-tiny.en")
            .unwrap();
    let manifest = hark::eval::read_manifest(&common::fixture("dev-real/manifest.tsv")).unwrap();
    let mut live = LiveTranscriber::new(engines, LiveOptions::default());
    let mut events = Vec::new();
    let mut reference = Vec::new();
    for entry in &manifest {
        let samples = FileSource::open(&entry.path).unwrap().read_all().unwrap();
        for piece in samples.chunks(320).chain(vec![0.0f32; 32000].chunks(320)) {
            live.push(piece, &mut events).unwrap();
        }
        reference.push(entry.reference.as_str());
    }
    live.finish(&mut events).unwrap();
    let finals: Vec<_> = events.iter().filter(|e| e.kind == EventKind::Final).collect();
    for f in &finals {
        eprintln!("{:7.2}-{:7.2} {}", f.start, f.end, f.text);
    }
    let hyp = finals.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(" ");
    let (e, n) = hark::eval::wer_counts(&reference.join(" "), &hyp);
    assert!(e as f64 <= 0.10 * n as f64, "WER {e}/{n}");
}
