//! GTCRN (Rong et al., ICASSP 2024: "GTCRN: a speech enhancement model requiring ultralow
//! computational resources"), the streaming variant the package exports: 48 k parameters that
//! predict a complex ratio mask for each 512-point STFT frame, from that frame and recurrent and
//! convolution caches of the past. Plain Rust loops over `[channel][frequency]` arrays: a frame
//! is ~1,500 tiny operations (33-step GRUs over frequency, 1×1 convolutions over 33 bins), where a
//! tensor library's per-operation dispatch would cost more than the arithmetic.
//!
//! Per frame: magnitude/real/imaginary → ERB band merging (257 → 129 bins) → subband unfolding →
//! two strided convolutions (129 → 65 → 33 bins) → three grouped temporal convolution blocks
//! (dilations 1, 2, 5 over past frames, each with temporal recurrent attention) → two dual-path
//! grouped GRU blocks (bidirectional over frequency, causal over time) → the mirror-image decoder
//! with skip connections → a tanh mask (ERB band splitting back to 257 bins) applied as a complex
//! multiplication to the input spectrum.

use std::ops::Range;
use std::path::Path;

use candle_core::{Device, Tensor};
use realfft::num_complex::Complex32;

use crate::error::{Error, Result};

pub const BINS: usize = 257;
/// Bins below this are kept as they are; the rest are merged into 64 ERB bands.
const LOW_BINS: usize = 65;
const BANDS: usize = 129;
/// Frequency resolution of the inner blocks.
const F: usize = 33;
const C: usize = 16;
/// History kept by the temporal convolutions (frames), dilations 1, 2, 5.
const DILATIONS: [usize; 3] = [1, 2, 5];

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn prelu(x: &mut [f32], slope: f32) {
    for v in x {
        if *v < 0.0 {
            *v *= slope;
        }
    }
}

struct Loader {
    tensors: std::collections::HashMap<String, Tensor>,
}

impl Loader {
    fn get(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::Model(format!("GTCRN weights: {name} is missing")))?;
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        if v.len() != len {
            return Err(Error::Model(format!(
                "GTCRN weights: {name} has {} values, expected {len}",
                v.len()
            )));
        }
        Ok(v)
    }

    fn scalar(&self, name: &str) -> Result<f32> {
        Ok(self.get(name, 1)?[0])
    }
}

/// For tap `k` of a kernel strided by `stride` over a side padded by `pad`: the indices `i` in
/// `0..count` whose position `i·stride + k − pad` lies in `0..len`, and the first such position,
/// so that a convolution's inner loop has no bounds to test. None when there are none.
fn tap_range(count: usize, len: usize, stride: usize, k: usize, pad: usize) -> Option<(Range<usize>, usize)> {
    let first = pad.saturating_sub(k).div_ceil(stride);
    let end = (len + pad).saturating_sub(k).div_ceil(stride).min(count);
    (first < end).then(|| (first..end, first * stride + k - pad))
}

/// A convolution along frequency only (kernel 1×k), possibly strided and grouped.
struct FreqConv {
    weight: Vec<f32>, // [out][in / groups][k]
    bias: Vec<f32>,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
}

impl FreqConv {
    fn load(
        l: &Loader,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        groups: usize,
    ) -> Result<Self> {
        Ok(Self {
            weight: l.get(&format!("{name}.weight"), cout * cin / groups * k)?,
            bias: l.get(&format!("{name}.bias"), cout)?,
            cin,
            cout,
            k,
            stride,
            groups,
        })
    }

    /// `x` is `[cin][fin]`; padding is k / 2 on both sides.
    fn forward(&self, x: &[f32], fin: usize) -> (Vec<f32>, usize) {
        let pad = self.k / 2;
        let fout = (fin + 2 * pad - self.k) / self.stride + 1;
        let (gin, gout) = (self.cin / self.groups, self.cout / self.groups);
        let mut y = vec![0f32; self.cout * fout];
        for o in 0..self.cout {
            let row = &mut y[o * fout..(o + 1) * fout];
            row.fill(self.bias[o]);
            let g = o / gout;
            for i in 0..gin {
                let xi = &x[(g * gin + i) * fin..(g * gin + i + 1) * fin];
                for k in 0..self.k {
                    let w = self.weight[(o * gin + i) * self.k + k];
                    // The outputs whose tap k lands inside the input.
                    let Some((outputs, start)) = tap_range(fout, fin, self.stride, k, pad) else {
                        continue;
                    };
                    let taps = xi[start..].iter().step_by(self.stride);
                    for (out, &v) in row[outputs].iter_mut().zip(taps) {
                        *out += w * v;
                    }
                }
            }
        }
        (y, fout)
    }
}

