//! `hark bench tts`: text-to-speech speed. Two figures, as users meet them:
//! - a whole text spoken to a file by `hark say`, one process with the voice's load: wall time
//!   over the audio's duration (median of the runs);
//! - time to first audio: a loaded voice (a service, a running `hark say`) given one sentence,
//!   until its audio is ready (median over the text's sentences).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, bail};

use super::median;

use crate::models;
use crate::pipeline::tts::{SpeechEvent, TtsNode};
use crate::tts::{SpeechOptions, Tts};

pub struct TtsBench {
    pub text: PathBuf,
    pub runs: usize,
}

pub fn run(b: TtsBench) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&b.text).with_context(|| format!("reading {}", b.text.display()))?;
    let dir = models::resolve("hibari")?;
    let tmp = tempfile::tempdir()?;
    let wav = tmp.path().join("say.wav");
    let exe = std::env::current_exe()?;
    let mut ratios = Vec::new();
    let mut audio_s = 0.0;
    for _ in 0..b.runs.max(1) {
        let started = Instant::now();
        let out =
            Command::new(&exe).arg("say").arg("--model").arg(&dir).arg("-o").arg(&wav).arg(&text).output()?;
        let wall = started.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("hark say failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let reader = hound::WavReader::open(&wav)?;
        audio_s = f64::from(reader.duration()) / f64::from(reader.spec().sample_rate);
        ratios.push(wall / audio_s);
    }
    let load_started = Instant::now();
    let tts = Arc::new(Tts::load(&dir)?);
    let load_ms = load_started.elapsed().as_secs_f64() * 1000.0;
    let sentences = tts.sentences(&text);
    let mut first_audio_ms = Vec::new();
    for sentence in &sentences {
        let started = Instant::now();
        let node = TtsNode::start(
            tts.clone(),
            sentence.clone(),
            SpeechOptions::default(),
            Arc::new(AtomicBool::new(false)),
        );
        match node.events.recv() {
            Ok(SpeechEvent::Sentence(_)) => first_audio_ms.push(started.elapsed().as_secs_f64() * 1000.0),
            Ok(SpeechEvent::Failed(e)) => bail!("{sentence:?}: {e}"),
            _ => bail!("{sentence:?}: no audio"),
        }
        node.join();
    }
    println!(
        "say_wall_over_audio={:.3} (median of {} runs; {audio_s:.1} s of audio, {} sentences, voice load included) first_audio_p50_ms={:.0} (loaded voice, per sentence) voice_load_ms={load_ms:.0} cores={}",
        median(ratios),
        b.runs.max(1),
        sentences.len(),
        median(first_audio_ms),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    Ok(())
}
