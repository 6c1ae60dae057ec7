//! Separation quality measures.

/// Scale-invariant signal-to-distortion ratio (dB) of `estimate` against `reference` (Le Roux et
/// al. 2019): the estimate's projection on the reference is the target, the rest is distortion.
/// Both are taken over their common length; means are not removed (callers pass zero-mean audio
/// or accept the DC term as distortion).
pub fn si_sdr(estimate: &[f32], reference: &[f32]) -> f64 {
    let n = estimate.len().min(reference.len());
    let (e, r) = (&estimate[..n], &reference[..n]);
    let dot: f64 = e.iter().zip(r).map(|(&a, &b)| a as f64 * b as f64).sum();
    let energy: f64 = r.iter().map(|&b| b as f64 * b as f64).sum::<f64>() + 1e-12;
    let alpha = dot / energy;
    let (mut target, mut noise) = (0f64, 0f64);
    for (&a, &b) in e.iter().zip(r) {
        let t = alpha * b as f64;
        target += t * t;
        noise += (a as f64 - t) * (a as f64 - t);
    }
    10.0 * ((target + 1e-12) / (noise + 1e-12)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_sdr_ignores_scale_and_counts_noise() {
        let s: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.05).sin()).collect();
        let scaled: Vec<f32> = s.iter().map(|v| v * 0.3).collect();
        assert!(si_sdr(&scaled, &s) > 100.0);
        // Orthogonal noise of equal power: 0 dB.
        let n: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.05).cos()).collect();
        let mix: Vec<f32> = s.iter().zip(&n).map(|(a, b)| a + b).collect();
        assert!((si_sdr(&mix, &s)).abs() < 0.2, "{}", si_sdr(&mix, &s));
    }
}

/// `speech` with `noise` added at `snr_db` (signal-to-noise power ratio over the speech's
/// length); the noise is read from `offset` on, wrapping around if it is shorter than the speech.
pub fn mix_at_snr(speech: &[f32], noise: &[f32], snr_db: f64, offset: usize) -> Vec<f32> {
    assert!(!noise.is_empty());
    let segment: Vec<f32> = (0..speech.len()).map(|i| noise[(offset + i) % noise.len()]).collect();
    let power = |x: &[f32]| x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len().max(1) as f64;
    let gain = (power(speech) / (power(&segment) + 1e-20) / 10f64.powf(snr_db / 10.0)).sqrt() as f32;
    speech.iter().zip(&segment).map(|(s, n)| s + gain * n).collect()
}

#[cfg(test)]
mod mix_tests {
    use super::*;

    #[test]
    fn mixes_at_the_asked_snr() {
        let s: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.05).sin()).collect();
        let n: Vec<f32> = (0..7_000).map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0).collect();
        let mix = mix_at_snr(&s, &n, 5.0, 123);
        let noise: Vec<f32> = mix.iter().zip(&s).map(|(m, s)| m - s).collect();
        let p = |x: &[f32]| x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        assert!((10.0 * (p(&s) / p(&noise)).log10() - 5.0).abs() < 1e-3);
    }
}
