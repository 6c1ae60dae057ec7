//! The streaming ANCAT engine: mel frames in, in chunks of any size; encoder output frames out,
//! each as soon as everything it depends on has arrived. Per layer it keeps the inputs, keys and
//! values of the frames still visible to a future query (at most `left_context` back), so memory
//! is bounded on endless streams; `finish` flushes a segment (an endpoint or the end of input) and
//! starts the next from a clean state.
//!
//! It computes exactly what [`TransducerModel::encode`] computes for the segment (a test holds it
//! to 1e-4), and reports for every output frame the last mel frame it had to wait for.

use std::sync::Arc;

use candle_core::{Module, Result, Tensor};

use super::Lookahead;
use super::model::{
    TransducerModel, front_end_ready, future_frames, gates, gelu, lookahead_ms, positions, visible,
};

/// One encoder output frame (25 per second), ready for the joiner.
#[derive(Debug, Clone)]
pub struct EncoderFrame {
    /// Index in the stream (frame k covers audio [40k, 40k+40) ms).
    pub index: u64,
    /// The joiner's encoder projection, `joiner_dim` values.
    pub values: Vec<f32>,
    /// Algorithmic lookahead: ms of audio after the frame's end it had to wait for.
    pub lookahead_ms: f32,
}

/// Rows of one layer's inputs and derived keys/values; row `i` of each is frame `base + i`.
#[derive(Default)]
struct LayerState {
    base: usize,
    inputs: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    gates: Vec<bool>,
    ready: Vec<usize>,
    /// Frames received (inputs) and computed (queries answered), counted from the segment start.
    received: usize,
    done: usize,
}

pub struct StreamingEncoder {
    model: Arc<TransducerModel>,
    mode: Lookahead,
    d: usize,
    n_mels: usize,
    /// Mel rows from `mel_base`; `mel_count` received in this segment.
    mel: Vec<f32>,
    mel_base: usize,
    mel_count: usize,
    /// conv1 outputs from `h1_base`; `h1_count` computed.
    h1: Vec<f32>,
    h1_base: usize,
    h1_count: usize,
    layers: Vec<LayerState>,
    /// Last layer's outputs waiting to be paired, from `tail_base`.
    tail: Vec<f32>,
    tail_ready: Vec<usize>,
    tail_base: usize,
    /// Output frames emitted in this segment, and before it.
    out_count: usize,
    segment_offset: u64,
}

impl StreamingEncoder {
    pub fn new(model: Arc<TransducerModel>, mode: Lookahead) -> Self {
        let d = model.config.d_model;
        let n_mels = model.config.n_mels;
        let n_layers = model.config.n_layers;
        Self {
            model,
            mode,
            d,
            n_mels,
            mel: Vec::new(),
            mel_base: 0,
            mel_count: 0,
            h1: Vec::new(),
            h1_base: 0,
            h1_count: 0,
            layers: (0..n_layers + 1).map(|_| LayerState::default()).collect(),
            tail: Vec::new(),
            tail_ready: Vec::new(),
            tail_base: 0,
            out_count: 0,
            segment_offset: 0,
        }
    }

    pub fn mode(&self) -> Lookahead {
        self.mode
    }

    /// Values held in caches (mel, conv, per-layer rows): bounded by the left context.
    pub fn buffered_values(&self) -> usize {
        self.mel.len()
            + self.h1.len()
            + self.tail.len()
            + self.layers.iter().map(|l| l.inputs.len() + l.q.len() + l.k.len() + l.v.len()).sum::<usize>()
    }

    /// Adds normalised mel frames (`n_mels` values each, flattened) and emits what is ready.
    pub fn push(&mut self, mel: &[f32], out: &mut Vec<EncoderFrame>) -> Result<()> {
        debug_assert_eq!(mel.len() % self.n_mels, 0);
        self.mel.extend_from_slice(mel);
        self.mel_count += mel.len() / self.n_mels;
        self.advance(false, out)
    }

    /// Ends the segment: computes every remaining frame, then resets for the next segment.
    pub fn finish(&mut self, out: &mut Vec<EncoderFrame>) -> Result<()> {
        if self.mel_count > 0 {
            self.advance(true, out)?;
        }
        self.segment_offset += self.out_count as u64;
        let (model, mode, offset) = (self.model.clone(), self.mode, self.segment_offset);
        *self = Self::new(model, mode);
        self.segment_offset = offset;
        Ok(())
    }

    /// Rows [from, to) of a row buffer whose first row is `base`, as a tensor.
    fn rows(&self, buf: &[f32], base: usize, from: usize, to: usize, width: usize) -> Result<Tensor> {
        Tensor::from_slice(
            &buf[(from - base) * width..(to - base) * width],
            (to - from, width),
            &self.model.device,
        )
    }

