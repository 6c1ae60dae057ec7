//! Throughput of the audio front end: resampling 44.1 kHz to 16 kHz, and the streaming log-mel.
//! `cargo bench --bench frontend`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hark::audio::Resampler;
use hark::features::MelFrontend;

fn speechlike(n: usize, rate: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as f32 / rate) * 2.0 * std::f32::consts::PI * 220.0).sin() * 0.3
                + ((i * 7919 % 997) as f32 / 997.0 - 0.5) * 0.05
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ten_s_44k = speechlike(441_000, 44_100.0);
    let ten_s_16k = speechlike(160_000, 16_000.0);
    let mut g = c.benchmark_group("frontend_10s_audio");
    g.throughput(Throughput::Elements(10));
    g.bench_function("resample_44k1_to_16k", |b| {
        b.iter(|| {
            let mut r = Resampler::new(44_100, 16_000).unwrap();
            let mut out = Vec::with_capacity(160_000);
            for chunk in ten_s_44k.chunks(4096) {
                r.process(chunk, &mut out).unwrap();
            }
            r.finish(&mut out).unwrap();
            out
        })
    });
    g.bench_function("log_mel_streaming", |b| {
        b.iter(|| {
            let mut fe = MelFrontend::new();
            let mut frames = Vec::with_capacity(1000);
            for chunk in ten_s_16k.chunks(1600) {
                fe.push(chunk, &mut frames);
            }
            fe.finish(&mut frames);
            frames
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
