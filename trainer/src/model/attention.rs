use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::cache::LayerCache;
use super::layers::{Linear, RmsNorm};
use super::rope::Rope;

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
}

impl Attention {
    /// `x` `[batch, seq, hidden]`; `bias` `[batch, 1, seq, keys]` (see `mask`).
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        bias: Tensor<4>,
        cache: Option<&mut LayerCache>,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |t: Tensor<3>, n: usize, norm: &Option<RmsNorm>| {
            let t = t.reshape([b, s, n, d]);
            let t = match norm {
                Some(norm) => norm.forward(t),
                None => t,
            };
            t.swap_dims(1, 2)
        };
        let q = heads(self.q_proj.forward(x.clone()), h, &self.q_norm);
        let k = heads(self.k_proj.forward(x.clone()), kvh, &self.k_norm);
        let v = heads(self.v_proj.forward(x), kvh, &None);
        let q = Rope::apply(q, cos, sin);
        let k = Rope::apply(k, cos, sin);
        let (k, v) = match cache {
            Some(cache) => cache.append(k, v),
            None => (k, v),
        };
        let keys = k.dims()[2];
        // Grouped-query attention without copying K/V per query head: the `rep` query heads
        // that share a KV head are stacked along the query axis instead.
        let rep = h / kvh;
        let q = q.reshape([b, kvh, rep * s, d]);
        let bias = if rep == 1 || s == 1 {
            bias
        } else {
            bias.unsqueeze_dim::<5>(2).expand([b, 1, rep, s, keys]).reshape([b, 1, rep * s, keys])
        };
        let scale = (d as f64).powf(-0.5);
        let scores = q.matmul(k.swap_dims(2, 3)) * scale + bias;
        let out = softmax(scores, 3).matmul(v).reshape([b, h, s, d]);
        self.o_proj.forward(out.swap_dims(1, 2).reshape([b, s, h * d]))
    }
}
