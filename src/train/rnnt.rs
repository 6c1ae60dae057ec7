//! The RNN-T loss (Graves 2012) as a candle op: the negative log-probability of a label sequence,
//! summed over every alignment of the T×(U+1) lattice in log space (forward–backward), with its
//! gradient with respect to the joiner's logits. No crate provides it for candle; the tests check
//! it against brute-force enumeration of alignments and against finite differences.

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor};

/// Loss of one utterance; apply to logits `[T, U+1, V]` with `Tensor::apply_op1`.
pub struct RnntLoss {
    pub labels: Vec<u32>,
    pub blank: u32,
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Log-softmax of every (t, u) row, in f64.
fn log_probs(z: &[f32], rows: usize, v: usize) -> Vec<f64> {
    let mut out = vec![0f64; rows * v];
    for r in 0..rows {
        let row = &z[r * v..(r + 1) * v];
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        for k in 0..v {
            out[r * v + k] = row[k] as f64 - lse;
        }
    }
    out
}

pub struct Lattice {
    t: usize,
    u1: usize,
    v: usize,
    lp: Vec<f64>,
    alpha: Vec<f64>,
    beta: Vec<f64>,
}

impl Lattice {
    /// Forward and backward variables for logits `[t, u1, v]` and `labels` (u1 − 1 of them).
    pub fn new(z: &[f32], t: usize, u1: usize, v: usize, labels: &[u32], blank: u32) -> Self {
        let lp = log_probs(z, t * u1, v);
        let at = |tt: usize, uu: usize, k: u32| lp[(tt * u1 + uu) * v + k as usize];
        let ninf = f64::NEG_INFINITY;
        let mut alpha = vec![ninf; t * u1];
        alpha[0] = 0.0;
        for tt in 0..t {
            for uu in 0..u1 {
                if tt == 0 && uu == 0 {
                    continue;
                }
                let mut a = ninf;
                if tt > 0 {
                    a = log_add(a, alpha[(tt - 1) * u1 + uu] + at(tt - 1, uu, blank));
                }
                if uu > 0 {
                    a = log_add(a, alpha[tt * u1 + uu - 1] + at(tt, uu - 1, labels[uu - 1]));
                }
                alpha[tt * u1 + uu] = a;
            }
        }
        let mut beta = vec![ninf; t * u1];
        for tt in (0..t).rev() {
            for uu in (0..u1).rev() {
                let b = if tt == t - 1 && uu == u1 - 1 {
                    at(tt, uu, blank)
                } else {
                    let mut b = ninf;
                    if tt + 1 < t {
                        b = log_add(b, beta[(tt + 1) * u1 + uu] + at(tt, uu, blank));
                    }
                    if uu + 1 < u1 {
                        b = log_add(b, beta[tt * u1 + uu + 1] + at(tt, uu, labels[uu]));
                    }
                    b
                };
                beta[tt * u1 + uu] = b;
            }
        }
        Self { t, u1, v, lp, alpha, beta }
    }

    /// log P(labels | input).
    pub fn log_likelihood(&self) -> f64 {
        self.beta[0]
    }

