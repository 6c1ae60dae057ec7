//! The ANCAT transducer: streaming engine ≡ masked whole-sequence forward, lookahead accounting,
//! and search against brute force. `cargo test transducer` runs these.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use hark::asr::transducer::init::{Rng, random_tensors};
use hark::asr::transducer::model::lookahead_ms;
use hark::asr::transducer::search::{Joiner, Search, SearchMode};
use hark::asr::transducer::stream::stream_all;
use hark::asr::transducer::{Lookahead, LookaheadStats, StreamingEncoder, TransducerConfig, TransducerModel};

const MODES: [Lookahead; 4] = [Lookahead::Adaptive, Lookahead::Causal, Lookahead::Fixed(2), Lookahead::Full];

fn tiny_config() -> TransducerConfig {
    TransducerConfig {
        n_mels: 80,
        d_model: 32,
        n_heads: 4,
        n_layers: 3,
        ffn_dim: 64,
        left_context: 6,
        lookahead_frames: vec![2, 1, 3],
        joiner_dim: 16,
        context_size: 2,
        vocab_size: 29,
        blank_id: 0,
        trained: false,
        origin: "test".into(),
        calibrated_layers: Vec::new(),
        latency_curve: Vec::new(),
    }
}

fn model(
    cfg: TransducerConfig,
    seed: u64,
    edit: impl FnOnce(&mut HashMap<String, Tensor>),
) -> Arc<TransducerModel> {
    let mut t = random_tensors(&cfg, seed).unwrap();
    edit(&mut t);
    Arc::new(TransducerModel::from_tensors(cfg, &t, &Device::Cpu).unwrap())
}

fn random_mel(frames: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..frames * 80).map(|_| rng.normal() * 0.5).collect()
}

fn real_speech_mel() -> Vec<f32> {
    let samples =
        hark::audio::FileSource::open(&common::fixture("speech-16k-mono.wav")).unwrap().read_all().unwrap();
    hark::asr::transducer::recognizer::RunningNorm::normalize_all(&hark::features::MelFrontend::compute(
        &samples,
    ))
}

/// Streaming (chunks of 1, 7, all frames) against the masked forward, in every mode.
fn assert_equivalent(m: &Arc<TransducerModel>, mel: &[f32]) {
    let n = mel.len() / 80;
    let whole = Tensor::from_slice(mel, (n, 80), &Device::Cpu).unwrap();
    for mode in MODES {
        let trace = m.encode(&whole, mode).unwrap();
        let expected = trace.frames.to_vec2::<f32>().unwrap();
        if mode == Lookahead::Adaptive {
            let on: usize = trace.gates.iter().flatten().filter(|&&g| g).count();
            let all = trace.gates.iter().flatten().count();
            assert!(on > 0 && on < all, "the test needs some gates on and some off ({on}/{all})");
        }
        for chunk in [1, 7, n] {
            let got = stream_all(m, mode, mel, chunk).unwrap();
            assert_eq!(got.len(), expected.len(), "{mode} chunk {chunk}");
            let mut worst = 0f32;
            for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(g.index, k as u64);
                for (a, b) in g.values.iter().zip(e) {
                    worst = worst.max((a - b).abs());
                }
                assert_eq!(
                    g.lookahead_ms,
                    lookahead_ms(k, trace.ready_mel[k]),
                    "{mode} chunk {chunk} frame {k}"
                );
            }
            assert!(worst <= 1e-4, "{mode} chunk {chunk}: max abs diff {worst}");
        }
    }
}

#[test]
fn transducer_streaming_equivalence_on_random_input() {
    let m = model(tiny_config(), 7, |_| {});
    assert_equivalent(&m, &random_mel(61, 1));
    assert_equivalent(&m, &random_mel(8, 2)); // shorter than the left context
}

