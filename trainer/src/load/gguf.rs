//! A GGUF (v2/v3) reader written against ggml's spec and candle's `gguf_file.rs`: metadata,
//! tensor directory, aligned data; tensors dequantized to f32 on request (`quant`). Dimensions
//! are stored innermost-first and reversed here into PyTorch order. llama.cpp's converter
//! permutes the q/k rows of `llama`-architecture files for its interleaved RoPE; they are
//! permuted back so the same half-split RoPE serves both formats.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::quant::{GgmlType, dequantize};
use super::{Ledger, WeightSource, names::hf_to_gguf};
use crate::error::ModelError;
use crate::model::config::{Family, ModelConfig};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// PyTorch order (outermost first).
    pub shape: Vec<usize>,
    pub ty: GgmlType,
    /// From the start of the data section.
    pub offset: usize,
}

pub struct GgufFile {
    pub path: PathBuf,
    map: Mmap,
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: BTreeMap<String, TensorInfo>,
    data_start: usize,
}

/// How deep metadata arrays may nest.
const MAX_NESTING: usize = 4;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            format!("truncated: needs {n} bytes at offset {} of {}", self.pos, self.buf.len())
        })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.bytes(N)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len())
            .ok_or_else(|| format!("implausible length {n}"))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.len()?;
        String::from_utf8(self.bytes(n)?.to_vec())
            .map_err(|_| format!("invalid UTF-8 in a string at {}", self.pos))
    }

    /// A metadata value; arrays may nest `MAX_NESTING` deep (real files use one level; a
    /// hostile file could otherwise recurse until the stack overflows).
    fn value(&mut self, ty: u32, depth: usize) -> Result<Value, String> {
        if depth > MAX_NESTING {
            return Err(format!("arrays nested more than {MAX_NESTING} deep at offset {}", self.pos));
        }
        Ok(match ty {
            0 => Value::U8(self.array::<1>()?[0]),
            1 => Value::I8(self.array::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => Value::Bool(self.array::<1>()?[0] != 0),
            8 => Value::String(self.string()?),
            9 => {
                let item = self.u32()?;
                let n = self.len()?;
                let mut items = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    items.push(self.value(item, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            other => return Err(format!("unknown metadata value type {other} at offset {}", self.pos)),
        })
    }
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: read-only mapping of a file nobody modifies while we hold it.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let parsed = Self::parse(&map).map_err(|m| ModelError::format(path, m))?;
        let (version, metadata, tensors, data_start) = parsed;
        Ok(Self { path: path.to_owned(), map, version, metadata, tensors, data_start })
    }

    #[allow(clippy::type_complexity)]
    fn parse(
        buf: &[u8],
    ) -> Result<(u32, BTreeMap<String, Value>, BTreeMap<String, TensorInfo>, usize), String> {
        let mut c = Cursor { buf, pos: 0 };
        if c.bytes(4).map_err(|_| "not a GGUF file (too short)")? != b"GGUF" {
            return Err("not a GGUF file (bad magic)".into());
        }
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(format!("GGUF version {version} is not supported (2 or 3)"));
        }
        let n_tensors = c.len()?;
        let n_kv = c.len()?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string()?;
            let ty = c.u32()?;
            let value = c.value(ty, 0).map_err(|e| format!("metadata `{key}`: {e}"))?;
            metadata.insert(key, value);
        }
        let mut tensors = BTreeMap::new();
        for _ in 0..n_tensors {
            let name = c.string()?;
            let n_dims = c.u32()? as usize;
            if n_dims > 4 {
                return Err(format!("tensor `{name}` has {n_dims} dimensions"));
            }
            let mut shape = (0..n_dims)
                .map(|_| c.len())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("tensor `{name}`: {e}"))?;
            shape.reverse();
            if shape.is_empty() || shape.contains(&0) {
                return Err(format!(
                    "tensor `{name}` has shape {shape:?}: every tensor needs at least one element"
                ));
            }
            if shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .is_none_or(|n| n > buf.len().saturating_mul(8))
            {
                return Err(format!(
                    "tensor `{name}` has shape {shape:?}: more elements than the file could hold"
                ));
            }
            let ty = GgmlType::from_id(c.u32()?);
            let offset =
                usize::try_from(c.u64()?).map_err(|_| format!("tensor `{name}`: offset overflows"))?;
            tensors.insert(name, TensorInfo { shape, ty, offset });
        }
        let alignment =
            metadata.get("general.alignment").and_then(Value::as_u64).unwrap_or(32).max(1) as usize;
        if alignment > 1 << 20 {
            return Err(format!("general.alignment = {alignment} is implausible"));
        }
        let data_start = c.pos.div_ceil(alignment) * alignment;
        for (name, t) in &tensors {
            let n: usize = t.shape.iter().product();
            if let Some(len) = t.ty.byte_len(n) {
                let end = data_start.checked_add(t.offset).and_then(|x| x.checked_add(len));
                let Some(end) = end else {
                    return Err(format!("tensor `{name}`: offset {} overflows", t.offset));
                };
                if end > buf.len() {
                    return Err(format!(
                        "tensor `{name}` ends at byte {end}, past the end of the file ({})",
                        buf.len()
                    ));
                }
            }
        }
        Ok((version, metadata, tensors, data_start))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }

    /// The tensor `name` (GGUF naming) dequantized to f32.
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let t = self.tensors.get(name).ok_or_else(|| ModelError::MissingTensor {
            name: name.to_owned(),
            source_name: self.path.display().to_string(),
        })?;
        let n: usize = t.shape.iter().product();
        let len = t.ty.byte_len(n).ok_or_else(|| {
            ModelError::format(&self.path, format!("tensor `{name}`: ggml type {:?} is not supported", t.ty))
        })?;
        let start = self.data_start + t.offset;
        dequantize(t.ty, &self.map[start..start + len], n)
            .map_err(|m| ModelError::format(&self.path, format!("tensor `{name}`: {m}")))
    }

    /// The model shape from `<arch>.*` metadata and the tensor directory.
    pub fn model_config(&self) -> Result<ModelConfig, ModelError> {
        let err = |m: String| ModelError::format(&self.path, m);
        let arch = self.architecture().ok_or_else(|| err("no general.architecture".into()))?;
        let family = match arch {
            "llama" => Family::Llama,
            "qwen2" => Family::Qwen2,
            "qwen3" => Family::Qwen3,
            other => {
                return Err(err(format!("architecture `{other}` is not supported (llama, qwen2, qwen3)")));
            }
        };
        let num = |key: &str| self.get(&format!("{arch}.{key}")).and_then(Value::as_u64).map(|v| v as usize);
        let need = |key: &str| num(key).ok_or_else(|| err(format!("metadata `{arch}.{key}` is missing")));
        if self.tensors.contains_key("rope_freqs.weight") {
            return Err(err("per-frequency RoPE factors (`rope_freqs.weight`, Llama 3.1 scaling) are not supported; use the Hugging Face folder".into()));
        }
        let hidden = need("embedding_length")?;
        let heads = need("attention.head_count")?;
        let vocab = match num("vocab_size") {
            Some(v) => v,
            None => self
                .tensors
                .get("token_embd.weight")
                .map(|t| t.shape[0])
                .ok_or_else(|| err("no token_embd.weight".into()))?,
        };
        let token =
            |key: &str| self.get(&format!("tokenizer.ggml.{key}")).and_then(Value::as_u64).map(|v| v as u32);
        let mut eos: Vec<u32> =
            ["eos_token_id", "eot_token_id", "eom_token_id"].iter().filter_map(|k| token(k)).collect();
        eos.dedup();
        let config = ModelConfig {
            family,
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: need("feed_forward_length")?,
            num_layers: need("block_count")?,
            num_heads: heads,
            num_kv_heads: num("attention.head_count_kv").unwrap_or(heads),
            head_dim: num("attention.key_length").unwrap_or(hidden / heads.max(1)),
            rms_norm_eps: self
                .get(&format!("{arch}.attention.layer_norm_rms_epsilon"))
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            rope_theta: self
                .get(&format!("{arch}.rope.freq_base"))
                .and_then(Value::as_f64)
                .unwrap_or(10_000.0),
            rope_scaling: None,
            max_position_embeddings: num("context_length").unwrap_or(4096),
            attention_bias: self.tensors.contains_key("blk.0.attn_q.bias"),
            qk_norm: self.tensors.contains_key("blk.0.attn_q_norm.weight"),
            tie_word_embeddings: !self.tensors.contains_key("output.weight"),
            bos_token_id: token("bos_token_id"),
            eos_token_ids: eos,
        };
        config.validate()?;
        Ok(config)
    }
}

