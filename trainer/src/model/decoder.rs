use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::attention::Attention;
use super::cache::KvCache;
use super::config::ModelConfig;
use super::layers::{Embedding, Linear, RmsNorm};
use super::mlp::Mlp;
use super::rope::Rope;
use crate::error::ModelError;
use crate::load::WeightSource;
use crate::load::weights::Weights;
use crate::precision::{Precision, f32};

#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub self_attn: Attention,
    pub mlp: Mlp,
    pub input_layernorm: RmsNorm,
    pub post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    pub fn load(mut w: Weights<'_>, config: &ModelConfig) -> Result<Self, ModelError> {
        let (hid, eps) = (config.hidden_size, config.rms_norm_eps);
        Ok(Self {
            self_attn: Attention::load(w.pp("self_attn"), config)?,
            mlp: Mlp::load(w.pp("mlp"), config)?,
            input_layernorm: RmsNorm::load(w.pp("input_layernorm"), hid, eps)?,
            post_attention_layernorm: RmsNorm::load(w.pp("post_attention_layernorm"), hid, eps)?,
        })
    }

    /// The block as `CausalLm::stored_in` leaves it: norms' weights widened, projections fused
    /// and, on the CPU, packed (quantized in int8).
    fn for_inference(self, p: Precision) -> Result<Self, ModelError> {
        let pack = |l: Linear| l.packed(p);
        let attn = Attention {
            q_norm: self.self_attn.q_norm.map(RmsNorm::widened),
            k_norm: self.self_attn.k_norm.map(RmsNorm::widened),
            ..self.self_attn
        }
        .fused();
        let attn =
            Attention { qkv_proj: attn.qkv_proj.map(pack).transpose()?, o_proj: pack(attn.o_proj)?, ..attn };
        let mlp = self.mlp.fused();
        let mlp = Mlp {
            gate_up_proj: mlp.gate_up_proj.map(pack).transpose()?,
            down_proj: pack(mlp.down_proj)?,
            ..mlp
        };
        Ok(Self {
            self_attn: attn,
            mlp,
            input_layernorm: self.input_layernorm.widened(),
            post_attention_layernorm: self.post_attention_layernorm.widened(),
        })
    }

    /// One pre-norm block on the f32 residual stream `x` `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        rope: &(Tensor<4>, Tensor<4>),
        bias: Tensor<4>,
        p: Precision,
    ) -> Tensor<3> {
        let h = self.input_layernorm.forward(x.clone());
        let attended = self.self_attn.forward(h, &rope.0, &rope.1, bias, p);
        self.after_attention_output(x, attended, p)
    }

    /// The same block attending over `cache` too (and appending to it), with libtorch's
    /// fused attention (inference).
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        rope: &(Tensor<4>, Tensor<4>),
        visibility: &super::fused::Visibility,
        cache: &mut super::cache::LayerCache,
        p: Precision,
    ) -> Tensor<3> {
        let h = self.input_layernorm.forward(x.clone());
        let attended = self.self_attn.forward_cached(h, &rope.0, &rope.1, visibility, cache, p);
        self.after_attention_output(x, attended, p)
    }

    /// The same block with libtorch's fused attention (no `[heads x T x T]` scores); no
    /// cache, no autodiff graph (see `fused`).
    pub fn forward_fused(
        &self,
        x: Tensor<3>,
        rope: &(Tensor<4>, Tensor<4>),
        visibility: &super::fused::Visibility,
        p: Precision,
    ) -> Tensor<3> {
        let attn = &self.self_attn;
        let (q, k, v) = attn.project(self.input_layernorm.forward(x.clone()), &rope.0, &rope.1, p);
        let attended = super::fused::attention(q, k, v, visibility, attn.scale());
        self.after_attention(x, attended, p)
    }

    /// The residual add of the attention output, then the MLP half of the block.
    pub fn after_attention(&self, x: Tensor<3>, attended: Tensor<4>, p: Precision) -> Tensor<3> {
        self.after_attention_output(x, self.self_attn.output(attended, p), p)
    }

    /// The residual add of the attention's projected output `[batch, seq, hidden]`, then the
    /// MLP half of the block.
    fn after_attention_output(&self, x: Tensor<3>, attn_out: Tensor<3>, p: Precision) -> Tensor<3> {
        let x = x + f32(attn_out);
        let h = self.post_attention_layernorm.forward(x.clone());
        x + f32(self.mlp.forward(h, p))
    }
}

/// `model.*` in a transformers checkpoint.
#[derive(Module, Debug)]
pub struct Decoder {
    pub embed_tokens: Embedding,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
}

impl Decoder {
    /// The layers first, then the embeddings: the order checkpoints were always read in, which
    /// seeded random weights depend on.
    pub fn load(mut w: Weights<'_>, config: &ModelConfig) -> Result<Self, ModelError> {
        let mut layers = Vec::with_capacity(config.num_layers);
        let mut under = w.pp("layers");
        for i in 0..config.num_layers {
            layers.push(DecoderLayer::load(under.pp(i), config)?);
        }
        let (vocab, hid) = (config.vocab_size, config.hidden_size);
        Ok(Self {
            embed_tokens: Embedding::load(w.pp("embed_tokens"), vocab, hid)?,
            layers,
            norm: RmsNorm::load(w.pp("norm"), hid, config.rms_norm_eps)?,
        })
    }
}

