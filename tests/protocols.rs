//! The protocols other voice software speaks, driven by their real clients against a real
//! `hark serve`: Wyoming (the `wyoming` package's own client, as Home Assistant uses it) and
//! OpenAI's realtime transcription, streaming uploads and speech formats (the `openai` client).
//! Both Python packages are installed, pinned, by .ci/run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::server::Server;
use hark::audio::{FileSource, Resampler};

fn python(script: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("python3").arg(common::root().join("tests/clients").join(script)).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A recording rewritten as raw little-endian PCM at `rate` Hz, `bits` per sample and
/// `channels` (all alike), named as the client takes it: `PATH:RATE:WIDTH:CHANNELS`.
fn pcm_copy(src: &Path, dir: &Path, rate: u32, bits: u16, channels: u16) -> String {
    let mut samples = FileSource::open(src).unwrap().read_all().unwrap();
    if rate != 16_000 {
        let mut resampler = Resampler::new(16_000, rate).unwrap();
        let mut out = Vec::new();
        resampler.process(&samples, &mut out).unwrap();
        resampler.finish(&mut out).unwrap();
        samples = out;
    }
    let path = dir.join(format!("{}-{rate}-{bits}-{channels}.raw", src.file_stem().unwrap().to_string_lossy()));
    let scale = (1i64 << (bits - 1)) as f32 - 1.0;
    let mut bytes = Vec::new();
    for s in samples {
        let v = (s.clamp(-1.0, 1.0) * scale) as i32;
        for _ in 0..channels {
            bytes.extend_from_slice(&v.to_le_bytes()[..bits as usize / 8]);
        }
    }
    std::fs::write(&path, bytes).unwrap();
    format!("{}:{rate}:{}:{channels}", path.display(), bits / 8)
}

fn dev_real(n: usize) -> (PathBuf, String) {
    let manifest = hark::eval::read_manifest(&common::fixture("dev-real/manifest.tsv")).unwrap();
    (manifest[n].path.clone(), manifest[n].reference.clone())
}

fn wer(pairs: &[(String, String)]) -> f64 {
    let (errors, words) = pairs.iter().map(|(r, h)| hark::eval::wer_counts(r, h)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    errors as f64 / words as f64
}

#[test]
fn home_assistants_wyoming_client_transcribes_and_hears_the_voice() {
    let server = Server::start_with("", &[], &["--wyoming", "tcp://127.0.0.1:0"]);
    let wyoming = server.wyoming.clone().unwrap();
    let (host, port) = wyoming.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();

    let (ok, out, err) = python("wyoming_client.py", &["describe", host, port]);
    assert!(ok, "{err}");
    let info = &json_lines(&out)[0];
    assert_eq!(info["streaming"], serde_json::json!([true]), "{info}");
    assert_eq!(info["voices"], serde_json::json!(["hibari"]), "{info}");

    // Three recordings, each in a different format the client declares, on one connection.
    let recordings = [(dev_real(0), 16_000, 16, 1), (dev_real(3), 48_000, 16, 2), (dev_real(5), 22_050, 32, 1)];
    let files: Vec<String> = recordings.iter().map(|((path, _), rate, bits, ch)| pcm_copy(path, dir.path(), *rate, *bits, *ch)).collect();
    let mut args = vec!["transcribe", host, port];
    args.extend(files.iter().map(String::as_str));
    let (ok, out, err) = python("wyoming_client.py", &args);
    assert!(ok, "{err}");
    let results = json_lines(&out);
    assert_eq!(results.len(), 3, "{out}");
    let mut pairs = Vec::new();
    for (result, ((_, reference), ..)) in results.iter().zip(&recordings) {
        let order: Vec<&str> = result["order"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let transcript_at = order.iter().position(|t| *t == "transcript").unwrap();
        assert_eq!(order[0], "transcript-start", "{result}");
        assert_eq!(order.last(), Some(&"transcript-stop"), "{result}");
        assert!(order[..transcript_at].contains(&"transcript-chunk"), "streamed chunks come before the final: {result}");
        pairs.push((reference.clone(), result["text"].as_str().unwrap().to_string()));
    }
    let wer = wer(&pairs);
    assert!(wer <= 0.10, "WER {wer:.3} over three recordings: {pairs:?}");

    // hibari's voice through Wyoming, read back by hark's Whisper.
    let spoken = dir.path().join("spoken.wav");
    let sentence = "Good evening. The lights in the kitchen are on, the front door is locked, and the weather tomorrow will be sunny and warm.";
    let (ok, _, err) = python("wyoming_client.py", &["synthesize", host, port, spoken.to_str().unwrap(), sentence]);
    assert!(ok, "{err}");
    let heard = common::stdout(&common::hark(&["transcribe", spoken.to_str().unwrap()]));
    let (errors, words) = hark::eval::wer_counts(sentence, &heard);
    assert!(errors as f64 / words as f64 <= 0.05, "heard {heard:?}");
}

#[test]
fn bad_wyoming_input_gets_an_error_event_and_others_go_on() {
    let server = Server::start("[wyoming]\nlisten = \"tcp://127.0.0.1:0\"\n", &[]);
    let wyoming = server.wyoming.clone().unwrap();
    let (host, port) = wyoming.rsplit_once(':').unwrap();
    let (ok, out, err) = python("wyoming_client.py", &["bad", host, port]);
    assert!(ok, "{err}");
    let cases = json_lines(&out);
    assert_eq!(cases.len(), 7, "{out}");
    for (case, expected) in [
        ("unknown event type", "unknown event type 'make-coffee'"),
        ("audio before start", "audio-chunk before audio-start"),
        ("wrong sample width", "sample width 7"),
        ("half a frame", "whole number"),
        ("stop before start", "audio-stop without audio-start"),
        ("garbage header", "not JSON"),
        ("oversize message", "over the limit"),
    ] {
        let c = cases.iter().find(|c| c["case"] == case).unwrap_or_else(|| panic!("{case} missing: {out}"));
        assert!(c["error"].as_str().is_some_and(|e| e.contains(expected)), "{case}: {c}");
        assert_eq!(c["closed"], true, "{case}: the connection closes after the error");
    }
    // The server is still healthy for everyone else.
    let (ok, out, err) = python("wyoming_client.py", &["describe", host, port]);
    assert!(ok && out.contains("hibari"), "{err}");
    assert_eq!(server.get("/healthz", "").0, 200);
    assert!(server.metric("hark_errors_total") >= 7.0);
}