    fn advance(&mut self, finished: bool, out: &mut Vec<EncoderFrame>) -> Result<()> {
        let model = self.model.clone();
        let (d, n_mels) = (self.d, self.n_mels);

        // conv1 (kernel 3, stride 1): output i needs mel i+1.
        let h1_target = if finished { self.mel_count } else { self.mel_count.saturating_sub(1) };
        if h1_target > self.h1_count {
            let cols = taps(
                &self.mel,
                self.mel_base,
                self.mel_count,
                n_mels,
                (self.h1_count..h1_target).map(|i| i as isize),
            );
            let cols = Tensor::from_vec(cols, (h1_target - self.h1_count, 3 * n_mels), &model.device)?;
            let h = gelu(&model.conv1.forward(&cols)?)?;
            self.h1.extend(h.flatten_all()?.to_vec1::<f32>()?);
            self.h1_count = h1_target;
        }
        // conv2 (kernel 3, stride 2): output t needs conv1 2t+1.
        let received = self.layers[0].received;
        let x0_target = if finished { (self.mel_count - 1) / 2 + 1 } else { self.h1_count / 2 };
        if x0_target > received {
            let n = x0_target - received;
            let cols =
                taps(&self.h1, self.h1_base, self.h1_count, d, (received..x0_target).map(|t| 2 * t as isize));
            let cols = Tensor::from_vec(cols, (n, 3 * d), &model.device)?;
            let x = gelu(&model.conv2.forward(&cols)?)?;
            let x = (x + positions(received, n, d, &model.device)?)?;
            let ready: Vec<usize> =
                (received..x0_target).map(|t| front_end_ready(t, self.mel_count)).collect();
            self.receive(0, &x, ready)?;
        }
        // Trim mel and conv1 rows no future output needs.
        let keep_mel = self.h1_count.saturating_sub(1);
        if keep_mel > self.mel_base {
            self.mel.drain(..(keep_mel - self.mel_base) * n_mels);
            self.mel_base = keep_mel;
        }
        let keep_h1 = (2 * self.layers[0].received).saturating_sub(1).min(self.h1_count);
        if keep_h1 > self.h1_base {
            self.h1.drain(..(keep_h1 - self.h1_base) * d);
            self.h1_base = keep_h1;
        }

        for l in 0..model.config.n_layers {
            self.run_layer(l, finished)?;
        }
        self.emit(finished, out)
    }

    /// New inputs for layer `l`: store them with their keys, values, queries and gates.
    fn receive(&mut self, l: usize, x: &Tensor, ready: Vec<usize>) -> Result<()> {
        let n = x.dim(0)?;
        if l < self.model.config.n_layers {
            let block = &self.model.blocks[l];
            let (q, k, v) = block.qkv(x)?;
            let gates = gates(self.mode, block, x)?;
            let st = &mut self.layers[l];
            st.q.extend(q.flatten_all()?.to_vec1::<f32>()?);
            st.k.extend(k.flatten_all()?.to_vec1::<f32>()?);
            st.v.extend(v.flatten_all()?.to_vec1::<f32>()?);
            st.gates.extend(gates);
        }
        let st = &mut self.layers[l];
        st.inputs.extend(x.flatten_all()?.to_vec1::<f32>()?);
        st.ready.extend(ready);
        st.received += n;
        Ok(())
    }

