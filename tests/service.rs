//! `hark serve` end to end: a real server process, real WebSocket and HTTP clients, real speech.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::server::Server;
use hark::audio::FileSource;
use tungstenite::Message;

fn pcm_s16(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes()).collect()
}

/// Streams a recording at `speed`× real time in 100 ms frames, then ends it; returns the events.
fn stream_file(server: &Server, path: &Path, speed: f64) -> Vec<serde_json::Value> {
    let samples = FileSource::open(path).unwrap().read_all().unwrap();
    let mut ws = server.ws("?sample_rate=16000&encoding=pcm_s16le");
    let start = Instant::now();
    for (i, frame) in samples.chunks(1600).chain(std::iter::once(&[0.0f32; 16000][..])).enumerate() {
        let due = Duration::from_secs_f64(i as f64 * 0.1 / speed);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        ws.send(Message::Binary(pcm_s16(frame).into())).unwrap();
    }
    ws.send(Message::Text(r#"{"type":"end"}"#.into())).unwrap();
    read_until_done(&mut ws)
}

fn read_until_done(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                let done = v["type"] == "done" || v["type"] == "error";
                events.push(v);
                if done {
                    return events;
                }
            }
            Ok(Message::Close(_)) | Err(_) => return events,
            Ok(_) => {}
        }
    }
}