/// A transposed convolution along frequency (kernel 1×k, stride 2): the decoder's upsampling.
struct FreqConvTranspose {
    weight: Vec<f32>, // [in][out / groups][k]
    bias: Vec<f32>,
    cin: usize,
    cout: usize,
    k: usize,
    groups: usize,
}

impl FreqConvTranspose {
    fn load(l: &Loader, name: &str, cin: usize, cout: usize, k: usize, groups: usize) -> Result<Self> {
        Ok(Self {
            weight: l.get(&format!("{name}.weight"), cin * cout / groups * k)?,
            bias: l.get(&format!("{name}.bias"), cout)?,
            cin,
            cout,
            k,
            groups,
        })
    }

    fn forward(&self, x: &[f32], fin: usize) -> (Vec<f32>, usize) {
        let (stride, pad) = (2, self.k / 2);
        let fout = (fin - 1) * stride + self.k - 2 * pad;
        let (gin, gout) = (self.cin / self.groups, self.cout / self.groups);
        let mut y = vec![0f32; self.cout * fout];
        for o in 0..self.cout {
            y[o * fout..(o + 1) * fout].fill(self.bias[o]);
        }
        for i in 0..self.cin {
            let g = i / gin;
            for oo in 0..gout {
                let o = g * gout + oo;
                let (xi, yo) = (&x[i * fin..(i + 1) * fin], &mut y[o * fout..(o + 1) * fout]);
                for k in 0..self.k {
                    let w = self.weight[(i * gout + oo) * self.k + k];
                    // The inputs whose tap k lands inside the output.
                    let Some((inputs, start)) = tap_range(fin, fout, stride, k, pad) else {
                        continue;
                    };
                    for (out, &v) in yo[start..].iter_mut().step_by(stride).zip(&xi[inputs]) {
                        *out += w * v;
                    }
                }
            }
        }
        (y, fout)
    }
}

/// A 1×1 convolution: `[cin][f]` → `[cout][f]`.
struct Pointwise {
    weight: Vec<f32>, // [out][in]
    bias: Vec<f32>,
    cin: usize,
    cout: usize,
}

impl Pointwise {
    fn load(l: &Loader, name: &str, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self {
            weight: l.get(&format!("{name}.weight"), cout * cin)?,
            bias: l.get(&format!("{name}.bias"), cout)?,
            cin,
            cout,
        })
    }

    fn forward(&self, x: &[f32], f: usize) -> Vec<f32> {
        let mut y = vec![0f32; self.cout * f];
        for o in 0..self.cout {
            let row = &mut y[o * f..(o + 1) * f];
            row.fill(self.bias[o]);
            for i in 0..self.cin {
                let w = self.weight[o * self.cin + i];
                for (out, &v) in row.iter_mut().zip(&x[i * f..(i + 1) * f]) {
                    *out += w * v;
                }
            }
        }
        y
    }
}

/// `x · W + b` on the last axis: `[rows][in]` → `[rows][out]`.
struct Linear {
    weight: Vec<f32>, // [in][out]
    bias: Vec<f32>,
    din: usize,
    dout: usize,
}

impl Linear {
    fn load(l: &Loader, name: &str, din: usize, dout: usize, with_bias: bool) -> Result<Self> {
        let bias = if with_bias { l.get(&format!("{name}.bias"), dout)? } else { vec![0.0; dout] };
        Ok(Self { weight: l.get(&format!("{name}.weight"), din * dout)?, bias, din, dout })
    }

    fn forward_row(&self, x: &[f32], y: &mut [f32]) {
        y.copy_from_slice(&self.bias);
        for (i, &v) in x.iter().enumerate().take(self.din) {
            for (out, &w) in y.iter_mut().zip(&self.weight[i * self.dout..(i + 1) * self.dout]) {
                *out += v * w;
            }
        }
    }
}

/// An ONNX GRU direction (gates z, r, h; the reset gate applied after the recurrent product).
struct GruCell {
    w: Vec<f32>, // [3H][I]
    r: Vec<f32>, // [3H][H]
    b: Vec<f32>, // [6H]: input biases z, r, h, then recurrent biases z, r, h
    input: usize,
    hidden: usize,
}

