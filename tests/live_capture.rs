//! Live capture end to end: `hark listen` records through cpal from a virtual microphone (a
//! PulseAudio null sink's monitor) while a real dev-real recording plays into it.
//! `cargo test live` runs these.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hark::audio::FileSource;

fn wait_for_line(reader: &mut impl BufRead, want: &str, timeout: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut line = String::new();
    while start.elapsed() < timeout {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push(line.trim_end().to_string());
        if line.contains(want) {
            return seen;
        }
    }
    panic!("no '{want}' within {timeout:?}; saw: {seen:?}");
}

#[test]
fn live_capture_transcribes_a_recording_played_into_a_virtual_microphone() {
    let mic = common::VirtualMic::start();
    let manifest = hark::eval::read_manifest(&common::fixture("dev-real/manifest.tsv")).unwrap();
    // Two speakers, with a pause between them as in dictation.
    let entries: Vec<_> =
        manifest.iter().filter(|e| e.name == "../jfk.flac" || e.name == "fleurs-en-003.flac").collect();
    assert_eq!(entries.len(), 2);

    let mut child = mic
        .command(env!("CARGO_BIN_EXE_hark"))
        .args(["listen", "--device", "pulse", "--json", "--final", "whisper"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    wait_for_line(&mut stderr, "hark: ready", Duration::from_secs(300));
    let stderr_rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let lines = std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect::<Vec<_>>());

    std::thread::sleep(Duration::from_millis(500));
    let mut reference = Vec::new();
    for entry in &entries {
        let mut samples = FileSource::open(&entry.path).unwrap().read_all().unwrap();
        samples.extend(std::iter::repeat_n(0.0, 16000 * 3 / 2));
        mic.play(&samples);
        reference.push(entry.reference.clone());
    }
    std::thread::sleep(Duration::from_secs(2));
    // SIGTERM: capture stops, the last utterance is finished, the process exits 0.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let lines = lines.join().unwrap();
    let log = stderr_rest.join().unwrap();
    assert!(status.success(), "exit {status:?}; stderr: {log}");

    let events: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    let finals: Vec<&str> =
        events.iter().filter(|e| e["type"] == "final").map(|e| e["text"].as_str().unwrap()).collect();
    let partials = events.iter().filter(|e| e["type"] == "partial").count();
    for e in events.iter().filter(|e| e["type"] == "final") {
        assert!(e["start"].as_f64().unwrap() < e["end"].as_f64().unwrap(), "{e}");
        assert!(!e["words"].as_array().unwrap().is_empty(), "{e}");
    }
    let hypothesis = finals.join(" ");
    let (errors, words) = hark::eval::wer_counts(&reference.join(" "), &hypothesis);
    eprintln!("finals: {finals:?}\npartials: {partials}\nWER {errors}/{words}");
    assert!(partials > 0, "no partials while speech played");
    assert!(errors as f64 <= 0.10 * words as f64, "WER {errors}/{words}: {hypothesis}");
}

#[test]
fn live_listen_names_a_missing_device_clearly() {
    let mic = common::VirtualMic::start();
    let out = mic
        .command(env!("CARGO_BIN_EXE_hark"))
        .args(["listen", "--device", "no-such-microphone"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no input device 'no-such-microphone'") && err.contains("hark devices"), "{err}");
}

#[test]
fn live_service_publishes_its_microphone_on_events() {
    let mic = common::VirtualMic::start();
    let config = mic.runtime_dir.path().join("hark.toml");
    std::fs::write(&config, "[capture]\nenabled = true\ndevice = \"pulse\"\n").unwrap();
    let mut child = mic
        .command(env!("CARGO_BIN_EXE_hark"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let seen = wait_for_line(&mut stderr, "hark: listening on http://", Duration::from_secs(300));
    let addr = seen.last().unwrap().split("http://").nth(1).unwrap().to_string();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let mut sse = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut sse,
        format!("GET /v1/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").as_bytes(),
    )
    .unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let reader = std::thread::spawn(move || {
        let mut data = Vec::new();
        for line in BufReader::new(sse).lines().map_while(Result::ok) {
            if let Some(json) = line.strip_prefix("data: ") {
                let v: serde_json::Value = serde_json::from_str(json).unwrap();
                let done = v["type"] == "done";
                data.push(v);
                if done {
                    break;
                }
            }
        }
        data
    });
    std::thread::sleep(Duration::from_millis(500));
    let entry = common::fixture("dev-real/fleurs-en-003.flac");
    let samples = FileSource::open(&entry).unwrap().read_all().unwrap();
    // SIGTERM mid-utterance: three quarters played, no pause: the final comes from the flush.
    mic.play(&samples[..samples.len() * 3 / 4]);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let events = reader.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(events.last().unwrap()["type"], "done", "{events:?}");
    let text: Vec<&str> =
        events.iter().filter(|e| e["type"] == "final").map(|e| e["text"].as_str().unwrap()).collect();
    let heard = common::words(&text.join(" "));
    assert!(heard.contains("cabbage juice changes color"), "{text:?}");
}
