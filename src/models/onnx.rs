//! A small reader for ONNX model files: the initialisers (weights) and the nodes' wiring, enough
//! to take the weights out of a packaged ONNX model and run the network hark ports to candle.
//! ONNX is protobuf; no crate reads it without pulling in a protobuf toolchain and the full
//! schema, and hark needs five message fields, so the wire format is decoded here and tested
//! against hand-built messages and the real hibari model.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// ONNX `TensorProto.DataType` values hark reads.
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const INT64: i32 = 7;

#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I64(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: TensorData,
}

impl Initializer {
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (integers converted, not dequantised).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// A single number (scales and zero points are stored as 0-d tensors).
    pub fn scalar(&self) -> Option<f32> {
        (self.len() == 1).then(|| self.to_f32()[0])
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

#[derive(Debug, Default)]
pub struct OnnxModel {
    pub initializers: HashMap<String, Initializer>,
    pub nodes: Vec<Node>,
}

/// One protobuf field: its number and its payload.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    Fixed64(#[allow(dead_code)] u64),
}

struct Fields<'a> {
    buf: &'a [u8],
    what: &'static str,
}

fn malformed(what: &str, why: &str) -> Error {
    Error::Model(format!("not a readable ONNX file: {what}: {why}"))
}

fn read_varint(buf: &mut &[u8], what: &str) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or_else(|| malformed(what, "truncated varint"))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed(what, "varint longer than 10 bytes"))
}

fn take<'a>(buf: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8]> {
    if buf.len() < n {
        return Err(malformed(what, "field runs past the end of its message"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let mut field = || -> Result<(u32, Value<'a>)> {
            let key = read_varint(&mut self.buf, self.what)?;
            let number = (key >> 3) as u32;
            let value = match key & 7 {
                0 => Value::Varint(read_varint(&mut self.buf, self.what)?),
                1 => {
                    Value::Fixed64(u64::from_le_bytes(take(&mut self.buf, 8, self.what)?.try_into().unwrap()))
                }
                2 => {
                    let n = read_varint(&mut self.buf, self.what)? as usize;
                    Value::Bytes(take(&mut self.buf, n, self.what)?)
                }
                5 => {
                    Value::Fixed32(u32::from_le_bytes(take(&mut self.buf, 4, self.what)?.try_into().unwrap()))
                }
                other => return Err(malformed(self.what, &format!("unsupported wire type {other}"))),
            };
            Ok((number, value))
        };
        let result = field();
        if result.is_err() {
            self.buf = &[];
        }
        Some(result)
    }
}

fn fields<'a>(buf: &'a [u8], what: &'static str) -> Fields<'a> {
    Fields { buf, what }
}

fn string(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(what, "a name is not UTF-8"))
}

/// Repeated integers arrive packed (one length-delimited field) or one per field.
fn push_ints(value: Value, out: &mut Vec<i64>, what: &str) -> Result<()> {
    match value {
        Value::Varint(v) => out.push(v as i64),
        Value::Bytes(mut b) => {
            while !b.is_empty() {
                out.push(read_varint(&mut b, what)? as i64);
            }
        }
        _ => return Err(malformed(what, "integers with a fixed-width wire type")),
    }
    Ok(())
}