/// The causal LM: `model` and an `lm_head` that is `None` when tied to the embeddings.
#[derive(Module, Debug)]
pub struct CausalLm {
    pub model: Decoder,
    pub lm_head: Option<Linear>,
    #[module(skip)]
    pub config: ModelConfig,
    #[module(skip)]
    rope: Rope,
    /// What the matmuls compute in (see [`Precision`]); f32 when built.
    #[module(skip)]
    pub precision: Precision,
    /// The output projection packed for oneDNN (see `stored_in`).
    #[module(skip)]
    packed_head: Option<super::packed::PackedLinear>,
}

/// One forward's inputs: token ids, their positions (which skip left padding), and the
/// additive attention bias over every key (cached ones included).
#[derive(Debug, Clone)]
pub struct Inputs {
    pub tokens: Tensor<2, Int>,
    pub positions: Tensor<2, Int>,
    pub bias: Tensor<4>,
    /// One query per row and every key of every row valid: `bias` is all zeros, and cached
    /// attention needs no mask at all.
    pub unmasked: bool,
}

impl Inputs {
    /// Right-aligned rows are the caller's business: this takes ids, positions and the
    /// key-validity of the whole (cached + new) sequence.
    pub fn new(tokens: &[Vec<u32>], positions: &[Vec<i64>], valid: &[Vec<bool>], device: &Device) -> Self {
        let b = tokens.len();
        let s = tokens.first().map_or(0, Vec::len);
        let ids: Vec<i64> = tokens.iter().flatten().map(|&t| i64::from(t)).collect();
        let pos: Vec<i64> = positions.iter().flatten().copied().collect();
        Self {
            tokens: Tensor::from_data(TensorData::new(ids, [b, s]), device),
            positions: Tensor::from_data(TensorData::new(pos, [b, s]), device),
            bias: super::mask::attention_bias(valid, s, device),
            unmasked: s == 1 && valid.iter().flatten().all(|&v| v),
        }
    }

    /// A batch of equal-length sequences with no padding and no cache (training, parity).
    pub fn dense(tokens: &[Vec<u32>], device: &Device) -> Self {
        let positions: Vec<Vec<i64>> = tokens.iter().map(|t| (0..t.len() as i64).collect()).collect();
        let valid: Vec<Vec<bool>> = tokens.iter().map(|t| vec![true; t.len()]).collect();
        Self::new(tokens, &positions, &valid, device)
    }
}

