//! A BERT encoder (inference only) in burn: word + position + token-type embeddings, post-norm
//! layers of bidirectional self-attention and a GELU feed-forward, as transformers' `BertModel`
//! computes them; weights by transformers' names from a safetensors folder.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use serde::Deserialize;

use crate::error::ModelError;
use crate::load::WeightSource;

/// The `config.json` keys the encoder uses.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn gelu() -> String {
    "gelu".into()
}

impl BertConfig {
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let c: Self = serde_json::from_str(&text).map_err(|e| ModelError::format(path, e.to_string()))?;
        if c.hidden_act != "gelu" {
            return Err(ModelError::format(
                path,
                format!("hidden_act `{}`: only `gelu` is implemented", c.hidden_act),
            ));
        }
        if c.position_embedding_type.as_deref().is_some_and(|t| t != "absolute") {
            return Err(ModelError::format(path, "only absolute position embeddings are implemented"));
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(ModelError::format(path, "hidden_size must be a multiple of num_attention_heads"));
        }
        Ok(c)
    }
}

struct Dense {
    /// `[out, in]`, as PyTorch stores it.
    weight: Tensor<2>,
    bias: Tensor<1>,
}

impl Dense {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, i] = x.dims();
        let [out, _] = self.weight.dims();
        let y = x.reshape([b * s, i]).matmul(self.weight.clone().transpose())
            + self.bias.clone().unsqueeze_dim(0);
        y.reshape([b, s, out])
    }
}

struct LayerNorm {
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().square().mean_dim(2);
        centered / (var + self.eps).sqrt() * self.weight.clone().unsqueeze() + self.bias.clone().unsqueeze()
    }
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

pub struct Bert {
    pub config: BertConfig,
    word: Tensor<2>,
    position: Tensor<2>,
    token_type: Tensor<2>,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    device: Device,
}

struct Builder<'a> {
    src: &'a mut dyn WeightSource,
    device: &'a Device,
    eps: f64,
}

impl Builder<'_> {
    fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Tensor<D>, ModelError> {
        let data = self.src.take(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(data, shape), self.device))
    }

    fn dense(&mut self, prefix: &str, out: usize, inp: usize) -> Result<Dense, ModelError> {
        Ok(Dense {
            weight: self.tensor(&format!("{prefix}.weight"), [out, inp])?,
            bias: self.tensor(&format!("{prefix}.bias"), [out])?,
        })
    }

    fn norm(&mut self, prefix: &str, dim: usize) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm {
            weight: self.tensor(&format!("{prefix}.weight"), [dim])?,
            bias: self.tensor(&format!("{prefix}.bias"), [dim])?,
            eps: self.eps,
        })
    }
}

impl Bert {
    pub fn build(
        config: BertConfig,
        src: &mut dyn WeightSource,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let h = config.hidden_size;
        let mut b = Builder { src, device, eps: config.layer_norm_eps };
        let word = b.tensor("embeddings.word_embeddings.weight", [config.vocab_size, h])?;
        let position =
            b.tensor("embeddings.position_embeddings.weight", [config.max_position_embeddings, h])?;
        let token_type = b.tensor("embeddings.token_type_embeddings.weight", [config.type_vocab_size, h])?;
        let embed_norm = b.norm("embeddings.LayerNorm", h)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                query: b.dense(&format!("{p}.attention.self.query"), h, h)?,
                key: b.dense(&format!("{p}.attention.self.key"), h, h)?,
                value: b.dense(&format!("{p}.attention.self.value"), h, h)?,
                attention_out: b.dense(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: b.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                intermediate: b.dense(&format!("{p}.intermediate.dense"), config.intermediate_size, h)?,
                output: b.dense(&format!("{p}.output.dense"), h, config.intermediate_size)?,
                output_norm: b.norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        src.finish()?;
        Ok(Self { config, word, position, token_type, embed_norm, layers, device: device.clone() })
    }

    pub fn device(&self) -> Device {
        self.device.clone()
    }

    /// Last hidden states `[batch, seq, hidden]` for right-padded `ids`; `valid` marks real
    /// tokens (padding is never attended to).
    pub fn forward(&self, ids: &[Vec<u32>], valid: &[Vec<bool>]) -> Tensor<3> {
        let (b, s, h) = (ids.len(), ids[0].len(), self.config.hidden_size);
        let flat: Vec<i64> = ids.iter().flatten().map(|&t| i64::from(t)).collect();
        let flat = Tensor::<1, Int>::from_data(TensorData::new(flat, [b * s]), &self.device);
        let words = self.word.clone().select(0, flat).reshape([b, s, h]);
        let positions = self.position.clone().narrow(0, 0, s).unsqueeze_dim::<3>(0);
        let types = self.token_type.clone().narrow(0, 0, 1).unsqueeze_dim::<3>(0);
        let mut x = self.embed_norm.forward(words + positions + types);

        // Additive key mask [b, 1, 1, s]: 0 for tokens, a large negative for padding.
        let bias: Vec<f32> = valid.iter().flatten().map(|&v| if v { 0.0 } else { -1e30 }).collect();
        let bias = Tensor::<2>::from_data(TensorData::new(bias, [b, s]), &self.device).reshape([b, 1, 1, s]);
        let heads = self.config.num_attention_heads;
        let hd = h / heads;
        let scale = 1.0 / (hd as f64).sqrt();
        let split = |t: Tensor<3>| t.reshape([b, s, heads, hd]).swap_dims(1, 2);
        for layer in &self.layers {
            let q = split(layer.query.forward(x.clone()));
            let k = split(layer.key.forward(x.clone()));
            let v = split(layer.value.forward(x.clone()));
            let scores = q.matmul(k.swap_dims(2, 3)) * scale + bias.clone();
            let context = activation::softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b, s, h]);
            let attended = layer.attention_norm.forward(layer.attention_out.forward(context) + x);
            let inner = activation::gelu(layer.intermediate.forward(attended.clone()));
            x = layer.output_norm.forward(layer.output.forward(inner) + attended);
        }
        x
    }
}