impl GruCell {
    /// Direction `dir` of a GRU with `dirs` directions.
    fn load(l: &Loader, name: &str, dirs: usize, dir: usize, input: usize, hidden: usize) -> Result<Self> {
        let take = |part: &str, per_dir: usize| -> Result<Vec<f32>> {
            let all = l.get(&format!("{name}.{part}"), dirs * per_dir)?;
            Ok(all[dir * per_dir..(dir + 1) * per_dir].to_vec())
        };
        Ok(Self {
            w: take("w", 3 * hidden * input)?,
            r: take("r", 3 * hidden * hidden)?,
            b: take("b", 6 * hidden)?,
            input,
            hidden,
        })
    }

    fn step(&self, x: &[f32], h: &mut [f32]) {
        let (hn, inp) = (self.hidden, self.input);
        let mut gx = [0f32; 48];
        let mut gh = [0f32; 48];
        for g in 0..3 * hn {
            let wrow = &self.w[g * inp..(g + 1) * inp];
            gx[g] = self.b[g] + wrow.iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
            let rrow = &self.r[g * hn..(g + 1) * hn];
            gh[g] = self.b[3 * hn + g] + rrow.iter().zip(h.iter()).map(|(a, b)| a * b).sum::<f32>();
        }
        for j in 0..hn {
            let z = sigmoid(gx[j] + gh[j]);
            let r = sigmoid(gx[hn + j] + gh[hn + j]);
            let n = (gx[2 * hn + j] + r * gh[2 * hn + j]).tanh();
            h[j] = (1.0 - z) * n + z * h[j];
        }
    }
}

/// Subband feature extraction: each channel with its two neighbouring bins, `[c][f]` → `[3c][f]`.
fn unfold3(x: &[f32], c: usize, f: usize) -> Vec<f32> {
    let mut y = vec![0f32; 3 * c * f];
    for ch in 0..c {
        let src = &x[ch * f..(ch + 1) * f];
        for k in 0..3 {
            let dst = &mut y[(ch * 3 + k) * f..(ch * 3 + k + 1) * f];
            for (j, out) in dst.iter_mut().enumerate() {
                let at = j as isize + k as isize - 1;
                if at >= 0 && (at as usize) < f {
                    *out = src[at as usize];
                }
            }
        }
    }
    y
}

/// Temporal recurrent attention: each channel's energy over frequency drives a GRU whose output
/// scales the channel.
struct Tra {
    gru: GruCell,
    fc: Linear,
}

impl Tra {
    fn forward(&self, x: &mut [f32], hidden: &mut [f32]) {
        let channels = self.gru.input;
        let mut energy = [0f32; 8];
        for (c, e) in energy.iter_mut().enumerate().take(channels) {
            *e = x[c * F..(c + 1) * F].iter().map(|v| v * v).sum::<f32>() / F as f32;
        }
        self.gru.step(&energy[..channels], hidden);
        let mut gate = [0f32; 8];
        self.fc.forward_row(hidden, &mut gate[..channels]);
        for c in 0..channels {
            let g = sigmoid(gate[c]);
            for v in &mut x[c * F..(c + 1) * F] {
                *v *= g;
            }
        }
    }
}

/// A grouped temporal convolution block: half the channels pass through a subband-unfolded
/// point/depthwise/point convolution over the last 2·dilation + 1 frames and attention, then the
/// halves are interleaved.
struct GtBlock {
    point1: Pointwise,
    slope1: f32,
    depth_weight: Vec<f32>, // [16][3][3]
    depth_bias: Vec<f32>,
    slope2: f32,
    point2: Pointwise,
    tra: Tra,
    dilation: usize,
}

/// A block's memory: the past frames its temporal convolution sees and its attention's GRU state.
#[derive(Clone)]
struct GtState {
    history: Vec<Vec<f32>>, // 2·dilation frames of [16][33], oldest first
    tra_hidden: [f32; 16],
}

