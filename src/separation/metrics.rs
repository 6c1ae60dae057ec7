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
