//! LLM access. One request type (`vs_core::chat`) and one [`Client`] for every provider: each
//! provider answers a request uncached (`chat`'s trait): the OpenAI-compatible client
//! (`openai`) with retries (`retry`), and the trainer's model in-process (`local`); one
//! on-disk cache keyed by the request (`cache`) goes in front of either, so a rerun pays for
//! nothing twice. Also what serves and starts models: the server a stage
//! launches (`server`) and `pipeline serve`'s HTTP front of the local engine (`serve`).
//! An `[llm.<name>]` section's parameters are this crate's types (`params`, `resolved`);
//! the config schema composes them.

pub mod cache;
pub mod chat;
pub mod client;
pub mod error;
pub mod local;
pub mod openai;
pub mod params;
pub mod resolved;
pub mod retry;
pub mod serve;
pub mod server;

pub use client::Client;
pub use error::LlmError;
pub use params::{LlmConfig, Provider, ServeConfig, ServeEngine, StructuredOutput};
pub use resolved::{Endpoint, ResolvedLlm, Sampling, Throughput};
