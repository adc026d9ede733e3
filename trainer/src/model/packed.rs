//! Linear layers over weights reordered once into oneDNN's blocked layout, for inference on
//! the CPU (`native/packed_linear.cpp`). A plain linear reorders its `[out, in]` weight at every
//! call: measured with torch 2.9 on 2 cores (AVX512-BF16), one decoding step's matmuls of
//! SmolLM2-135M took 14.1 ms at batch 1 and 15.0 ms at batch 16 plain, 7.2 and 10.1 ms packed
//! (bf16; in f32, 16.4 and 29.7 ms against 6.5 and 9.0).

#![allow(deprecated)] // burn's libtorch backend types; see `backend.rs`.

use std::ffi::{CStr, c_char, c_void};

use burn::backend::LibTorch;
use burn::backend::libtorch::TchTensor;
use burn::tensor::Tensor;

use crate::error::ModelError;

unsafe extern "C" {
    fn vs_packed_linear_weight(weight: *const c_void, out: *mut *mut c_void) -> *mut c_char;
    fn vs_packed_linear(
        x: *const c_void,
        packed: *const c_void,
        bias: *const c_void,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn vs_packed_free_message(message: *mut c_char);
}

/// A weight `[out, in]` in oneDNN's layout (an opaque libtorch tensor), and its bias.
pub struct PackedLinear {
    weight: tch::Tensor,
    bias: Option<tch::Tensor>,
}

// SAFETY: libtorch tensors may be read from several threads at once, and a packed weight is
// never written after `pack` (burn-tch declares its own tensors `Sync` on the same grounds).
unsafe impl Sync for PackedLinear {}

impl Clone for PackedLinear {
    fn clone(&self) -> Self {
        Self { weight: self.weight.shallow_clone(), bias: self.bias.as_ref().map(tch::Tensor::shallow_clone) }
    }
}

impl std::fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedLinear({:?}, {:?}, bias: {})",
            self.weight.size(),
            self.weight.kind(),
            self.bias.is_some()
        )
    }
}

/// The error libtorch gave, or `Ok` when `message` is null.
fn checked(message: *mut c_char, what: &str) -> Result<(), ModelError> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null message is a NUL-terminated string the C++ side allocated for us.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    unsafe { vs_packed_free_message(message) };
    Err(ModelError::Generation(format!("{what}: {text}")))
}

fn to_tch<const D: usize>(t: Tensor<D>) -> tch::Tensor {
    t.try_into_primitive::<LibTorch>().expect("inference tensors live on the libtorch backend").tensor
}

impl PackedLinear {
    /// `weight` `[out, in]` (and `bias` `[out]`) of a CPU tensor, packed for matmuls in its
    /// dtype. Errors when libtorch cannot (built without oneDNN, or a dtype it has no kernel
    /// for); the caller keeps the plain weight then.
    pub fn pack(weight: Tensor<2>, bias: Option<Tensor<1>>) -> Result<Self, ModelError> {
        let weight = weight
            .try_into_primitive::<LibTorch>()
            .map_err(|_| {
                ModelError::Generation("packed weights are for libtorch tensors without autodiff".into())
            })?
            .tensor
            .contiguous();
        if weight.device() != tch::Device::Cpu {
            return Err(ModelError::Generation("packed weights are for the CPU".into()));
        }
        let mut packed: *mut c_void = std::ptr::null_mut();
        // SAFETY: `weight` is a live tensor; on success `packed` is a new tensor we own.
        let message = unsafe { vs_packed_linear_weight(weight.as_ptr().cast(), &mut packed) };
        checked(message, "packing a linear weight")?;
        // SAFETY: `packed` was just allocated by the C++ side for us to own.
        let weight = unsafe { tch::Tensor::from_ptr(packed.cast()) };
        Ok(Self { weight, bias: bias.map(to_tch) })
    }

    /// `x @ weight^T + bias` over the last dimension of `x` (in the weight's dtype).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = to_tch(x);
        let bias = self.bias.as_ref().map_or(std::ptr::null(), |b| b.as_ptr().cast());
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: live tensors in, a new tensor we own out.
        let message =
            unsafe { vs_packed_linear(x.as_ptr().cast(), self.weight.as_ptr().cast(), bias, &mut out) };
        // The inputs were checked when packing (dtype, device, shape); what libtorch can still
        // refuse here is a caller's bug, like a wrong shape in a matmul.
        if let Err(e) = checked(message, "packed linear") {
            panic!("{e}");
        }
        // SAFETY: as in `pack`.
        let y = unsafe { tch::Tensor::from_ptr(out.cast()) };
        Tensor::from_primitive::<LibTorch>(TchTensor::new(y))
    }
}
