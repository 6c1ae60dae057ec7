//! Training the transducer: the RNN-T loss, data, and the training loop.

pub mod rnnt;
