//! `hark separate`, `hark enroll`, `--enhance` and `hark train separation`, as users run them.

mod common;

use common::{fixture, hark_in, root, stderr, stdout};
use hark::audio::FileSource;
use hark::separation::metrics::si_sdr;

fn read(path: &std::path::Path) -> Vec<f32> {
    FileSource::open(path).unwrap().read_all().unwrap()
}

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    hark_in(&root(), args, env)
}

#[test]
fn separate_denoise_writes_a_cleaner_file_of_the_same_length() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = fixture("noisy-speech-16k.wav");
    let clean = read(&root().join("tests/reference/gtcrn/clean-speech-16k.wav"));
    for mode in ["denoise", "denoise:gtcrn", "denoise:rnnoise", "denoise:ensemble"] {
        let out = dir.path().join(format!("{mode}.wav"));
        let o = run(&["separate", "--mode", mode, noisy.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
        let (before, after) = (si_sdr(&read(&noisy), &clean), si_sdr(&read(&out), &clean));
        assert_eq!(read(&out).len(), clean.len(), "{mode}");
        assert!(after > before + 4.0, "{mode}: SI-SDR {before:.2} → {after:.2} dB");
    }
    // Nothing else (no temporary files) is left beside the outputs.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
}

#[test]
fn separate_rejects_bad_input_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    let path = |name: &str| fixture(name).to_string_lossy().into_owned();
    let cases: [(Vec<String>, &str); 4] = [
        (vec!["--mode".into(), "bogus".into(), path("noisy-speech-16k.wav")], "unknown enhancement 'bogus'"),
        (vec![path("empty.wav")], "empty audio"),
        (vec![path("not-audio.wav")], "not an audio file"),
        (vec![path("truncated.wav")], "truncated"),
    ];
    for (args, message) in &cases {
        let mut all = vec!["separate"];
        all.extend(args.iter().map(String::as_str));
        all.extend(["-o", out.to_str().unwrap()]);
        let o = run(&all, &[]);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{args:?} left a file");
    }
}

#[test]
fn enroll_then_keep_that_speaker() {
    let speakers = tempfile::tempdir().unwrap();
    let env = [("HARK_SPEAKERS", speakers.path().to_str().unwrap())];
    let o = run(&["enroll", "alice", fixture("target-enrol-16k.wav").to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(speakers.path().join("alice.json").is_file());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alice.wav");
    let mixture = fixture("target-mixture-16k.wav");
    let o = run(
        &["separate", "--mode", "target:alice", mixture.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // The package's own output for this mixture (tests/enhance.rs checks the match sample by sample).
    let package = read(&root().join("tests/reference/voicefilter/target-mixture-16k.enhanced.wav"));
    assert!(si_sdr(&read(&out), &package) > 30.0);
    // Unknown speakers and bad names are the user's to fix, and say how.
    let o = run(
        &["separate", "--mode", "target:bob", mixture.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &env,
    );
    assert!(!o.status.success() && stderr(&o).contains("hark enroll bob"), "{}", stderr(&o));
    let o = run(&["enroll", "../evil", fixture("target-enrol-16k.wav").to_str().unwrap()], &env);
    assert!(!o.status.success() && stderr(&o).contains("speaker name"), "{}", stderr(&o));
    let o = run(&["enroll", "carol", fixture("empty.wav").to_str().unwrap()], &env);
    assert!(!o.status.success() && !speakers.path().join("carol.json").exists());
}

#[test]
fn transcribe_with_a_denoiser_in_front() {
    let o =
        run(&["transcribe", "--enhance", "denoise", fixture("speech-16k-mono.wav").to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = common::words(&stdout(&o));
    assert!(text.contains("glad to see you again"), "{text}");
    let o = run(&["transcribe", "--enhance", "bogus", fixture("speech-16k-mono.wav").to_str().unwrap()], &[]);
    assert!(!o.status.success() && stderr(&o).contains("unknown enhancement"), "{}", stderr(&o));
}

#[test]
fn separate_two_speakers_writes_two_files_of_the_input_length() {
    let dir = tempfile::tempdir().unwrap();
    let mixture = fixture("target-mixture-16k.wav");
    let o = run(
        &[
            "separate",
            "--mode",
            "two-speakers",
            mixture.to_str().unwrap(),
            "-o",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let n = read(&mixture).len();
    for name in ["speaker-1.wav", "speaker-2.wav"] {
        assert_eq!(read(&dir.path().join(name)).len(), n, "{name}");
    }
}

#[test]
fn separation_training_raises_si_snr_on_a_few_speakers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("train.tsv"),
        format!(
            "file\tduration_seconds\treference_transcript\tspeaker\n{}\t2.6\t-\tkathleen\n{}\t11.0\t-\tjfk\n{}\t4.0\t-\tsisec-f2\n",
            fixture("speech-16k-mono.wav").display(),
            fixture("jfk.flac").display(),
            fixture("target-enrol-16k.wav").display()
        ),
    )
    .unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        r#"
output = "runs/tiny-separator"
train = ["train.tsv"]
segment_s = 1.0
speed_perturb = 0.1
steps = 60
batch = 4
lr = 3e-3
warmup = 5
checkpoint_every = 30

[model]
sample_rate = 8000
window = 16
filters = 32
dim = 32
expand = 64
qk_dim = 16
blocks = 1
chunk = 50
conv_kernel = 5
speakers = 2
"#,
    )
    .unwrap();
    let losses = hark::train::separation::train(&config, false, &candle_core::Device::Cpu).unwrap();
    assert_eq!(losses.len(), 60);
    let mean = |s: &[f32]| -s.iter().sum::<f32>() / s.len() as f32;
    let (first, last) = (mean(&losses[..10]), mean(&losses[50..]));
    assert!(last > first + 3.0, "SI-SNR went from {first:.2} to {last:.2} dB");
    // The exported model separates a recording into two signals of its length.
    let model =
        hark::separation::mossformer::TwoSpeakerSeparator::load(&dir.path().join("runs/tiny-separator"))
            .unwrap();
    let parts = model.separate(&vec![0.01; 4000]).unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.len() == 4000 && p.iter().all(|v| v.is_finite())));

    // Fine-tuning from it (init_model) starts where it ended, not from random weights.
    let recipe = std::fs::read_to_string(&config).unwrap();
    let tuned = dir.path().join("tuned.toml");
    let tuned_recipe = recipe
        .replace(
            "output = \"runs/tiny-separator\"",
            "output = \"runs/tuned\"\ninit_model = \"runs/tiny-separator\"",
        )
        .replace("steps = 60", "steps = 5")
        .replace("lr = 3e-3", "lr = 1e-4");
    std::fs::write(&tuned, &tuned_recipe).unwrap();
    let tuned_losses = hark::train::separation::train(&tuned, false, &candle_core::Device::Cpu).unwrap();
    assert!(mean(&tuned_losses) > first + 2.0, "fine-tuning started at {:.2} dB", mean(&tuned_losses));
    // A model of another shape is refused, naming both shapes.
    std::fs::write(&tuned, tuned_recipe.replace("blocks = 1", "blocks = 2")).unwrap();
    let err = hark::train::separation::train(&tuned, false, &candle_core::Device::Cpu).unwrap_err();
    assert!(format!("{err:#}").contains("has the shape"), "{err:#}");
}
