//! Differentiable versions of the encoder's top blocks, for fine-tuning them with ANCAT masks.
//!
//! The inference code uses candle's fused LayerNorm and softmax and a table-free GELU, none of
//! which has a backward pass; here every op is one candle can differentiate. With hard gates
//! the forward equals [`TransducerModel::encode_layers`] (tested), so what is trained is what runs.
//!
//! The attention scheduler is trained with a straight-through gate: the forward uses the hard
//! decision (logit > 0), the backward the gradient of sigmoid(logit). Each query's attention is
//! computed with and without its lookahead window and mixed by the gate.

use std::collections::HashMap;

use candle_core::{D, DType, Result, Tensor, Var};

use crate::asr::transducer::model::visible;
use crate::asr::transducer::{Lookahead, TransducerConfig};

/// Trainable tensors of one encoder block, by their suffix in the model file.
pub const BLOCK_PARAMS: [&str; 14] = [
    "ln1.weight",
    "ln1.bias",
    "qkv.weight",
    "qkv.bias",
    "out.weight",
    "out.bias",
    "ln2.weight",
    "ln2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "scheduler.weight",
    "scheduler.bias",
];

pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred.broadcast_div(&(var + 1e-5)?.sqrt()?)?.broadcast_mul(weight)?.broadcast_add(bias)
}

/// Softmax over the last dimension; the max is detached (softmax does not depend on it).
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
}

/// Additive attention mask `[T, T]` for one layer, with every gate `gate`.
pub fn mask(
    mode: Lookahead,
    cfg: &TransducerConfig,
    layer: usize,
    gate: bool,
    t: usize,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let m: Vec<f32> = (0..t * t)
        .map(|i| if visible(mode, cfg, layer, gate, i / t, i % t) { 0.0 } else { f32::NEG_INFINITY })
        .collect();
    Tensor::from_vec(m, (t, t), device)
}

/// Dropout, skipped (no random mask drawn) when `p` is 0.
pub fn dropout_if(x: &Tensor, p: f32) -> Result<Tensor> {
    if p > 0.0 { candle_nn::ops::dropout(x, p) } else { Ok(x.clone()) }
}

/// Multi-head attention of `[T, d]` queries, keys and values under an additive mask.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize) -> Result<Tensor> {
    let (t, d) = q.dims2()?;
    let dh = d / heads;
    let split = |x: &Tensor| x.reshape((t, heads, dh))?.transpose(0, 1)?.contiguous();
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let scores = (q.matmul(&k.t()?)? * (1.0 / (dh as f64).sqrt()))?.broadcast_add(mask)?;
    softmax(&scores)?.matmul(&v)?.transpose(0, 1)?.reshape((t, d))
}

/// The model's tensors during training: the trained ones as variables, the rest fixed.
pub struct Params {
    pub vars: HashMap<String, Var>,
    pub fixed: HashMap<String, Tensor>,
}

impl Params {
    pub fn get(&self, name: &str) -> &Tensor {
        match self.vars.get(name) {
            Some(v) => v.as_tensor(),
            None => &self.fixed[name],
        }
    }
}

/// One encoder block in the differentiable forward.
pub struct TrainableBlock<'a> {
    pub layer: usize,
    pub params: &'a Params,
}

/// What a trainable block's forward returns.
pub struct BlockOutput {
    pub x: Tensor,
    /// Per frame, the probability that the gate is on (sigmoid of the scheduler's logit) in
    /// adaptive mode; constant 0 or 1 in the other modes.
    pub gate_prob: Tensor,
}