impl GtBlock {
    fn load(l: &Loader, name: &str, dilation: usize) -> Result<Self> {
        Ok(Self {
            point1: Pointwise::load(l, &format!("{name}.point1"), 24, C)?,
            slope1: l.scalar(&format!("{name}.point1.prelu"))?,
            depth_weight: l.get(&format!("{name}.depth.weight"), C * 9)?,
            depth_bias: l.get(&format!("{name}.depth.bias"), C)?,
            slope2: l.scalar(&format!("{name}.depth.prelu"))?,
            point2: Pointwise::load(l, &format!("{name}.point2"), C, 8)?,
            tra: Tra {
                gru: GruCell::load(l, &format!("{name}.tra"), 1, 0, 8, 16)?,
                fc: Linear::load(l, &format!("{name}.tra.fc"), 16, 8, true)?,
            },
            dilation,
        })
    }

    fn state(&self) -> GtState {
        GtState { history: vec![vec![0.0; C * F]; 2 * self.dilation], tra_hidden: [0.0; 16] }
    }

    fn forward(&self, x: &[f32], state: &mut GtState) -> Vec<f32> {
        let (x1, x2) = x.split_at(8 * F);
        let mut h = self.point1.forward(&unfold3(x1, 8, F), F);
        prelu(&mut h, self.slope1);
        // Depthwise 3×3 over (frames t−2d, t−d, t) × (bins f−1, f, f+1).
        let d = self.dilation;
        let mut y = vec![0f32; C * F];
        for c in 0..C {
            let row = &mut y[c * F..(c + 1) * F];
            row.fill(self.depth_bias[c]);
            for kt in 0..3 {
                let frame: &[f32] = if kt == 2 { &h } else { &state.history[kt * d] };
                let src = &frame[c * F..(c + 1) * F];
                for kf in 0..3 {
                    let w = self.depth_weight[c * 9 + kt * 3 + kf];
                    for (f, out) in row.iter_mut().enumerate() {
                        let at = f as isize + kf as isize - 1;
                        if at >= 0 && (at as usize) < F {
                            *out += w * src[at as usize];
                        }
                    }
                }
            }
        }
        state.history.remove(0);
        state.history.push(h);
        prelu(&mut y, self.slope2);
        let mut h1 = self.point2.forward(&y, F);
        self.tra.forward(&mut h1, &mut state.tra_hidden);
        // Channel shuffle: [h1₀, x2₀, h1₁, x2₁, …].
        let mut out = vec![0f32; C * F];
        for c in 0..8 {
            out[(2 * c) * F..(2 * c + 1) * F].copy_from_slice(&h1[c * F..(c + 1) * F]);
            out[(2 * c + 1) * F..(2 * c + 2) * F].copy_from_slice(&x2[c * F..(c + 1) * F]);
        }
        out
    }
}

