//! One decoder for the Llama family (Llama 2/3, SmolLM2, Qwen2/2.5, Qwen3), switched by
//! config flags; fields carry transformers' module names so checkpoints map one to one: each
//! module loads its tensors under its field name (`load::weights::Weights::pp`), and export
//! names them by their path in the module tree.

pub mod attention;
pub mod cache;
pub mod config;
pub mod decoder;
pub mod fused;
pub mod layers;
pub mod mask;
pub mod mlp;
pub mod packed;
pub mod rope;

pub use cache::KvCache;
pub use config::{Family, HfConfig, ModelConfig};
pub use decoder::{CausalLm, Inputs};
