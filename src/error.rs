//! The library's error type. Every variant names what went wrong in words a user can act on;
//! the binary adds the file name or command around it with `anyhow`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the file: {0}")]
    Unreadable(std::io::Error),
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    #[error("not an audio file (or an unknown container): {0}")]
    NotAudio(String),
    #[error("empty audio: the file holds no samples")]
    EmptyAudio,
    #[error("corrupt or truncated audio at {position_s:.2} s: {reason}")]
    CorruptAudio { position_s: f64, reason: String },
    #[error("invalid audio parameters: {0}")]
    InvalidAudio(String),
    #[error("audio device: {0}")]
    Device(String),
    #[error("model error: {0}")]
    Model(String),
    /// A request the caller can fix (text to speak, options).
    #[error("{0}")]
    InvalidInput(String),
    #[error("model download refused: {0}")]
    DownloadRefused(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
