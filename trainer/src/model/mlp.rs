use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::silu;

use super::layers::Linear;

/// SwiGLU: `down(silu(gate(x)) * up(x))`, with transformers' field names.
#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down_proj.forward(silu(self.gate_proj.forward(x.clone())) * self.up_proj.forward(x))
    }
}
