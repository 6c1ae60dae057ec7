//! Speech recognisers.

pub mod transducer;
pub mod whisper;

/// A piece of transcript with its place in the stream (seconds from the start).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// The recogniser's geometric-mean token probability for the segment (0–1).
    #[serde(skip, default = "certain")]
    pub confidence: f32,
}

fn certain() -> f32 {
    1.0
}
