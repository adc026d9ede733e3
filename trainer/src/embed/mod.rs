//! Sentence embeddings offline: a sentence-transformers folder (all-MiniLM-L6-v2 from
//! `just setup`) as a BERT encoder in burn, mean-pooled over the real tokens and L2-normalised,
//! exactly as sentence-transformers' `Transformer -> Pooling(mean) -> Normalize` does.

pub mod bert;

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use tokenizers::{PaddingParams, TruncationParams};

use crate::error::ModelError;
use crate::load::safetensors::SafetensorsSource;
use bert::{Bert, BertConfig};

pub struct SentenceEncoder {
    pub bert: Bert,
    tokenizer: tokenizers::Tokenizer,
    /// Longer inputs are cut to this many tokens (`sentence_bert_config.json`).
    pub max_seq_length: usize,
}

impl SentenceEncoder {
    /// Loads `config.json`, `model.safetensors`, `tokenizer.json` and the sequence limit from
    /// a sentence-transformers folder. Only mean pooling is implemented, and the folder must say so.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let start = Instant::now();
        let pooling = dir.join("1_Pooling/config.json");
        if pooling.exists() {
            let text = std::fs::read_to_string(&pooling).map_err(|e| ModelError::io(&pooling, e))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ModelError::format(&pooling, e.to_string()))?;
            if v["pooling_mode_mean_tokens"] != true {
                return Err(ModelError::format(&pooling, "only mean pooling is implemented"));
            }
        }
        let st = dir.join("sentence_bert_config.json");
        let max_seq_length = std::fs::read_to_string(&st)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["max_seq_length"].as_u64())
            .unwrap_or(256) as usize;
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let max_seq_length = max_seq_length.min(config.max_position_embeddings);
        let mut src = SafetensorsSource::open(dir)?;
        // A buffer and the pooler head that sentence-transformers does not use.
        src.ignore(|n| n == "embeddings.position_ids" || n.starts_with("pooler."));
        let bert = Bert::build(config, &mut src, device)?;
        let path = dir.join("tokenizer.json");
        let mut tokenizer =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| ModelError::format(&path, e.to_string()))?;
        tokenizer.with_padding(None::<PaddingParams>);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_seq_length, ..Default::default() }))
            .map_err(|e| ModelError::format(&path, e.to_string()))?;
        tracing::info!("loaded sentence encoder {} in {:.1?}", dir.display(), start.elapsed());
        Ok(Self { bert, tokenizer, max_seq_length })
    }

    /// The ids a text is encoded to (with `[CLS]`/`[SEP]`, cut at `max_seq_length`).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let e = self.tokenizer.encode(text, true).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(e.get_ids().to_vec())
    }

    pub fn dim(&self) -> usize {
        self.bert.config.hidden_size
    }

    /// Unit-length embeddings of `texts`, in their order; batches of similar length.
    pub fn embed(&self, texts: &[String], batch_size: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let ids: Vec<Vec<u32>> = encodings.iter().map(|e| e.get_ids().to_vec()).collect();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let width = chunk.iter().map(|&i| ids[i].len()).max().unwrap_or(1).max(1);
            let pad = |i: usize| {
                let mut row = ids[i].clone();
                row.resize(width, 0);
                row
            };
            let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| pad(i)).collect();
            let valid: Vec<Vec<bool>> =
                chunk.iter().map(|&i| (0..width).map(|j| j < ids[i].len()).collect()).collect();
            let hidden = self.bert.forward(&rows, &valid);
            let pooled = mean_pool(hidden, &valid, &self.bert.device());
            let [b, h] = pooled.dims();
            let flat: Vec<f32> = pooled
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| ModelError::Generation(format!("reading embeddings: {e:?}")))?;
            for (k, &i) in chunk.iter().enumerate() {
                out[i] = flat[k * h..(k + 1) * h].to_vec();
            }
            debug_assert_eq!(b, chunk.len());
        }
        Ok(out)
    }
}

/// Mean of the hidden states over real tokens, then L2-normalised (norm floored at 1e-12, as
/// `torch.nn.functional.normalize`).
fn mean_pool(hidden: Tensor<3>, valid: &[Vec<bool>], device: &Device) -> Tensor<2> {
    let [b, s, _] = hidden.dims();
    let mask: Vec<f32> = valid.iter().flatten().map(|&v| f32::from(u8::from(v))).collect();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, s]), device);
    let counts = mask.clone().sum_dim(1).clamp_min(1e-9);
    let summed = (hidden * mask.unsqueeze_dim(2)).sum_dim(1).squeeze_dim::<2>(1);
    let mean = summed / counts;
    let norm = mean.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    mean / norm
}
