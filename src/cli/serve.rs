//! `hark serve`: the service (its options; the server is [`crate::service`]).

use std::path::PathBuf;

use clap::Args;

use super::recognise::parse_enhance;
use crate::separation::EnhanceMode;
use crate::service;

#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (TOML; see systemd/hark.toml). SIGHUP re-reads it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8178]; port 0 picks a free port (printed).
    #[arg(long)]
    pub listen: Option<String>,
    /// Also serve the Wyoming protocol (Home Assistant) on this address, e.g.
    /// tcp://127.0.0.1:10300 [default: the config's wyoming.listen, else off].
    #[arg(long)]
    pub wyoming: Option<String>,
    /// Enhance every stream, upload and the microphone before recognition: denoise
    /// (DeepFilterNet3), denoise:gtcrn, denoise:rnnoise, denoise:ensemble or target:NAME [default: the config's
    /// recognition.enhance, else none].
    #[arg(long, value_parser = parse_enhance)]
    pub enhance: Option<EnhanceMode>,
}

pub fn run(a: ServeArgs) -> anyhow::Result<i32> {
    service::serve(a.config, a.listen, a.wyoming, a.enhance)
}
