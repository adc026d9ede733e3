//! Next-token cross-entropy on completion tokens only. burn's `CrossEntropyLoss` can only
//! skip pad ids, so prompt masking is a float weight per position.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Mean negative log-likelihood over supervised positions: `logits` `[batch, seq, vocab]`,
/// `targets` `[batch, seq]` (the token each position must predict), `weights` `[batch, seq]`
/// (1 for completion tokens, 0 for prompt and padding). Returns a one-element tensor.
pub fn masked_cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>, weights: Tensor<2>) -> Tensor<1> {
    let [b, s, _] = logits.dims();
    let picked = log_softmax(logits, 2).gather(2, targets.unsqueeze_dim::<3>(2)).reshape([b, s]);
    let supervised = weights.clone().sum().clamp_min(1.0);
    (picked * weights).sum().neg() / supervised
}
