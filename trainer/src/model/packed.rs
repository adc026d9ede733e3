//! Linear layers over weights reordered once into oneDNN's blocked layout, for inference on
//! the CPU (`native/packed_linear.cpp`). A plain linear reorders its `[out, in]` weight at every
//! call: measured with torch 2.9 on 2 cores (AVX512-BF16), one decoding step's matmuls of
//! SmolLM2-135M took 14.1 ms at batch 1 and 15.0 ms at batch 16 plain, 7.2 and 10.1 ms packed
//! (bf16; in f32, 16.4 and 29.7 ms against 6.5 and 9.0).
//!
//! `dtype = "int8"` stores every projection's weight as int8 instead, one scale per output
//! channel (`PackedLinear::int8`), multiplied by libtorch's weight-only int8 kernel
//! (`_weight_int8pack_mm`, gpt-fast's and torchao's int8 weight-only path) with bf16
//! activations: a quarter of f32's weight bytes, half of bf16's. fbgemm's dynamically quantized
//! linear (activations quantized to 7 bits per call) was tried first: SmolLM2-135M's greedy
//! replies shared no token with f32's, so activations stay bf16.

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

/// A weight packed once for one kernel, and its bias.
pub struct PackedLinear {
    kernel: Kernel,
    /// `[out, in]`, for messages.
    shape: [i64; 2],
}

enum Kernel {
    /// oneDNN's blocked layout (an opaque libtorch tensor) in the weight's dtype.
    OneDnn { weight: tch::Tensor, bias: Option<tch::Tensor> },
    /// `[out, in]` int8, its bf16 scales `[out]` and bf16 bias.
    Int8 { weight: tch::Tensor, scales: tch::Tensor, bias: Option<tch::Tensor> },
}

// SAFETY: libtorch tensors may be read from several threads at once, and a packed weight is
// never written after packing (burn-tch declares its own tensors `Sync` on the same grounds).
unsafe impl Sync for PackedLinear {}

impl Clone for PackedLinear {
    fn clone(&self) -> Self {
        let kernel = match &self.kernel {
            Kernel::OneDnn { weight, bias } => Kernel::OneDnn {
                weight: weight.shallow_clone(),
                bias: bias.as_ref().map(tch::Tensor::shallow_clone),
            },
            Kernel::Int8 { weight, scales, bias } => Kernel::Int8 {
                weight: weight.shallow_clone(),
                scales: scales.shallow_clone(),
                bias: bias.as_ref().map(tch::Tensor::shallow_clone),
            },
        };
        Self { kernel, shape: self.shape }
    }
}

