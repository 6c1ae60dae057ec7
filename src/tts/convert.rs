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
    bias.strip_suffix(".bias")
        .map(|p| format!("{p}.weight"))
        .or_else(|| bias.strip_suffix("_bias").map(|p| format!("{p}_weight")))
}

/// Every weight of an exported PyTorch network, named as in the module. A linear layer's weight,
/// which the export stores under a generated name, is found through its bias: the `Add` of the
/// bias consumes the layer's `MatMul` (f32 weight `[in, out]`, stored here as `[out, in]`) or,
/// in a quantised export, its `MatMulInteger` via `Cast` and a scale `Mul` (stored as integers
/// `[out, in]` with the scale beside it: `NAME.weight_scale`, `NAME_weight_scale`).
pub fn named_tensors(model: &OnnxModel) -> Result<HashMap<String, Tensor>> {
    let bad = |why: String| Error::Model(format!("ONNX model: {why}"));
    let mut out = HashMap::new();
    for (name, init) in &model.initializers {
        // Named parameters (embeddings, convolutions, norms, biases) are stored as they are.
        if !name.starts_with('/') && !name.starts_with("onnx::") && matches!(init.data, TensorData::F32(_)) {
            out.insert(name.clone(), Tensor::from_vec(init.to_f32(), init.dims.as_slice(), &Device::Cpu)?);
        }
    }
    let mut linear = 0;
    for add in model.nodes.iter().filter(|n| n.op_type == "Add") {
        let Some((bias, other)) = (match add.inputs.as_slice() {
            [a, b] if model.initializers.contains_key(a) => Some((a, b)),
            [a, b] if model.initializers.contains_key(b) => Some((b, a)),
            _ => None,
        }) else {
            continue;
        };
        let Some(producer) = model.producer(other) else { continue };
        let Some(weight) = weight_name(bias) else { continue };
        if out.contains_key(&weight) {
            continue; // a layer applied more than once (shared weights) has one weight
        }
        let (q_name, scale) =
            if producer.op_type == "MatMul" && model.initializers.contains_key(&producer.inputs[1]) {
                (&producer.inputs[1], None)
            } else {
                let chain = (producer.op_type == "Mul")
                    .then(|| {
                        producer.inputs.iter().filter_map(|i| model.producer(i)).find(|n| n.op_type == "Cast")
                    })
                    .flatten();
                let Some(matmul) = chain
                    .and_then(|cast| model.producer(&cast.inputs[0]))
                    .filter(|n| n.op_type == "MatMulInteger")
                else {
                    continue;
                };
                let q_name = &matmul.inputs[1];
                let base = q_name
                    .strip_suffix("_quantized")
                    .ok_or_else(|| bad(format!("{q_name} is not a quantised weight")))?;
                let scalar = |suffix: &str| {
                    model
                        .initializers
                        .get(&format!("{base}{suffix}"))
                        .and_then(|t| t.scalar())
                        .ok_or_else(|| bad(format!("{base}{suffix} is missing")))
                };
                (q_name, Some((scalar("_scale")?, scalar("_zero_point")?)))
            };
        let q = model.initializers.get(q_name).ok_or_else(|| bad(format!("{q_name} is missing")))?;
        if q.dims.len() != 2 {
            return Err(bad(format!("{q_name} has shape {:?}", q.dims)));
        }
        let values: Vec<f32> = match scale {
            // Kept as integers (exact in f32) and one scale: the model quantises its activations
            // to 8 bits at run time as the exported graph does, and multiplies integer by integer.
            Some((scale, zero)) => {
                out.insert(format!("{weight}_scale"), Tensor::new(&[scale], &Device::Cpu)?);
                q.to_f32().into_iter().map(|v| v - zero).collect()
            }
            None => q.to_f32(),
        };
        let w = Tensor::from_vec(values, (q.dims[0], q.dims[1]), &Device::Cpu)?.t()?.contiguous()?;
        out.insert(weight, w);
        linear += 1;
    }
    if linear == 0 {
        return Err(bad("no linear layers found".into()));
    }
    Ok(out)
}
