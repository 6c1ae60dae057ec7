//! `hark listen`: the microphone, live.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::Args;

use super::recognise::parse_enhance;
use super::stop_on_signals;
use crate::config::{Config, FinalPass};
use crate::live;
use crate::live::EventKind;
use crate::pipeline::live::LiveGraph;
use crate::separation::EnhanceMode;

#[derive(Args)]
pub struct ListenArgs {
    /// Input device: name, host id or index from `hark devices` [default: the default input].
    #[arg(long)]
    pub device: Option<String>,
    /// One JSON object per event: {"type":"partial"|"final","text","start","end","words":[...]}.
    #[arg(long)]
    pub json: bool,
    /// Who writes the final text of each utterance [default: whisper when installed].
    #[arg(long = "final", value_enum)]
    pub final_pass: Option<FinalPass>,
    /// Transducer lookahead for partials: adaptive, adaptive:MS, causal, fixed:N or full.
    #[arg(long)]
    pub lookahead: Option<String>,
    /// Configuration file (TOML; see systemd/hark.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Enhance the microphone before recognition: denoise (DeepFilterNet3), denoise:gtcrn, denoise:rnnoise, denoise:ensemble or target:NAME.
    #[arg(long, value_parser = parse_enhance)]
    pub enhance: Option<EnhanceMode>,
}

pub fn run(a: ListenArgs) -> anyhow::Result<i32> {
    let mut config = Config::load(a.config.as_deref())?;
    if a.device.is_some() {
        config.capture.device = a.device.clone();
    }
    if a.final_pass.is_some() {
        config.recognition.final_pass = a.final_pass;
    }
    if let Some(l) = a.lookahead {
        config.recognition.lookahead = l;
    }
    if let Some(e) = &a.enhance {
        config.recognition.enhance = Some(e.to_string());
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let (engines, opts) = live::setup(&config)?;
    // Ctrl-C and SIGTERM stop capture; the utterance in progress still gets its final.
    let stop = stop_on_signals()?;
    let graph = LiveGraph::start(config.capture.device.clone(), engines.clone(), opts, stop)?;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout()) && !a.json;
    eprintln!("hark: listening (finals by {:?}; Ctrl-C to stop)", engines.final_pass());
    // Tests and scripts wait for this line before they play audio.
    eprintln!("hark: ready");
    let stdout = std::io::stdout();
    for event in graph.events.iter() {
        let mut out = stdout.lock();
        let line = if a.json {
            format!("{}\n", serde_json::to_string(&event)?)
        } else if terminal {
            match event.kind {
                // Partials overwrite the line in place; a final replaces them for good.
                EventKind::Partial => format!("\r\x1b[K{}", event.text),
                EventKind::Final => format!("\r\x1b[K{}\n", event.text),
            }
        } else if event.kind == EventKind::Final {
            format!("{}\n", event.text)
        } else {
            continue;
        };
        // A closed pipe (e.g. `| head`) ends listening quietly.
        if out.write_all(line.as_bytes()).and_then(|_| out.flush()).is_err() {
            graph.stop();
        }
    }
    let dropped = graph.stats.dropped_samples.load(Ordering::Relaxed);
    graph.join()?;
    if dropped > 0 {
        eprintln!(
            "hark: {:.1} s of audio were dropped because transcription fell behind",
            dropped as f64 / 16000.0
        );
    }
    Ok(0)
}
