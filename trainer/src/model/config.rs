//! Two config types: [`HfConfig`] mirrors a Hugging Face `config.json` (both the transformers 4
//! `rope_theta`/`rope_scaling` keys and the transformers 5 `rope_parameters`), and
//! [`ModelConfig`] is the checked shape the model is built from. GGUF metadata converts to the
//! same [`ModelConfig`] in `load::gguf`.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// The architectures one decoder covers, switched by flags in [`ModelConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Llama,
    Qwen2,
    Qwen3,
}

impl Family {
    pub fn hf_architecture(self) -> &'static str {
        match self {
            Self::Llama => "LlamaForCausalLM",
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
        }
    }

    pub fn hf_model_type(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
        }
    }
}

/// Llama 3-style frequency-dependent RoPE scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3Scaling>,
    pub max_position_embeddings: usize,
    /// q/k/v projections carry a bias (Qwen2/2.5).
    pub attention_bias: bool,
    /// Per-head RMSNorm on queries and keys (Qwen3).
    pub qk_norm: bool,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    /// A 2-layer, 32-wide model of `family` with the family's flags: for tests and smoke runs
    /// with random weights.
    pub fn tiny(family: Family, vocab_size: usize) -> Self {
        Self {
            family,
            vocab_size,
            hidden_size: 32,
            intermediate_size: 64,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 8,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 512,
            attention_bias: family == Family::Qwen2,
            qk_norm: family == Family::Qwen3,
            tie_word_embeddings: family != Family::Llama,
            bos_token_id: None,
            eos_token_ids: vec![],
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.num_heads == 0 || self.num_kv_heads == 0 || !self.num_heads.is_multiple_of(self.num_kv_heads)
        {
            return bad(format!(
                "num_attention_heads ({}) must be a positive multiple of num_key_value_heads ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim ({}) must be even and positive", self.head_dim));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_layers),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        Ok(())
    }

    /// Parameter count (embeddings counted once when tied).
    pub fn num_parameters(&self) -> usize {
        let (h, i, d) = (self.hidden_size, self.intermediate_size, self.head_dim);
        let q = self.num_heads * d;
        let kv = self.num_kv_heads * d;
        let mut attn = h * q + 2 * h * kv + q * h;
        if self.attention_bias {
            attn += q + 2 * kv;
        }
        if self.qk_norm {
            attn += 2 * d;
        }
        let layer = attn + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * h };
        self.vocab_size * h + self.num_layers * layer + h + head
    }
}

/// `config.json` as transformers writes it; unknown keys are ignored (there are many).
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub use_sliding_window: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    4096
}
fn default_act() -> String {
    "silu".into()
}

impl HfConfig {
    pub fn family(&self) -> Result<Family, ModelError> {
        let arch = self.architectures.first().map(String::as_str);
        let model_type = self.model_type.as_deref();
        match (arch, model_type) {
            (Some("LlamaForCausalLM"), _) | (None, Some("llama")) => Ok(Family::Llama),
            (Some("Qwen2ForCausalLM"), _) | (None, Some("qwen2")) => Ok(Family::Qwen2),
            (Some("Qwen3ForCausalLM"), _) | (None, Some("qwen3")) => Ok(Family::Qwen3),
            _ => Err(ModelError::Config(format!(
                "unsupported architecture {:?} (model_type {:?}): expected LlamaForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM",
                arch.unwrap_or("?"),
                model_type.unwrap_or("?")
            ))),
        }
    }

    pub fn into_config(self) -> Result<ModelConfig, ModelError> {
        let family = self.family()?;
        let bad = |m: String| Err(ModelError::Config(m));
        if self.hidden_act != "silu" {
            return bad(format!("hidden_act {:?} is not supported (only silu)", self.hidden_act));
        }
        if self.mlp_bias {
            return bad("mlp_bias = true is not supported".into());
        }
        if self.use_sliding_window {
            return bad("use_sliding_window = true is not supported".into());
        }
        // transformers 5 folds rope_theta and the scaling into `rope_parameters`.
        let rope = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref()).filter(|v| !v.is_null());
        let rope_theta = self
            .rope_theta
            .or_else(|| rope.and_then(|r| r.get("rope_theta")).and_then(|v| v.as_f64()))
            .unwrap_or(10_000.0);
        let rope_scaling = match rope {
            None => None,
            Some(r) => {
                let kind = r.get("rope_type").or_else(|| r.get("type")).and_then(|v| v.as_str());
                match kind {
                    None | Some("default") => None,
                    Some("llama3") => {
                        let scaling: Llama3Scaling = serde_json::from_value(r.clone())
                            .map_err(|e| ModelError::Config(format!("rope scaling: {e}")))?;
                        Some(scaling)
                    }
                    Some(other) => return bad(format!("rope scaling type {other:?} is not supported")),
                }
            }
        };
        let eos_token_ids = match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
            Some(serde_json::Value::Array(a)) => {
                a.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect()
            }
            _ => Vec::new(),
        };
        let config = ModelConfig {
            family,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.num_hidden_layers,
            num_heads: self.num_attention_heads,
            num_kv_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            head_dim: self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1)),
            rms_norm_eps: self.rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings: self.max_position_embeddings,
            attention_bias: self.attention_bias.unwrap_or(family == Family::Qwen2),
            qk_norm: family == Family::Qwen3,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(family != Family::Llama),
            bos_token_id: self.bos_token_id,
            eos_token_ids,
        };
        config.validate()?;
        Ok(config)
    }
}

