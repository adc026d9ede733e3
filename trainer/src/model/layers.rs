//! The two parameterised building blocks, with weights in Hugging Face layout (`[out, in]`)
//! so loading and export need no transposes or renames.

use burn::module::{Module, Param};
use burn::tensor::Tensor;

#[derive(Module, Debug)]
pub struct Linear {
    /// `[out_features, in_features]`, as PyTorch stores it.
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let mut dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let [out, _] = self.weight.dims();
        let y = x.reshape([rows, dims[D - 1]]).matmul(self.weight.val().transpose());
        let y = match &self.bias {
            Some(b) => y + b.val().unsqueeze_dim(0),
            None => y,
        };
        dims[D - 1] = out;
        y.reshape(dims)
    }
}

#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    pub eps: f64,
}

impl RmsNorm {
    /// Normalises over the last dimension, as transformers' `LlamaRMSNorm` does.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let rms = (x.clone().square().mean_dim(D - 1) + self.eps).sqrt();
        (x / rms) * self.weight.val().unsqueeze()
    }
}