impl std::fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kernel {
            Kernel::OneDnn { weight, bias } => {
                write!(f, "PackedLinear({:?}, {:?}, bias: {})", self.shape, weight.kind(), bias.is_some())
            }
            Kernel::Int8 { bias, .. } => {
                write!(f, "PackedLinear({:?}, int8, bias: {})", self.shape, bias.is_some())
            }
        }
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
        let weight = unsafe { tch::Tensor::from_ptr(packed.cast()) };
        let packed =
            Self { kernel: Kernel::OneDnn { weight, bias: bias.map(to_tch) }, shape: shape_of(&plain) };
        packed.probe(&plain)?;
        Ok(Some(packed))
    }

    /// `weight` `[out, in]` (and `bias` `[out]`) quantized to int8 per output channel
    /// (symmetric: scale = the row's largest |w| / 127, rounded to bf16 first so the kernel's
    /// bf16 scale is the one rounded to), for `dtype = "int8"`: an error where that cannot be
    /// had (not a CPU tensor of the libtorch backend, a libtorch without the kernel) or where
    /// its matmul strays from the plain one's on a probe by more than int8 rounding can, never
    /// a silent fallback (the run's identity says int8).
    pub fn int8(weight: Tensor<2>, bias: Option<Tensor<1>>) -> Result<Self, ModelError> {
        let plain = try_to_tch(weight)
            .map(|w| w.to_kind(tch::Kind::Float).contiguous())
            .filter(|w| w.device() == tch::Device::Cpu)
            .ok_or_else(|| ModelError::Generation("dtype int8 decodes on the CPU only".into()))?;
        let (weight, scales) = tch::no_grad(|| {
            let scales = plain.abs().amax([1i64].as_slice(), false).clamp_min(1e-12) / 127.0;
            let scales = scales.to_kind(tch::Kind::BFloat16);
            let q = (&plain / scales.to_kind(tch::Kind::Float).unsqueeze(1)).round().clamp(-127.0, 127.0);
            (q.to_kind(tch::Kind::Int8).contiguous(), scales)
        });
        let bias = bias.map(|b| to_tch(b).to_kind(tch::Kind::BFloat16).contiguous());
        let packed = Self { kernel: Kernel::Int8 { weight, scales, bias }, shape: shape_of(&plain) };
        packed.probe(&plain.to_kind(tch::Kind::BFloat16))?;
        Ok(packed)
    }

    /// Whether this is an int8 kernel.
    pub fn is_int8(&self) -> bool {
        matches!(self.kernel, Kernel::Int8 { .. })
    }

    /// Runs the packed matmul once on two seeded rows and compares it with the plain matmul:
    /// a kernel that runs but computes something else must not decode silently.
    fn probe(&self, plain: &tch::Tensor) -> Result<(), ModelError> {
        let bias = match &self.kernel {
            Kernel::OneDnn { bias, .. } | Kernel::Int8 { bias, .. } => bias.as_ref(),
        };
        let inputs = plain.size()[1];
        let x = tch::Tensor::linspace(-1.0, 1.0, 2 * inputs, (plain.kind(), tch::Device::Cpu))
            .reshape([2, inputs]);
        let want = tch::no_grad(|| x.matmul(&plain.tr()).to_kind(tch::Kind::Float));
        let want = match bias {
            Some(b) => want + b.to_kind(tch::Kind::Float),
            None => want,
        };
        let got = self.call(&x)?.to_kind(tch::Kind::Float);
        let diff = (got - &want).abs().max().double_value(&[]);
        // bf16 outputs keep 8 bits of mantissa; f32's differ only by summation order: both
        // against the largest result. int8's rounding (up to 1/254 of a row's largest weight)
        // is relative to the terms, which cancel: against the largest sum of |x| |w|.
        let (scale, tolerance) = match (&self.kernel, plain.kind()) {
            (Kernel::Int8 { .. }, _) => {
                let terms = tch::no_grad(|| x.abs().matmul(&plain.abs().tr()));
                (terms.max().double_value(&[]).max(1.0), 1e-2)
            }
            (_, tch::Kind::Float) => (want.abs().max().double_value(&[]).max(1.0), 1e-4),
            _ => (want.abs().max().double_value(&[]).max(1.0), 1e-2),
        };
        if diff.is_nan() || diff > tolerance * scale {
            return Err(ModelError::Generation(format!(
                "packed linear {self:?} gave results off by {diff:.3e} (scale {scale:.3e}) on a probe"
            )));
        }
        Ok(())
    }

    fn call(&self, x: &tch::Tensor) -> Result<tch::Tensor, ModelError> {
        match &self.kernel {
            Kernel::OneDnn { weight, bias } => {
                let bias = bias.as_ref().map_or(std::ptr::null(), |b| b.as_ptr().cast());
                let mut out: *mut c_void = std::ptr::null_mut();
                // SAFETY: live tensors in, a new tensor we own out.
                let message =
                    unsafe { vs_packed_linear(x.as_ptr().cast(), weight.as_ptr().cast(), bias, &mut out) };
                checked(message, "packed linear")?;
                // SAFETY: as in `pack`.
                Ok(unsafe { tch::Tensor::from_ptr(out.cast()) })
            }
            Kernel::Int8 { weight, scales, bias } => {
                let [out, inputs] = [weight.size()[0], weight.size()[1]];
                let mut dims = x.size();
                let rows: i64 = dims[..dims.len() - 1].iter().product();
                let flat = x.reshape([rows, inputs]).to_kind(tch::Kind::BFloat16).contiguous();
                let y = tch::no_grad(|| flat.f_internal_weight_int8pack_mm(weight, scales))
                    .map_err(|e| ModelError::Generation(format!("int8 linear {:?}: {e}", self.shape)))?;
                let y = match bias {
                    Some(b) => y + b,
                    None => y,
                };
                *dims.last_mut().expect("a matrix or more") = out;
                Ok(y.reshape(dims))
            }
        }
    }

    /// `x @ weight^T + bias` over the last dimension of `x` (in the weight's dtype; bf16 for
    /// int8).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        // The dtype, device and kernel were probed when packing; what libtorch can still refuse
        // here is a caller's bug (a wrong shape) or memory running out, which burn's own ops
        // also panic on.
        let y = self.call(&to_tch(x)).unwrap_or_else(|e| panic!("{e}"));
        from_tch(y)
    }
}

fn shape_of(weight: &tch::Tensor) -> [i64; 2] {
    let size = weight.size();
    [size[0], size[1]]
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

    /// int8 weights give the f32 matmul's result within int8 rounding (about 1%), the bias
    /// included, and a wrong weight fails the probe.
    #[test]
    fn int8_matmul_is_close_to_f32_and_the_probe_can_fail() {
        let f = burn::tensor::DType::F32;
        let device = crate::DeviceSpec::Cpu.device();
        let bias =
            Tensor::<1>::from_data(TensorData::new((0..24).map(|i| i as f32 * 0.1).collect(), [24]), &device);
        let packed = PackedLinear::int8(weight(0.0, f), Some(bias.clone())).expect("int8 packs on the CPU");
        assert!(packed.is_int8());
        let x = weight(1.0, f).narrow(0, 0, 3);
        let plain = x.clone().matmul(weight(0.0, f).transpose()) + bias.unsqueeze_dim(0);
        let largest: f32 = plain.clone().abs().max().into_scalar();
        let diff: f32 = (packed.forward(x).cast(f) - plain).abs().max().into_scalar();
        assert!(diff > 0.0 && diff < 0.03 * largest, "int8 off by {diff} of {largest}");
        let other = to_tch(weight(0.5, f)).contiguous();
        assert!(packed.probe(&other).is_err(), "a wrong weight passed the int8 probe");
    }
}