    /// d(−log P)/d logits, `[t, u1, v]`.
    #[allow(clippy::needless_range_loop)] // (t, u) indices are the lattice's coordinates
    pub fn gradient(&self, labels: &[u32], blank: u32) -> Vec<f32> {
        let (t, u1, v) = (self.t, self.u1, self.v);
        let log_p = self.log_likelihood();
        let mut grad = vec![0f32; t * u1 * v];
        for tt in 0..t {
            for uu in 0..u1 {
                let cell = tt * u1 + uu;
                let a = self.alpha[cell];
                // d(−log P)/d log-prob of the two transitions out of (t, u).
                let mut d_blank = 0.0;
                let next_blank = if tt + 1 < t {
                    Some(self.beta[(tt + 1) * u1 + uu])
                } else if uu == u1 - 1 {
                    Some(0.0)
                } else {
                    None
                };
                if let Some(nb) = next_blank {
                    d_blank = -(a + self.lp[cell * v + blank as usize] + nb - log_p).exp();
                }
                let mut d_label = 0.0;
                if uu + 1 < u1 {
                    d_label =
                        -(a + self.lp[cell * v + labels[uu] as usize] + self.beta[cell + 1] - log_p).exp();
                }
                // Through log-softmax: dz_k = dlp_k − p_k · Σ_j dlp_j.
                let total = d_blank + d_label;
                for k in 0..v {
                    let p = self.lp[cell * v + k].exp();
                    let mut g = -p * total;
                    if k == blank as usize {
                        g += d_blank;
                    }
                    if uu + 1 < u1 && k == labels[uu] as usize {
                        g += d_label;
                    }
                    grad[cell * v + k] = g as f32;
                }
            }
        }
        grad
    }
}

impl RnntLoss {
    fn lattice(&self, z: &[f32], shape: &Shape) -> Result<Lattice> {
        let (t, u1, v) = shape.dims3()?;
        if u1 != self.labels.len() + 1 {
            candle_core::bail!(
                "rnnt loss: logits have U+1 = {u1} but there are {} labels",
                self.labels.len()
            );
        }
        if t == 0 {
            candle_core::bail!("rnnt loss: no frames");
        }
        Ok(Lattice::new(z, t, u1, v, &self.labels, self.blank))
    }
}

impl CustomOp1 for RnntLoss {
    fn name(&self) -> &'static str {
        "rnnt-loss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let z = match storage {
            CpuStorage::F32(z) => z,
            _ => candle_core::bail!("rnnt loss: logits must be f32"),
        };
        let z = match layout.contiguous_offsets() {
            Some((a, b)) => &z[a..b],
            None => candle_core::bail!("rnnt loss: logits must be contiguous"),
        };
        let loss = -self.lattice(z, layout.shape())?.log_likelihood();
        Ok((CpuStorage::F32(vec![loss as f32]), Shape::from(())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let z: Vec<f32> = arg.flatten_all()?.to_vec1()?;
        let grad = self.lattice(&z, arg.shape())?.gradient(&self.labels, self.blank);
        let grad = Tensor::from_vec(grad, arg.shape(), arg.device())?;
        Ok(Some(grad.broadcast_mul(grad_res)?))
    }
}

/// −log P(labels | logits) for one utterance, differentiable with respect to `logits` `[T, U+1, V]`.
/// The lattice runs on the CPU wherever the logits are (it is sequential; no GPU kernel): the
/// move is differentiable, so the gradient goes back to the logits' device.
pub fn rnnt_loss(logits: &Tensor, labels: &[u32], blank: u32) -> Result<Tensor> {
    let on_cpu = logits.to_device(&Device::Cpu)?.contiguous()?;
    on_cpu.apply_op1(RnntLoss { labels: labels.to_vec(), blank })?.to_device(logits.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    use crate::asr::transducer::init::Rng;

    /// log P by enumerating every alignment: paths of T−1 blanks and U labels through the lattice,
    /// then the final blank.
    fn brute_force(z: &[f32], t: usize, u1: usize, v: usize, labels: &[u32], blank: u32) -> f64 {
        let lp = log_probs(z, t * u1, v);
        #[allow(clippy::too_many_arguments)]
        fn walk(
            lp: &[f64],
            t: usize,
            u1: usize,
            v: usize,
            labels: &[u32],
            blank: u32,
            tt: usize,
            uu: usize,
            acc: f64,
            out: &mut Vec<f64>,
        ) {
            let at = |a: usize, b: usize, k: u32| lp[(a * u1 + b) * v + k as usize];
            if tt == t - 1 && uu == u1 - 1 {
                out.push(acc + at(tt, uu, blank));
                return;
            }
            if tt + 1 < t {
                walk(lp, t, u1, v, labels, blank, tt + 1, uu, acc + at(tt, uu, blank), out);
            }
            if uu + 1 < u1 {
                walk(lp, t, u1, v, labels, blank, tt, uu + 1, acc + at(tt, uu, labels[uu]), out);
            }
        }
        let mut paths = Vec::new();
        walk(&lp, t, u1, v, labels, blank, 0, 0, 0.0, &mut paths);
        paths.into_iter().fold(f64::NEG_INFINITY, log_add)
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| rng.normal() * 2.0).collect()
    }

    #[test]
    fn rnnt_loss_equals_brute_force_enumeration() {
        for (seed, (t, labels)) in
            [(4, vec![1u32, 2]), (5, vec![3, 3, 1]), (1, vec![2]), (3, vec![]), (6, vec![1, 2, 3, 1, 2])]
                .into_iter()
                .enumerate()
        {
            let (u1, v) = (labels.len() + 1, 4);
            let z = random(t * u1 * v, seed as u64);
            let lattice = Lattice::new(&z, t, u1, v, &labels, 0);
            let brute = brute_force(&z, t, u1, v, &labels, 0);
            assert!((lattice.log_likelihood() - brute).abs() < 1e-9, "T={t} labels={labels:?}");
            // The op returns −log P.
            let logits = Tensor::from_vec(z, (t, u1, v), &Device::Cpu).unwrap();
            let loss: f32 = rnnt_loss(&logits, &labels, 0).unwrap().to_scalar().unwrap();
            assert!((loss as f64 + brute).abs() < 1e-4);
        }
    }

    #[test]
    fn rnnt_gradient_matches_finite_differences() {
        let (t, labels, v) = (5usize, vec![1u32, 3, 2], 4usize);
        let u1 = labels.len() + 1;
        let z = random(t * u1 * v, 42);
        let var = Var::from_tensor(&Tensor::from_vec(z.clone(), (t, u1, v), &Device::Cpu).unwrap()).unwrap();
        let loss = rnnt_loss(var.as_tensor(), &labels, 0).unwrap();
        let grads = loss.backward().unwrap();
        let g: Vec<f32> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let nll = |z: &[f32]| -Lattice::new(z, t, u1, v, &labels, 0).log_likelihood();
        let h = 1e-3f32;
        for i in 0..z.len() {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (nll(&up) - nll(&down)) / (2.0 * h as f64);
            assert!((numeric - g[i] as f64).abs() < 2e-3, "logit {i}: numeric {numeric}, analytic {}", g[i]);
        }
        // Each row of the gradient of a log-softmax sums to zero.
        for row in g.chunks(v) {
            assert!(row.iter().sum::<f32>().abs() < 1e-5);
        }
    }
}
