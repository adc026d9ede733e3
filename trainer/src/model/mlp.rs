use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::silu;

use super::layers::Linear;
use crate::precision::Precision;

/// SwiGLU: `down(silu(gate(x)) * up(x))`, with transformers' field names.
#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    /// In `p`'s dtype throughout (the output too).
    pub fn forward(&self, x: Tensor<3>, p: Precision) -> Tensor<3> {
        let x = p.matmul_input(x);
        self.down_proj.forward(silu(self.gate_proj.forward(x.clone(), p)) * self.up_proj.forward(x, p), p)
    }
}
