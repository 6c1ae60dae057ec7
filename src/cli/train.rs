//! `hark train`: the transducer, its LM, or the separator (recipes in models/train/).

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::train::{calibrate_only, lm, parse_device, separation, train_on};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TrainTarget {
    /// The streaming ANCAT transducer.
    Transducer,
    /// The two-speaker separator.
    Separation,
    /// The transducer's word-piece n-gram language model (shallow fusion in beam search).
    Lm,
}

#[derive(Args)]
pub struct TrainArgs {
    /// What to train.
    #[arg(value_enum, default_value = "transducer")]
    pub what: TrainTarget,
    /// Training configuration (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Continue from the last checkpoint beside the output folder.
    #[arg(long)]
    pub resume: bool,
    /// Only calibrate the exported model's schedulers to the config's latency target.
    #[arg(long, conflicts_with = "resume")]
    pub calibrate: bool,
    /// Where the transducer or the separator trains: `cpu`, or `cuda` / `cuda:N` (an NVIDIA
    /// GPU; needs hark built with `--features cuda`, e.g. by scripts/build-cuda.sh).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(a: TrainArgs) -> anyhow::Result<i32> {
    match a.what {
        TrainTarget::Lm if a.resume || a.calibrate || a.device != "cpu" => {
            bail!("--resume, --calibrate and --device do not apply to the LM")
        }
        TrainTarget::Lm => lm::train(&a.config)?,
        TrainTarget::Separation if a.calibrate => bail!("--calibrate applies to the transducer only"),
        TrainTarget::Separation => {
            separation::train(&a.config, a.resume, &parse_device(&a.device)?)?;
        }
        TrainTarget::Transducer if a.calibrate => calibrate_only(&a.config)?,
        TrainTarget::Transducer => {
            train_on(&a.config, a.resume, &parse_device(&a.device)?)?;
        }
    }
    Ok(0)
}
