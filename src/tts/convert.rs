//! hibari's ONNX model → the safetensors hark loads. The package quantised every linear layer to
//! int8 (`MatMulInteger` on dynamically quantised activations); hark keeps the integer weights
//! and their scales and runs the same arithmetic in candle (see `model.rs`, `QuantLinear`). A quantised weight has a generated name, so its layer is found through the
//! graph: the `Add` of the layer's bias consumes (via `Cast` and a scale `Mul`) the `MatMulInteger`
//! of that weight.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::models::onnx::{OnnxModel, TensorData};

/// The weight name of a layer from its bias name (`x.bias` → `x.weight`, `x_bias` → `x_weight`).
fn weight_name(bias: &str) -> Option<String> {
    bias.strip_suffix(".bias").map(|p| format!("{p}.weight")).or_else(|| bias.strip_suffix("_bias").map(|p| format!("{p}_weight")))
}

/// Every weight of the network, named as in the PyTorch module; a linear layer's weight as
/// integers `[out, in]` with its scale beside it (`NAME.weight_scale`, `NAME_weight_scale`).
pub fn hibari_tensors(model: &OnnxModel) -> Result<HashMap<String, Tensor>> {
    let bad = |why: String| Error::Model(format!("hibari.onnx: {why}"));
    let mut out = HashMap::new();
    for (name, init) in &model.initializers {
        // Named parameters (embeddings, convolutions, norms, biases) are stored as they are.
        if !name.starts_with('/') && matches!(init.data, TensorData::F32(_)) {
            out.insert(name.clone(), Tensor::from_vec(init.to_f32(), init.dims.as_slice(), &Device::Cpu)?);
        }
    }
    let mut quantised = 0;
    for add in model.nodes.iter().filter(|n| n.op_type == "Add") {
        let Some((bias, other)) = (match add.inputs.as_slice() {
            [a, b] if model.initializers.contains_key(a) => Some((a, b)),
            [a, b] if model.initializers.contains_key(b) => Some((b, a)),
            _ => None,
        }) else {
            continue;
        };
        let chain = model.producer(other).filter(|n| n.op_type == "Mul").and_then(|mul| {
            mul.inputs.iter().filter_map(|i| model.producer(i)).find(|n| n.op_type == "Cast")
        });
        let Some(matmul) = chain.and_then(|cast| model.producer(&cast.inputs[0])).filter(|n| n.op_type == "MatMulInteger") else {
            continue;
        };
        let weight = weight_name(bias).ok_or_else(|| bad(format!("{bias} does not name a bias")))?;
        if out.contains_key(&weight) {
            continue; // a layer applied more than once (shared weights) has one weight
        }
        let q_name = &matmul.inputs[1];
        let q = model.initializers.get(q_name).ok_or_else(|| bad(format!("{q_name} is missing")))?;
        let base = q_name.strip_suffix("_quantized").ok_or_else(|| bad(format!("{q_name} is not a quantised weight")))?;
        let scalar = |suffix: &str| {
            model.initializers.get(&format!("{base}{suffix}")).and_then(|t| t.scalar()).ok_or_else(|| bad(format!("{base}{suffix} is missing")))
        };
        let (scale, zero) = (scalar("_scale")?, scalar("_zero_point")?);
        if q.dims.len() != 2 {
            return Err(bad(format!("{q_name} has shape {:?}", q.dims)));
        }
        // Kept as integers (exact in f32) and one scale: the model quantises its activations
        // to 8 bits at run time as the exported graph does, and multiplies integer by integer.
        let values: Vec<f32> = q.to_f32().into_iter().map(|v| v - zero).collect();
        let w = Tensor::from_vec(values, (q.dims[0], q.dims[1]), &Device::Cpu)?.t()?.contiguous()?;
        out.insert(format!("{weight}_scale"), Tensor::new(&[scale], &Device::Cpu)?);
        out.insert(weight, w);
        quantised += 1;
    }
    if quantised == 0 {
        return Err(bad("no quantised linear layers found; is this hibari's model?".into()));
    }
    Ok(out)
}
