//! Voice activity: Silero VAD (speech probability per 32 ms) and the endpoint rules that cut a
//! live stream into utterances.

pub mod endpoint;
pub mod silero;

pub use endpoint::{Endpoint, EndpointConfig, EndpointReason, Endpointer};
pub use silero::{SileroModel, SileroVad};