#[test]
fn transducer_streaming_equivalence_on_real_speech_with_whisper_encoder() {
    // Whisper tiny.en's encoder with a random head, exactly as the default untrained model.
    let whisper = hark::models::resolve("whisper-tiny.en").unwrap();
    let cfg = TransducerConfig { left_context: 40, ..TransducerConfig::tiny(29) };
    let mut t = random_tensors(&cfg, 3).unwrap();
    hark::asr::transducer::init::load_whisper_encoder(&mut t, &whisper, &cfg).unwrap();
    let m = Arc::new(TransducerModel::from_tensors(cfg, &t, &Device::Cpu).unwrap());
    assert_equivalent(&m, &real_speech_mel());
}

/// Feeds one mel frame at a time; returns, per output frame, how many mel frames had arrived
/// when it came out.
fn emission_times(m: &Arc<TransducerModel>, mode: Lookahead, mel: &[f32]) -> Vec<usize> {
    let mut enc = StreamingEncoder::new(m.clone(), mode);
    let mut times = Vec::new();
    let mut out = Vec::new();
    for (i, frame) in mel.chunks(80).enumerate() {
        enc.push(frame, &mut out).unwrap();
        times.extend(out.drain(..).map(|_| i + 1));
    }
    enc.finish(&mut out).unwrap();
    times.extend(out.drain(..).map(|_| usize::MAX));
    times
}

#[test]
fn transducer_adaptive_mode_waits_exactly_where_gates_are_on() {
    let m = model(tiny_config(), 11, |_| {});
    let mel = random_mel(80, 5);
    let n = 80;
    let trace =
        m.encode(&Tensor::from_slice(&mel, (n, 80), &Device::Cpu).unwrap(), Lookahead::Adaptive).unwrap();
    // Hand computation of each frame's dependency from the gates the model chose: a 50 Hz frame
    // t needs mel 2t+2; at layer l it needs, over its visible keys s, what s needed below.
    let cfg = &m.config;
    let t_enc = trace.gates[0].len();
    let mut need: Vec<usize> = (0..t_enc).map(|t| (2 * t + 2).min(n - 1)).collect();
    for (l, gates) in trace.gates.iter().enumerate() {
        need = (0..t_enc)
            .map(|t| {
                let hi = if gates[t] { t + cfg.lookahead_frames[l] } else { t };
                (t.saturating_sub(cfg.left_context)..=hi.min(t_enc - 1)).map(|s| need[s]).max().unwrap()
            })
            .collect();
    }
    let times = emission_times(&m, Lookahead::Adaptive, &mel);
    let causal_times = emission_times(&m, Lookahead::Causal, &mel);
    let mut waited = 0;
    for k in 0..t_enc / 2 {
        let dep = need[2 * k].max(need[2 * k + 1]);
        if dep < n - 1 {
            // Emitted the moment its last needed mel frame arrived: not before, not after.
            assert_eq!(times[k], dep + 1, "frame {k}");
            assert_eq!(causal_times[k], (4 * k + 4) + 1, "causal frame {k}");
            if times[k] > causal_times[k] {
                waited += 1;
            }
        }
        assert_eq!(trace.ready_mel[k], dep, "frame {k}");
    }
    assert!(waited > 0, "some frames had gates on and waited");
    // With every gate off, adaptive is causal; with every gate on it is fixed lookahead per layer.
    let off = model(tiny_config(), 11, |t| {
        for l in 0..3 {
            t.insert(format!("blocks.{l}.scheduler.bias"), Tensor::new(&[-1e4f32], &Device::Cpu).unwrap());
        }
    });
    assert_eq!(emission_times(&off, Lookahead::Adaptive, &mel), causal_times);
}

fn stats(m: &Arc<TransducerModel>, mode: Lookahead, n_mel: usize) -> LookaheadStats {
    let frames = stream_all(m, mode, &random_mel(n_mel, 9), 3).unwrap();
    LookaheadStats::of(&frames.iter().map(|f| f.lookahead_ms).collect::<Vec<_>>())
}