fn read_tensor(buf: &[u8]) -> Result<Initializer> {
    const WHAT: &str = "tensor";
    let (mut name, mut dims, mut data_type, mut raw) = (String::new(), Vec::new(), 0i32, None);
    let (mut floats, mut ints, mut int64s) = (Vec::new(), Vec::new(), Vec::new());
    for field in fields(buf, WHAT) {
        match field? {
            (1, v) => push_ints(v, &mut dims, WHAT)?,
            (2, Value::Varint(v)) => data_type = v as i32,
            (4, Value::Bytes(b)) => {
                floats.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())))
            }
            (4, Value::Fixed32(v)) => floats.push(f32::from_bits(v)),
            (5, v) => push_ints(v, &mut ints, WHAT)?,
            (7, v) => push_ints(v, &mut int64s, WHAT)?,
            (8, Value::Bytes(b)) => name = string(b, WHAT)?,
            (9, Value::Bytes(b)) => raw = Some(b),
            (13, _) | (14, Value::Varint(1)) => {
                return Err(malformed(
                    WHAT,
                    "weights stored outside the file (external data) are not supported",
                ));
            }
            _ => {}
        }
    }
    let dims: Vec<usize> = dims
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| malformed(WHAT, "negative dimension")))
        .collect::<Result<_>>()?;
    let count: usize = dims.iter().product();
    let data = match (data_type, raw) {
        (FLOAT, Some(b)) => {
            TensorData::F32(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
        }
        (FLOAT, None) => TensorData::F32(floats),
        (INT8, Some(b)) => TensorData::I8(b.iter().map(|&x| x as i8).collect()),
        (INT8, None) => TensorData::I8(ints.iter().map(|&x| x as i8).collect()),
        (UINT8, Some(b)) => TensorData::U8(b.to_vec()),
        (UINT8, None) => TensorData::U8(ints.iter().map(|&x| x as u8).collect()),
        (INT64, Some(b)) => {
            TensorData::I64(b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
        }
        (INT64, None) => TensorData::I64(int64s),
        (other, _) => return Err(malformed(WHAT, &format!("{name}: data type {other} is not supported"))),
    };
    let len = match &data {
        TensorData::F32(v) => v.len(),
        TensorData::I8(v) => v.len(),
        TensorData::U8(v) => v.len(),
        TensorData::I64(v) => v.len(),
    };
    if len != count {
        return Err(malformed(WHAT, &format!("{name}: {len} values for shape {dims:?}")));
    }
    Ok(Initializer { name, dims, data })
}

/// A node, and the tensor of its `value` attribute (a `Constant` node's output).
fn read_node(buf: &[u8]) -> Result<(Node, Option<&[u8]>)> {
    const WHAT: &str = "node";
    let mut node = Node::default();
    let mut value = None;
    for field in fields(buf, WHAT) {
        match field? {
            (1, Value::Bytes(b)) => node.inputs.push(string(b, WHAT)?),
            (2, Value::Bytes(b)) => node.outputs.push(string(b, WHAT)?),
            (3, Value::Bytes(b)) => node.name = string(b, WHAT)?,
            (4, Value::Bytes(b)) => node.op_type = string(b, WHAT)?,
            (5, Value::Bytes(b)) => {
                let (mut name, mut tensor) = (String::new(), None);
                for attribute in fields(b, "attribute") {
                    match attribute? {
                        (1, Value::Bytes(n)) => name = string(n, "attribute")?,
                        (5, Value::Bytes(t)) => tensor = Some(t),
                        _ => {}
                    }
                }
                if name == "value" {
                    value = tensor;
                }
            }
            _ => {}
        }
    }
    Ok((node, value))
}

impl OnnxModel {
    /// Parses a serialised `ModelProto`.
    pub fn read(bytes: &[u8]) -> Result<Self> {
        let mut model = OnnxModel::default();
        let mut graph = None;
        for field in fields(bytes, "model") {
            if let (7, Value::Bytes(b)) = field? {
                graph = Some(b);
            }
        }
        let graph = graph.ok_or_else(|| malformed("model", "no graph"))?;
        for field in fields(graph, "graph") {
            match field? {
                (1, Value::Bytes(b)) => {
                    let (node, value) = read_node(b)?;
                    // Exports keep some weights in Constant nodes: they are read as
                    // initializers named by the node's output (types hark does not read are
                    // left out; no weight has them).
                    if let (Some(t), Some(output)) = (value, node.outputs.first())
                        && let Ok(mut t) = read_tensor(t)
                    {
                        t.name = output.clone();
                        model.initializers.insert(t.name.clone(), t);
                    }
                    model.nodes.push(node);
                }
                (5, Value::Bytes(b)) => {
                    let t = read_tensor(b)?;
                    model.initializers.insert(t.name.clone(), t);
                }
                _ => {}
            }
        }
        Ok(model)
    }

    /// The node that writes `output`.
    pub fn producer(&self, output: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.outputs.iter().any(|o| o == output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn field_bytes(number: u32, payload: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(number) << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn field_varint(number: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(number) << 3, out);
        varint(v, out);
    }

    fn model_with(graph: &[u8]) -> Vec<u8> {
        let mut model = Vec::new();
        field_varint(1, 8, &mut model); // ir_version, skipped
        field_bytes(7, graph, &mut model);
        model
    }

    #[test]
    fn reads_raw_and_typed_tensors_and_nodes() {
        // A raw f32 [2, 2] tensor with packed dims.
        let mut t1 = Vec::new();
        let mut dims = Vec::new();
        varint(2, &mut dims);
        varint(2, &mut dims);
        field_bytes(1, &dims, &mut t1);
        field_varint(2, FLOAT as u64, &mut t1);
        field_bytes(8, b"w", &mut t1);
        let raw: Vec<u8> = [1.0f32, -2.5, 3.25, 1e-8].iter().flat_map(|f| f.to_le_bytes()).collect();
        field_bytes(9, &raw, &mut t1);
        // An int8 scalar zero point in int32_data, unpacked, and a dim given per field.
        let mut t2 = Vec::new();
        field_varint(2, INT8 as u64, &mut t2);
        field_bytes(8, b"zp", &mut t2);
        field_varint(5, (-3i64) as u64, &mut t2);
        // A node.
        let mut node = Vec::new();
        field_bytes(1, b"x", &mut node);
        field_bytes(1, b"w", &mut node);
        field_bytes(2, b"y", &mut node);
        field_bytes(3, b"mm", &mut node);
        field_bytes(4, b"MatMul", &mut node);
        let mut graph = Vec::new();
        field_bytes(1, &node, &mut graph);
        field_bytes(5, &t1, &mut graph);
        field_bytes(5, &t2, &mut graph);
        let m = OnnxModel::read(&model_with(&graph)).unwrap();
        let w = &m.initializers["w"];
        assert_eq!(w.dims, vec![2, 2]);
        assert_eq!(w.data, TensorData::F32(vec![1.0, -2.5, 3.25, 1e-8]));
        let zp = &m.initializers["zp"];
        assert_eq!(zp.data, TensorData::I8(vec![-3]));
        assert_eq!(zp.scalar(), Some(-3.0));
        assert_eq!(m.nodes.len(), 1);
        assert_eq!(m.producer("y").unwrap().op_type, "MatMul");
        assert_eq!(m.producer("y").unwrap().inputs, vec!["x", "w"]);
    }

    #[test]
    fn truncated_or_inconsistent_files_are_errors_not_panics() {
        let mut t = Vec::new();
        field_bytes(1, &[3], &mut t);
        field_varint(2, FLOAT as u64, &mut t);
        field_bytes(9, &[0; 8], &mut t); // 2 floats for shape [3]
        let mut graph = Vec::new();
        field_bytes(5, &t, &mut graph);
        let err = OnnxModel::read(&model_with(&graph)).unwrap_err().to_string();
        assert!(err.contains("2 values for shape [3]"), "{err}");
        let whole = model_with(&graph);
        for cut in 1..whole.len() {
            let _ = OnnxModel::read(&whole[..cut]); // must not panic
        }
        assert!(OnnxModel::read(b"").is_err());
        assert!(OnnxModel::read(&[0xff; 16]).is_err());
    }
}
