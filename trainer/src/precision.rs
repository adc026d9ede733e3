//! Numeric precision of the matmuls: f32, or bf16 with f32 master weights and f32 norms,
//! softmax and loss (what `torch.autocast(dtype=bfloat16)` with an f32 optimizer does), or,
//! for decoding on the CPU only, bf16 with the projections' weights in int8, one scale per
//! output channel (`model::packed`).

use std::fmt;
use std::str::FromStr;

use burn::tensor::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::backend::DeviceSpec;

/// What the matmuls compute in: the resolved type, what a model runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    /// Decoding on the CPU only: bf16, the projections' weights int8 (weight-only).
    Int8,
}

/// As configured: a precision, or `auto` (bf16 where the hardware has native bf16 kernels).
/// The one configured type: the pipeline config's `dtype` is this type, and [`Self::resolve`]
/// is the one place `auto` becomes a [`Precision`]. Its fixed variants mirror [`Precision`]'s
/// (flat, not `Fixed(Precision)`, so configs and code write `Bf16`), and take their names from
/// it (see [`Self::fixed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    #[default]
    F32,
    Bf16,
    Int8,
    Auto,
}

impl Precision {
    /// The name configs, options files and logs use (the serde name).
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
        }
    }

    /// What weights are stored in and matmul inputs cast to (int8's projections are
    /// quantized from bf16 weights and take bf16 in).
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 | Self::Int8 => DType::BF16,
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::Bf16 | Self::Int8 => 2,
        }
    }

    /// Whether this precision can train (int8 is for decoding only).
    pub const fn trains(self) -> bool {
        !matches!(self, Self::Int8)
    }

    /// `x` in this precision's matmul dtype (no copy when it already is).
    pub fn matmul_input<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        cast(x, self.dtype())
    }
}

/// `x` as f32 (no copy when it already is): norms, softmax, residuals and the loss.
pub fn f32<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    cast(x, DType::F32)
}

fn cast<const D: usize>(x: Tensor<D>, dtype: DType) -> Tensor<D> {
    if x.dtype() == dtype { x } else { x.cast(dtype) }
}

impl PrecisionChoice {
    const ALL: [Self; 4] = [Self::F32, Self::Bf16, Self::Int8, Self::Auto];

    /// The precision this choice fixes, whatever the device; `None` for `auto`.
    pub const fn fixed(self) -> Option<Precision> {
        match self {
            Self::F32 => Some(Precision::F32),
            Self::Bf16 => Some(Precision::Bf16),
            Self::Int8 => Some(Precision::Int8),
            Self::Auto => None,
        }
    }

    /// The name configs and command lines use (the serde name).
    pub const fn name(self) -> &'static str {
        match self.fixed() {
            Some(p) => p.name(),
            None => "auto",
        }
    }

    /// The precision to use on `device`: `auto` is bf16 on CUDA and on CPUs whose flags show
    /// native bf16 (AVX512-BF16 or AMX-BF16), f32 elsewhere.
    pub fn resolve(self, device: DeviceSpec) -> Precision {
        self.fixed().unwrap_or_else(|| match device {
            DeviceSpec::Cuda(_) => Precision::Bf16,
            DeviceSpec::Cpu if cpu_has_native_bf16() => Precision::Bf16,
            DeviceSpec::Cpu => Precision::F32,
        })
    }
}

impl From<Precision> for PrecisionChoice {
    fn from(p: Precision) -> Self {
        match p {
            Precision::F32 => Self::F32,
            Precision::Bf16 => Self::Bf16,
            Precision::Int8 => Self::Int8,
        }
    }
}

/// Whether this CPU has bf16 dot-product instructions (Linux `/proc/cpuinfo` flags).
pub fn cpu_has_native_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|text| flags_have_bf16(&text))
}

fn flags_have_bf16(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16"))
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for PrecisionChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown dtype `{0}`: expected `f32`, `bf16`, `int8` (decoding on the CPU only) or `auto`")]
pub struct PrecisionError(String);

impl FromStr for PrecisionChoice {
    type Err = PrecisionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| PrecisionError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_cpu_flags_and_cuda() {
        assert!(flags_have_bf16("processor: 0\nflags\t: fpu sse avx512f avx512_bf16 amx_tile\n"));
        assert!(flags_have_bf16("flags\t: fpu amx_bf16\n"));
        assert!(!flags_have_bf16("flags\t: fpu sse avx512f avx2\n"));
        assert!(!flags_have_bf16("model name: avx512_bf16 in a name only\n"));
        assert_eq!(PrecisionChoice::Auto.resolve(DeviceSpec::Cuda(0)), Precision::Bf16);
        assert_eq!(PrecisionChoice::F32.resolve(DeviceSpec::Cuda(0)), Precision::F32);
        assert_eq!(PrecisionChoice::Bf16.resolve(DeviceSpec::Cpu), Precision::Bf16);
        let cpu = PrecisionChoice::Auto.resolve(DeviceSpec::Cpu);
        assert_eq!(cpu == Precision::Bf16, cpu_has_native_bf16());
        assert_eq!("auto".parse::<PrecisionChoice>().unwrap(), PrecisionChoice::Auto);
        assert!("fp16".parse::<PrecisionChoice>().unwrap_err().to_string().contains("`fp16`"));
    }

    /// One name per variant, wherever it is read or written: serde (configs, identity JSON),
    /// `FromStr` (command lines), `Display` (logs).
    #[test]
    fn names_agree_everywhere() {
        for (choice, name) in [
            (PrecisionChoice::F32, "f32"),
            (PrecisionChoice::Bf16, "bf16"),
            (PrecisionChoice::Int8, "int8"),
            (PrecisionChoice::Auto, "auto"),
        ] {
            assert_eq!(serde_json::to_string(&choice).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<PrecisionChoice>(&format!("\"{name}\"")).unwrap(), choice);
            assert_eq!(name.parse::<PrecisionChoice>().unwrap(), choice);
            assert_eq!(choice.to_string(), name);
            if let Some(p) = choice.fixed() {
                assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{name}\""));
                assert_eq!(p.to_string(), name);
                assert_eq!(PrecisionChoice::from(p), choice);
                assert_eq!(choice.resolve(DeviceSpec::Cpu), p);
            }
        }
        assert_eq!(" bf16 ".parse::<PrecisionChoice>().unwrap(), PrecisionChoice::Bf16);
    }
}
