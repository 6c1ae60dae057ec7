//! `hark transcribe`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::recognise::{RecogniserArgs, load, progress};
use crate::output::{Format, render};
use crate::pipeline::{FileOutcome, default_jobs, transcribe_files};
use crate::separation::load_enhancer;

#[derive(Args)]
pub struct TranscribeArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub recogniser: RecogniserArgs,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: Format,
    /// Write one FILE.<format> per input into this folder instead of printing.
    #[arg(long, short = 'o')]
    pub output_dir: Option<PathBuf>,
    /// Decode without timestamps (one segment per window).
    #[arg(long)]
    pub no_timestamps: bool,
}

pub fn run(a: TranscribeArgs) -> anyhow::Result<i32> {
    let recognizer = load(&a.recogniser, !a.no_timestamps)?;
    let enhancer = load_enhancer(a.recogniser.enhance.as_ref())?;
    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pb = progress(a.files.len());
    let jobs = a.recogniser.jobs.unwrap_or_else(default_jobs);
    let mut failures = 0;
    // Print in command-line order: hold results that finish early.
    let mut ready: BTreeMap<usize, FileOutcome> = BTreeMap::new();
    let mut next = 0;
    let stdout = std::io::stdout();
    transcribe_files(&a.files, &recognizer, enhancer.as_ref(), jobs, |outcome| {
        pb.inc(1);
        ready.insert(outcome.index, outcome);
        while let Some(o) = ready.remove(&next) {
            next += 1;
            let shown = o.path.display().to_string();
            match o.result {
                Ok(t) => {
                    let text = render(a.format, &shown, &t);
                    let written = match &a.output_dir {
                        Some(dir) => {
                            let stem = o
                                .path
                                .file_stem()
                                .map(|s| s.to_string_lossy().into_owned())
                                .unwrap_or("out".into());
                            let out = dir.join(format!("{stem}.{}", a.format.extension()));
                            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))
                        }
                        None => pb.suspend(|| {
                            stdout.lock().write_all(text.as_bytes()).context("writing to stdout")
                        }),
                    };
                    if let Err(e) = written {
                        failures += 1;
                        pb.suspend(|| eprintln!("hark: {shown}: {e:#}"));
                    }
                }
                Err(e) => {
                    failures += 1;
                    pb.suspend(|| eprintln!("hark: {shown}: {e}"));
                }
            }
        }
    });
    pb.finish_and_clear();
    Ok(if failures == 0 { 0 } else { 1 })
}