impl TrainableBlock<'_> {
    fn p(&self, name: &str) -> &Tensor {
        self.params.get(&format!("blocks.{}.{name}", self.layer))
    }

    /// The block's forward on `[T, d]` inputs; `dropout` applies to the attention and FFN branches.
    pub fn forward(
        &self,
        x: &Tensor,
        mode: Lookahead,
        cfg: &TransducerConfig,
        dropout: f32,
    ) -> Result<BlockOutput> {
        let (t, d) = x.dims2()?;
        let dev = x.device();
        let h = layer_norm(x, self.p("ln1.weight"), self.p("ln1.bias"))?;
        let qkv = linear(&h, self.p("qkv.weight"), self.p("qkv.bias"))?;
        let (q, k, v) = (qkv.narrow(1, 0, d)?, qkv.narrow(1, d, d)?, qkv.narrow(1, 2 * d, d)?);
        let heads = cfg.n_heads;
        let (att, gate_prob) = match mode {
            Lookahead::Adaptive => {
                let logit = linear(x, self.p("scheduler.weight"), self.p("scheduler.bias"))?; // [T, 1]
                let prob = candle_nn::ops::sigmoid(&logit)?;
                let hard = logit.gt(0f64)?.to_dtype(DType::F32)?;
                let gate = (hard + (&prob - prob.detach())?)?; // straight-through
                let closed = attend(&q, &k, &v, &mask(mode, cfg, self.layer, false, t, dev)?, heads)?;
                let open = attend(&q, &k, &v, &mask(mode, cfg, self.layer, true, t, dev)?, heads)?;
                let att = (&closed + gate.broadcast_mul(&(open - &closed)?)?)?;
                (att, prob.squeeze(1)?)
            }
            _ => {
                let gate = !matches!(mode, Lookahead::Causal);
                let att = attend(&q, &k, &v, &mask(mode, cfg, self.layer, gate, t, dev)?, heads)?;
                (att, Tensor::full(if gate { 1f32 } else { 0f32 }, t, dev)?)
            }
        };
        let att = dropout_if(&linear(&att, self.p("out.weight"), self.p("out.bias"))?, dropout)?;
        let x = (x + att)?;
        let h = layer_norm(&x, self.p("ln2.weight"), self.p("ln2.bias"))?;
        let h = linear(
            &linear(&h, self.p("fc1.weight"), self.p("fc1.bias"))?.gelu_erf()?,
            self.p("fc2.weight"),
            self.p("fc2.bias"),
        )?;
        let x = (x + dropout_if(&h, dropout)?)?;
        Ok(BlockOutput { x, gate_prob })
    }
}

/// Frames before `t` whose readiness a query may inherit: earlier queries that looked ahead can
/// depend on later audio than query t itself; this many covers the windows of the layers below.
const LOOK_BACK: usize = 8;

/// Elementwise max of `x[t + offset]` over `offset` in `from..=to` (indices clamped to the ends).
fn window_max(x: &Tensor, from: isize, to: isize) -> Result<Tensor> {
    let t = x.dim(0)? as isize;
    let mut out: Option<Tensor> = None;
    for offset in from..=to {
        let ids: Vec<u32> = (0..t).map(|i| (i + offset).clamp(0, t - 1) as u32).collect();
        let shifted = x.index_select(&Tensor::new(ids.as_slice(), x.device())?, 0)?;
        out = Some(match out {
            Some(m) => m.maximum(&shifted)?,
            None => shifted,
        });
    }
    Ok(out.expect("non-empty window"))
}

/// Expected readiness after one block. `ready` is `[T]`: per frame, the last mel frame it
/// depends on (as f32). A query depends on every key it sees: with its gate closed, the frames
/// up to itself; open, also the next `window`. Its expected readiness mixes the two maxima by the
/// gate's probability (exact when gates are certain and earlier windows are ≤ [`LOOK_BACK`]).
pub fn propagate_ready(ready: &Tensor, gate_prob: &Tensor, window: usize) -> Result<Tensor> {
    let back = -(LOOK_BACK as isize);
    let closed = window_max(ready, back, 0)?;
    if window == 0 {
        return Ok(closed);
    }
    let open = window_max(ready, back, window as isize)?;
    &closed + gate_prob.mul(&(open - &closed)?)?
}

/// Mean algorithmic lookahead in ms of the 25 Hz output frames given the expected readiness of
/// the 50 Hz frames (see [`crate::asr::transducer::model::lookahead_ms`]).
pub fn mean_lookahead_ms(ready: &Tensor) -> Result<Tensor> {
    let t = ready.dim(0)?;
    let k = t.div_ceil(2);
    let pick = |offset: usize| -> Result<Tensor> {
        let ids: Vec<u32> = (0..k).map(|i| (2 * i + offset).min(t - 1) as u32).collect();
        ready.index_select(&Tensor::new(ids.as_slice(), ready.device())?, 0)
    };
    // An output frame waits for the later of its two 50 Hz frames.
    let r = pick(0)?.maximum(&pick(1)?)?;
    let frame_end: Vec<f32> = (0..k).map(|i| 40.0 * (i as f32 + 1.0) - 12.5).collect();
    let frame_end = Tensor::new(frame_end.as_slice(), ready.device())?;
    ((r * 10.0)? - frame_end)?.relu()?.mean_all()
}

/// The learning rate at `step`: linear warm-up over `warmup` steps, then a cosine decay from
/// `lr` to `floor`·`lr` at `steps`.
pub fn warmup_cosine(lr: f64, step: usize, warmup: usize, steps: usize, floor: f64) -> f64 {
    if step < warmup {
        lr * (step + 1) as f64 / warmup as f64
    } else {
        let p = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
        lr * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
    }
}

