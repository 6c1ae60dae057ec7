//! `hark eval/transcribe --engine transducer` end to end (with the untrained default model until
//! a trained one ships: the text is meaningless, the lookahead accounting is real).

mod common;

use common::{hark, stderr, stdout};

fn fields(line: &str) -> std::collections::HashMap<String, String> {
    line.split(' ').filter_map(|f| f.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn transducer_eval_prints_lookahead_statistics_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.tsv");
    std::fs::write(
        &manifest,
        format!("file\tduration_seconds\treference_transcript\n{}\t2.6\tLord, but I'm glad to see you again, Phil.\n", common::fixture("speech-16k-mono.wav").display()),
    )
    .unwrap();
    let mut means = Vec::new();
    for mode in ["causal", "adaptive", "fixed:4", "full"] {
        let out = hark(&["eval", "--engine", "transducer", "--lookahead", mode, manifest.to_str().unwrap()]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        let text = stdout(&out);
        let f = fields(text.lines().last().unwrap());
        for key in [
            "wer",
            "errors",
            "words",
            "audio_s",
            "wall_s",
            "rtf",
            "lookahead_mean_ms",
            "lookahead_p50_ms",
            "lookahead_p90_ms",
        ] {
            assert!(f.contains_key(key), "{mode}: {key} missing in {text}");
        }
        assert_eq!(f["lookahead"], mode);
        let mean: f32 = f["lookahead_mean_ms"].parse().unwrap();
        let p90: f32 = f["lookahead_p90_ms"].parse().unwrap();
        assert!(p90 >= f["lookahead_p50_ms"].parse::<f32>().unwrap());
        means.push(mean);
        if mode == "causal" {
            // 12.5 ms everywhere (the conv front end and the STFT window), less at the very end.
            assert_eq!(f["lookahead_p50_ms"], "12.5");
            assert!(mean > 11.0 && mean <= 12.5, "{mean}");
        }
    }
    // Adaptive looks ahead at most 4 frames per layer where gates are on: between causal and fixed:4.
    assert!(means[0] <= means[1] && means[1] <= means[2] && means[2] < means[3], "{means:?}");
}

#[test]
fn transducer_transcripts_carry_word_times_and_confidences() {
    let out =
        hark(&["transcribe", "--engine", "transducer", "-f", "json", "audio-fixtures/speech-16k-mono.wav"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let words = v["words"].as_array().expect("words");
    assert!(!words.is_empty());
    let (mut last_start, mut last_end) = (0.0, 0.0);
    for w in words {
        let (s, e, c) =
            (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap(), w["confidence"].as_f64().unwrap());
        // In order; a word may begin in the 40 ms frame where the previous one ended.
        assert!(s < e && s >= last_start && s >= last_end - 0.04 - 1e-9 && e <= 2.7, "{w}");
        assert!((0.0..=1.0).contains(&c), "{w}");
        (last_start, last_end) = (s, e);
    }
    let joined: Vec<&str> = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
    assert_eq!(joined.join(" "), v["text"].as_str().unwrap());
}

#[test]
fn a_lookahead_target_in_ms_moves_the_adaptive_schedulers() {
    let manifest = common::fixture("jfk.flac");
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("m.tsv");
    std::fs::write(
        &tsv,
        format!(
            "file\tduration_seconds\treference_transcript\n{}\t11.0\tAnd so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.\n",
            manifest.display()
        ),
    )
    .unwrap();
    let mean_of = |mode: &str| -> f32 {
        let out = hark(&["eval", "--engine", "transducer", "--lookahead", mode, tsv.to_str().unwrap()]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        let f = fields(stdout(&out).lines().last().unwrap());
        assert_eq!(f["lookahead"], mode);
        f["lookahead_mean_ms"].parse().unwrap()
    };
    let (causal, calibrated, at_100) = (mean_of("causal"), mean_of("adaptive"), mean_of("adaptive:100"));
    // Asking for 100 ms (the shipped model is calibrated to 190 ms) waits for less future audio
    // than the calibrated schedulers, yet more than causal mode.
    assert!(
        causal < at_100 && at_100 < calibrated - 30.0,
        "causal {causal}, adaptive:100 {at_100}, adaptive {calibrated}"
    );
    assert!((at_100 - 100.0).abs() < 50.0, "adaptive:100 gave {at_100} ms");
    // A target the model cannot reach is refused, naming the range it can.
    let out = hark(&["eval", "--engine", "transducer", "--lookahead", "adaptive:1", tsv.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("adaptive lookahead reaches"), "{}", stderr(&out));
}
