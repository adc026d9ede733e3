use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::cache::LayerCache;
use super::config::ModelConfig;
use super::layers::{Linear, RmsNorm};
use super::rope::Rope;
use crate::error::ModelError;
use crate::load::weights::Weights;
use crate::precision::{Precision, f32};

/// Grouped-query self-attention with optional q/k/v bias (Qwen2) and q/k RMSNorm (Qwen3).
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    /// q, k and v stacked into one projection for inference (see [`Self::fused`]); the three
    /// projections above are then views of it. Outside the module tree: parameters, records
    /// and exports see only the three.
    #[module(skip)]
    pub qkv_proj: Option<Linear>,
}

impl Attention {
    /// The projections (biased q/k/v when `attention_bias`) and, when `qk_norm`, the per-head
    /// q/k norms, in the order checkpoints were always read (seeded random weights depend on it).
    pub fn load(mut w: Weights<'_>, config: &ModelConfig) -> Result<Self, ModelError> {
        let (hid, d, eps) = (config.hidden_size, config.head_dim, config.rms_norm_eps);
        let (heads, kv_heads, bias) = (config.num_heads, config.num_kv_heads, config.attention_bias);
        Ok(Self {
            q_proj: Linear::load(w.pp("q_proj"), heads * d, hid, bias)?,
            k_proj: Linear::load(w.pp("k_proj"), kv_heads * d, hid, bias)?,
            v_proj: Linear::load(w.pp("v_proj"), kv_heads * d, hid, bias)?,
            o_proj: Linear::load(w.pp("o_proj"), hid, heads * d, false)?,
            q_norm: config.qk_norm.then(|| RmsNorm::load(w.pp("q_norm"), d, eps)).transpose()?,
            k_norm: config.qk_norm.then(|| RmsNorm::load(w.pp("k_norm"), d, eps)).transpose()?,
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim: d,
            qkv_proj: None,
        })
    }

    /// The same attention with q, k and v computed by one matmul over their stacked weights
    /// (and biases): a decoding step's three small matmuls became one, fewer calls and one
    /// pass over the input. For inference, once the weights are in their final dtype and
    /// device: the three projections become views of the stacked weight (no second copy in
    /// memory), and a later module map would leave the stacked one behind.
    pub fn fused(self) -> Self {
        let qkv = Linear::stacked(&[&self.q_proj, &self.k_proj, &self.v_proj]);
        let (hq, hk) = (self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim);
        Self {
            q_proj: self.q_proj.view_of(&qkv, 0, hq),
            k_proj: self.k_proj.view_of(&qkv, hq, hk),
            v_proj: self.v_proj.view_of(&qkv, hq + hk, hk),
            qkv_proj: Some(qkv),
            ..self
        }
    }

    /// Queries `[batch, heads, seq, head_dim]`, keys and values `[batch, kv_heads, seq,
    /// head_dim]` of `x` `[batch, seq, hidden]`: projections in `p`'s dtype, q/k norms and
    /// RoPE in f32, returned in `p`'s dtype.
    pub fn project(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        p: Precision,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [b, s, _] = x.dims();
        let d = self.head_dim;
        let heads = |t: Tensor<3>, n: usize, norm: &Option<RmsNorm>| {
            let t = t.reshape([b, s, n, d]);
            let t = match norm {
                Some(norm) => norm.forward(t),
                None => t,
            };
            t.swap_dims(1, 2)
        };
        let x = p.matmul_input(x);
        let (q, k, v) = match &self.qkv_proj {
            Some(qkv) => {
                let (hq, hk) = (self.num_heads * d, self.num_kv_heads * d);
                let y = qkv.forward(x, p);
                (y.clone().narrow(2, 0, hq), y.clone().narrow(2, hq, hk), y.narrow(2, hq + hk, hk))
            }
            None => (
                self.q_proj.forward(x.clone(), p),
                self.k_proj.forward(x.clone(), p),
                self.v_proj.forward(x, p),
            ),
        };
        let q = heads(q, self.num_heads, &self.q_norm);
        let k = heads(k, self.num_kv_heads, &self.k_norm);
        let v = heads(v, self.num_kv_heads, &None);
        let q = p.matmul_input(Rope::apply(f32(q), cos, sin));
        let k = p.matmul_input(Rope::apply(f32(k), cos, sin));
        (q, k, v)
    }

    /// The output projection of attended values `[batch, heads, seq, head_dim]`.
    pub fn output(&self, attended: Tensor<4>, p: Precision) -> Tensor<3> {
        let [b, h, s, d] = attended.dims();
        self.o_proj.forward(attended.swap_dims(1, 2).reshape([b, s, h * d]), p)
    }

    pub fn scale(&self) -> f64 {
        (self.head_dim as f64).powf(-0.5)
    }

    /// `x` `[batch, seq, hidden]` attending over its cached keys and itself, appending to
    /// `cache`, with libtorch's fused kernel: it reads the cache where it lies (explicit
    /// matmuls copied the whole narrowed cache of every layer at every step: 12% of a
    /// batch-64 decode) and never builds the f32 `[batch, heads, queries, keys]` scores (a
    /// padded 60-prompt prefill ran at half the decoding FLOP rate with them). Inference only:
    /// training's autodiff backend has no fused attention.
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        visibility: &super::fused::Visibility,
        cache: &mut LayerCache,
        p: Precision,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let (q, k, v) = self.project(x, cos, sin, p);
        let (k, v) = cache.append(k, v);
        if s == 1 {
            // A decoding step: the `rep` query heads sharing a KV head are its queries, so
            // the keys and values are not repeated per query head.
            let q = q.reshape([b, kvh, h / kvh, d]);
            let attended = super::fused::attention(q, k, v, visibility, self.scale());
            return self.output(attended.reshape([b, h, 1, d]), p);
        }
        self.output(super::fused::attention(q, k, v, visibility, self.scale()), p)
    }

    /// `x` `[batch, seq, hidden]` attending over itself; `bias` `[batch, 1, seq, seq]` (see
    /// `mask`). Projections and the two attention matmuls run in `p`'s dtype; q/k norms,
    /// RoPE and softmax in f32.
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        bias: Tensor<4>,
        p: Precision,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let (q, k, v) = self.project(x, cos, sin, p);
        let rep = h / kvh;
        let keys = k.dims()[2];
        // Grouped-query attention without copying K/V per query head: the `rep` query heads
        // that share a KV head are stacked along the query axis instead.
        let q = q.reshape([b, kvh, rep * s, d]);
        let bias = if rep == 1 || s == 1 {
            bias
        } else {
            bias.unsqueeze_dim::<5>(2).expand([b, 1, rep, s, keys]).reshape([b, 1, rep * s, keys])
        };
        let scores = f32(q.matmul(k.swap_dims(2, 3))) * self.scale() + bias;
        let probs = p.matmul_input(softmax(scores, 3));
        self.output(probs.matmul(v).reshape([b, h, s, d]), p)
    }
}
