//! The parameterised building blocks, with weights in Hugging Face layout (`[out, in]`) and
//! under Hugging Face field names (`weight`, `bias`), so loading and export need no transposes
//! or renames.

use burn::module::{Module, Param};
use burn::tensor::Tensor;

use crate::error::ModelError;
use crate::load::weights::Weights;
use crate::precision::{Precision, f32};

#[derive(Module, Debug)]
pub struct Linear {
    /// `[out_features, in_features]`, as PyTorch stores it.
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    /// `weight` `[out, inp]`, and `bias` `[out]` when `bias`, from `w`'s path.
    pub fn load(mut w: Weights<'_>, out: usize, inp: usize, bias: bool) -> Result<Self, ModelError> {
        Ok(Self {
            weight: w.param("weight", [out, inp])?,
            bias: if bias { Some(w.param("bias", [out])?) } else { None },
        })
    }

    /// `x @ weight^T + bias` in `p`'s dtype (the output stays in it; f32 master weights are
    /// cast per call, weights already stored in that dtype are used as they are).
    pub fn forward<const D: usize>(&self, x: Tensor<D>, p: Precision) -> Tensor<D> {
        let mut dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let [out, _] = self.weight.dims();
        let x = p.matmul_input(x);
        let y = x.reshape([rows, dims[D - 1]]).matmul(p.matmul_input(self.weight.val()).transpose());
        let y = match &self.bias {
            Some(b) => y + p.matmul_input(b.val()).unsqueeze_dim(0),
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
    /// `weight` `[dim]` from `w`'s path.
    pub fn load(mut w: Weights<'_>, dim: usize, eps: f64) -> Result<Self, ModelError> {
        Ok(Self { weight: w.param("weight", [dim])?, eps })
    }

    /// Normalises over the last dimension in f32, as transformers' `LlamaRMSNorm` does; the
    /// output is f32 whatever the input's dtype.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = f32(x);
        let rms = (x.clone().square().mean_dim(D - 1) + self.eps).sqrt();
        (x / rms) * f32(self.weight.val()).unsqueeze()
    }
}

/// Token embeddings `[vocab, hidden]`. A module rather than a bare parameter so that its path
/// in the module tree is transformers' `embed_tokens.weight` (see `load::weights`).
#[derive(Module, Debug)]
pub struct Embedding {
    pub weight: Param<Tensor<2>>,
}

impl Embedding {
    pub fn load(mut w: Weights<'_>, vocab: usize, hidden: usize) -> Result<Self, ModelError> {
        Ok(Self { weight: w.param("weight", [vocab, hidden])? })
    }
}
