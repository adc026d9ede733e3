//! The parameterised building blocks, with weights in Hugging Face layout (`[out, in]`) and
//! under Hugging Face field names (`weight`, `bias`), so loading and export need no transposes
//! or renames.

use burn::module::{Module, Param};
use burn::tensor::Tensor;

use super::packed::PackedLinear;
use crate::error::ModelError;
use crate::load::weights::Weights;
use crate::precision::{Precision, f32};

#[derive(Module, Debug)]
pub struct Linear {
    /// `[out_features, in_features]`, as PyTorch stores it.
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
    /// The weight (and bias) reordered for oneDNN, for inference on the CPU (see
    /// [`Self::packed`]); outside the module tree.
    #[module(skip)]
    pub packed: Option<PackedLinear>,
}

impl Linear {
    /// `weight` `[out, inp]`, and `bias` `[out]` when `bias`, from `w`'s path.
    pub fn load(mut w: Weights<'_>, out: usize, inp: usize, bias: bool) -> Result<Self, ModelError> {
        Ok(Self {
            weight: w.param("weight", [out, inp])?,
            bias: if bias { Some(w.param("bias", [out])?) } else { None },
            packed: None,
        })
    }

    /// One projection computing `parts`' outputs side by side: their weights (and biases,
    /// when every part has one) stacked along the output axis, in the parts' order.
    pub fn stacked(parts: &[&Linear]) -> Self {
        let weight = Tensor::cat(parts.iter().map(|l| l.weight.val()).collect(), 0);
        let biases: Option<Vec<Tensor<1>>> = parts.iter().map(|l| l.bias.as_ref().map(Param::val)).collect();
        Self {
            weight: Param::from_tensor(weight),
            bias: biases.map(|b| Param::from_tensor(Tensor::cat(b, 0))),
            packed: None,
        }
    }

    /// This projection with its weight (and bias) replaced by rows `start..start + len` of
    /// `stack`'s: the same values, now a view of the stacked storage (see [`Self::stacked`]).
    pub fn view_of(self, stack: &Linear, start: usize, len: usize) -> Self {
        Self {
            weight: self.weight.map(|_| stack.weight.val().narrow(0, start, len)),
            bias: match (self.bias, &stack.bias) {
                (Some(own), Some(all)) => Some(own.map(|_| all.val().narrow(0, start, len))),
                (own, _) => own,
            },
            packed: None,
        }
    }

    /// The same projection computed by oneDNN over its weight reordered once (see
    /// `model::packed`), for inference with weights already in their final dtype on the CPU.
    /// Where libtorch cannot pack it the projection stays as it was, and says why. In int8
    /// the weight is quantized instead, and failing to is an error: the plain matmul would
    /// answer differently from what the identity says.
    pub fn packed(self, p: Precision) -> Result<Self, ModelError> {
        if p == Precision::Int8 {
            let packed = PackedLinear::int8(self.weight.val(), self.bias.as_ref().map(Param::val))?;
            return Ok(Self { packed: Some(packed), ..self });
        }
        Ok(match PackedLinear::pack(self.weight.val(), self.bias.as_ref().map(Param::val)) {
            Ok(Some(packed)) => Self { packed: Some(packed), ..self },
            Ok(None) => self,
            Err(e) => {
                tracing::debug!("linear {:?} left unpacked: {e}", self.weight.dims());
                self
            }
        })
    }

    /// `x @ weight^T + bias` in `p`'s dtype (the output stays in it; f32 master weights are
    /// cast per call, weights already stored in that dtype are used as they are).
    pub fn forward<const D: usize>(&self, x: Tensor<D>, p: Precision) -> Tensor<D> {
        if let Some(packed) = &self.packed {
            return packed.forward(p.matmul_input(x));
        }
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

    /// The same norm with its weight in f32, holding exactly the values it had: `forward`
    /// computes in f32 and cast a bf16 weight at every call (60 small ops a decoding step of
    /// a 30-layer model).
    pub fn widened(self) -> Self {
        Self { weight: self.weight.map(f32), ..self }
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
