//! DeepFilterNet3's network (Schröter et al., Interspeech 2023: "DeepFilterNet: perceptually
//! motivated real-time speech enhancement"), one 10 ms frame at a time: an encoder over 32 ERB
//! band energies and the complex spectrum of the lowest 96 bins, an ERB decoder that predicts a
//! gain per band, and a deep-filter decoder that predicts, for each of the 96 low bins, five
//! complex filter taps over neighbouring frames. Plain Rust over `[channel][frequency]` arrays, as
//! GTCRN: a frame is ~40 small operations, each too small for a tensor library's dispatch; the
//! matrix products among them call the gemm crate's kernels directly.
//!
//! The export's graphs run over whole sequences; every time-wise operation is causal (1–4
//! frames of zero padding before), so one frame at a time with caches of the past gives the same
//! numbers. The two frames the network looks ahead are the caller's: it feeds features two frames
//! before it applies their outputs (see [`super::DeepFilterNet3`]).

use std::collections::HashMap;

use candle_core::Tensor;

use crate::error::{Error, Result};

pub const ERB_BANDS: usize = 32;
pub const DF_BINS: usize = 96;
pub const DF_ORDER: usize = 5;
const CH: usize = 64;
const EMB: usize = 512;
const HIDDEN: usize = 256;
/// Frames of history the 3×3 input convolutions and the 5-tap deep-filter pathway see.
const CONV_PAST: usize = 2;
const DF_CONVP_PAST: usize = 4;
const LSNR_MIN: f32 = -15.0;
const LSNR_MAX: f32 = 35.0;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `y += w · x` for one weight `w` over a row: the grouped linear layers' inner loop. On x86-64
/// CPUs with AVX2 and FMA (checked at run time) the same loop is compiled for them.
fn axpy(y: &mut [f32], w: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has both features (checked just above).
        return unsafe { axpy_avx2_fma(y, w, x) };
    }
    for (out, &v) in y.iter_mut().zip(x) {
        *out += w * v;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn axpy_avx2_fma(y: &mut [f32], w: f32, x: &[f32]) {
    for (out, &v) in y.iter_mut().zip(x) {
        *out = w.mul_add(v, *out);
    }
}

/// `out += a · b` for row-major `a` (m × k), `b` (k × n) and `out` (m × n), on this thread,
/// by the gemm crate (candle's CPU kernels, which pick the CPU's vector units at run time):
/// one call per layer instead of a product per row keeps the small layers from being all
/// call overhead.
fn matmul_add(out: &mut [f32], a: &[f32], b: &[f32], (m, k, n): (usize, usize, usize)) {
    assert!(out.len() == m * n && a.len() == m * k && b.len() == k * n, "matmul shapes");
    // SAFETY: the three slices hold exactly the row-major matrices the strides describe
    // (checked above), and `out` does not overlap the inputs (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            true,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

struct Loader<'a> {
    tensors: &'a HashMap<String, Tensor>,
}

impl Loader<'_> {
    fn get(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::Model(format!("DeepFilterNet3 weights: {name} is missing")))?;
        let v = t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        if v.len() != len {
            return Err(Error::Model(format!(
                "DeepFilterNet3 weights: {name} has {} values, expected {len}",
                v.len()
            )));
        }
        Ok(v)
    }
}

/// A 1×1 convolution `[cin][f]` → `[cout][f]`, or, with `cin == 1` per output channel
/// (`depthwise`), a per-channel scale and bias.
struct Pointwise {
    weight: Vec<f32>,
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
        for (o, row) in y.chunks_exact_mut(f).enumerate() {
            row.fill(self.bias[o]);
            if self.cin == 1 {
                axpy(row, self.weight[o], &x[o * f..(o + 1) * f]);
            }
        }
        if self.cin > 1 {
            matmul_add(&mut y, &self.weight, &x[..self.cin * f], (self.cout, self.cin, f));
        }
        y
    }
}

/// A depthwise convolution along frequency (kernel 1×3, padding 1), stride 1 or 2, no bias:
/// `[c][fin]` → `[c][fout]`.
struct DepthFreqConv {
    weight: Vec<f32>, // [c][3]
    stride: usize,
}