/// A [`WeightSource`] over a GGUF file, by transformers names.
pub struct GgufSource<'a> {
    file: &'a GgufFile,
    /// `(query heads, kv heads)` when q/k rows must be un-permuted (llama architecture).
    unpermute: Option<(usize, usize)>,
    ledger: Ledger,
}

impl<'a> GgufSource<'a> {
    pub fn new(file: &'a GgufFile, config: &ModelConfig) -> Self {
        let available: BTreeSet<String> = file.tensors.keys().cloned().collect();
        let unpermute =
            (file.architecture() == Some("llama")).then_some((config.num_heads, config.num_kv_heads));
        Self { file, unpermute, ledger: Ledger::new(file.path.display().to_string(), available) }
    }
}

impl WeightSource for GgufSource<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let gguf_name = hf_to_gguf(name).ok_or_else(|| ModelError::MissingTensor {
            name: name.to_owned(),
            source_name: self.ledger.source_name.clone(),
        })?;
        let found = self.file.tensors.get(&gguf_name).map(|t| t.shape.clone()).unwrap_or_default();
        self.ledger.check(&gguf_name, &found, shape)?;
        let data = self.file.dequantize(&gguf_name)?;
        Ok(match self.unpermute {
            Some((heads, _)) if name.contains("self_attn.q_proj") => unpermute_rows(&data, shape, heads),
            Some((_, kv)) if name.contains("self_attn.k_proj") => unpermute_rows(&data, shape, kv),
            _ => data,
        })
    }

    fn finish(&mut self) -> Result<(), ModelError> {
        self.ledger.finish()
    }
}