fn finals(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "final")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn eight_concurrent_streams_each_get_their_own_transcript() {
    let server = Server::start("", &[]);
    let manifest = hark::eval::read_manifest(&common::fixture("dev-real/manifest.tsv")).unwrap();
    assert_eq!(manifest.len(), 10);
    // Eight clients at once; clients 0 and 1 stream a second recording after their first.
    let results: Vec<(String, Vec<serde_json::Value>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|client| {
                let (server, manifest) = (&server, &manifest);
                s.spawn(move || {
                    manifest
                        .iter()
                        .skip(client)
                        .step_by(8)
                        .map(|e| (e.reference.clone(), stream_file(server, &e.path, 3.0)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let (mut errors, mut words) = (0, 0);
    let wer = |reference: &str, text: &str| {
        let (e, n) = hark::eval::wer_counts(reference, text);
        e as f64 / n as f64
    };
    for (reference, events) in &results {
        assert_eq!(events.last().unwrap()["type"], "done", "{events:?}");
        assert!(events.iter().any(|e| e["type"] == "partial"), "partials while streaming");
        let text = finals(events);
        let (e, n) = hark::eval::wer_counts(reference, &text);
        eprintln!("{e}/{n}: {text}");
        // Its own transcript: closer to its own reference than to any other stream's.
        for (other, _) in results.iter().filter(|(r, _)| r != reference) {
            assert!(
                wer(reference, &text) < wer(other, &text),
                "'{text}' is closer to '{other}' than to '{reference}'"
            );
        }
        errors += e;
        words += n;
    }
    assert!(errors as f64 <= 0.10 * words as f64, "WER {errors}/{words}");
    assert_eq!(server.metric("hark_streams_total"), 10.0);
    assert_eq!(server.metric("hark_streams_active"), 0.0);
    assert!(server.metric("hark_audio_seconds_total") > 50.0);
}

#[test]
fn bad_streams_get_an_error_and_others_are_unaffected() {
    let server = Server::start("[server]\nidle_timeout_s = 2\n", &[]);
    std::thread::scope(|s| {
        let good = s.spawn(|| stream_file(&server, &common::fixture("dev-real/fleurs-en-003.flac"), 4.0));
        let expect_error = |query: &str, send: Option<Message>, needle: &str| {
            let mut ws = server.ws(query);
            if let Some(m) = send {
                ws.send(m).unwrap();
            }
            let events = read_until_done(&mut ws);
            let last = events.last().unwrap_or_else(|| panic!("{query}: no reply"));
            assert_eq!(last["type"], "error", "{query}: {events:?}");
            assert!(last["message"].as_str().unwrap().contains(needle), "{query}: {last}");
        };
        expect_error("?sample_rate=abc", None, "sample_rate");
        // Both parameters bad: the error event names the first, then a close with a code.
        let mut ws = server.ws("?sample_rate=abc&encoding=nope");
        let error: serde_json::Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
        assert!(
            error["type"] == "error" && error["message"].as_str().unwrap().contains("sample_rate 'abc'"),
            "{error}"
        );
        match ws.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1008),
            other => panic!("expected a close frame with a code, got {other:?}"),
        }
        expect_error("?encoding=mp3", None, "mp3");
        expect_error("?encoding=pcm_s16le", Some(Message::Binary(vec![1u8, 2, 3].into())), "whole samples");
        expect_error("", Some(Message::Text("hello".into())), "unexpected text frame");
        expect_error(
            "?encoding=pcm_f32le",
            Some(Message::Binary(f32::NAN.to_le_bytes().to_vec().into())),
            "NaN",
        );
        // An idle client is closed after the configured 2 s.
        let t0 = Instant::now();
        expect_error("", None, "idle");
        assert!(t0.elapsed() < Duration::from_secs(10));
        // A client that vanishes mid-stream.
        let mut ws = server.ws("");
        let samples =
            FileSource::open(&common::fixture("dev-real/fleurs-en-000.flac")).unwrap().read_all().unwrap();
        for frame in samples[..samples.len() / 2].chunks(1600) {
            ws.send(Message::Binary(pcm_s16(frame).into())).unwrap();
        }
        drop(ws);
        let events = good.join().unwrap();
        assert_eq!(events.last().unwrap()["type"], "done");
        let (e, n) = hark::eval::wer_counts(
            "the cabbage juice changes color depending on how acidic or basic alkaline the chemical is",
            &finals(&events),
        );
        assert!(e * 5 <= n, "{e}/{n}: {}", finals(&events));
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.metric("hark_streams_active") > 0.0 {
        assert!(Instant::now() < deadline, "a stream was never cleaned up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.metric("hark_errors_total") >= 6.0);
}

fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----harkBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes()),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn post(server: &Server, auth: &str, fields: &[(&str, Option<&str>, &[u8])]) -> (u16, String) {
    let (content_type, body) = multipart(fields);
    let mut req = format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    server.http(&req)
}

#[test]
fn openai_transcriptions_endpoint() {
    let server = Server::start("[server]\nmax_upload_mb = 1\ntoken = \"s3cret\"\n", &[]);
    let auth = "Authorization: Bearer s3cret\r\n";
    let jfk = std::fs::read(common::fixture("jfk.flac")).unwrap();
    let (status, body) =
        post(&server, auth, &[("file", Some("jfk.flac"), &jfk[..]), ("model", None, b"whisper-1")]);
    // jfk.flac is 1.1 MB: over this server's 1 MB limit.
    assert_eq!(status, 413, "{body}");
    let small = std::fs::read(common::fixture("dev-real/fleurs-en-004.flac")).unwrap();
    let reference = "many people don't think about them as dinosaurs because they have feathers and can fly";
    let (status, body) =
        post(&server, auth, &[("file", Some("a.flac"), &small[..]), ("model", None, b"whisper-1")]);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (errors, _) = hark::eval::wer_counts(reference, v["text"].as_str().unwrap());
    assert!(errors <= 2, "{body}");
    for (format, check) in [
        (
            "text",
            Box::new(|b: &str| hark::eval::wer_counts(reference, b).0 <= 2) as Box<dyn Fn(&str) -> bool>,
        ),
        ("srt", Box::new(|b: &str| b.starts_with("1\n00:00:0") && b.contains(" --> "))),
        ("vtt", Box::new(|b: &str| b.starts_with("WEBVTT"))),
        (
            "verbose_json",
            Box::new(|b: &str| {
                serde_json::from_str::<serde_json::Value>(b).unwrap()["segments"][0]["start"].is_number()
            }),
        ),
    ] {
        let (status, body) = post(
            &server,
            auth,
            &[("file", Some("a.flac"), &small[..]), ("response_format", None, format.as_bytes())],
        );
        assert_eq!(status, 200, "{format}: {body}");
        assert!(check(&body), "{format}: {body}");
    }
    let (status, body) = post(&server, "", &[("file", Some("a.flac"), &small[..])]);
    assert_eq!(status, 401, "{body}");
    let (status, body) = post(&server, auth, &[("model", None, b"whisper-1")]);
    assert_eq!(status, 400);
    assert!(body.contains("no 'file' field"), "{body}");
    let (status, body) = post(&server, auth, &[("file", Some("notes.txt"), b"this is not audio at all")]);
    assert_eq!(status, 400);
    assert!(body.contains("notes.txt"), "{body}");
    // Streaming or not, a file that is not audio is a plain 400 before any event.
    let (status, body) = post(
        &server,
        auth,
        &[("file", Some("notes.txt"), b"this is not audio at all"), ("stream", None, b"true")],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("notes.txt") && body.contains("\"error\""), "{body}");
    let (status, body) =
        post(&server, auth, &[("file", Some("a.flac"), &small[..]), ("stream", None, b"maybe")]);
    assert_eq!(status, 400);
    assert!(body.contains("stream must be true or false"), "{body}");
    let (status, body) =
        post(&server, auth, &[("file", Some("a.flac"), &small[..]), ("response_format", None, b"xml")]);
    assert_eq!(status, 400);
    assert!(body.contains("xml"), "{body}");
    // The official `openai` Python client (installed by .ci/run) against this server.
    let out = std::process::Command::new("python3")
        .arg(common::root().join("tests/clients/openai_transcribe.py"))
        .arg(format!("http://{}/v1", server.addr))
        .arg("s3cret")
        .arg(common::fixture("dev-real/fleurs-en-004.flac"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "openai client: {printed}{}", String::from_utf8_lossy(&out.stderr));
    let first_line = printed.lines().next().unwrap_or_default();
    assert!(hark::eval::wer_counts(reference, first_line).0 <= 2, "{printed}");
    assert!(printed.contains(" --> "), "SRT through the client: {printed}");
    assert_eq!(server.get("/healthz", "").0, 200, "health needs no token");
    assert_eq!(server.get("/metrics", "").0, 401);
    assert_eq!(server.get("/v1/events", auth).0, 404, "the microphone is off by default");
}

#[test]
fn an_upload_of_read_speech_never_runs_away() {
    let server = Server::start("", &[]);
    let (path, reference) = common::librispeech_dev(common::RUNAWAY_UTTERANCES[0]);
    let audio = std::fs::read(&path).unwrap();
    let (status, body) =
        post(&server, "", &[("file", Some("speech.mp3"), &audio[..]), ("model", None, b"whisper-1")]);
    assert_eq!(status, 200, "{body}");
    let text =
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["text"].as_str().unwrap().to_string();
    common::assert_no_runaway("upload", &reference, &text);
    let (errors, words) = hark::eval::wer_counts(&reference, &text);
    assert!(errors as f64 <= 0.3 * words as f64, "{errors} errors in {words} words: {text}");
}

#[test]
fn systemd_notifications_reload_and_sigterm_flushes_the_final() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let recv = || {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let server =
        Server::start("", &[("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "2000000")]);
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m.contains("READY=1")) {
        seen.push(recv());
    }
    // The watchdog is fed twice per period.
    while !seen.iter().any(|m| m.contains("WATCHDOG=1")) {
        seen.push(recv());
    }
    let pid = server.child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let mut after_hup = Vec::new();
    while !after_hup.iter().any(|m: &String| m.contains("READY=1")) {
        after_hup.push(recv());
    }
    assert!(after_hup.iter().any(|m| m.contains("RELOADING=1")), "{after_hup:?}");

    // SIGTERM in the middle of an utterance: the client still gets the final, then done.
    let mut ws = server.ws("");
    let samples =
        FileSource::open(&common::fixture("dev-real/fleurs-en-003.flac")).unwrap().read_all().unwrap();
    for frame in samples[..samples.len() * 3 / 4].chunks(1600) {
        ws.send(Message::Binary(pcm_s16(frame).into())).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let events = read_until_done(&mut ws);
    assert_eq!(events.last().unwrap()["type"], "done", "{events:?}");
    let text = common::words(&finals(&events));
    assert!(text.contains("cabbage juice"), "{events:?}");
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = Vec::new();
    socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(rest.iter().any(|m| m.contains("STOPPING=1")), "{rest:?}");
}

#[test]
fn the_systemd_units_verify() {
    // The service, and the queue worker's template (verified as an instance).
    for (unit, instance, needles) in [
        (
            "hark.service",
            "hark.service",
            &["Type=notify", "WatchdogSec=", "ExecReload=", "StateDirectory=", "ProtectSystem=strict"][..],
        ),
        (
            "hark-worker@.service",
            "hark-worker@1.service",
            &["Type=notify", "WatchdogSec=", "hark worker", "TimeoutStopSec=", "ProtectSystem=strict"][..],
        ),
    ] {
        let text = std::fs::read_to_string(common::root().join("systemd").join(unit)).unwrap();
        for needle in needles {
            assert!(text.contains(needle), "{unit} lacks {needle}");
        }
        if std::process::Command::new("systemd-analyze").arg("--version").output().is_err() {
            eprintln!("systemd-analyze is not installed: only the units' contents were checked");
            return;
        }
        // Verify a copy whose ExecStart points at this build (verify checks the binary exists).
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(instance);
        std::fs::write(&copy, text.replace("/usr/local/bin/hark", env!("CARGO_BIN_EXE_hark"))).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let problems: Vec<&str> = err.lines().filter(|l| l.contains(instance)).collect();
        assert!(out.status.success() && problems.is_empty(), "{unit}: {err}");
    }
}

/// A raw HTTP request for /v1/audio/speech; returns the status, the de-chunked body and when the
/// first and last body bytes arrived (after the request was sent).
fn speech(server: &Server, auth: &str, json: &str) -> (u16, Vec<u8>, Duration, Duration) {
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let request = format!(
        "POST /v1/audio/speech HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        server.addr,
        json.len()
    );
    let sent = std::time::Instant::now();
    s.write_all(request.as_bytes()).unwrap();
    let (mut raw, mut first_body) = (Vec::new(), None);
    let mut buf = [0u8; 65536];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if first_body.is_none()
            && raw.windows(4).position(|w| w == b"\r\n\r\n").is_some_and(|p| raw.len() > p + 4)
        {
            first_body = Some(sent.elapsed());
        }
    }
    let total = sent.elapsed();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut body = raw[split..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let (mut out, mut rest) = (Vec::new(), &body[..]);
        while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = out;
    }
    (status, body, first_body.unwrap_or(total), total)
}

#[test]
fn openai_speech_endpoint_streams_sentence_by_sentence() {
    let server = Server::start("[server]\ntoken = \"s3cret\"\n", &[]);
    let auth = "Authorization: Bearer s3cret\r\n";
    // The first request loads (on a fresh machine, installs) the voice; time the second.
    assert_eq!(speech(&server, auth, r#"{"input": "Hello."}"#).0, 200);
    let text = "The library opens at nine. Children can borrow up to five books. The reading room is on the second floor. \
                Please be quiet near the desks. Computers are free for an hour a day. Ask at the front desk for a card.";
    let (status, body, first, total) = speech(
        &server,
        auth,
        &serde_json::json!({"model": "tts-1", "voice": "alloy", "input": text}).to_string(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // Streaming: the first sentence arrives well before the last.
    assert!(first < total.mul_f64(0.8), "first audio after {first:?} of {total:?}");
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    std::fs::write(&wav, &body).unwrap();
    let heard = common::stdout(&common::hark(&["transcribe", wav.to_str().unwrap()]));
    let (errors, words) = hark::eval::wer_counts(text, &heard);
    assert!(errors * 10 <= words, "heard {heard:?}");
    // Raw PCM at 24 kHz: half a second of audio at least, a whole number of samples.
    let (status, pcm, _, _) =
        speech(&server, auth, r#"{"input": "Thank you.", "response_format": "pcm", "speed": 1.5}"#);
    assert_eq!(status, 200);
    assert!(pcm.len() > 12_000 && pcm.len() % 2 == 0, "{} bytes", pcm.len());
    for (json, expected) in [
        (r#"{"input": "Hello.", "response_format": "ogg"}"#, "response_format 'ogg' is not supported"),
        (r#"{"text": "Hello."}"#, "missing field `input`"),
        (r#"{"input": "   "}"#, "no text to speak"),
        (r#"{"input": "Hello.", "speed": 10}"#, "speed 10 is outside"),
        (r#"{"input": "你好"}"#, "nothing in the text can be spoken"),
        ("not json", "expected a JSON body"),
    ] {
        let (status, body, _, _) = speech(&server, auth, json);
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 400, "{json}: {body}");
        assert!(body.contains(expected), "{json}: {body}");
    }
    let long = serde_json::json!({"input": "word ".repeat(1000)}).to_string();
    let (status, body, _, _) = speech(&server, auth, &long);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("longer than 4096"));
    assert_eq!(speech(&server, "", r#"{"input": "Hello."}"#).0, 401);
    // The official `openai` Python client, streaming the reply to a file.
    let out_wav = dir.path().join("client.wav");
    let out = std::process::Command::new("python3")
        .arg(common::root().join("tests/clients/openai_speech.py"))
        .arg(format!("http://{}/v1", server.addr))
        .arg("s3cret")
        .arg(&out_wav)
        .arg("Good evening, and welcome to the news.")
        .output()
        .unwrap();
    assert!(out.status.success(), "openai client: {}", String::from_utf8_lossy(&out.stderr));
    let heard = common::stdout(&common::hark(&["transcribe", out_wav.to_str().unwrap()]));
    assert!(hark::eval::wer_counts("good evening and welcome to the news", &heard).0 <= 1, "heard {heard:?}");
    let (_, metrics) = server.get("/metrics", auth);
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(metric("hark_speech_total") >= 3.0, "{metrics}");
    assert!(metric("hark_speech_seconds_total") > 3.0, "{metrics}");
}

#[test]
fn a_denoiser_in_front_of_every_stream() {
    let server = Server::start("[recognition]\nenhance = \"denoise\"\n", &[]);
    let events = stream_file(&server, &common::fixture("speech-16k-mono.wav"), 4.0);
    let text = common::words(&finals(&events));
    assert!(text.contains("glad to see you again"), "{events:?}");
    // A config asking for an unknown enhancement does not start.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[recognition]\nenhance = \"louder\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("recognition.enhance"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
