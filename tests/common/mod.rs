//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod redis_server;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("audio-fixtures").join(name)
}

/// The LibriSpeech dev utterances on which Whisper tiny.en used to run away (the sentence, then
/// "you, you, you…" or the sentence again), by name in ../shared/speech/librispeech/dev.
pub const RUNAWAY_UTTERANCES: [&str; 5] =
    ["1272-141231-0009", "1272-141231-0010", "1272-141231-0012", "2035-152373-0007", "2035-152373-0017"];

/// A recording of ../shared/speech/librispeech/dev.tsv (which CI has beside the clone) and its
/// reference transcript.
pub fn librispeech_dev(name: &str) -> (PathBuf, String) {
    let dir = root().join("../shared/speech/librispeech");
    let manifest =
        std::fs::read_to_string(dir.join("dev.tsv")).expect("../shared/speech/librispeech/dev.tsv");
    let file = format!("dev/{name}.mp3");
    let reference = manifest
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{file}\t")).and_then(|rest| rest.split('\t').nth(1)))
        .unwrap_or_else(|| panic!("{file} is not in dev.tsv"));
    (dir.join(file), reference.to_string())
}

/// Fails when a transcript runs away: more words than 1.5× the reference, or a word trigram
/// said three times or more (the loops Whisper falls into after speech ends).
pub fn assert_no_runaway(name: &str, reference: &str, text: &str) {
    let hyp: Vec<String> = words(text).split_whitespace().map(str::to_string).collect();
    let reference_words = words(reference).split_whitespace().count();
    assert!(
        hyp.len() as f64 <= 1.5 * reference_words as f64,
        "{name}: {} words for {reference_words}: {text}",
        hyp.len()
    );
    let mut seen = std::collections::HashMap::new();
    for trigram in hyp.windows(3) {
        let n = seen.entry(trigram.to_vec()).or_insert(0);
        *n += 1;
        assert!(*n < 3, "{name}: {trigram:?} said {n} times: {text}");
    }
}

/// Runs the hark binary from the repository root, with the user's model directory (so the model
/// is installed once, by whichever test gets there first, and shared).
pub fn hark(args: &[&str]) -> Output {
    hark_in(&root(), args, &[])
}

pub fn hark_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hark"));
    cmd.current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running hark")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Lower-case words without punctuation, for asserting on what was said.
pub fn words(text: &str) -> String {
    hark::eval::normalize(text)
}

/// A virtual microphone: a private PulseAudio server with a null sink whose monitor is the
/// default source, so `hark` captures (through cpal → ALSA → the `pulse` plugin) whatever
/// `play` sends to the sink. The server stops when this is dropped.
pub struct VirtualMic {
    pub runtime_dir: tempfile::TempDir,
}

impl VirtualMic {
    pub fn start() -> Self {
        for tool in ["pulseaudio", "pactl", "paplay"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .output()
                    .unwrap()
                    .status
                    .success(),
                "{tool} is missing: install pulseaudio pulseaudio-utils libasound2-plugins (.ci/run does)"
            );
        }
        let runtime_dir = tempfile::tempdir().unwrap();
        let mic = Self { runtime_dir };
        let out = mic
            .command("pulseaudio")
            .args([
                "--daemonize=yes",
                "--exit-idle-time=-1",
                "-n",
                "--load=module-null-sink sink_name=virt",
                "--load=module-native-protocol-unix",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "pulseaudio did not start: {}", String::from_utf8_lossy(&out.stderr));
        let out = mic.command("pactl").args(["set-default-source", "virt.monitor"]).output().unwrap();
        assert!(out.status.success(), "pactl: {}", String::from_utf8_lossy(&out.stderr));
        mic
    }

    /// A command that talks to this server.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", self.runtime_dir.path()).env_remove("PULSE_SERVER");
        c
    }

    /// Plays samples (16 kHz mono) into the virtual microphone; returns when playback ends.
    pub fn play(&self, samples: &[f32]) {
        let wav = self.runtime_dir.path().join("play.wav");
        hark::audio::write_wav(&wav, samples, 16000).unwrap();
        let out = self.command("paplay").arg("--device=virt").arg(&wav).output().unwrap();
        assert!(out.status.success(), "paplay: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        let _ = self.command("pulseaudio").arg("--kill").output();
    }
}
