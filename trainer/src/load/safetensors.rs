//! Hugging Face folders: `model.safetensors`, or shards listed in
//! `model.safetensors.index.json`; f32, bf16 and f16 tensors, memory-mapped and converted to
//! f32 one tensor at a time. The format itself is read by the `safetensors` crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, SafeTensors};

use super::{Ledger, WeightSource};
use crate::error::ModelError;

struct Shard {
    path: PathBuf,
    map: Mmap,
    header_len: usize,
    metadata: Metadata,
}

pub struct SafetensorsSource {
    shards: Vec<Shard>,
    /// tensor name -> shard index
    index: BTreeMap<String, usize>,
    ledger: Ledger,
    extra_ignorable: Option<fn(&str) -> bool>,
}

impl SafetensorsSource {
    /// Opens the weights of the HF folder `dir`.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if single.exists() {
            vec![single]
        } else if index_path.exists() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ModelError::format(&index_path, e.to_string()))?;
            let map = v["weight_map"]
                .as_object()
                .ok_or_else(|| ModelError::format(&index_path, "no `weight_map` object"))?;
            let names: BTreeSet<&str> = map.values().filter_map(|f| f.as_str()).collect();
            // A shard is a plain file name in the folder: an index pointing elsewhere
            // (`../x`, `/etc/x`, `sub/x`) is refused, never followed.
            if let Some(bad) = names.iter().find(|f| {
                let p = Path::new(f);
                f.is_empty()
                    || p.components().count() != 1
                    || !matches!(p.components().next(), Some(std::path::Component::Normal(_)))
            }) {
                return Err(ModelError::format(
                    &index_path,
                    format!("shard `{bad}` is not a file name inside the model folder"),
                ));
            }
            names.into_iter().map(|f| dir.join(f)).collect()
        } else {
            return Err(ModelError::format(dir, "no model.safetensors or model.safetensors.index.json"));
        };
        let mut shards = Vec::new();
        let mut index = BTreeMap::new();
        for path in files {
            let file = File::open(&path).map_err(|e| ModelError::io(&path, e))?;
            // SAFETY: the file is opened read-only and not modified while mapped.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(&path, e))?;
            let (header_len, metadata) =
                SafeTensors::read_metadata(&map).map_err(|e| ModelError::format(&path, e.to_string()))?;
            for name in metadata.tensors().keys() {
                if index.insert(name.clone(), shards.len()).is_some() {
                    return Err(ModelError::format(&path, format!("tensor `{name}` appears in two shards")));
                }
            }
            shards.push(Shard { path, map, header_len, metadata });
        }
        let mut ledger = Ledger::new(dir.display().to_string(), index.keys().cloned().collect());
        // A tied head some checkpoints store anyway; rotary tables older exports saved.
        ledger.ignorable = |n| n == "lm_head.weight" || n.ends_with("rotary_emb.inv_freq");
        Ok(Self { shards, index, ledger, extra_ignorable: None })
    }

    /// Also let tensors matching `f` go unused (besides the tied head and rotary tables).
    pub fn ignore(&mut self, f: fn(&str) -> bool) {
        self.extra_ignorable = Some(f);
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }
}

impl WeightSource for SafetensorsSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let Some(&s) = self.index.get(name) else {
            return Err(ModelError::MissingTensor {
                name: name.to_owned(),
                source_name: self.ledger.source_name.clone(),
            });
        };
        let shard = &self.shards[s];
        let info = shard.metadata.info(name).expect("indexed from this shard");
        self.ledger.check(name, &info.shape, shape)?;
        let start = 8 + shard.header_len;
        let bytes = &shard.map[start + info.data_offsets.0..start + info.data_offsets.1];
        to_f32(bytes, info.dtype).ok_or_else(|| {
            ModelError::format(
                &shard.path,
                format!("tensor `{name}` has dtype {:?}; expected F32, BF16 or F16", info.dtype),
            )
        })
    }

    fn finish(&mut self) -> Result<(), ModelError> {
        if let Some(extra) = self.extra_ignorable {
            self.ledger.taken.extend(self.ledger.available.iter().filter(|n| extra(n)).cloned());
        }
        self.ledger.finish()
    }
}

fn to_f32(bytes: &[u8], dtype: Dtype) -> Option<Vec<f32>> {
    let pairs = || bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    Some(match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::BF16 => pairs().map(|b| half::bf16::from_bits(b).to_f32()).collect(),
        Dtype::F16 => pairs().map(|b| half::f16::from_bits(b).to_f32()).collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_may_not_leave_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model");
        std::fs::create_dir_all(&dir).unwrap();
        for bad in ["../secret.safetensors", "/etc/passwd", "sub/x.safetensors", ""] {
            let index = serde_json::json!({ "weight_map": { "a": "model-1.safetensors", "b": bad } });
            std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
            let err = SafetensorsSource::open(&dir).err().expect("refused").to_string();
            assert!(err.contains(&format!("shard `{bad}`")) && err.contains("not a file name"), "{err}");
        }
    }
}
