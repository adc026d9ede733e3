//! Linear layers over weights reordered once into oneDNN's blocked layout, for inference on
//! the CPU (`native/packed_linear.cpp`). A plain linear reorders its `[out, in]` weight at every
//! call: measured with torch 2.9 on 2 cores (AVX512-BF16), one decoding step's matmuls of
//! SmolLM2-135M took 14.1 ms at batch 1 and 15.0 ms at batch 16 plain, 7.2 and 10.1 ms packed
//! (bf16; in f32, 16.4 and 29.7 ms against 6.5 and 9.0).

use std::ffi::{CStr, c_char, c_void};

use burn::tensor::Tensor;

use crate::backend::{from_tch, to_tch, try_to_tch};
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

impl PackedLinear {
    /// `weight` `[out, in]` (and `bias` `[out]`) packed for matmuls in its dtype: `None` where
    /// packing does not apply (not a CPU tensor of the libtorch backend), an error where
    /// libtorch cannot pack it or the packed matmul does not give the plain one's result on a
    /// probe (built without oneDNN, a dtype this CPU has no oneDNN kernel for); the caller
    /// keeps the plain weight then.
    pub fn pack(weight: Tensor<2>, bias: Option<Tensor<1>>) -> Result<Option<Self>, ModelError> {
        let Some(weight) = try_to_tch(weight) else { return Ok(None) };
        let plain = weight.contiguous();
        if plain.device() != tch::Device::Cpu {
            return Ok(None);
        }
        let mut packed: *mut c_void = std::ptr::null_mut();
        // SAFETY: `plain` is a live tensor; on success `packed` is a new tensor we own.
        let message = unsafe { vs_packed_linear_weight(plain.as_ptr().cast(), &mut packed) };
        checked(message, "packing a linear weight")?;
        // SAFETY: `packed` was just allocated by the C++ side for us to own.
        let packed = Self { weight: unsafe { tch::Tensor::from_ptr(packed.cast()) }, bias: bias.map(to_tch) };
        packed.probe(&plain)?;
        Ok(Some(packed))
    }

    /// Runs the packed matmul once on two seeded rows and compares it with the plain matmul:
    /// a kernel that runs but computes something else must not decode silently.
    fn probe(&self, plain: &tch::Tensor) -> Result<(), ModelError> {
        let inputs = plain.size()[1];
        let x = tch::Tensor::linspace(-1.0, 1.0, 2 * inputs, (plain.kind(), tch::Device::Cpu))
            .reshape([2, inputs]);
        let want = tch::no_grad(|| x.matmul(&plain.tr()).to_kind(tch::Kind::Float));
        let want = match &self.bias {
            Some(b) => want + b.to_kind(tch::Kind::Float),
            None => want,
        };
        let got = self.call(&x)?.to_kind(tch::Kind::Float);
        let scale = want.abs().max().double_value(&[]).max(1.0);
        let diff = (got - &want).abs().max().double_value(&[]);
        // bf16 outputs keep 8 bits of mantissa; f32's differ only by summation order.
        let tolerance = if plain.kind() == tch::Kind::Float { 1e-4 } else { 1e-2 };
        if diff.is_nan() || diff > tolerance * scale {
            return Err(ModelError::Generation(format!(
                "packed linear {:?} gave results off by {diff:.3e} (largest {scale:.3e}) on a probe",
                plain.size()
            )));
        }
        Ok(())
    }

    fn call(&self, x: &tch::Tensor) -> Result<tch::Tensor, ModelError> {
        let bias = self.bias.as_ref().map_or(std::ptr::null(), |b| b.as_ptr().cast());
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: live tensors in, a new tensor we own out.
        let message =
            unsafe { vs_packed_linear(x.as_ptr().cast(), self.weight.as_ptr().cast(), bias, &mut out) };
        checked(message, "packed linear")?;
        // SAFETY: as in `pack`.
        Ok(unsafe { tch::Tensor::from_ptr(out.cast()) })
    }

    /// `x @ weight^T + bias` over the last dimension of `x` (in the weight's dtype).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        // The dtype, device and kernel were probed when packing; what libtorch can still refuse
        // here is a caller's bug (a wrong shape) or memory running out, which burn's own ops
        // also panic on.
        let y = self.call(&to_tch(x)).unwrap_or_else(|e| panic!("{e}"));
        from_tch(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn weight(seed: f32, kind: burn::tensor::DType) -> Tensor<2> {
        let values: Vec<f32> = (0..24 * 16).map(|i| (i as f32 * 0.37 + seed).sin()).collect();
        let device = crate::DeviceSpec::Cpu.device();
        Tensor::<2>::from_data(TensorData::new(values, [24, 16]), &device).cast(kind)
    }

    /// The packed matmul gives the plain one's result, and the probe that guards it fails on a
    /// weight it was not packed from (a kernel computing something else is refused).
    #[test]
    fn packed_matmul_matches_the_plain_one_and_the_probe_can_fail() {
        for kind in [burn::tensor::DType::F32, burn::tensor::DType::BF16] {
            let packed = PackedLinear::pack(weight(0.0, kind), None).unwrap().expect("a CPU tensor packs");
            let x = weight(1.0, kind).narrow(0, 0, 3);
            let plain = x.clone().matmul(weight(0.0, kind).transpose());
            let got = packed.forward(x);
            let diff: f32 = (got.cast(burn::tensor::DType::F32) - plain.cast(burn::tensor::DType::F32))
                .abs()
                .max()
                .into_scalar();
            assert!(diff < 0.05, "{kind:?}: {diff}");
            let other = to_tch(weight(0.5, kind)).contiguous();
            assert!(packed.probe(&other).is_err(), "{kind:?}: a wrong weight passed the probe");
        }
    }
}