/// Scales the gradients of `vars` so that their global norm is at most `max`; returns the norm
/// before clipping.
pub fn clip_grad_norm<'a>(
    grads: &mut candle_core::backprop::GradStore,
    vars: impl Iterator<Item = &'a candle_core::Var> + Clone,
    max: f64,
) -> Result<f64> {
    let mut sq = 0f64;
    for v in vars.clone() {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if norm > max {
        for v in vars {
            let t = v.as_tensor();
            if let Some(g) = grads.remove(t) {
                grads.insert(t, (g * (max / norm))?);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::transducer::TransducerModel;
    use crate::asr::transducer::init::{Rng, random_tensors};
    use crate::asr::transducer::model::{front_end_ready, lookahead_ms, output_ready};
    use candle_core::Device;

    fn small() -> (TransducerConfig, HashMap<String, Tensor>, Tensor) {
        let mut cfg = TransducerConfig::tiny(29);
        (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.ffn_dim, cfg.left_context) = (16, 2, 2, 32, 6);
        cfg.lookahead_frames = vec![2, 3];
        let mut t = random_tensors(&cfg, 7).unwrap();
        // Scheduler logits of both signs.
        t.insert("blocks.0.scheduler.bias".into(), Tensor::new(&[0.3f32], &Device::Cpu).unwrap());
        let mut rng = Rng::new(3);
        let mel: Vec<f32> = (0..41 * 80).map(|_| rng.normal()).collect();
        (cfg, t, Tensor::from_vec(mel, (41, 80), &Device::Cpu).unwrap())
    }

    fn params(t: &HashMap<String, Tensor>, trained: &[&str]) -> Params {
        let mut fixed = t.clone();
        let vars = trained
            .iter()
            .map(|&n| (n.to_string(), Var::from_tensor(&fixed.remove(n).unwrap()).unwrap()))
            .collect();
        Params { vars, fixed }
    }

    #[test]
    fn training_forward_equals_the_inference_forward_in_every_mode() {
        let (cfg, t, mel) = small();
        let model = TransducerModel::from_tensors(cfg.clone(), &t, &Device::Cpu).unwrap();
        let p = params(&t, &[]);
        for mode in [Lookahead::Adaptive, Lookahead::Causal, Lookahead::Fixed(1), Lookahead::Full] {
            let (expected, gates, _) = model.encode_layers(&mel, mode, 2).unwrap();
            let (mut x, _, _) = model.encode_layers(&mel, mode, 0).unwrap();
            for (l, layer_gates) in gates.iter().enumerate() {
                let out = TrainableBlock { layer: l, params: &p }.forward(&x, mode, &cfg, 0.0).unwrap();
                let probs: Vec<f32> = out.gate_prob.to_vec1().unwrap();
                if mode == Lookahead::Adaptive {
                    let hard: Vec<bool> = probs.iter().map(|&p| p > 0.5).collect();
                    assert_eq!(&hard, layer_gates, "layer {l}");
                }
                x = out.x;
            }
            if mode == Lookahead::Adaptive {
                assert!(
                    gates.iter().flatten().any(|&g| g) && gates.iter().flatten().any(|&g| !g),
                    "the test needs both gate states"
                );
            }
            let diff = (x - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-4, "{mode}: {diff}");
        }
    }

    #[test]
    fn training_block_gradients_equal_finite_differences() {
        let (cfg, t, mel) = small();
        let model = TransducerModel::from_tensors(cfg.clone(), &t, &Device::Cpu).unwrap();
        let (x, _, _) = model.encode_layers(&mel, Lookahead::Fixed(1), 0).unwrap();
        let names = [
            "blocks.0.ln1.weight",
            "blocks.0.qkv.weight",
            "blocks.0.out.bias",
            "blocks.0.ln2.bias",
            "blocks.0.fc1.weight",
            "blocks.0.fc2.weight",
        ];
        let mut rng = Rng::new(11);
        let probe: Vec<f32> = (0..x.elem_count()).map(|_| rng.normal()).collect();
        let probe = Tensor::from_vec(probe, x.shape(), &Device::Cpu).unwrap();
        let loss_of = |p: &Params| -> Tensor {
            let out =
                TrainableBlock { layer: 0, params: p }.forward(&x, Lookahead::Fixed(1), &cfg, 0.0).unwrap();
            (out.x * &probe).unwrap().sum_all().unwrap()
        };
        let p = params(&t, &names);
        let grads = loss_of(&p).backward().unwrap();
        for name in names {
            let var = &p.vars[name];
            let g: Vec<f32> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for i in [0, base.len() / 3, base.len() - 1] {
                let eps = 1e-2f32;
                let at = |delta: f32| -> f32 {
                    let mut v = base.clone();
                    v[i] += delta;
                    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap()).unwrap();
                    loss_of(&p).to_scalar::<f32>().unwrap()
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
                let tol = 2e-2 * (1.0 + numeric.abs());
                assert!((numeric - g[i]).abs() < tol, "{name}[{i}]: analytic {} numeric {numeric}", g[i]);
            }
        }
    }

    #[test]
    fn scheduler_gets_a_straight_through_gradient() {
        let (cfg, t, mel) = small();
        let model = TransducerModel::from_tensors(cfg.clone(), &t, &Device::Cpu).unwrap();
        let (x, _, _) = model.encode_layers(&mel, Lookahead::Adaptive, 0).unwrap();
        let p = params(&t, &["blocks.0.scheduler.bias"]);
        let out =
            TrainableBlock { layer: 0, params: &p }.forward(&x, Lookahead::Adaptive, &cfg, 0.0).unwrap();
        let ready = Tensor::new(
            (0..x.dim(0).unwrap()).map(|i| front_end_ready(i, 41) as f32).collect::<Vec<_>>().as_slice(),
            &Device::Cpu,
        )
        .unwrap();
        let latency = mean_lookahead_ms(&propagate_ready(&ready, &out.gate_prob, 2).unwrap()).unwrap();
        let grads = latency.backward().unwrap();
        let g: Vec<f32> =
            grads.get(p.vars["blocks.0.scheduler.bias"].as_tensor()).unwrap().to_vec1().unwrap();
        // Opening gates can only add lookahead.
        assert!(g[0] > 0.0, "{g:?}");
    }

    #[test]
    fn expected_lookahead_equals_the_counted_lookahead_with_hard_adaptive_gates() {
        let (cfg, t, mel) = small();
        let model = TransducerModel::from_tensors(cfg.clone(), &t, &Device::Cpu).unwrap();
        let (_, gates, ready) = model.encode_layers(&mel, Lookahead::Adaptive, 2).unwrap();
        let n = gates[0].len();
        let mut e = Tensor::new(
            (0..n).map(|i| front_end_ready(i, 41) as f32).collect::<Vec<_>>().as_slice(),
            &Device::Cpu,
        )
        .unwrap();
        for (l, g) in gates.iter().enumerate() {
            let p: Vec<f32> = g.iter().map(|&on| if on { 1.0 } else { 0.0 }).collect();
            e = propagate_ready(
                &e,
                &Tensor::new(p.as_slice(), &Device::Cpu).unwrap(),
                cfg.lookahead_frames[l],
            )
            .unwrap();
        }
        let exact: Vec<f32> = ready.iter().map(|&r| r as f32).collect();
        assert_eq!(e.to_vec1::<f32>().unwrap(), exact);
        let counted: Vec<f32> =
            output_ready(&ready).iter().enumerate().map(|(k, &r)| lookahead_ms(k, r)).collect();
        let expected = counted.iter().sum::<f32>() / counted.len() as f32;
        let got = mean_lookahead_ms(&e).unwrap().to_scalar::<f32>().unwrap();
        assert!((got - expected).abs() < 1e-3, "{got} vs {expected}");
    }

    #[test]
    fn expected_lookahead_equals_the_counted_lookahead_when_gates_are_certain() {
        let (cfg, t, mel) = small();
        let model = TransducerModel::from_tensors(cfg.clone(), &t, &Device::Cpu).unwrap();
        for mode in [Lookahead::Causal, Lookahead::Fixed(1), Lookahead::Fixed(3)] {
            let (_, _, ready) = model.encode_layers(&mel, mode, 2).unwrap();
            let (x, _, _) = model.encode_layers(&mel, mode, 0).unwrap();
            let n = x.dim(0).unwrap();
            let mut e = Tensor::new(
                (0..n).map(|i| front_end_ready(i, 41) as f32).collect::<Vec<_>>().as_slice(),
                &Device::Cpu,
            )
            .unwrap();
            let open =
                Tensor::full(if mode == Lookahead::Causal { 0f32 } else { 1f32 }, n, &Device::Cpu).unwrap();
            for l in 0..2 {
                e = propagate_ready(
                    &e,
                    &open,
                    crate::asr::transducer::model::future_frames(mode, &cfg, l, true).unwrap(),
                )
                .unwrap();
            }
            let counted: Vec<f32> =
                output_ready(&ready).iter().enumerate().map(|(k, &r)| lookahead_ms(k, r)).collect();
            let expected = counted.iter().sum::<f32>() / counted.len() as f32;
            let got = mean_lookahead_ms(&e).unwrap().to_scalar::<f32>().unwrap();
            assert!((got - expected).abs() < 1e-3, "{mode}: {got} vs {expected}");
        }
    }
}
