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
    let out = Command::new("python3")
        .arg(common::root().join("tests/clients").join(script))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    let path =
        dir.join(format!("{}-{rate}-{bits}-{channels}.raw", src.file_stem().unwrap().to_string_lossy()));
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
    let (errors, words) =
        pairs.iter().map(|(r, h)| hark::eval::wer_counts(r, h)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
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
    let recordings =
        [(dev_real(0), 16_000, 16, 1), (dev_real(3), 48_000, 16, 2), (dev_real(5), 22_050, 32, 1)];
    let files: Vec<String> = recordings
        .iter()
        .map(|((path, _), rate, bits, ch)| pcm_copy(path, dir.path(), *rate, *bits, *ch))
        .collect();
    let mut args = vec!["transcribe", host, port];
    args.extend(files.iter().map(String::as_str));
    let (ok, out, err) = python("wyoming_client.py", &args);
    assert!(ok, "{err}");
    let results = json_lines(&out);
    assert_eq!(results.len(), 3, "{out}");
    let mut pairs = Vec::new();
    for (result, ((_, reference), ..)) in results.iter().zip(&recordings) {
        let order: Vec<&str> =
            result["order"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let transcript_at = order.iter().position(|t| *t == "transcript").unwrap();
        assert_eq!(order[0], "transcript-start", "{result}");
        assert_eq!(order.last(), Some(&"transcript-stop"), "{result}");
        assert!(
            order[..transcript_at].contains(&"transcript-chunk"),
            "streamed chunks come before the final: {result}"
        );
        pairs.push((reference.clone(), result["text"].as_str().unwrap().to_string()));
    }
    let wer = wer(&pairs);
    eprintln!("Wyoming: WER {wer:.4} over three recordings: {pairs:?}");
    assert!(wer <= 0.10, "WER {wer:.3} over three recordings: {pairs:?}");

    // hibari's voice through Wyoming, read back by hark's Whisper.
    let spoken = dir.path().join("spoken.wav");
    let sentence = "Good evening. The lights in the kitchen are on, the front door is locked, and the weather tomorrow will be sunny and warm.";
    let (ok, _, err) =
        python("wyoming_client.py", &["synthesize", host, port, spoken.to_str().unwrap(), sentence]);
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

/// A dev-real recording as raw 16-bit mono PCM at 24 kHz (OpenAI's realtime input).
fn pcm24(n: usize, dir: &Path) -> (String, String) {
    let (path, reference) = dev_real(n);
    let spec = pcm_copy(&path, dir, 24_000, 16, 1);
    (spec.split(':').next().unwrap().to_string(), reference)
}

#[test]
fn openais_realtime_client_streams_deltas_then_the_final() {
    let server = Server::start("[server]\ntoken = \"s3cret\"\n", &[]);
    let base = format!("http://{}/v1", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let (file, reference) = pcm24(2, dir.path());
    let (ok, out, err) = python("openai_realtime.py", &[&base, "s3cret", "manual", &file]);
    assert!(ok, "{err}");
    let r = &json_lines(&out)[0];
    let types: Vec<&str> = r["types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let completed_at =
        types.iter().position(|t| *t == "conversation.item.input_audio_transcription.completed").unwrap();
    assert!(
        types[..completed_at].contains(&"conversation.item.input_audio_transcription.delta"),
        "deltas before the final: {types:?}"
    );
    assert!(types[..completed_at].contains(&"input_audio_buffer.committed"), "{types:?}");
    assert_eq!(types[0], "session.created", "{types:?}");
    let text = r["completed"][0].as_str().unwrap();
    let (errors, words) = hark::eval::wer_counts(&reference, text);
    eprintln!(
        "realtime: {errors}/{words} errors, {} deltas before the final",
        types.iter().filter(|t| t.ends_with(".delta")).count()
    );
    assert!(errors as f64 / words as f64 <= 0.10, "{text:?} for {reference:?}");

    // Server VAD: two recordings, 2 s of silence after each, come back as two items.
    let (second, second_reference) = pcm24(7, dir.path());
    let (ok, out, err) = python("openai_realtime.py", &[&base, "s3cret", "vad", &file, &second]);
    assert!(ok, "{err}");
    let r = &json_lines(&out)[0];
    let items: Vec<String> =
        r["completed"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    assert_eq!(items.len(), 2, "{r}");
    let types: Vec<&str> = r["types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "input_audio_buffer.speech_started").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == "input_audio_buffer.speech_stopped").count(), 2, "{types:?}");
    let wer = wer(&[(reference.clone(), items[0].clone()), (second_reference, items[1].clone())]);
    eprintln!("realtime with server VAD: WER {wer:.4}: {items:?}");
    assert!(wer <= 0.10, "WER {wer:.3}: {items:?}");

    // Without the token the connection is refused.
    let (ok, _, err) = python("openai_realtime.py", &[&base, "wrong", "manual", &file]);
    assert!(!ok, "a wrong token must be refused: {err}");
}

#[test]
fn bad_realtime_events_get_openais_error_events_and_the_session_goes_on() {
    let server = Server::start("", &[]);
    let base = format!("http://{}/v1", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let (file, reference) = pcm24(4, dir.path());
    let (ok, out, err) = python("openai_realtime.py", &[&base, "none", "bad", &file]);
    assert!(ok, "{err}");
    let r = &json_lines(&out)[0];
    for (case, expected) in [
        ("unknown event type", "make.coffee"),
        ("base64 garbage", "not valid base64"),
        ("wrong sample width", "whole number of 2-byte frames"),
        ("commit before audio", "buffer is empty"),
        ("oversize message", "at most 15 MiB"),
        ("bad session", "audio/pcmu"),
    ] {
        let message = r["errors"][case].as_str().unwrap_or_else(|| panic!("{case}: no error: {r}"));
        assert!(message.contains(expected), "{case}: {message}");
    }
    let text = r["completed"][0].as_str().unwrap();
    assert!(
        hark::eval::wer_counts(&reference, text).0 as f64 / reference.split_whitespace().count() as f64
            <= 0.2,
        "{text}"
    );
    assert_eq!(server.get("/healthz", "").0, 200);
}

#[test]
fn streamed_uploads_and_every_speech_format_through_the_openai_client() {
    let server = Server::start("", &[]);
    let base = format!("http://{}/v1", server.addr);
    let (path, reference) = common::librispeech_dev(common::RUNAWAY_UTTERANCES[1]);
    let (ok, out, err) = python("openai_streams.py", &[&base, "none", "transcribe", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    let r = &json_lines(&out)[0];
    let types: Vec<&str> = r["types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(types.last(), Some(&"transcript.text.done"), "{types:?}");
    assert!(
        types.len() >= 2 && types[..types.len() - 1].iter().all(|t| *t == "transcript.text.delta"),
        "{types:?}"
    );
    let text = r["text"].as_str().unwrap();
    let deltas: String = r["deltas"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(deltas, text, "the deltas add up to the text");
    // The same text as the plain upload gives.
    let plain = common::stdout(&common::hark(&["transcribe", path.to_str().unwrap()]));
    assert_eq!(common::words(text), common::words(&plain));
    let (errors, words) = hark::eval::wer_counts(&reference, text);
    assert!(errors as f64 / words as f64 <= 0.2, "{text}");

    let dir = tempfile::tempdir().unwrap();
    let sentence = "Good evening, and welcome to the news.";
    let (ok, _, err) =
        python("openai_streams.py", &[&base, "none", "speech", dir.path().to_str().unwrap(), sentence]);
    assert!(ok, "{err}");
    let pcm_seconds = std::fs::metadata(dir.path().join("speech.pcm")).unwrap().len() as f64 / 2.0 / 24_000.0;
    assert!(pcm_seconds > 1.0, "{pcm_seconds} s of speech");
    for name in ["speech.mp3", "default.mp3", "speech.aac", "speech.flac", "speech.wav", "speech.opus"] {
        let path = dir.path().join(name);
        let seconds = if name.ends_with(".opus") {
            opus_seconds(&path)
        } else {
            FileSource::open(&path)
                .and_then(FileSource::read_all)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .len() as f64
                / 16_000.0
        };
        // MP3 and AAC add their codec delay (< 0.2 s).
        assert!((seconds - pcm_seconds).abs() < 0.2, "{name}: {seconds:.3} s, the PCM is {pcm_seconds:.3} s");
        let heard = common::stdout(&common::hark(&["transcribe", path.to_str().unwrap()]));
        assert!(hark::eval::wer_counts(sentence, &heard).0 <= 1, "{name}: heard {heard:?}");
    }
    let mp3 = std::fs::read(dir.path().join("default.mp3")).unwrap();
    assert!(mp3.starts_with(b"ID3") || mp3[0] == 0xff, "the default format is MP3");
}

/// The length of an Ogg Opus file as libopus decodes it, less the pre-skip and the end trim.
fn opus_seconds(path: &Path) -> f64 {
    let mut reader = ogg::PacketReader::new(std::fs::File::open(path).unwrap());
    let head = reader.read_packet().unwrap().unwrap();
    assert!(head.data.starts_with(b"OpusHead"), "not Ogg Opus");
    let pre_skip = u16::from_le_bytes([head.data[10], head.data[11]]) as usize;
    reader.read_packet().unwrap().unwrap(); // OpusTags
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let (mut decoded, mut last_granule) = (0usize, 0u64);
    let mut pcm = vec![0f32; 5760];
    while let Some(packet) = reader.read_packet().unwrap() {
        decoded += decoder.decode_float(&packet.data, &mut pcm, false).unwrap();
        last_granule = packet.absgp_page();
    }
    // The last page's granule position says how much of the decoded audio is real.
    assert!(decoded >= last_granule as usize, "{decoded} decoded, granule {last_granule}");
    (last_granule as usize - pre_skip) as f64 / 48_000.0
}
