//! The transducer's head in the differentiable forward: 25 Hz subsampling, the stateless
//! predictor and the joiner, over the trained parameters.

use candle_core::{DType, Tensor};

use super::layers::{Params, linear};
use crate::asr::transducer::TransducerConfig;

/// The trainable tensors, by their names in the model file.
pub(super) const HEAD: [&str; 9] = [
    "subsample.weight",
    "subsample.bias",
    "enc_proj.weight",
    "enc_proj.bias",
    "embedding",
    "pred_proj.weight",
    "pred_proj.bias",
    "joiner_out.weight",
    "joiner_out.bias",
];

pub(super) struct Head<'a> {
    pub(super) params: &'a Params,
    pub(super) cfg: &'a TransducerConfig,
}

impl Head<'_> {
    fn var(&self, name: &str) -> &Tensor {
        self.params.get(name)
    }

    /// Joiner logits `[K, U+1, V]` for one utterance.
    pub(super) fn logits(&self, feats: &Tensor, labels: &[u32]) -> candle_core::Result<Tensor> {
        let (t, d) = feats.dims2()?;
        let x = if t % 2 == 1 {
            Tensor::cat(&[feats, &Tensor::zeros((1, d), DType::F32, feats.device())?], 0)?
        } else {
            feats.clone()
        };
        let pairs = x.reshape((t.div_ceil(2), 2 * d))?;
        let enc = linear(
            &linear(&pairs, self.var("subsample.weight"), self.var("subsample.bias"))?,
            self.var("enc_proj.weight"),
            self.var("enc_proj.bias"),
        )?;
        let c = self.cfg.context_size;
        let blank = self.cfg.blank_id;
        let mut ids = Vec::with_capacity((labels.len() + 1) * c);
        for u in 0..=labels.len() {
            for j in (1..=c).rev() {
                ids.push(if u >= j { labels[u - j] } else { blank });
            }
        }
        let ids = Tensor::new(ids.as_slice(), feats.device())?;
        let emb = self
            .var("embedding")
            .index_select(&ids, 0)?
            .reshape((labels.len() + 1, c * self.cfg.joiner_dim))?;
        let pred = linear(&emb, self.var("pred_proj.weight"), self.var("pred_proj.bias"))?;
        let (k, u1, j) = (enc.dim(0)?, pred.dim(0)?, self.cfg.joiner_dim);
        let h = enc.unsqueeze(1)?.broadcast_add(&pred.unsqueeze(0)?)?.tanh()?.reshape((k * u1, j))?;
        linear(&h, self.var("joiner_out.weight"), self.var("joiner_out.bias"))?.reshape((
            k,
            u1,
            self.cfg.vocab_size,
        ))
    }
}