    /// Answers every query of layer `l` whose keys have all arrived, in order.
    fn run_layer(&mut self, l: usize, finished: bool) -> Result<()> {
        let model = self.model.clone();
        let cfg = &model.config;
        let d = self.d;
        let st = &self.layers[l];
        let last = st.received; // frames [0, last) have arrived
        // The last key index query t needs, or None for "the end of the segment".
        let horizon = |t: usize, gate: bool| future_frames(self.mode, cfg, l, gate).map(|w| t + w);
        let mut end = st.done;
        while end < last {
            let ready = match horizon(end, st.gates[end - st.base]) {
                Some(h) => h < last || finished,
                None => finished,
            };
            if !ready {
                break;
            }
            end += 1;
        }
        if end == st.done {
            return Ok(());
        }
        let (from, to) = (st.done, end);
        let key_lo =
            if self.mode == Lookahead::Full { 0 } else { from.saturating_sub(cfg.left_context) }.max(st.base);
        let key_hi = (from..to)
            .map(|t| horizon(t, st.gates[t - st.base]).map_or(last - 1, |h| h.min(last - 1)))
            .max()
            .unwrap()
            + 1;
        let (nq, nk) = (to - from, key_hi - key_lo);
        let mut mask = vec![f32::NEG_INFINITY; nq * nk];
        let mut ready_out = Vec::with_capacity(nq);
        for (qi, t) in (from..to).enumerate() {
            let gate = st.gates[t - st.base];
            let mut r = 0;
            for (ki, s) in (key_lo..key_hi).enumerate() {
                if visible(self.mode, cfg, l, gate, t, s) {
                    mask[qi * nk + ki] = 0.0;
                    r = r.max(st.ready[s - st.base]);
                }
            }
            ready_out.push(r);
        }
        let mask = Tensor::from_vec(mask, (nq, nk), &model.device)?;
        let q = self.rows(&st.q, st.base, from, to, d)?;
        let k = self.rows(&st.k, st.base, key_lo, key_hi, d)?;
        let v = self.rows(&st.v, st.base, key_lo, key_hi, d)?;
        let x_q = self.rows(&st.inputs, st.base, from, to, d)?;
        let block = &model.blocks[l];
        let att = block.attend(&q, &k, &v, &mask, cfg.n_heads)?;
        let y = block.finish(&x_q, &att)?;
        self.layers[l].done = to;
        self.receive(l + 1, &y, ready_out)?;

        // Forget rows no future query of this layer can see.
        let st = &mut self.layers[l];
        let keep =
            if self.mode == Lookahead::Full { st.base } else { st.done.saturating_sub(cfg.left_context) };
        if keep > st.base {
            let drop = keep - st.base;
            for buf in [&mut st.inputs, &mut st.q, &mut st.k, &mut st.v] {
                buf.drain(..drop * d);
            }
            st.gates.drain(..drop);
            st.ready.drain(..drop);
            st.base = keep;
        }
        Ok(())
    }

    /// Pairs the last layer's outputs into 25 Hz frames and hands them out.
    fn emit(&mut self, finished: bool, out: &mut Vec<EncoderFrame>) -> Result<()> {
        let model = self.model.clone();
        let d = self.d;
        let n_layers = model.config.n_layers;
        // Move new last-layer outputs to the pairing buffer.
        let top = &mut self.layers[n_layers];
        self.tail.append(&mut top.inputs);
        self.tail_ready.append(&mut top.ready);
        top.base = top.received;
        let available = self.tail_base + self.tail_ready.len();
        let pairs_ready = if finished { available.div_ceil(2) } else { available / 2 };
        if pairs_ready <= self.out_count {
            return Ok(());
        }
        let first_row = 2 * self.out_count;
        let n_rows = (2 * pairs_ready).min(available) - first_row;
        let x = self.rows(&self.tail, self.tail_base, first_row, first_row + n_rows, d)?;
        let frames = model.output_frames(&x)?;
        let values = frames.to_vec2::<f32>()?;
        for (i, v) in values.into_iter().enumerate() {
            let k = self.out_count + i;
            let r0 = self.tail_ready[2 * k - self.tail_base];
            let r1 = self.tail_ready.get(2 * k + 1 - self.tail_base).copied().unwrap_or(0);
            let ready = r0.max(r1);
            out.push(EncoderFrame {
                index: self.segment_offset + k as u64,
                values: v,
                lookahead_ms: lookahead_ms(k, ready),
            });
        }
        self.out_count = pairs_ready;
        let consumed = (2 * pairs_ready).min(available) - self.tail_base;
        self.tail.drain(..consumed * d);
        self.tail_ready.drain(..consumed);
        self.tail_base += consumed;
        Ok(())
    }
}

/// Convenience for tests and batch use: the subsampled encoder output of a whole segment.
pub fn stream_all(
    model: &Arc<TransducerModel>,
    mode: Lookahead,
    mel: &[f32],
    chunk_frames: usize,
) -> Result<Vec<EncoderFrame>> {
    let mut enc = StreamingEncoder::new(model.clone(), mode);
    let mut out = Vec::new();
    for chunk in mel.chunks(chunk_frames.max(1) * model.config.n_mels) {
        enc.push(chunk, &mut out)?;
    }
    enc.finish(&mut out)?;
    Ok(out)
}

/// im2col for a kernel of 3 centred on each `centre`: rows [x(c−1) | x(c) | x(c+1)] from a row
/// buffer starting at row `base` with `count` rows in the segment; zeros outside the segment.
fn taps(
    buf: &[f32],
    base: usize,
    count: usize,
    width: usize,
    centres: impl Iterator<Item = isize>,
) -> Vec<f32> {
    let mut cols = Vec::new();
    for c in centres {
        for i in [c - 1, c, c + 1] {
            if i < 0 || i as usize >= count {
                cols.extend(std::iter::repeat_n(0.0, width));
            } else {
                let r = i as usize - base;
                cols.extend_from_slice(&buf[r * width..(r + 1) * width]);
            }
        }
    }
    cols
}