impl DepthFreqConv {
    fn load(l: &Loader, name: &str, stride: usize) -> Result<Self> {
        Ok(Self { weight: l.get(name, CH * 3)?, stride })
    }

    fn forward(&self, x: &[f32], fin: usize) -> (Vec<f32>, usize) {
        let fout = (fin - 1) / self.stride + 1;
        let mut y = vec![0f32; CH * fout];
        for c in 0..CH {
            let (xi, w) = (&x[c * fin..(c + 1) * fin], &self.weight[c * 3..c * 3 + 3]);
            for (j, out) in y[c * fout..(c + 1) * fout].iter_mut().enumerate() {
                let centre = j * self.stride;
                let mut acc = w[1] * xi[centre];
                if centre > 0 {
                    acc += w[0] * xi[centre - 1];
                }
                if centre + 1 < fin {
                    acc += w[2] * xi[centre + 1];
                }
                *out = acc;
            }
        }
        (y, fout)
    }
}

/// The decoder's depthwise transposed convolution along frequency (kernel 3, stride 2, padding
/// 1, output padding 1): `[c][fin]` → `[c][2·fin]`.
struct DepthFreqConvTranspose {
    weight: Vec<f32>, // [c][3]
}

impl DepthFreqConvTranspose {
    fn forward(&self, x: &[f32], fin: usize) -> Vec<f32> {
        let fout = 2 * fin;
        let mut y = vec![0f32; CH * fout];
        for c in 0..CH {
            let (xi, w) = (&x[c * fin..(c + 1) * fin], &self.weight[c * 3..c * 3 + 3]);
            let yo = &mut y[c * fout..(c + 1) * fout];
            for (j, &v) in xi.iter().enumerate() {
                // Input j lands on outputs 2j − 1 + k for k = 0, 1, 2.
                if j > 0 {
                    yo[2 * j - 1] += w[0] * v;
                }
                yo[2 * j] += w[1] * v;
                yo[2 * j + 1] += w[2] * v;
            }
        }
        y
    }
}

/// A grouped linear layer (`btgi,gih->btgh`): `[g][i]` → `[g][h]`, no bias.
struct GroupedLinear {
    weight: Vec<f32>, // [g][i][h]
    groups: usize,
    input: usize,
    output: usize,
}

impl GroupedLinear {
    fn load(l: &Loader, name: &str, groups: usize, input: usize, output: usize) -> Result<Self> {
        Ok(Self { weight: l.get(name, groups * input * output)?, groups, input, output })
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; self.groups * self.output];
        for g in 0..self.groups {
            let yg = &mut y[g * self.output..(g + 1) * self.output];
            for i in 0..self.input {
                let w = &self.weight[(g * self.input + i) * self.output..][..self.output];
                axpy(yg, x[g * self.input + i], w);
            }
        }
        y
    }
}

/// One ONNX GRU layer (gates z, r, h; the reset gate applied after the recurrent product).
struct Gru {
    w: Vec<f32>, // [3H][I]
    r: Vec<f32>, // [3H][H]
    b: Vec<f32>, // [6H]
    input: usize,
}

impl Gru {
    fn load(l: &Loader, name: &str, input: usize) -> Result<Self> {
        Ok(Self {
            w: l.get(&format!("{name}.w"), 3 * HIDDEN * input)?,
            r: l.get(&format!("{name}.r"), 3 * HIDDEN * HIDDEN)?,
            b: l.get(&format!("{name}.b"), 6 * HIDDEN)?,
            input,
        })
    }

