//! The Llama-family causal LM in burn on the libtorch backend: weights, tokenizer, SFT,
//! checkpoints and generation; and a BERT sentence encoder for embeddings. Knows nothing of math.

pub mod backend;
pub mod embed;
pub mod error;
pub mod export;
pub mod generate;
pub mod load;
pub mod model;
pub mod precision;
pub mod pretrained;
pub mod sft;
pub mod text;

pub use backend::{DeviceSpec, DeviceSpecError};
pub use error::ModelError;
pub use precision::{Precision, PrecisionChoice};
pub use pretrained::Pretrained;
