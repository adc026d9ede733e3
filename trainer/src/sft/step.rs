//! One micro-batch's loss and gradients, plainly (one graph over the whole model) or with
//! activations checkpointed per decoder layer: the forward runs without a graph keeping only
//! each layer's input, then the backward walks the layers from the last, recomputing one
//! layer's forward with a graph at a time and handing it the gradient of its output. Peak
//! activation memory is then one layer's plus the layer inputs, instead of every layer's. This
//! path runs attention through libtorch's fused kernels (`model::fused`), so no `[heads x T x
//! T]` scores exist either: memory grows linearly with the sequence.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Tensor;

use super::data::Batch;
use super::loss::chunked_loss;
use crate::model::CausalLm;
use crate::model::decoder::DecoderLayer;
use crate::model::fused::{self, Visibility};
use crate::precision::f32;

/// How a micro-batch's gradients are computed; neither changes them beyond rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSettings {
    pub checkpoint_activations: bool,
    /// Supervised positions whose logits exist at once in the loss.
    pub loss_chunk_tokens: usize,
}

/// Adds the gradients of `share` x (the batch's mean loss) to `into`; returns that loss term.
pub fn batch_gradients(
    model: &CausalLm,
    batch: Batch,
    share: f64,
    settings: StepSettings,
    into: &mut GradientsAccumulator<CausalLm>,
) -> f64 {
    let scale = share / batch.supervised.max(1) as f64;
    let (at, targets, chunk) = (&batch.loss_at, &batch.loss_targets, settings.loss_chunk_tokens);
    if !settings.checkpoint_activations {
        let hidden = model.hidden(batch.inputs, None);
        let (loss, surrogate) = chunked_loss(model, hidden, at, targets, scale, chunk);
        into.accumulate(model, GradientsParams::from_grads(surrogate.backward(), model));
        return loss;
    }
    let p = model.precision;
    let plain = model.valid();
    let tokens = batch.inputs.tokens;
    let rope = model.rope_angles(batch.inputs.positions.inner());
    let visibility =
        if batch.packed { Visibility::Bias(batch.inputs.bias.inner()) } else { Visibility::Causal };
    let layers = &model.model.layers;
    let mut inputs = Vec::with_capacity(layers.len());
    let mut x = plain.embed(tokens.clone().inner());
    for layer in &plain.model.layers {
        inputs.push(x.clone());
        x = layer.forward_fused(x, &rope, &visibility, p);
    }
    drop(plain);
    let last = x.autodiff().require_grad();
    let (loss, surrogate) =
        chunked_loss(model, model.model.norm.forward(last.clone()), at, targets, scale, chunk);
    let mut grad = backward_into(model, surrogate, &last, into);
    for (layer, input) in layers.iter().zip(inputs).rev() {
        grad = layer_backward(model, layer, input, grad, &rope, &visibility, into);
    }
    let embedded = model.embed(tokens);
    into.accumulate(model, GradientsParams::from_grads((embedded * grad).sum().backward(), model));
    loss
}

/// Recomputes `layer` on `input` with a graph and backpropagates `grad` (of its output)
/// through it: first the half after attention, then torch's fused attention backward, then the
/// projections. Returns the gradient of `input`.
fn layer_backward(
    model: &CausalLm,
    layer: &DecoderLayer,
    input: Tensor<3>,
    grad: Tensor<3>,
    rope: &(Tensor<4>, Tensor<4>),
    visibility: &Visibility,
    into: &mut GradientsAccumulator<CausalLm>,
) -> Tensor<3> {
    let p = model.precision;
    let attn = &layer.self_attn;
    let x = input.autodiff().require_grad();
    let (q, k, v) = attn.project(layer.input_layernorm.forward(x.clone()), &rope.0, &rope.1, p);
    let (attended, saved) = fused::attention_with_grad(
        q.clone().inner(),
        k.clone().inner(),
        v.clone().inner(),
        visibility,
        attn.scale(),
    );
    let attended = attended.autodiff().require_grad();
    let out = layer.after_attention(x.clone(), attended.clone(), p);
    let mut grads = (out * grad).sum().backward();
    let d_attended = attended.grad_remove(&mut grads).expect("the attention output requires its gradient");
    let d_residual = x.grad_remove(&mut grads).expect("the layer input requires its gradient");
    into.accumulate(model, GradientsParams::from_grads(grads, model));
    let (dq, dk, dv) = saved.backward(d_attended);
    let surrogate = f32((q * dq).sum()) + f32((k * dk).sum()) + f32((v * dv).sum());
    let d_projected = backward_into(model, surrogate, &x, into);
    d_residual + d_projected
}

/// Backpropagates `surrogate`, adds the parameters' gradients to `into`, and returns the
/// gradient of `leaf` (a tensor that requires it).
fn backward_into(
    model: &CausalLm,
    surrogate: Tensor<1>,
    leaf: &Tensor<3>,
    into: &mut GradientsAccumulator<CausalLm>,
) -> Tensor<3> {
    let mut grads = surrogate.backward();
    let grad = leaf.grad_remove(&mut grads).expect("the leaf requires its gradient");
    into.accumulate(model, GradientsParams::from_grads(grads, model));
    grad
}
