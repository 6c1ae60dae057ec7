//! `hark train` on a tiny model: a few steps on a few real utterances must lower the loss.

mod common;

fn write_manifest(dir: &std::path::Path) {
    let manifest = dir.join("train.tsv");
    std::fs::write(
        &manifest,
        format!(
            "file\tduration_seconds\treference_transcript\n{}\t2.6\tLord, but I'm glad to see you again, Phil.\n{}\t11.0\tAnd so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.\n",
            common::fixture("speech-16k-mono.wav").display(),
            common::fixture("jfk.flac").display()
        ),
    )
    .unwrap();
}

const TINY_MODEL: &str = r#"
[model]
n_mels = 80
d_model = 32
n_heads = 4
n_layers = 2
ffn_dim = 64
left_context = 20
lookahead_frames = [2, 2]
joiner_dim = 32
context_size = 2
vocab_size = 29
blank_id = 0
trained = false
origin = "test"
"#;

/// Trains the tiny model in causal mode for 60 steps on the two fixtures (recipe `name.toml`,
/// model folder `name`, plus the `extra` recipe lines), checks that the loss per token fell and
/// returns the recipe and the losses.
fn train_tiny_causal(dir: &std::path::Path, name: &str, extra: &str) -> (std::path::PathBuf, Vec<f32>) {
    write_manifest(dir);
    let config = dir.join(format!("{name}.toml"));
    let recipe = format!(
        r#"
output = "{name}"
lookahead = "causal"
train = ["train.tsv"]
steps = 60
batch = 2
lr = 3e-3
warmup = 5
checkpoint_every = 30
dev_every = 1000
keep_encoded = false
{extra}
"#
    );
    std::fs::write(&config, format!("{recipe}{TINY_MODEL}")).unwrap();
    let losses = hark::train::train(&config, false).unwrap();
    assert_eq!(losses.len(), 60);
    let (first, last) = (mean(&losses[..5]), mean(&losses[55..]));
    assert!(last < 0.7 * first, "loss per token went from {first} to {last}");
    (config, losses)
}

fn mean(s: &[f32]) -> f32 {
    s.iter().sum::<f32>() / s.len() as f32
}

#[test]
fn transducer_training_loss_falls_on_a_few_utterances() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = train_tiny_causal(dir.path(), "tiny-model", "");
    // The trained model folder loads and decodes.
    let model = dir.path().join("tiny-model");
    assert!(model.join("model.safetensors").is_file() && model.join("vocabulary.txt").is_file());
    let out = common::hark(&[
        "transcribe",
        "--engine",
        "transducer",
        "--lookahead",
        "causal",
        "--model",
        model.to_str().unwrap(),
        "audio-fixtures/speech-16k-mono.wav",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // Resuming from the checkpoint continues at the saved step.
    let config_text = std::fs::read_to_string(&config).unwrap().replace("steps = 60", "steps = 62");
    std::fs::write(&config, config_text).unwrap();
    let more = hark::train::train(&config, true).unwrap();
    assert_eq!(more.len(), 2, "resumed at step 60");
}

#[test]
fn transducer_training_with_word_pieces_learns_and_ships_its_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    train_tiny_causal(dir.path(), "pieces-model", "word_pieces = 40");
    // The model folder carries its 40 tokens (characters plus pieces such as "▁you") and decodes.
    let model = dir.path().join("pieces-model");
    let vocabulary = std::fs::read_to_string(model.join("vocabulary.txt")).unwrap();
    assert_eq!(vocabulary.lines().count(), 40);
    assert!(vocabulary.lines().any(|t| t == "▁you"), "{vocabulary}");
    let config_json = std::fs::read_to_string(model.join("config.json")).unwrap();
    assert!(config_json.contains("\"vocab_size\": 40"), "{config_json}");
    let out = common::hark(&[
        "transcribe",
        "--engine",
        "transducer",
        "--lookahead",
        "causal",
        "--model",
        model.to_str().unwrap(),
        "audio-fixtures/jfk.flac",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn transducer_training_continues_from_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let (config, losses) = train_tiny_causal(dir.path(), "first", "");
    // A second recipe starts from the trained folder: its first steps begin near where the first
    // run ended, far below a fresh model's start.
    let recipe = std::fs::read_to_string(&config)
        .unwrap()
        .replace("output = \"first\"", "output = \"second\"\ninit_model = \"first\"")
        .replace("steps = 60", "steps = 5")
        .replace("lr = 3e-3", "lr = 1e-4");
    let second = dir.path().join("second.toml");
    std::fs::write(&second, &recipe).unwrap();
    let continued = hark::train::train(&second, false).unwrap();
    let (fresh_start, first_end, continued_start) =
        (mean(&losses[..5]), mean(&losses[55..]), mean(&continued));
    assert!(
        continued_start < 1.3 * first_end && continued_start < 0.7 * fresh_start,
        "fresh {fresh_start}, end of first run {first_end}, continued {continued_start}"
    );
    // A recipe whose vocabulary contradicts the initial model's is refused, naming both.
    std::fs::write(&second, recipe.replace("[model]", "word_pieces = 40\n[model]")).unwrap();
    let err = hark::train::train(&second, false).unwrap_err().to_string();
    assert!(err.contains("word_pieces = 40") && err.contains("29 tokens"), "{err}");
}

#[test]
fn transducer_training_latency_regulariser_closes_the_gates() {
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path());
    let config = dir.path().join("adaptive.toml");
    let recipe = r#"
output = "adaptive-model"
lookahead = "adaptive"
lookahead_frames = [2, 4]
unfreeze = 2
latency_weight = 60.0
gate_init_bias = 1.0
train = ["train.tsv"]
steps = 40
batch = 2
lr = 3e-3
warmup = 5
checkpoint_every = 40
dev_every = 1000
keep_encoded = false
"#;
    // With one augmented copy per utterance (speed perturbation and SpecAugment).
    std::fs::write(&config, format!("{recipe}{TINY_MODEL}\n[augment]\ncopies = 1\n")).unwrap();
    let stats = hark::train::train_with_stats(&config, false).unwrap();
    let (first, last) = (stats[0], stats[39]);
    assert!(first.gate_rate > 0.6, "gates start mostly open: {first:?}");
    assert!(
        last.gate_rate < 0.5 * first.gate_rate && last.lookahead_ms < 0.7 * first.lookahead_ms,
        "{first:?} → {last:?}"
    );
    // The exported model's schedulers run in adaptive mode and report its lookahead.
    let model = dir.path().join("adaptive-model");
    let out = common::hark(&[
        "eval",
        "--engine",
        "transducer",
        "--lookahead",
        "adaptive",
        "--model",
        model.to_str().unwrap(),
        dir.path().join("train.tsv").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lookahead=adaptive"));
}