#[test]
fn transducer_lookahead_statistics_equal_a_hand_computed_case() {
    // 80 mel frames → 40 encoder frames → 20 output frames of 40 ms. Output k depends on mel
    // 4k+4 when causal (the conv front end looks one mel frame ahead; the STFT window reaches
    // 12.5 ms past a frame's centre): 10·(4k+4) + 12.5 − 40(k+1) = 12.5 ms; the last frame's
    // dependency is clipped to mel 79: 2.5 ms.
    let base = model(tiny_config(), 4, |_| {});
    assert_eq!(
        stats(&base, Lookahead::Causal, 80),
        LookaheadStats { mean_ms: 12.0, p50_ms: 12.5, p90_ms: 12.5 }
    );
    // Gates on at layer 1 only (window 1 frame = 20 ms): 32.5 ms, the last frame 2.5 ms.
    let layer1 = model(tiny_config(), 4, |t| {
        for (l, b) in [(0, -1e4f32), (1, 1e4), (2, -1e4)] {
            t.insert(format!("blocks.{l}.scheduler.bias"), Tensor::new(&[b], &Device::Cpu).unwrap());
        }
    });
    assert_eq!(
        stats(&layer1, Lookahead::Adaptive, 80),
        LookaheadStats { mean_ms: 31.0, p50_ms: 32.5, p90_ms: 32.5 }
    );
    // fixed:2 at all three layers: 6 frames = 120 ms more, 132.5 ms; the last four are clipped
    // by the segment's end: 122.5, 82.5, 42.5, 2.5.
    assert_eq!(
        stats(&base, Lookahead::Fixed(2), 80),
        LookaheadStats { mean_ms: 118.5, p50_ms: 132.5, p90_ms: 132.5 }
    );
    // Full context waits for the segment's end (mel 79): 790 + 12.5 − 40(k+1).
    // 762.5 − 40k for k = 0..19: mean 382.5; nearest-rank p50 = k 10, p90 = k 2.
    assert_eq!(
        stats(&base, Lookahead::Full, 80),
        LookaheadStats { mean_ms: 382.5, p50_ms: 362.5, p90_ms: 682.5 }
    );
}

#[test]
fn transducer_state_stays_bounded_on_a_long_stream() {
    let m = model(tiny_config(), 2, |_| {});
    let mut enc = StreamingEncoder::new(m.clone(), Lookahead::Adaptive);
    let mut out = Vec::new();
    let chunk = random_mel(10, 3);
    let mut sizes = Vec::new();
    for i in 0..600 {
        enc.push(&chunk, &mut out).unwrap();
        if i % 100 == 99 {
            sizes.push(enc.buffered_values());
        }
    }
    assert!(out.len() >= 600 * 10 / 4 - 4, "frames keep coming out: {}", out.len());
    assert!(sizes.windows(2).all(|w| w[1] <= w[0] + 1000), "state grows: {sizes:?}");
}

/// Every alignment with at most one symbol per frame: its token sequence and log-probability.
fn alignments(joiner: &Joiner, frames: &[Vec<f32>]) -> Vec<(Vec<u32>, f32)> {
    let mut paths: Vec<(Vec<u32>, Vec<u32>, f32)> = vec![(Vec::new(), joiner.initial_context(), 0.0)];
    for enc in frames {
        let mut next = Vec::new();
        for (tokens, ctx, lp) in paths {
            let probs = joiner.log_probs(enc, &joiner.predict(&ctx));
            for (tok, p) in probs.iter().enumerate() {
                let (mut tk, mut c) = (tokens.clone(), ctx.clone());
                if tok as u32 != joiner.blank {
                    tk.push(tok as u32);
                    c.remove(0);
                    c.push(tok as u32);
                }
                next.push((tk, c, lp + p));
            }
        }
        paths = next;
    }
    paths.into_iter().map(|(t, _, lp)| (t, lp)).collect()
}