/// LayerNorm over a whole `[33][16]` frame with per-element affine parameters.
struct FrameNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl FrameNorm {
    fn forward(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + 1e-8).sqrt();
        for ((v, w), b) in x.iter_mut().zip(&self.weight).zip(&self.bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

/// Dual-path grouped RNN: a bidirectional GRU across frequency, then a causal GRU across time
/// (one step per frame, per bin), each with a linear layer, a norm and a residual connection.
struct DpGrnn {
    intra: [(GruCell, GruCell); 2], // per channel group: forward, backward over frequency
    intra_fc: Linear,
    intra_norm: FrameNorm,
    inter: [GruCell; 2],
    inter_fc: Linear,
    inter_norm: FrameNorm,
}

impl DpGrnn {
    fn load(l: &Loader, name: &str) -> Result<Self> {
        let intra = |g: usize| -> Result<(GruCell, GruCell)> {
            let n = format!("{name}.intra.{g}");
            Ok((GruCell::load(l, &n, 2, 0, 8, 4)?, GruCell::load(l, &n, 2, 1, 8, 4)?))
        };
        let norm = |part: &str| -> Result<FrameNorm> {
            Ok(FrameNorm {
                weight: l.get(&format!("{name}.{part}.ln.weight"), F * C)?,
                bias: l.get(&format!("{name}.{part}.ln.bias"), F * C)?,
            })
        };
        Ok(Self {
            intra: [intra(0)?, intra(1)?],
            intra_fc: Linear::load(l, &format!("{name}.intra.fc"), C, C, true)?,
            intra_norm: norm("intra")?,
            inter: [
                GruCell::load(l, &format!("{name}.inter.0"), 1, 0, 8, 8)?,
                GruCell::load(l, &format!("{name}.inter.1"), 1, 0, 8, 8)?,
            ],
            inter_fc: Linear::load(l, &format!("{name}.inter.fc"), C, C, true)?,
            inter_norm: norm("inter")?,
        })
    }

    /// `x` is `[16][33]`; `hidden` is the time GRUs' state, `[33][16]`.
    fn forward(&self, x: &[f32], hidden: &mut [f32]) -> Vec<f32> {
        // To [33][16] rows.
        let mut rows = vec![0f32; F * C];
        for c in 0..C {
            for f in 0..F {
                rows[f * C + c] = x[c * F + f];
            }
        }
        // Across frequency, both directions, per group of 8 channels: outputs [g][fwd 4, bwd 4].
        let mut across = vec![0f32; F * C];
        for (g, (fwd, bwd)) in self.intra.iter().enumerate() {
            let mut h = [0f32; 4];
            for f in 0..F {
                fwd.step(&rows[f * C + 8 * g..f * C + 8 * g + 8], &mut h);
                across[f * C + 8 * g..f * C + 8 * g + 4].copy_from_slice(&h);
            }
            let mut h = [0f32; 4];
            for f in (0..F).rev() {
                bwd.step(&rows[f * C + 8 * g..f * C + 8 * g + 8], &mut h);
                across[f * C + 8 * g + 4..f * C + 8 * g + 8].copy_from_slice(&h);
            }
        }
        let mut intra = vec![0f32; F * C];
        for f in 0..F {
            self.intra_fc.forward_row(&across[f * C..(f + 1) * C], &mut intra[f * C..(f + 1) * C]);
        }
        self.intra_norm.forward(&mut intra);
        for (v, r) in intra.iter_mut().zip(&rows) {
            *v += r;
        }
        // Across time: one step per bin and group from the previous frame's state.
        let mut through = vec![0f32; F * C];
        for f in 0..F {
            for (g, gru) in self.inter.iter().enumerate() {
                let h = &mut hidden[f * C + 8 * g..f * C + 8 * g + 8];
                gru.step(&intra[f * C + 8 * g..f * C + 8 * g + 8], h);
                through[f * C + 8 * g..f * C + 8 * g + 8].copy_from_slice(h);
            }
        }
        let mut inter = vec![0f32; F * C];
        for f in 0..F {
            self.inter_fc.forward_row(&through[f * C..(f + 1) * C], &mut inter[f * C..(f + 1) * C]);
        }
        self.inter_norm.forward(&mut inter);
        // Back to [16][33], with the residual.
        let mut out = vec![0f32; C * F];
        for f in 0..F {
            for c in 0..C {
                out[c * F + f] = inter[f * C + c] + intra[f * C + c];
            }
        }
        out
    }
}

/// The weights; shared by any number of streams, each with its own [`GtcrnState`].
pub struct Gtcrn {
    erb: Linear,
    erb_inverse: Linear,
    enc0: FreqConv,
    enc0_slope: f32,
    enc1: FreqConv,
    enc1_slope: f32,
    encoder: [GtBlock; 3],
    dpgrnn: [DpGrnn; 2],
    decoder: [GtBlock; 3],
    dec3: FreqConvTranspose,
    dec3_slope: f32,
    dec4: FreqConvTranspose,
}

/// One stream's memory of the past.
#[derive(Clone)]
pub struct GtcrnState {
    encoder: [GtState; 3],
    decoder: [GtState; 3],
    inter_hidden: [Vec<f32>; 2],
}

impl Gtcrn {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        Self::from_tensors(tensors)
    }

    pub fn from_tensors(tensors: std::collections::HashMap<String, Tensor>) -> Result<Self> {
        let l = Loader { tensors };
        let block = |side: &str, i: usize, d: usize| GtBlock::load(&l, &format!("{side}.{i}"), d);
        Ok(Self {
            erb: Linear::load(&l, "erb.fc", BINS - LOW_BINS, BANDS - LOW_BINS, false)?,
            erb_inverse: Linear::load(&l, "erb.ifc", BANDS - LOW_BINS, BINS - LOW_BINS, false)?,
            enc0: FreqConv::load(&l, "enc.0", 9, C, 5, 2, 1)?,
            enc0_slope: l.scalar("enc.0.prelu")?,
            enc1: FreqConv::load(&l, "enc.1", C, C, 5, 2, 2)?,
            enc1_slope: l.scalar("enc.1.prelu")?,
            encoder: [
                block("enc", 2, DILATIONS[0])?,
                block("enc", 3, DILATIONS[1])?,
                block("enc", 4, DILATIONS[2])?,
            ],
            dpgrnn: [DpGrnn::load(&l, "dp.0")?, DpGrnn::load(&l, "dp.1")?],
            decoder: [
                block("dec", 0, DILATIONS[2])?,
                block("dec", 1, DILATIONS[1])?,
                block("dec", 2, DILATIONS[0])?,
            ],
            dec3: FreqConvTranspose::load(&l, "dec.3", C, C, 5, 2)?,
            dec3_slope: l.scalar("dec.3.prelu")?,
            dec4: FreqConvTranspose::load(&l, "dec.4", C, 2, 5, 1)?,
        })
    }

    pub fn state(&self) -> GtcrnState {
        GtcrnState {
            encoder: [self.encoder[0].state(), self.encoder[1].state(), self.encoder[2].state()],
            decoder: [self.decoder[0].state(), self.decoder[1].state(), self.decoder[2].state()],
            inter_hidden: [vec![0.0; F * C], vec![0.0; F * C]],
        }
    }

    /// Enhances one frame's spectrum (257 bins) in place.
    pub fn frame(&self, state: &mut GtcrnState, spectrum: &mut [Complex32]) {
        assert_eq!(spectrum.len(), BINS);
        // Magnitude, real, imaginary; then ERB band merging of the upper bins.
        let mut feat = vec![0f32; 3 * BANDS];
        let parts: [fn(Complex32) -> f32; 3] =
            [|s| (s.re * s.re + s.im * s.im + 1e-12).sqrt(), |s| s.re, |s| s.im];
        for (ch, value) in parts.iter().enumerate() {
            let raw: Vec<f32> = spectrum.iter().map(|&s| value(s)).collect();
            feat[ch * BANDS..ch * BANDS + LOW_BINS].copy_from_slice(&raw[..LOW_BINS]);
            self.erb.forward_row(&raw[LOW_BINS..], &mut feat[ch * BANDS + LOW_BINS..(ch + 1) * BANDS]);
        }
        let (mut en0, f0) = self.enc0.forward(&unfold3(&feat, 3, BANDS), BANDS);
        prelu(&mut en0, self.enc0_slope);
        let (mut en1, f1) = self.enc1.forward(&en0, f0);
        prelu(&mut en1, self.enc1_slope);
        debug_assert_eq!(f1, F);
        let mut skips = Vec::with_capacity(3);
        let mut x = en1.clone();
        for (block, st) in self.encoder.iter().zip(&mut state.encoder) {
            x = block.forward(&x, st);
            skips.push(x.clone());
        }
        for (dp, hidden) in self.dpgrnn.iter().zip(&mut state.inter_hidden) {
            x = dp.forward(&x, hidden);
        }
        for (block, st) in self.decoder.iter().zip(&mut state.decoder) {
            let skip = skips.pop().expect("three encoder blocks");
            x.iter_mut().zip(&skip).for_each(|(v, s)| *v += s);
            x = block.forward(&x, st);
        }
        x.iter_mut().zip(&en1).for_each(|(v, s)| *v += s);
        let (mut d3, fd3) = self.dec3.forward(&x, F);
        prelu(&mut d3, self.dec3_slope);
        d3.iter_mut().zip(&en0).for_each(|(v, s)| *v += s);
        let (mut mask, fm) = self.dec4.forward(&d3, fd3);
        debug_assert_eq!(fm, BANDS);
        mask.iter_mut().for_each(|v| *v = v.tanh());
        // ERB band splitting back to 257 bins, then the complex ratio mask.
        let mut full = vec![0f32; 2 * BINS];
        for ch in 0..2 {
            full[ch * BINS..ch * BINS + LOW_BINS].copy_from_slice(&mask[ch * BANDS..ch * BANDS + LOW_BINS]);
            self.erb_inverse.forward_row(
                &mask[ch * BANDS + LOW_BINS..(ch + 1) * BANDS],
                &mut full[ch * BINS + LOW_BINS..(ch + 1) * BINS],
            );
        }
        for (k, s) in spectrum.iter_mut().enumerate() {
            let (mr, mi) = (full[k], full[BINS + k]);
            *s = Complex32::new(s.re * mr - s.im * mi, s.im * mr + s.re * mi);
        }
    }
}