    fn step(&self, x: &[f32], h: &mut [f32]) {
        let mut gx = [0f32; 3 * HIDDEN];
        let mut gh = [0f32; 3 * HIDDEN];
        gx.copy_from_slice(&self.b[..3 * HIDDEN]);
        gh.copy_from_slice(&self.b[3 * HIDDEN..]);
        matmul_add(&mut gx, &self.w, x, (3 * HIDDEN, self.input, 1));
        matmul_add(&mut gh, &self.r, h, (3 * HIDDEN, HIDDEN, 1));
        for j in 0..HIDDEN {
            let z = sigmoid(gx[j] + gh[j]);
            let r = sigmoid(gx[HIDDEN + j] + gh[HIDDEN + j]);
            let n = (gx[2 * HIDDEN + j] + r * gh[2 * HIDDEN + j]).tanh();
            h[j] = (1.0 - z) * n + z * h[j];
        }
    }
}

/// A grouped linear in, stacked GRUs, and optionally a grouped linear out (DeepFilterNet's
/// "squeezed GRU"), each linear followed by a ReLU.
struct SqueezedGru {
    linear_in: GroupedLinear,
    layers: Vec<Gru>,
    linear_out: Option<GroupedLinear>,
}

impl SqueezedGru {
    fn forward(&self, x: &[f32], hidden: &mut [Vec<f32>]) -> Vec<f32> {
        let mut y = self.linear_in.forward(x);
        relu(&mut y);
        for (layer, h) in self.layers.iter().zip(hidden.iter_mut()) {
            layer.step(&y, h);
            y.clone_from(h);
        }
        match &self.linear_out {
            Some(out) => {
                let mut y = out.forward(&y);
                relu(&mut y);
                y
            }
            None => y,
        }
    }
}

/// A 3×3 convolution, causal over time (the current frame and two before) and padded by one
/// bin on each side in frequency, from `cin` input channels to 64, each output channel reading
/// input channel `o · cin / 64` (groups = cin): `[time 3][cin][f]` → `[64][f]`.
struct TimeFreqConv {
    weight: Vec<f32>, // [64][3][3]
    bias: Option<Vec<f32>>,
    cin: usize,
}

impl TimeFreqConv {
    fn forward(&self, history: &[Vec<f32>], f: usize) -> Vec<f32> {
        let mut y = vec![0f32; CH * f];
        for (o, row) in y.chunks_exact_mut(f).enumerate() {
            row.fill(self.bias.as_ref().map_or(0.0, |b| b[o]));
            let i = o * self.cin / CH;
            for (t, frame) in history.iter().enumerate() {
                let x = &frame[i * f..(i + 1) * f];
                let w = &self.weight[(o * 3 + t) * 3..][..3];
                for (j, out) in row.iter_mut().enumerate() {
                    let mut acc = w[1] * x[j];
                    if j > 0 {
                        acc += w[0] * x[j - 1];
                    }
                    if j + 1 < f {
                        acc += w[2] * x[j + 1];
                    }
                    *out += acc;
                }
            }
        }
        y
    }
}

/// What the encoder hands the decoders for one frame.
struct Encoded {
    e0: Vec<f32>, // [64][32]
    e1: Vec<f32>, // [64][16]
    e2: Vec<f32>, // [64][8]
    e3: Vec<f32>, // [64][8]
    c0: Vec<f32>, // [64][96]
    emb: Vec<f32>,
    lsnr: f32,
}

/// One stream's caches: past input features and GRU states.
pub struct NetworkState {
    erb_history: Vec<Vec<f32>>,
    spec_history: Vec<Vec<f32>>,
    c0_history: Vec<Vec<f32>>,
    enc_gru: Vec<Vec<f32>>,
    erb_gru: Vec<Vec<f32>>,
    df_gru: Vec<Vec<f32>>,
}

/// What the network predicts for one frame.
pub struct FrameOutput {
    /// Local SNR estimate, dB.
    pub lsnr: f32,
    /// A gain per ERB band.
    pub gains: [f32; ERB_BANDS],
    /// Deep-filter taps `[bin][tap][re, im]`; tap k weighs the frame k − 2 frames from the
    /// filtered one.
    pub coefs: Vec<f32>,
}

