//! Next-token cross-entropy on completion tokens only. burn's `CrossEntropyLoss` can only
//! skip pad ids, so prompt masking is a float weight per position.
//!
//! Training uses [`chunked_loss`]: the `[tokens x vocab]` logits of a whole batch (80 GB in f32
//! at 8 x 16k tokens and Qwen's 151,936-entry vocabulary) never exist. The loss and its
//! gradients with respect to the hidden states and the output projection are computed chunk
//! by chunk outside the autodiff graph, and handed back to it through a surrogate whose
//! gradient is exactly those gradients.

use burn::tensor::activation::log_softmax;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

use crate::model::CausalLm;
use crate::precision::{Precision, f32};

/// Mean negative log-likelihood over supervised positions: `logits` `[batch, seq, vocab]`,
/// `targets` `[batch, seq]` (the token each position must predict), `weights` `[batch, seq]`
/// (1 for completion tokens, 0 for prompt and padding). Returns a one-element tensor. The
/// reference the chunked loss is tested against.
pub fn masked_cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>, weights: Tensor<2>) -> Tensor<1> {
    let [b, s, _] = logits.dims();
    let picked = log_softmax(logits, 2).gather(2, targets.unsqueeze_dim::<3>(2)).reshape([b, s]);
    let supervised = weights.clone().sum().clamp_min(1.0);
    (picked * weights).sum().neg() / supervised
}

/// `scale * sum(-log p(target))` over the rows of `hidden` `[n, hidden]` under the projection
/// `head` `[vocab, hidden]`, and its gradients: `(loss, d/dhidden [n, hidden], d/dhead
/// [vocab, hidden])`, all f32. At most `chunk` rows' logits exist at once. Neither input may
/// carry an autodiff graph (pass `.inner()` tensors).
pub fn cross_entropy_gradients(
    hidden: Tensor<2>,
    head: Tensor<2>,
    targets: &[i64],
    scale: f64,
    chunk: usize,
    p: Precision,
) -> (f64, Tensor<2>, Tensor<2>) {
    let [n, width] = hidden.dims();
    let [vocab, _] = head.dims();
    let device = hidden.device();
    let head = p.matmul_input(head);
    let mut loss = 0.0;
    let mut d_hidden = Vec::new();
    let mut d_head = Tensor::<2>::zeros([vocab, width], &device);
    let chunk = chunk.max(1);
    for start in (0..n).step_by(chunk) {
        let rows = chunk.min(n - start);
        let h = p.matmul_input(hidden.clone().narrow(0, start, rows));
        let t = Tensor::<2, Int>::from_data(
            TensorData::new(targets[start..start + rows].to_vec(), [rows, 1]),
            &device,
        );
        let z = f32(h.clone().matmul(head.clone().transpose()));
        let max = z.clone().max_dim(1);
        let lse = max.clone() + (z.clone() - max).exp().sum_dim(1).log();
        let picked = z.clone().gather(1, t.clone());
        loss += f64::from((lse.clone() - picked).sum().into_scalar::<f32>());
        // d/dz of -log softmax(z)[t] is softmax(z) - onehot(t).
        let dz = (z - lse).exp() * scale;
        let dz = dz.scatter(1, t, Tensor::full([rows, 1], -scale, &device), IndexingUpdateOp::Add);
        let dz = p.matmul_input(dz);
        d_hidden.push(f32(dz.clone().matmul(head.clone())));
        d_head = d_head + f32(dz.transpose().matmul(h));
    }
    let d_hidden =
        if d_hidden.is_empty() { Tensor::zeros([0, width], &device) } else { Tensor::cat(d_hidden, 0) };
    (loss * scale, d_hidden, d_head)
}

/// The chunked loss of `model` on its final hidden states `hidden` `[batch, seq, hidden]`
/// (tracked) at the flat positions `at`, predicting `targets`, scaled by `scale`. Returns the
/// loss value and a surrogate whose backward gives the loss's gradients to `hidden` and to
/// the output projection (the embeddings when tied): `sum(h * dL/dh) + sum(W * dL/dW)`.
pub fn chunked_loss(
    model: &CausalLm,
    hidden: Tensor<3>,
    at: &[i64],
    targets: &[i64],
    scale: f64,
    chunk: usize,
) -> (f64, Tensor<1>) {
    let [b, s, width] = hidden.dims();
    let device = hidden.device();
    let index = Tensor::<1, Int>::from_data(TensorData::new(at.to_vec(), [at.len()]), &device);
    let rows = hidden.reshape([b * s, width]).select(0, index);
    let head = model.head_weight();
    let (loss, d_rows, d_head) = cross_entropy_gradients(
        rows.clone().inner(),
        head.clone().inner(),
        targets,
        scale,
        chunk,
        model.precision,
    );
    let surrogate = (rows * d_rows).sum() + (head * d_head).sum();
    (loss, surrogate)
}
