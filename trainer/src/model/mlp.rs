use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::silu;

use super::config::ModelConfig;
use super::layers::Linear;
use crate::error::ModelError;
use crate::load::weights::Weights;
use crate::precision::Precision;

/// SwiGLU: `down(silu(gate(x)) * up(x))`, with transformers' field names.
#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    pub fn load(mut w: Weights<'_>, config: &ModelConfig) -> Result<Self, ModelError> {
        let (hid, inter) = (config.hidden_size, config.intermediate_size);
        Ok(Self {
            gate_proj: Linear::load(w.pp("gate_proj"), inter, hid, false)?,
            up_proj: Linear::load(w.pp("up_proj"), inter, hid, false)?,
            down_proj: Linear::load(w.pp("down_proj"), hid, inter, false)?,
        })
    }

    /// In `p`'s dtype throughout (the output too).
    pub fn forward(&self, x: Tensor<3>, p: Precision) -> Tensor<3> {
        let x = p.matmul_input(x);
        self.down_proj.forward(silu(self.gate_proj.forward(x.clone(), p)) * self.up_proj.forward(x, p), p)
    }
}