/// A `config.json` transformers (4.4x and 5) and vLLM load for this model.
pub fn to_hf_json(config: &ModelConfig) -> serde_json::Value {
    let mut v = serde_json::json!({
        "architectures": [config.family.hf_architecture()],
        "model_type": config.family.hf_model_type(),
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "max_position_embeddings": config.max_position_embeddings,
        "attention_bias": config.attention_bias,
        "tie_word_embeddings": config.tie_word_embeddings,
        "hidden_act": "silu",
        "torch_dtype": "float32",
        "bos_token_id": config.bos_token_id,
    });
    if let Some(s) = config.rope_scaling {
        v["rope_scaling"] = serde_json::json!({
            "rope_type": "llama3", "factor": s.factor, "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position_embeddings,
        });
    }
    match config.eos_token_ids.as_slice() {
        [] => {}
        [one] => v["eos_token_id"] = (*one).into(),
        many => v["eos_token_id"] = many.into(),
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ModelConfig, ModelError> {
        serde_json::from_str::<HfConfig>(json).unwrap().into_config()
    }

    const BASE: &str = r#""vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4"#;

    #[test]
    fn reads_transformers_4_rope_keys() {
        let c = parse(&format!(
            r#"{{"architectures": ["LlamaForCausalLM"], {BASE}, "num_key_value_heads": 2,
            "rope_theta": 500000.0, "rope_scaling": {{"rope_type": "llama3", "factor": 32.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
            "eos_token_id": [128001, 128009]}}"#
        ))
        .unwrap();
        assert_eq!(c.family, Family::Llama);
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.rope_scaling.unwrap().factor, 32.0);
        assert_eq!((c.num_kv_heads, c.head_dim), (2, 16));
        assert_eq!(c.eos_token_ids, vec![128001, 128009]);
        assert!(!c.tie_word_embeddings && !c.attention_bias && !c.qk_norm);
    }

    #[test]
    fn family_defaults_for_qwen() {
        let q2 = parse(&format!(r#"{{"architectures": ["Qwen2ForCausalLM"], {BASE}}}"#)).unwrap();
        assert!(q2.attention_bias && q2.tie_word_embeddings && !q2.qk_norm);
        let q3 = parse(&format!(
            r#"{{"architectures": ["Qwen3ForCausalLM"], {BASE}, "head_dim": 32, "attention_bias": false}}"#
        ))
        .unwrap();
        assert!(q3.qk_norm && !q3.attention_bias);
        assert_eq!(q3.head_dim, 32);
    }

    #[test]
    fn rejects_what_the_decoder_does_not_implement() {
        for (extra, needle) in [
            (r#""architectures": ["MistralForCausalLM"]"#, "unsupported architecture"),
            (
                r#""architectures": ["LlamaForCausalLM"], "rope_scaling": {"type": "yarn", "factor": 4.0}"#,
                "yarn",
            ),
            (r#""architectures": ["Qwen2ForCausalLM"], "use_sliding_window": true"#, "sliding"),
            (r#""architectures": ["LlamaForCausalLM"], "hidden_act": "gelu""#, "gelu"),
            (r#""architectures": ["LlamaForCausalLM"], "num_key_value_heads": 3"#, "multiple"),
        ] {
            let err = parse(&format!("{{{extra}, {BASE}}}")).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn hf_json_round_trips() {
        let c = parse(&format!(
            r#"{{"architectures": ["LlamaForCausalLM"], {BASE}, "rope_scaling": {{"rope_type": "llama3",
            "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64}}, "eos_token_id": 2, "bos_token_id": 1}}"#
        ))
        .unwrap();
        let back = serde_json::from_value::<HfConfig>(to_hf_json(&c)).unwrap().into_config().unwrap();
        assert_eq!(back, c);
    }
}