/// Inverts llama.cpp's `permute`: within each head, GGUF row `2j + i` is row `i * d/2 + j` of
/// the original (`d` rows per head).
pub fn unpermute_rows(data: &[f32], shape: &[usize], heads: usize) -> Vec<f32> {
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    let d = rows / heads;
    let mut out = vec![0f32; data.len()];
    for h in 0..heads {
        for i in 0..2 {
            for j in 0..d / 2 {
                let src = h * d + 2 * j + i;
                let dst = h * d + i * (d / 2) + j;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(heads, 2, d/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (heads, d, cols) = (2, 4, 3);
        let original: Vec<f32> = (0..heads * d * cols).map(|x| x as f32).collect();
        let mut permuted = vec![0f32; original.len()];
        for h in 0..heads {
            for j in 0..d / 2 {
                for i in 0..2 {
                    let src = h * d + i * (d / 2) + j;
                    let dst = h * d + j * 2 + i;
                    permuted[dst * cols..(dst + 1) * cols]
                        .copy_from_slice(&original[src * cols..(src + 1) * cols]);
                }
            }
        }
        assert_ne!(permuted, original);
        assert_eq!(unpermute_rows(&permuted, &[heads * d, cols], heads), original);
    }

    #[test]
    fn rejects_garbage_with_the_reason() {
        let err = GgufFile::parse(b"GGML\x03\0\0\0").unwrap_err();
        assert!(err.contains("bad magic"), "{err}");
        let err = GgufFile::parse(b"GGUF\x03\0\0\0\x01\0\0\0\0\0\0\0").unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }
}
