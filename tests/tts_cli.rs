//! `hark say` end to end: a paragraph spoken and heard back by Whisper, bad input, standard input,
//! and playback through a (virtual) speaker.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{VirtualMic, hark, stderr, stdout};

/// Twenty everyday sentences, written for this test (the front end was never tuned on them).
const PARAGRAPH: &str = "I woke up early this morning and made a pot of coffee. The kitchen was quiet except for the hum of the fridge. \
After breakfast I walked the dog around the block. It was cold outside, so I wore my thick wool coat. \
On the way back I stopped at the bakery for fresh bread. The baker said they will close early on Sunday. \
At nine I sat down at my desk and read my email. Most of the messages were about the meeting next week. \
I called my sister to ask about her new job. She told me that she enjoys working with her team. \
For lunch we had soup with a slice of cheese. In the afternoon the rain finally stopped. \
The children played in the garden until it got dark. My neighbor brought over a basket of apples from his tree. \
I thanked him and promised to bake a pie. Dinner was ready a little after seven. \
We watched a short film and then washed the dishes. Before bed I checked that the doors were locked. \
I set my alarm for half past six. Tomorrow will be another busy day.";

fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (errors, words) = hark::eval::wer_counts(reference, hypothesis);
    errors as f64 / words as f64
}

#[test]
fn a_spoken_paragraph_is_heard_back_by_whisper() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("paragraph.wav");
    let out = hark(&["say", "-o", wav.to_str().unwrap(), PARAGRAPH]);
    assert!(out.status.success(), "{}", stderr(&out));
    let spec = hound::WavReader::open(&wav).unwrap().spec();
    assert_eq!((spec.sample_rate, spec.channels), (24_000, 1));
    let out = hark(&["transcribe", wav.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let heard = stdout(&out);
    let w = wer(PARAGRAPH, &heard);
    assert!(w <= 0.05, "WER {:.1}% > 5%: heard {heard:?}", 100.0 * w);
}

#[test]
fn bad_text_and_options_get_clear_errors_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("x.wav");
    let wav = wav.to_str().unwrap();
    for (args, expected) in [
        (vec!["say", "-o", wav, ""], "no text to speak"),
        (vec!["say", "-o", wav, "   \n "], "no text to speak"),
        (vec!["say", "-o", wav, "--speed", "9", "Hello."], "speed 9 is outside"),
        (vec!["say", "-o", wav, "--sample-rate", "100", "Hello."], "outside 8000"),
        (vec!["say", "-o", wav, "你好，世界。"], "nothing in the text can be spoken"),
    ] {
        let out = hark(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
        assert!(!std::path::Path::new(wav).exists(), "{args:?} left a file behind");
    }
}

#[test]
fn markup_control_characters_and_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("stdin.wav");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["say", "--sample-rate", "16000", "-o", wav.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Tags are dropped and control characters are spaces; the words are read.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            "<speak><b>Good</b> morning,\u{7} everyone.\u{0}\nThe train leaves at 8:15.</speak>".as_bytes(),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(hound::WavReader::open(&wav).unwrap().spec().sample_rate, 16_000);
    let heard = stdout(&hark(&["transcribe", wav.to_str().unwrap()]));
    assert!(
        wer("good morning everyone the train leaves at eight fifteen", &heard) <= 0.25,
        "heard {heard:?}"
    );
    assert!(!heard.to_lowercase().contains("speak"), "markup was read out: {heard:?}");
}

#[test]
fn say_plays_through_the_default_speaker() {
    // A PulseAudio null sink stands in for the speaker; its monitor is recorded while hark plays.
    let mic = VirtualMic::start();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("played.raw");
    let mut recorder = mic
        .command("parec")
        .args([
            "--device=virt.monitor",
            "--format=s16le",
            "--rate=16000",
            "--channels=1",
            "--raw",
            "--latency-msec=20",
        ])
        .stdout(std::fs::File::create(&raw).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = mic
        .command(env!("CARGO_BIN_EXE_hark"))
        .args(["say", "--device", "pulse", "The weather will be sunny tomorrow."])
        .output()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SIGINT, not SIGKILL: parec then writes out what it has buffered.
    // SAFETY: signalling a child process this test started and still owns.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
    let _ = recorder.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&raw).unwrap();
    let samples: Vec<f32> =
        bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect();
    assert!(
        samples.len() > 16_000,
        "only {} samples recorded; hark said: {}",
        samples.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    let wav = dir.path().join("played.wav");
    hark::audio::write_wav(&wav, &samples, 16_000).unwrap();
    let heard = stdout(&hark(&["transcribe", wav.to_str().unwrap()]));
    assert!(wer("the weather will be sunny tomorrow", &heard) <= 0.2, "heard through the speaker: {heard:?}");
}
