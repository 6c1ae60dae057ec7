//! `hark bench transducer`: real-time factor of the streaming encoder + search in each lookahead
//! mode on 1 and 2 threads, and resident memory over a long stream. Each measurement runs in a
//! child process so that its thread count is fixed before any thread pool starts.

pub mod denoise;
pub mod live;
pub mod separation;
pub mod serve;
pub mod tts;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::asr::transducer::search::SearchMode;
use crate::asr::transducer::{Lookahead, TransducerEngine, TransducerOptions, TransducerStage};
use crate::audio::FileSource;
use crate::features::MelFrontend;
use crate::features::mel::MelFrame;

/// The middle value (the upper one of an even count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Resident set size of this process in MiB (Linux), or 0 where unknown.
pub fn rss_mib() -> f64 {
    rss_mib_of("self")
}

/// Resident set size of a process (`self` or a pid) in MiB (Linux), or 0 where unknown.
pub fn rss_mib_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
        .map_or(0.0, |pages| pages * 4096.0 / (1024.0 * 1024.0))
}

/// Mel frames of a real recording, to be looped into a stream of any length.
fn speech_frames(path: &Path) -> anyhow::Result<Vec<MelFrame>> {
    Ok(MelFrontend::compute(&FileSource::open(path)?.read_all()?))
}

/// A segment ends every 10 s of the synthetic stream, as an endpointer would cut dictation.
const ENDPOINT_FRAMES: usize = 1000;

/// One measurement (the child process): streams `seconds` of looped speech in chunks of
/// `chunk_frames` mel frames and prints one JSON line.
pub fn run_one(
    model_dir: &Path,
    audio: &Path,
    mode: Lookahead,
    seconds: f64,
    chunk_frames: usize,
) -> anyhow::Result<()> {
    let engine = TransducerEngine::load(model_dir, mode)?;
    let base = speech_frames(audio)?;
    let total = (seconds * 100.0) as usize;
    // The model's own decoding: with the LM where the model folder ships one.
    let (search, lm) = engine.default_search();
    let decoding = match (search, lm) {
        (SearchMode::Beam { beam }, Some(f)) => {
            format!("beam {beam} + LM (weight {}, bonus {})", f.weight, f.bonus)
        }
        (SearchMode::Beam { beam }, None) => format!("beam {beam}"),
        (SearchMode::Greedy { .. }, _) => "greedy".to_string(),
    };
    let mut stage = TransducerStage::new(engine, TransducerOptions::default());
    let mut rss = vec![rss_mib()];
    let mut chunk = Vec::with_capacity(chunk_frames);
    let mut finals = 0;
    let t0 = Instant::now();
    for i in 0..total {
        let mut f = base[i % base.len()].clone();
        f.index = i as u64;
        chunk.push(f);
        if chunk.len() == chunk_frames {
            stage.push(&chunk)?;
            chunk.clear();
        }
        if i % ENDPOINT_FRAMES == ENDPOINT_FRAMES - 1 {
            // Where a live stream's endpointer would cut: the segment's text becomes final.
            stage.push(&chunk)?;
            chunk.clear();
            stage.endpoint()?;
            finals += stage.take_finals().len();
        }
        if i % 6000 == 5999 {
            rss.push(rss_mib()); // once per streamed minute
        }
    }
    stage.push(&chunk)?;
    let result = stage.finish()?;
    let wall = t0.elapsed().as_secs_f64();
    let stats = result.lookahead.stats();
    println!(
        "{}",
        serde_json::json!({
            "mode": mode.to_string(), "decoding": decoding, "seconds": seconds, "wall_s": wall, "rtf": wall / seconds,
            "lookahead_mean_ms": stats.mean_ms, "rss_mib": rss,
            "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
            "segments": finals + usize::from(!result.text.is_empty()),
        })
    );
    Ok(())
}

fn child(exe: &Path, threads: usize, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(exe)
        .args(["bench", "transducer-run"])
        .args(args)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .context("running a benchmark child")?;
    if !out.status.success() {
        bail!("benchmark child failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(serde_json::from_str(text.lines().last().unwrap_or(""))?)
}

/// The whole benchmark: a table of RTF per mode and thread count, then the memory run.
pub fn transducer(
    model_dir: &Path,
    audio: &Path,
    seconds: f64,
    soak_seconds: f64,
    chunk_frames: usize,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let common = |mode: &str, secs: f64| -> Vec<String> {
        vec![
            "--model".into(),
            model_dir.display().to_string(),
            "--audio".into(),
            audio.display().to_string(),
            "--lookahead".into(),
            mode.into(),
            "--seconds".into(),
            secs.to_string(),
            "--chunk-frames".into(),
            chunk_frames.to_string(),
        ]
    };
    println!(
        "streaming encoder + the model's decoding, {seconds} s of looped speech in chunks of {} ms",
        chunk_frames * 10
    );
    println!("{:<10} {:>8} {:>8} {:>16}", "mode", "1 thread", "2 threads", "lookahead mean");
    for mode in ["adaptive", "causal", "fixed:4", "full"] {
        let one = child(&exe, 1, &common(mode, seconds))?;
        let two = child(&exe, 2, &common(mode, seconds))?;
        println!(
            "{:<10} {:>8.4} {:>9.4} {:>13.1} ms",
            mode,
            one["rtf"].as_f64().unwrap_or(f64::NAN),
            two["rtf"].as_f64().unwrap_or(f64::NAN),
            one["lookahead_mean_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let soak = child(&exe, 1, &common("adaptive", soak_seconds))?;
    println!("decoding: {}", soak["decoding"].as_str().unwrap_or("?"));
    let rss: Vec<f64> =
        soak["rss_mib"].as_array().map(|a| a.iter().filter_map(|v| v.as_f64()).collect()).unwrap_or_default();
    let after_first_minute = &rss[rss.len().min(2) - 1..];
    let (lo, hi) = after_first_minute.iter().fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    println!(
        "memory over {:.0} min of streaming (adaptive, 1 thread, RTF {:.4}): RSS per minute {:?} MiB; after the first minute it stays within {:.1}–{:.1} MiB",
        soak_seconds / 60.0,
        soak["rtf"].as_f64().unwrap_or(f64::NAN),
        rss.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
        lo,
        hi
    );
    Ok(())
}
