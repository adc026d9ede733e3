//! The Llama-family causal LM in burn on the libtorch backend: weights, tokenizer, SFT,
//! checkpoints and generation. Knows nothing of math.

pub mod backend;
pub mod digest;

pub use backend::{DeviceSpec, DeviceSpecError};
