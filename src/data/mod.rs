//! Training data the project builds itself: `hark data synth` (see [`synth`]).

pub mod sentences;
pub mod synth;
