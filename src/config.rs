//! The one configuration type: read from TOML (`--config FILE`, the service's hark.toml), with
//! defaults that work without a file; command-line flags override it.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::asr::transducer::Lookahead;
use crate::models::DEFAULT_TRANSDUCER;
use crate::separation::EnhanceMode;
use crate::vad::EndpointConfig;

/// Which recogniser writes the final text of an utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FinalPass {
    Whisper,
    Transducer,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub capture: CaptureConfig,
    pub recognition: RecognitionConfig,
    pub endpoint: EndpointConfig,
    pub wyoming: WyomingConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WyomingConfig {
    /// Serve the Wyoming protocol (Home Assistant) here, e.g. "tcp://127.0.0.1:10300"; off when
    /// absent.
    pub listen: Option<String>,
}

impl WyomingConfig {
    /// The address in `listen`: `tcp://HOST:PORT` (the scheme Wyoming URIs use) or `HOST:PORT`;
    /// `None` when Wyoming is off.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        let Some(uri) = &self.listen else { return Ok(None) };
        let addr = uri.strip_prefix("tcp://").unwrap_or(uri);
        if addr.contains("://") {
            return Err(format!("wyoming.listen '{uri}': only tcp:// addresses are served"));
        }
        addr.parse().map(Some).map_err(|e| format!("wyoming.listen '{uri}': {e}"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address `hark serve` listens on.
    pub listen: String,
    /// When set, every request needs `Authorization: Bearer TOKEN` (`/healthz` excepted).
    pub token: Option<String>,
    /// Uploads larger than this get 413.
    pub max_upload_mb: u64,
    /// Concurrent WebSocket streams; more are refused with an error message.
    pub max_streams: usize,
    /// A stream that sends nothing for this long is ended with an error.
    pub idle_timeout_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8178".into(),
            token: None,
            max_upload_mb: 100,
            max_streams: 16,
            idle_timeout_s: 30,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// The service transcribes its own microphone and publishes it on /v1/events.
    pub enabled: bool,
    /// Input device: name, host id or index (`hark devices`); default input when absent.
    pub device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecognitionConfig {
    /// Transducer for partials (name or folder).
    pub transducer: String,
    /// Whisper model for finals and for uploaded files (name or folder).
    pub whisper: String,
    /// Who writes finals; absent: Whisper when installed, else the transducer.
    #[serde(rename = "final")]
    pub final_pass: Option<FinalPass>,
    /// adaptive, adaptive:MS (a mean lookahead in ms), causal, fixed:N or full.
    pub lookahead: String,
    /// Enhancement before recognition: denoise, denoise:gtcrn, denoise:rnnoise, denoise:deepfilternet, denoise:ensemble or target:NAME; absent: none.
    pub enhance: Option<String>,
}

impl Default for RecognitionConfig {
    fn default() -> Self {
        Self {
            transducer: DEFAULT_TRANSDUCER.into(),
            whisper: "whisper-tiny.en".into(),
            final_pass: None,
            lookahead: "adaptive".into(),
            enhance: None,
        }
    }
}

impl RecognitionConfig {
    pub fn lookahead(&self) -> Result<Lookahead, String> {
        self.lookahead.parse()
    }

    pub fn enhance(&self) -> Result<Option<EnhanceMode>, String> {
        self.enhance
            .as_deref()
            .map(|e| e.parse().map_err(|e: crate::Error| format!("recognition.enhance: {e}")))
            .transpose()
    }
}

impl Config {
    /// Reads a config file; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let config: Self = match path {
            None => Self::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            }
        };
        config.validate().map_err(|e| {
            anyhow::anyhow!("{}: {e}", path.map_or("configuration".into(), |p| p.display().to_string()))
        })?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.endpoint.validate()?;
        self.recognition.lookahead()?;
        self.recognition.enhance()?;
        self.server
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("server.listen '{}': {e}", self.server.listen))?;
        self.wyoming.address()?;
        if self.server.max_streams == 0 || self.server.idle_timeout_s == 0 {
            return Err("server.max_streams and server.idle_timeout_s must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_equals_the_defaults_it_documents() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/hark.toml")).unwrap();
        let c: Config = toml::from_str(&text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8178");
        assert_eq!(c.endpoint, EndpointConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<Config>("[server]\nlisen = \"x\"").is_err());
        let c: Config = toml::from_str("[recognition]\nlookahead = \"sideways\"").unwrap();
        assert!(c.validate().unwrap_err().contains("sideways"));
        let c: Config = toml::from_str("[endpoint]\nthreshold = 2.0").unwrap();
        assert!(c.validate().is_err());
        let c: Config = toml::from_str("[recognition]\nenhance = \"louder\"").unwrap();
        assert!(c.validate().unwrap_err().contains("recognition.enhance"));
        let c: Config = toml::from_str("[recognition]\nenhance = \"target:alice\"").unwrap();
        assert_eq!(
            c.recognition.enhance().unwrap(),
            Some(crate::separation::EnhanceMode::Target("alice".into()))
        );
    }
}
