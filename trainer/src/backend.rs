//! The one place that picks burn's backend. burn 0.22 marks its libtorch constructors
//! deprecated (burn-tch goes away in the next release); keeping them here means adding burn's
//! own CPU/CUDA backends later touches this file only.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, Tensor};

/// Where tensors live, as written in configs and on the command line: `cpu`, `cuda`
/// (device 0) or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
}

#[derive(Debug, thiserror::Error)]
#[error("unknown device `{0}`: expected `cpu`, `cuda` or `cuda:N`")]
pub struct DeviceSpecError(String);

impl FromStr for DeviceSpec {
    type Err = DeviceSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceSpecError(s.to_owned())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// As written in configs: `"cpu"`, `"cuda:1"`.
impl serde::Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl DeviceSpec {
    /// The libtorch device for this spec (inference: no autodiff).
    #[allow(deprecated)]
    pub fn device(self) -> Device {
        match self {
            Self::Cpu => Device::libtorch(),
            Self::Cuda(i) => Device::libtorch_cuda(i),
        }
    }

    /// The same device with autodiff enabled, for training.
    pub fn training_device(self) -> Device {
        self.device().autodiff()
    }
}

/// The libtorch tensor behind `t`, sharing its storage; `None` for a tensor of another backend
/// (autodiff's, whose inner tensor `Tensor::inner` gives).
#[allow(deprecated)]
pub(crate) fn try_to_tch<const D: usize>(t: Tensor<D>) -> Option<tch::Tensor> {
    t.try_into_primitive::<burn::backend::LibTorch>().ok().map(|t| t.tensor)
}

/// [`try_to_tch`] for tensors that can only be libtorch's (the model's, outside autodiff).
pub(crate) fn to_tch<const D: usize>(t: Tensor<D>) -> tch::Tensor {
    try_to_tch(t).expect("tensors live on the libtorch backend (no autodiff here)")
}

/// A libtorch tensor as burn's.
#[allow(deprecated)]
pub(crate) fn from_tch<const D: usize>(t: tch::Tensor) -> Tensor<D> {
    Tensor::from_primitive::<burn::backend::LibTorch>(burn::backend::libtorch::TchTensor::new(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_device_specs() {
        for (text, spec) in
            [("cpu", DeviceSpec::Cpu), ("cuda", DeviceSpec::Cuda(0)), ("cuda:3", DeviceSpec::Cuda(3))]
        {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), spec);
        }
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
        assert_eq!(
            serde_json::to_string(&[DeviceSpec::Cpu, DeviceSpec::Cuda(3)]).unwrap(),
            r#"["cpu","cuda:3"]"#
        );
        let back: Vec<DeviceSpec> = serde_json::from_str(r#"["cuda","cpu"]"#).unwrap();
        assert_eq!(back, [DeviceSpec::Cuda(0), DeviceSpec::Cpu]);
        assert!(serde_json::from_str::<DeviceSpec>(r#""tpu""#).is_err());
        for bad in ["gpu", "cuda:", "cuda:x", ""] {
            let err = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(err.contains("expected `cpu`"), "{err}");
        }
    }
}
