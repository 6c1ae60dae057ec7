//! `hark data synth`: the synthetic corpus is real speech-like audio of exactly its transcripts.

mod common;

/// Whisper tiny.en's WER on a manifest (`hark eval`), with the summary line it came from.
fn whisper_wer(manifest: &std::path::Path) -> (f64, String) {
    let eval = common::hark(&["eval", "--engine", "whisper", manifest.to_str().unwrap()]);
    assert!(eval.status.success(), "{}", common::stderr(&eval));
    let last = common::stdout(&eval).lines().last().unwrap().to_string();
    let wer = last.split_whitespace().find_map(|f| f.strip_prefix("wer=")).unwrap().parse().unwrap();
    (wer, last)
}

#[test]
fn synth_renders_intelligible_utterances_with_every_synthesiser_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    let run =
        || common::hark(&["data", "synth", "--out", out.to_str().unwrap(), "--utterances", "9", "-j", "2"]);
    let first = run();
    assert!(first.status.success(), "{}", common::stderr(&first));
    let manifest = std::fs::read_to_string(out.join("manifest.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = manifest.lines().skip(1).map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 9);
    // espeak-ng, flite and festival each speak a third (CI installs all three).
    for engine in ["espeak-ng:", "flite:", "festival:"] {
        assert_eq!(rows.iter().filter(|r| r[3].starts_with(engine)).count(), 3, "{engine}\n{manifest}");
    }
    for r in &rows {
        let spec = hound::WavReader::open(out.join(r[0])).unwrap().spec();
        assert_eq!((spec.sample_rate, spec.channels), (16_000, 1), "{}", r[0]);
        let seconds: f64 = r[1].parse().unwrap();
        assert!(seconds > 0.5 && seconds < 15.0, "{r:?}");
    }
    // What is spoken is what the manifest says: Whisper tiny.en recognises it.
    let (wer, last) = whisper_wer(&out.join("manifest.tsv"));
    assert!(wer < 30.0, "{last}");
    // A second run renders nothing new and keeps the manifest.
    let second = run();
    assert!(second.status.success());
    assert!(
        common::stderr(&second).contains("0 utterances to render (9 already done)"),
        "{}",
        common::stderr(&second)
    );
    assert_eq!(std::fs::read_to_string(out.join("manifest.tsv")).unwrap(), manifest);
}

#[test]
fn synth_without_sentences_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::hark(&[
        "data",
        "synth",
        "--out",
        dir.path().join("s").to_str().unwrap(),
        "--fortunes",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("no usable sentences"), "{}", common::stderr(&out));
}

#[test]
fn synth_speaks_with_speakers_made_from_hibari() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hibari");
    let run = common::hark(&[
        "data",
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--utterances",
        "12",
        "--seed",
        "1",
        "--synthesisers",
        "hibari",
        "-j",
        "2",
    ]);
    assert!(run.status.success(), "{}", common::stderr(&run));
    let manifest = std::fs::read_to_string(out.join("manifest.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = manifest.lines().skip(1).map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r[3].starts_with("hibari:") && r[5].contains("Apache-2.0")), "{manifest}");
    let voices: std::collections::HashSet<&str> = rows.iter().map(|r| r[3]).collect();
    assert!(voices.len() >= 3, "{voices:?}");
    for r in &rows {
        let spec = hound::WavReader::open(out.join(r[0])).unwrap().spec();
        assert_eq!((spec.sample_rate, spec.channels), (16_000, 1), "{}", r[0]);
    }
    // Reshaped or not, every speaker says its sentence: Whisper tiny.en recognises it.
    let (wer, last) = whisper_wer(&out.join("manifest.tsv"));
    assert!(wer < 15.0, "{last}");
}

#[test]
fn synth_refuses_an_unknown_synthesiser() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::hark(&[
        "data",
        "synth",
        "--out",
        dir.path().join("s").to_str().unwrap(),
        "--synthesisers",
        "flite,sam",
    ]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("'sam'") && err.contains("hibari"), "{err}");
}
