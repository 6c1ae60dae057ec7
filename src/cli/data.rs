//! `hark data`: training corpora.

use std::path::PathBuf;

use clap::Subcommand;

use crate::data::sentences::FORTUNE_DIR;
use crate::data::synth::{DEFAULT_SYNTHESISERS, SynthOptions, Synthesiser, synth};
use crate::pipeline::default_jobs;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Render a synthetic corpus: fortune-database sentences spoken by every installed English
    /// voice of the chosen synthesisers (espeak-ng, flite, festival: scripts/install-voices.sh;
    /// hibari: installed on first use). Interrupted runs continue.
    Synth {
        /// Output folder (WAV files and manifest.tsv).
        #[arg(long)]
        out: PathBuf,
        /// Number of utterances (each a different sentence).
        #[arg(long, default_value_t = 3000)]
        utterances: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Parallel synthesiser processes.
        #[arg(short = 'j', long, default_value_t = default_jobs())]
        jobs: usize,
        /// Folder of fortune databases.
        #[arg(long, default_value = FORTUNE_DIR)]
        fortunes: PathBuf,
        /// A text file of sentences, one per line (plain or .gz; e.g.
        /// ../shared/text/sentences.txt.gz), read instead of the fortune databases. Lines with
        /// digits, symbols, acronyms or abbreviations are skipped.
        #[arg(long)]
        sentences: Option<PathBuf>,
        /// Synthesisers to speak with, comma-separated; utterances go to them in turn. hibari
        /// (hark's own voice, reshaped into six speakers) is opt-in: the default model's corpus
        /// is the three command-line synthesisers'.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = DEFAULT_SYNTHESISERS)]
        synthesisers: Vec<Synthesiser>,
    },
}

pub fn run(command: DataCommand) -> anyhow::Result<i32> {
    match command {
        DataCommand::Synth { out, utterances, seed, jobs, fortunes, sentences, synthesisers } => {
            let options =
                SynthOptions { out: out.clone(), utterances, seed, jobs, fortunes, sentences, synthesisers };
            let n = synth(&options)?;
            println!("{n} utterances rendered; manifest: {}", out.join("manifest.tsv").display());
            Ok(0)
        }
    }
}
