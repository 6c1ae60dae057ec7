//! `hark eval`: transcribe a manifest and score the word error rate.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use clap::Args;

use super::recognise::{RecogniserArgs, load, progress};
use crate::asr::transducer::LookaheadHistogram;
use crate::eval::{read_manifest, wer_counts};
use crate::pipeline::{Recognizer, default_jobs, transcribe_files};
use crate::separation::load_enhancer;

#[derive(Args)]
pub struct EvalArgs {
    /// Tab-separated manifest: file, duration, reference transcript (paths relative to it).
    pub manifest: PathBuf,
    #[command(flatten)]
    pub recogniser: RecogniserArgs,
}

pub fn run(a: EvalArgs) -> anyhow::Result<i32> {
    let t0 = Instant::now();
    let entries = read_manifest(&a.manifest)?;
    if entries.is_empty() {
        bail!("{} lists no recordings", a.manifest.display());
    }
    let recognizer = load(&a.recogniser, true)?;
    let enhancer = load_enhancer(a.recogniser.enhance.as_ref())?;
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let pb = progress(paths.len());
    let jobs = a.recogniser.jobs.unwrap_or_else(default_jobs);
    let mut hyps: Vec<Option<String>> = vec![None; entries.len()];
    let mut audio_s = 0.0;
    let mut failed = 0;
    let mut lookahead = LookaheadHistogram::default();
    transcribe_files(&paths, &recognizer, enhancer.as_ref(), jobs, |o| {
        pb.inc(1);
        match o.result {
            Ok(t) => {
                audio_s += t.duration;
                lookahead.merge(&t.lookahead);
                hyps[o.index] = Some(t.text);
            }
            Err(e) => {
                failed += 1;
                pb.suspend(|| eprintln!("hark: {}: {e}", o.path.display()));
            }
        }
    });
    pb.finish_and_clear();
    let wall_s = t0.elapsed().as_secs_f64();
    let (mut errors, mut words) = (0, 0);
    for (e, hyp) in entries.iter().zip(&hyps) {
        let hyp_text = hyp.as_deref().unwrap_or("");
        let (err, n) = wer_counts(&e.reference, hyp_text);
        errors += err;
        words += n;
        eprintln!("{}\t{err}/{n}\t{}", e.name, hyp.as_deref().unwrap_or("<failed>"));
    }
    let wer = 100.0 * errors as f64 / words.max(1) as f64;
    eprintln!("WER {wer:.2}% ({errors}/{words}) over {} files", entries.len());
    let mut line = format!(
        "wer={wer:.2} errors={errors} words={words} audio_s={audio_s:.1} wall_s={wall_s:.1} rtf={:.3}",
        wall_s / audio_s.max(1e-9)
    );
    if let Recognizer::Transducer(engine, _) = &recognizer {
        let s = lookahead.stats();
        line.push_str(&format!(
            " lookahead={} lookahead_mean_ms={:.1} lookahead_p50_ms={:.1} lookahead_p90_ms={:.1}",
            engine.lookahead, s.mean_ms, s.p50_ms, s.p90_ms
        ));
    }
    if failed > 0 {
        line.push_str(&format!(" failed={failed}"));
    }
    println!("{line}");
    Ok(if failed == 0 { 0 } else { 1 })
}
