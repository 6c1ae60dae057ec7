//! `hark bench live`: latency of live transcription through a real capture device. Each
//! recording is played into the device with `paplay` (scripts/bench-live.sh makes a PulseAudio
//! virtual microphone); events are timed as they arrive. Word onset and end of speech are where
//! the VAD, run offline on the recording, first and last hears speech. Reports per recording and
//! the medians: first partial after onset, last final after end of speech, the finals' WER and
//! the WER of the last partial shown before each final.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::median;

use crate::audio;
use crate::audio::FileSource;
use crate::config::Config;
use crate::eval::{read_manifest, wer_counts};
use crate::live;
use crate::live::{Event, EventKind};
use crate::pipeline::live::LiveGraph;
use crate::vad::SileroVad;
use crate::vad::silero::CHUNK;

pub struct LiveBench {
    pub manifest: PathBuf,
    pub device: Option<String>,
    /// The PulseAudio sink that feeds the device.
    pub sink: String,
    pub pause_s: f64,
}

pub fn run(b: LiveBench) -> anyhow::Result<()> {
    let config = Config::default();
    let (engines, opts) = live::setup(&config)?;
    let entries = read_manifest(&b.manifest)?;
    let tmp = tempfile::tempdir()?;
    struct Item {
        name: String,
        reference: String,
        wav: PathBuf,
        onset_s: f64,
        speech_end_s: f64,
    }
    let mut items = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let samples = FileSource::open(&e.path)?.read_all()?;
        let mut vad = SileroVad::new(engines.vad.clone());
        let mut probs = Vec::new();
        vad.push(&samples, &mut probs)?;
        let speech = |p: &f32| *p >= config.endpoint.threshold;
        let first = probs.iter().position(speech).context("no speech in a recording")?;
        let last = probs.iter().rposition(speech).unwrap_or(first);
        let wav = tmp.path().join(format!("{i}.wav"));
        audio::write_wav(&wav, &samples, 16000)?;
        let chunk_s = CHUNK as f64 / 16000.0;
        items.push(Item {
            name: e.name.clone(),
            reference: e.reference.clone(),
            wav,
            onset_s: first as f64 * chunk_s,
            speech_end_s: (last + 1) as f64 * chunk_s,
        });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let graph = LiveGraph::start(b.device.clone(), engines, opts, stop.clone())?;
    let events = graph.events.clone();
    let collector = std::thread::spawn(move || {
        events.iter().map(|e| (Instant::now(), e)).collect::<Vec<(Instant, Event)>>()
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut starts = Vec::new();
    for item in &items {
        let t = Instant::now();
        let status = Command::new("paplay")
            .arg(format!("--device={}", b.sink))
            .arg(&item.wav)
            .status()
            .context("running paplay")?;
        if !status.success() {
            bail!("paplay failed ({status}); is the virtual microphone up (scripts/bench-live.sh)?");
        }
        starts.push(t);
        std::thread::sleep(Duration::from_secs_f64(b.pause_s));
    }
    graph.stop();
    let events = collector.join().expect("collector");
    graph.join()?;

    let (mut partial_lat, mut final_lat) = (Vec::new(), Vec::new());
    let (mut errors, mut words) = (0, 0);
    let (mut partial_errors, mut partial_words) = (0, 0);
    println!(
        "{:<28} {:>10} {:>10} {:>8} {:>12}",
        "recording", "partial_ms", "final_ms", "wer", "partial_wer"
    );
    for (i, item) in items.iter().enumerate() {
        let from = starts[i];
        let to = starts.get(i + 1).copied();
        let mine: Vec<&(Instant, Event)> =
            events.iter().filter(|(t, _)| *t >= from && to.is_none_or(|to| *t < to)).collect();
        let onset = from + Duration::from_secs_f64(item.onset_s);
        let end = from + Duration::from_secs_f64(item.speech_end_s);
        let first_partial = mine
            .iter()
            .find(|(_, e)| e.kind == EventKind::Partial)
            .map(|(t, _)| t.saturating_duration_since(onset).as_secs_f64() * 1000.0);
        let last_final = mine
            .iter()
            .rev()
            .find(|(_, e)| e.kind == EventKind::Final)
            .map(|(t, _)| t.saturating_duration_since(end).as_secs_f64() * 1000.0);
        let text = mine
            .iter()
            .filter(|(_, e)| e.kind == EventKind::Final)
            .map(|(_, e)| e.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let (e, n) = wer_counts(&item.reference, &text);
        errors += e;
        words += n;
        // What a viewer saw just before each final replaced it: the transducer's last partial.
        let mut last_partials = Vec::new();
        let mut last_partial = None;
        for (_, ev) in &mine {
            match ev.kind {
                EventKind::Partial => last_partial = Some(ev.text.as_str()),
                EventKind::Final => last_partials.extend(last_partial.take()),
            }
        }
        let (pe, _) = wer_counts(&item.reference, &last_partials.join(" "));
        partial_errors += pe;
        partial_words += n;
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        println!(
            "{:<28} {:>10} {:>10} {:>7.1}% {:>11.1}%",
            item.name,
            show(first_partial),
            show(last_final),
            100.0 * e as f64 / n as f64,
            100.0 * pe as f64 / n as f64
        );
        for (t, e) in mine.iter().filter(|(_, e)| e.kind == EventKind::Final) {
            tracing::info!(at_s = t.duration_since(from).as_secs_f64(), start = e.start, end = e.end, text = %e.text, "final");
        }
        partial_lat.extend(first_partial);
        final_lat.extend(last_final);
    }
    println!(
        "first_partial_after_onset_p50_ms={:.0} final_after_speech_end_p50_ms={:.0} wer={:.2}% ({errors}/{words}) \
         last_partial_wer={:.2}% ({partial_errors}/{partial_words}) recordings={}",
        median(partial_lat),
        median(final_lat),
        100.0 * errors as f64 / words.max(1) as f64,
        100.0 * partial_errors as f64 / partial_words.max(1) as f64,
        items.len()
    );
    Ok(())
}
