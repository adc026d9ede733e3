//! Attention through libtorch's fused scaled-dot-product kernels (flash attention on the CPU,
//! flash or memory-efficient on CUDA), which never materialise the `[heads x T x T]` scores:
//! what makes 16k-token training fit. burn's autodiff has no fused attention (it falls back to
//! the explicit matmul and softmax), so the checkpointed backward runs this one op under
//! torch's own autograd and hands the gradients back (see `sft::step`).

use burn::tensor::Tensor;

use crate::backend::{from_tch, to_tch};

/// Which keys each query sees.
#[derive(Debug)]
pub enum Visibility {
    /// Every earlier position (right-padded rows: padding comes after every real token).
    Causal,
    /// Every key: one query per row, the last position, and no padding in any row (a
    /// decoding step of rows without padding). No mask at all.
    All,
    /// Where the additive bias `[batch, 1, queries, keys]` is 0 (packed rows), and always the
    /// query's own position, so no row is fully masked (torch's kernels give NaN there).
    Bias(Tensor<4>),
    /// [`Self::Bias`] as the boolean mask torch reads, built once (see [`Self::prepared`]).
    Keep(tch::Tensor),
}

impl Clone for Visibility {
    fn clone(&self) -> Self {
        match self {
            Self::Causal => Self::Causal,
            Self::All => Self::All,
            Self::Bias(bias) => Self::Bias(bias.clone()),
            Self::Keep(mask) => Self::Keep(mask.shallow_clone()),
        }
    }
}

impl Visibility {
    /// The same visibility with a bias already turned into torch's boolean mask: for a
    /// forward that attends once per layer over the same keys (building it in every layer was
    /// six small ops a layer, 180 a decoding step of a 30-layer model).
    pub fn prepared(self) -> Self {
        match self {
            Self::Bias(bias) => Self::Keep(keep_mask(bias)),
            other => other,
        }
    }
}

fn keep_mask(bias: Tensor<4>) -> tch::Tensor {
    let bias = to_tch(bias);
    let size = bias.size();
    let (q, k) = (size[2], size[3]);
    let own = tch::Tensor::ones([q, k], (tch::Kind::Bool, bias.device())).tril(k - q).triu(k - q);
    bias.eq(0.0).logical_or(&own)
}

/// `softmax(q k^T * scale + mask) v` for `q` `[batch, heads, queries, head_dim]` and `k`, `v`
/// `[batch, kv_heads, keys, head_dim]` (grouped-query: each KV head serves `heads / kv_heads`
/// query heads). Returns the output and torch's graph for [`Saved::backward`] when `grad`.
fn sdpa(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    visibility: &Visibility,
    scale: f64,
    grad: bool,
) -> (Tensor<4>, Option<Saved>) {
    let (q, k, v) = (to_tch(q), to_tch(k), to_tch(v));
    let mask = match visibility {
        Visibility::Causal | Visibility::All => None,
        Visibility::Bias(bias) => Some(keep_mask(bias.clone())),
        Visibility::Keep(mask) => Some(mask.shallow_clone()),
    };
    let rep = q.size()[1] / k.size()[1];
    let run = |q: &tch::Tensor, k: &tch::Tensor, v: &tch::Tensor| {
        let (k, v) = if rep == 1 {
            (k.shallow_clone(), v.shallow_clone())
        } else {
            (k.repeat_interleave_self_int(rep, 1, None), v.repeat_interleave_self_int(rep, 1, None))
        };
        let causal = matches!(visibility, Visibility::Causal);
        tch::Tensor::scaled_dot_product_attention(q, &k, &v, mask.as_ref(), 0.0, causal, scale, false)
    };
    if !grad {
        let out = tch::no_grad(|| run(&q, &k, &v));
        return (from_tch(out), None);
    }
    // Detached first: the flag goes on new tensor handles, not on the ones burn holds.
    let leaf = |t: tch::Tensor| t.detach().set_requires_grad(true);
    let (q, k, v) = (leaf(q), leaf(k), leaf(v));
    let out = tch::with_grad(|| run(&q, &k, &v));
    (from_tch(out.detach()), Some(Saved { q, k, v, out }))
}

/// Fused attention without a graph (forward only).
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, visibility: &Visibility, scale: f64) -> Tensor<4> {
    sdpa(q, k, v, visibility, scale, false).0
}

/// Fused attention keeping torch's graph: the output, and what its backward needs (O(T)
/// memory: the inputs, the output and the kernel's log-sum-exp).
pub fn attention_with_grad(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    visibility: &Visibility,
    scale: f64,
) -> (Tensor<4>, Saved) {
    let (out, saved) = sdpa(q, k, v, visibility, scale, true);
    (out, saved.expect("kept when asked"))
}

/// torch's graph of one fused attention call.
pub struct Saved {
    q: tch::Tensor,
    k: tch::Tensor,
    v: tch::Tensor,
    out: tch::Tensor,
}

impl Saved {
    /// The gradients of `q`, `k` and `v` given the output's gradient.
    pub fn backward(self, grad_out: Tensor<4>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let g = to_tch(grad_out).to_kind(self.out.kind());
        let grads = tch::with_grad(|| {
            let surrogate = (&self.out * &g).sum(self.out.kind());
            tch::Tensor::run_backward(&[surrogate], &[&self.q, &self.k, &self.v], false, false)
        });
        let mut it = grads.into_iter().map(from_tch);
        let (q, k, v) = (it.next(), it.next(), it.next());
        (q.expect("dq"), k.expect("dk"), v.expect("dv"))
    }
}