impl CausalLm {
    /// Builds the model, each module taking its tensors from `weights` under its transformers
    /// name (see `load::weights`); tensors `weights` holds that no module took are an error.
    pub fn build(
        config: ModelConfig,
        weights: &mut dyn WeightSource,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let mut root = Weights::new(weights, device);
        let model = Decoder::load(root.pp("model"), &config)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(Linear::load(root.pp("lm_head"), config.vocab_size, config.hidden_size, false)?)
        };
        weights.finish()?;
        let rope = Rope::new(&config);
        Ok(Self { model, lm_head, config, rope, precision: Precision::F32, packed_head: None })
    }

    /// Computes in `precision` from now on (weights are cast per matmul: f32 master weights
    /// stay f32 for training).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Stores every weight in `precision`'s dtype and computes in it: half the bytes per
    /// decoded token in bf16. For inference (an optimizer would step bf16 weights): q/k/v and
    /// gate/up also become one matmul each (`Attention::fused`, `Mlp::fused`), and on the CPU
    /// every matmul runs over weights packed for oneDNN (`model::packed`), or, in int8,
    /// quantized to int8 (the output head too). Any module map after this one would leave
    /// the fused and packed weights behind: nothing maps a model made for inference. The error
    /// is int8 that cannot be had (not on the CPU).
    pub fn stored_in(self, precision: Precision) -> Result<Self, ModelError> {
        struct Cast(burn::tensor::DType);
        impl burn::module::ModuleMapper for Cast {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let dtype = self.0;
                param.map(|t| if t.dtype() == dtype { t } else { t.cast(dtype) })
            }
        }
        let mut model = self.map(&mut Cast(precision.dtype())).with_precision(precision);
        model.model.norm = model.model.norm.widened();
        model.model.layers =
            model.model.layers.into_iter().map(|l| l.for_inference(precision)).collect::<Result<_, _>>()?;
        if precision == Precision::Int8 {
            model.packed_head = Some(super::packed::PackedLinear::int8(model.head_weight(), None)?);
            return Ok(model);
        }
        // The projections packed themselves (or said why not, at debug level); the head is the
        // one to warn about: libtorch packs all of them or none.
        model.packed_head =
            super::packed::PackedLinear::pack(model.head_weight(), None).unwrap_or_else(|e| {
                tracing::warn!("decoding without packed weights (slower, same results): {e}");
                None
            });
        Ok(model)
    }

    /// The token embeddings `[batch, seq, hidden]` in f32 (the residual stream).
    pub fn embed(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [b, s] = tokens.dims();
        let hid = self.config.hidden_size;
        f32(self.model.embed_tokens.weight.val().select(0, tokens.reshape([b * s])).reshape([b, s, hid]))
    }

    /// RoPE's `(cos, sin)` for `positions` `[batch, seq]`.
    pub fn rope_angles(&self, positions: Tensor<2, Int>) -> (Tensor<4>, Tensor<4>) {
        self.rope.angles(positions)
    }

    /// Final hidden states `[batch, seq, hidden]` (f32); appends to `cache` when given.
    pub fn hidden(&self, inputs: Inputs, cache: Option<&mut KvCache>) -> Tensor<3> {
        let mut x = self.embed(inputs.tokens);
        let rope = self.rope.angles(inputs.positions);
        let p = self.precision;
        match cache {
            Some(cache) => {
                // Built once for every layer's attention.
                let visibility = if inputs.unmasked {
                    super::fused::Visibility::All
                } else {
                    super::fused::Visibility::Bias(inputs.bias).prepared()
                };
                for (layer, layer_cache) in self.model.layers.iter().zip(&mut cache.layers) {
                    x = layer.forward_cached(x, &rope, &visibility, layer_cache, p);
                }
            }
            None => {
                for layer in &self.model.layers {
                    x = layer.forward(x, &rope, inputs.bias.clone(), p);
                }
            }
        }
        self.model.norm.forward(x)
    }

    /// The output projection's weight `[vocab, hidden]`: `lm_head`, or the embeddings when
    /// tied.
    pub fn head_weight(&self) -> Tensor<2> {
        match &self.lm_head {
            Some(head) => head.weight.val(),
            None => self.model.embed_tokens.weight.val(),
        }
    }

    /// Logits `[batch, seq, vocab]` (f32) for hidden states.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let p = self.precision;
        if let Some(head) = &self.packed_head {
            return f32(head.forward(p.matmul_input(hidden)));
        }
        f32(match &self.lm_head {
            Some(head) => head.forward(hidden, p),
            None => {
                let [b, s, h] = hidden.dims();
                p.matmul_input(hidden.reshape([b * s, h]))
                    .matmul(p.matmul_input(self.model.embed_tokens.weight.val()).transpose())
                    .reshape([b, s, self.config.vocab_size])
            }
        })
    }

    pub fn forward(&self, inputs: Inputs, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.logits(self.hidden(inputs, cache))
    }

    /// Logits `[batch, vocab]` of the last position only: what decoding needs, without
    /// projecting every prompt position onto the vocabulary.
    pub fn forward_last(&self, inputs: Inputs, cache: Option<&mut KvCache>) -> Tensor<2> {
        let h = self.hidden(inputs, cache);
        let [b, s, _] = h.dims();
        self.logits(h.narrow(1, s - 1, 1)).reshape([b, self.config.vocab_size])
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.num_layers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::weights::named_params;
    use crate::model::Family;

    /// Zeros of whatever is asked for, remembering the names.
    struct Recording(Vec<(String, Vec<usize>)>);

    impl WeightSource for Recording {
        fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
            self.0.push((name.to_owned(), shape.to_vec()));
            Ok(vec![0.0; shape.iter().product()])
        }

        fn finish(&mut self) -> Result<(), ModelError> {
            Ok(())
        }
    }

    /// Loading and export agree on every tensor's name and shape, for every combination of
    /// the flags that add or drop tensors: the module tree is the one list of names. And GGUF's
    /// translation table (`load::names`) knows each of them.
    #[test]
    fn loads_and_exports_the_same_names() {
        let device = crate::DeviceSpec::Cpu.device();
        for flags in 0..8u8 {
            let mut config = ModelConfig::tiny(Family::Llama, 50);
            config.attention_bias = flags & 1 != 0;
            config.qk_norm = flags & 2 != 0;
            config.tie_word_embeddings = flags & 4 != 0;
            let mut taken = Recording(Vec::new());
            let model = CausalLm::build(config.clone(), &mut taken, &device).unwrap();
            let mut loaded = taken.0;
            let mut exported: Vec<_> = named_params(&model).into_iter().map(|p| (p.name, p.shape)).collect();
            assert_eq!(loaded.len(), exported.len(), "flags {flags:03b}");
            loaded.sort();
            exported.sort();
            assert_eq!(loaded, exported, "flags {flags:03b}");
            let has = |n: &str| exported.iter().any(|(e, _)| e == n);
            assert_eq!(has("model.layers.1.self_attn.k_proj.bias"), config.attention_bias);
            assert_eq!(has("model.layers.0.self_attn.q_norm.weight"), config.qk_norm);
            assert_eq!(has("lm_head.weight"), !config.tie_word_embeddings);
            assert!(has("model.embed_tokens.weight") && has("model.norm.weight"));
            assert!(has("model.layers.1.post_attention_layernorm.weight"));
            for (name, _) in &exported {
                assert!(crate::load::names::hf_to_gguf(name).is_some(), "no GGUF name for {name}");
            }
        }
    }
}
