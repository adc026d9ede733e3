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
    /// gate and up stacked into one projection for inference (see [`Self::fused`]); outside
    /// the module tree, as `Attention::qkv_proj`.
    #[module(skip)]
    pub gate_up_proj: Option<Linear>,
}

impl Mlp {
    pub fn load(mut w: Weights<'_>, config: &ModelConfig) -> Result<Self, ModelError> {
        let (hid, inter) = (config.hidden_size, config.intermediate_size);
        Ok(Self {
            gate_proj: Linear::load(w.pp("gate_proj"), inter, hid, false)?,
            up_proj: Linear::load(w.pp("up_proj"), inter, hid, false)?,
            down_proj: Linear::load(w.pp("down_proj"), hid, inter, false)?,
            gate_up_proj: None,
        })
    }

    /// The same MLP with gate and up computed by one matmul over their stacked weights, the
    /// two becoming views of it: as `Attention::fused`, for inference only.
    pub fn fused(self) -> Self {
        let gate_up = Linear::stacked(&[&self.gate_proj, &self.up_proj]);
        let inter = self.gate_proj.weight.dims()[0];
        Self {
            gate_proj: self.gate_proj.view_of(&gate_up, 0, inter),
            up_proj: self.up_proj.view_of(&gate_up, inter, inter),
            gate_up_proj: Some(gate_up),
            ..self
        }
    }

    /// In `p`'s dtype throughout (the output too).
    pub fn forward(&self, x: Tensor<3>, p: Precision) -> Tensor<3> {
        let x = p.matmul_input(x);
        let (gate, up) = match &self.gate_up_proj {
            Some(gate_up) => {
                let inter = self.down_proj.weight.dims()[1];
                let y = gate_up.forward(x, p);
                (y.clone().narrow(2, 0, inter), y.narrow(2, inter, inter))
            }
            None => (self.gate_proj.forward(x.clone(), p), self.up_proj.forward(x, p)),
        };
        self.down_proj.forward(silu(gate) * up, p)
    }
}