pub struct Network {
    erb_conv0: TimeFreqConv,
    erb_convs: [(DepthFreqConv, Pointwise); 3],
    df_conv0: (TimeFreqConv, Pointwise),
    df_conv1: (DepthFreqConv, Pointwise),
    df_fc_emb: GroupedLinear,
    enc_gru: SqueezedGru,
    lsnr_fc: (Vec<f32>, f32),
    erb_gru: SqueezedGru,
    /// Pathway 1×1 convolutions from the encoder's e3, e2, e1, e0.
    pathways: [Pointwise; 4],
    convt3: (DepthFreqConv, Pointwise),
    convt2: (DepthFreqConvTranspose, Pointwise),
    convt1: (DepthFreqConvTranspose, Pointwise),
    conv0_out: (Vec<f32>, f32),
    df_gru: SqueezedGru,
    df_skip: GroupedLinear,
    df_convp: (Vec<f32>, Pointwise),
    df_out: GroupedLinear,
}

impl Network {
    /// The weights as [`super::convert::named_tensors`] names them.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let l = Loader { tensors };
        let pw = |name: &str, cin: usize, cout: usize| Pointwise::load(&l, name, cin, cout);
        let depth = |name: &str, stride: usize| DepthFreqConv::load(&l, name, stride);
        // Grouped linear shapes are (groups, inputs per group, outputs per group); every GRU
        // layer has 256 inputs and 256 hidden units.
        type Shape = (usize, usize, usize);
        let gru = |prefix: &str, layers: usize, linear_in: Shape, linear_out: Option<Shape>| {
            let grouped =
                |name: &str, (g, i, h): Shape| GroupedLinear::load(&l, &format!("{prefix}.{name}"), g, i, h);
            Ok::<_, Error>(SqueezedGru {
                linear_in: grouped("linear_in", linear_in)?,
                layers: (0..layers)
                    .map(|n| Gru::load(&l, &format!("{prefix}.{n}"), HIDDEN))
                    .collect::<Result<_>>()?,
                linear_out: linear_out.map(|shape| grouped("linear_out", shape)).transpose()?,
            })
        };
        Ok(Self {
            erb_conv0: TimeFreqConv {
                weight: l.get("enc.erb_conv0.weight", CH * 9)?,
                bias: Some(l.get("enc.erb_conv0.bias", CH)?),
                cin: 1,
            },
            erb_convs: [
                (depth("enc.erb_conv1.depth", 2)?, pw("enc.erb_conv1.point", CH, CH)?),
                (depth("enc.erb_conv2.depth", 2)?, pw("enc.erb_conv2.point", CH, CH)?),
                (depth("enc.erb_conv3.depth", 1)?, pw("enc.erb_conv3.point", CH, CH)?),
            ],
            df_conv0: (
                TimeFreqConv { weight: l.get("enc.df_conv0.depth", CH * 9)?, bias: None, cin: 2 },
                pw("enc.df_conv0.point", CH, CH)?,
            ),
            df_conv1: (depth("enc.df_conv1.depth", 2)?, pw("enc.df_conv1.point", CH, CH)?),
            df_fc_emb: GroupedLinear::load(&l, "enc.df_fc_emb", 32, 96, 16)?,
            enc_gru: gru("enc.gru", 1, (16, 32, 16), Some((16, 16, 32)))?,
            lsnr_fc: (l.get("enc.lsnr_fc.weight", EMB)?, l.get("enc.lsnr_fc.bias", 1)?[0]),
            erb_gru: gru("erb_dec.gru", 2, (16, 32, 16), Some((16, 16, 32)))?,
            pathways: [
                pw("erb_dec.conv3p", 1, CH)?,
                pw("erb_dec.conv2p", 1, CH)?,
                pw("erb_dec.conv1p", 1, CH)?,
                pw("erb_dec.conv0p", 1, CH)?,
            ],
            convt3: (depth("erb_dec.convt3.depth", 1)?, pw("erb_dec.convt3.point", CH, CH)?),
            convt2: (
                DepthFreqConvTranspose { weight: l.get("erb_dec.convt2.depth", CH * 3)? },
                pw("erb_dec.convt2.point", CH, CH)?,
            ),
            convt1: (
                DepthFreqConvTranspose { weight: l.get("erb_dec.convt1.depth", CH * 3)? },
                pw("erb_dec.convt1.point", CH, CH)?,
            ),
            conv0_out: (l.get("erb_dec.conv0_out.weight", CH * 3)?, l.get("erb_dec.conv0_out.bias", 1)?[0]),
            df_gru: gru("df_dec.gru", 2, (8, 64, 32), None)?,
            df_skip: GroupedLinear::load(&l, "df_dec.skip", 16, 32, 16)?,
            df_convp: (
                // Stored `[10][32][5]`; kept `[5 frames][10][32]`, one matrix per frame.
                {
                    let w = l.get("df_dec.convp.depth", 2 * DF_ORDER * 32 * 5)?;
                    (0..5 * 2 * DF_ORDER * 32)
                        .map(|k| w[(k % (2 * DF_ORDER * 32)) * 5 + k / (2 * DF_ORDER * 32)])
                        .collect()
                },
                pw("df_dec.convp.point", 2 * DF_ORDER, 2 * DF_ORDER)?,
            ),
            df_out: GroupedLinear::load(&l, "df_dec.out", 16, 16, 60)?,
        })
    }

    pub fn state(&self) -> NetworkState {
        let zeros = |n: usize, len: usize| vec![vec![0f32; len]; n];
        NetworkState {
            erb_history: zeros(CONV_PAST, ERB_BANDS),
            spec_history: zeros(CONV_PAST, 2 * DF_BINS),
            c0_history: zeros(DF_CONVP_PAST, CH * DF_BINS),
            enc_gru: zeros(1, HIDDEN),
            erb_gru: zeros(2, HIDDEN),
            df_gru: zeros(2, HIDDEN),
        }
    }

    /// The encoder: `erb` is the frame's 32 normalised band energies, `spec` its 96 normalised
    /// low bins as `[re ×96, im ×96]`.
    fn encode(&self, s: &mut NetworkState, erb: &[f32], spec: &[f32]) -> Encoded {
        s.erb_history.push(erb.to_vec());
        let e0 = {
            let mut y = self.erb_conv0.forward(&s.erb_history, ERB_BANDS);
            relu(&mut y);
            y
        };
        s.erb_history.remove(0);
        let mut e = vec![e0];
        let mut f = ERB_BANDS;
        for (depth, point) in &self.erb_convs {
            let (y, fout) = depth.forward(e.last().unwrap(), f);
            let mut y = point.forward(&y, fout);
            relu(&mut y);
            e.push(y);
            f = fout;
        }
        s.spec_history.push(spec.to_vec());
        let c0 = {
            let y = self.df_conv0.0.forward(&s.spec_history, DF_BINS);
            let mut y = self.df_conv0.1.forward(&y, DF_BINS);
            relu(&mut y);
            y
        };
        s.spec_history.remove(0);
        let (c1, f1) = self.df_conv1.0.forward(&c0, DF_BINS);
        let mut c1 = self.df_conv1.1.forward(&c1, f1);
        relu(&mut c1);
        // Both branches flatten `[c][f]` as `[f][c]` before their linear layers.
        let cf =
            |x: &[f32], f: usize| -> Vec<f32> { (0..f * CH).map(|k| x[(k % CH) * f + k / CH]).collect() };
        let mut df_emb = self.df_fc_emb.forward(&cf(&c1, f1));
        relu(&mut df_emb);
        let mut emb = cf(&e[3], 8);
        for (a, b) in emb.iter_mut().zip(&df_emb) {
            *a += b;
        }
        let emb = self.enc_gru.forward(&emb, &mut s.enc_gru);
        let lsnr = sigmoid(self.lsnr_fc.1 + dot(&self.lsnr_fc.0, &emb)) * (LSNR_MAX - LSNR_MIN) + LSNR_MIN;
        let [e0, e1, e2, e3] = <[Vec<f32>; 4]>::try_from(e).expect("four encoder levels");
        Encoded { e0, e1, e2, e3, c0, emb, lsnr }
    }

    fn erb_gains(&self, s: &mut NetworkState, enc: &Encoded) -> [f32; ERB_BANDS] {
        let emb = self.erb_gru.forward(&enc.emb, &mut s.erb_gru);
        // `[f 8][c 64]` → `[c][f]`.
        let mut x: Vec<f32> = (0..CH * 8).map(|k| emb[(k % 8) * CH + k / 8]).collect();
        let skip = |p: &Pointwise, e: &[f32], f: usize, x: &mut Vec<f32>| {
            let mut y = p.forward(e, f);
            relu(&mut y);
            for (a, b) in x.iter_mut().zip(&y) {
                *a += b;
            }
        };
        skip(&self.pathways[0], &enc.e3, 8, &mut x);
        let (y, _) = self.convt3.0.forward(&x, 8);
        x = self.convt3.1.forward(&y, 8);
        relu(&mut x);
        skip(&self.pathways[1], &enc.e2, 8, &mut x);
        x = self.convt2.1.forward(&self.convt2.0.forward(&x, 8), 16);
        relu(&mut x);
        skip(&self.pathways[2], &enc.e1, 16, &mut x);
        x = self.convt1.1.forward(&self.convt1.0.forward(&x, 16), 32);
        relu(&mut x);
        skip(&self.pathways[3], &enc.e0, 32, &mut x);
        let (w, b) = &self.conv0_out;
        let mut gains = [0f32; ERB_BANDS];
        for (j, g) in gains.iter_mut().enumerate() {
            let mut acc = *b;
            for c in 0..CH {
                let xc = &x[c * 32..(c + 1) * 32];
                acc += w[c * 3 + 1] * xc[j];
                if j > 0 {
                    acc += w[c * 3] * xc[j - 1];
                }
                if j + 1 < 32 {
                    acc += w[c * 3 + 2] * xc[j + 1];
                }
            }
            *g = sigmoid(acc);
        }
        gains
    }

    fn df_coefs(&self, s: &mut NetworkState, enc: &Encoded) -> Vec<f32> {
        let mut c = self.df_gru.forward(&enc.emb, &mut s.df_gru);
        for (a, b) in c.iter_mut().zip(self.df_skip.forward(&enc.emb)) {
            *a += b;
        }
        let mut coefs = self.df_out.forward(&c);
        for v in &mut coefs {
            *v = v.tanh();
        }
        // The pathway: a 5-frame causal convolution over c0 (two groups: taps' channels 0–4
        // read c0's channels 0–31, 5–9 read 32–63), then a 1×1 convolution, ReLU.
        s.c0_history.push(enc.c0.clone());
        let mut p = vec![0f32; 2 * DF_ORDER * DF_BINS];
        for (t, frame) in s.c0_history.iter().enumerate() {
            let w = &self.df_convp.0[t * 2 * DF_ORDER * 32..][..2 * DF_ORDER * 32]; // [10][32]
            for group in 0..2 {
                matmul_add(
                    &mut p[group * DF_ORDER * DF_BINS..][..DF_ORDER * DF_BINS],
                    &w[group * DF_ORDER * 32..][..DF_ORDER * 32],
                    &frame[group * 32 * DF_BINS..][..32 * DF_BINS],
                    (DF_ORDER, 32, DF_BINS),
                );
            }
        }
        s.c0_history.remove(0);
        let mut p = self.df_convp.1.forward(&p, DF_BINS);
        relu(&mut p);
        // coefs is `[bin][10]`, p `[10][bin]`.
        for (bin, taps) in coefs.chunks_exact_mut(2 * DF_ORDER).enumerate() {
            for (k, v) in taps.iter_mut().enumerate() {
                *v += p[k * DF_BINS + bin];
            }
        }
        coefs
    }

    /// Runs one frame: its normalised features in, the gains and deep-filter taps for the frame
    /// two before out.
    pub fn frame(&self, s: &mut NetworkState, erb: &[f32], spec: &[f32]) -> FrameOutput {
        let enc = self.encode(s, erb, spec);
        let gains = self.erb_gains(s, &enc);
        let coefs = self.df_coefs(s, &enc);
        FrameOutput { lsnr: enc.lsnr, gains, coefs }
    }
}