/// Each token sequence's probability, summed over its alignments.
fn brute_force(joiner: &Joiner, frames: &[Vec<f32>]) -> HashMap<Vec<u32>, f32> {
    let mut by_seq: HashMap<Vec<u32>, f32> = HashMap::new();
    for (tokens, lp) in alignments(joiner, frames) {
        let e = by_seq.entry(tokens).or_insert(f32::NEG_INFINITY);
        let m = e.max(lp);
        *e = m + ((*e - m).exp() + (lp - m).exp()).ln();
    }
    by_seq
}

/// The single most probable alignment.
fn best_alignment(joiner: &Joiner, frames: &[Vec<f32>]) -> (Vec<u32>, f32) {
    alignments(joiner, frames).into_iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap()
}

#[test]
fn transducer_greedy_and_beam_search_agree_with_brute_force() {
    for seed in 0..8 {
        let cfg = TransducerConfig { vocab_size: 4, joiner_dim: 8, ..tiny_config() };
        let m = model(cfg, seed, |t| {
            // A confident joiner, as a trained one is.
            let w = t["joiner_out.weight"].clone();
            t.insert("joiner_out.weight".into(), (w * 8.0).unwrap());
        });
        let joiner = Joiner::from_model(&m).unwrap();
        let mut rng = Rng::new(100 + seed);
        let frames: Vec<Vec<f32>> = (0..5).map(|_| (0..8).map(|_| rng.normal() * 2.0).collect()).collect();
        let all = brute_force(&joiner, &frames);
        let (best_seq, best_lp) =
            all.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(s, l)| (s.clone(), *l)).unwrap();

        // A beam wide enough to hold every prefix is exact: the most probable sequence, summed
        // over its alignments.
        let mut exact = Search::new(SearchMode::Beam { beam: 10_000 }, &joiner);
        for (i, f) in frames.iter().enumerate() {
            exact.step(&joiner, i as u64, f);
        }
        assert_eq!(exact.best().tokens(), best_seq, "seed {seed}");
        assert!((exact.best().log_prob - best_lp).abs() < 1e-4, "seed {seed}");

        let mut beam4 = Search::new(SearchMode::Beam { beam: 4 }, &joiner);
        for (i, f) in frames.iter().enumerate() {
            beam4.step(&joiner, i as u64, f);
        }
        assert_eq!(beam4.best().tokens(), best_seq, "beam 4, seed {seed}");

        // Greedy takes the best step at each frame: its score is that of its own alignment in
        // the enumeration, never above the best alignment's.
        let mut greedy = Search::new(SearchMode::Greedy { max_symbols: 1 }, &joiner);
        for (i, f) in frames.iter().enumerate() {
            greedy.step(&joiner, i as u64, f);
        }
        let (_, viterbi_lp) = best_alignment(&joiner, &frames);
        assert!(greedy.best().log_prob <= viterbi_lp + 1e-5, "greedy, seed {seed}");
        assert!(greedy.best().log_prob <= all[&greedy.best().tokens()] + 1e-5, "greedy, seed {seed}");

        // When the predictor does not matter, frames are independent and the best step at each
        // frame *is* the best alignment: greedy must then equal brute force exactly.
        let m0 = model(TransducerConfig { vocab_size: 4, joiner_dim: 8, ..tiny_config() }, seed, |t| {
            let w = t["pred_proj.weight"].zeros_like().unwrap();
            t.insert("pred_proj.weight".into(), w);
        });
        let j0 = Joiner::from_model(&m0).unwrap();
        let mut g0 = Search::new(SearchMode::Greedy { max_symbols: 1 }, &j0);
        for (i, f) in frames.iter().enumerate() {
            g0.step(&j0, i as u64, f);
        }
        let (seq0, lp0) = best_alignment(&j0, &frames);
        assert_eq!(g0.best().tokens(), seq0, "context-free greedy, seed {seed}");
        assert!((g0.best().log_prob - lp0).abs() < 1e-4, "context-free greedy, seed {seed}");
    }
}
