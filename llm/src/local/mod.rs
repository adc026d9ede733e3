//! The `local` provider: the trainer's model in-process, answering the same chat requests as
//! the OpenAI client. One worker thread owns the model; concurrent `chat` calls queue up and
//! are answered in batches of up to `max_concurrency` (a short gathering window lets a wave of
//! requests arrive together). Sampling is seeded per request, so a reply does not depend on
//! which requests shared its batch, and the call cache in front ([`crate::cache::Cached`])
//! makes reruns free. A request's `response_format` (sent when `json_schema = true`)
//! constrains decoding to its JSON schema, so even a small model writes the JSON a strategy
//! asks for.

mod engine;
mod prepare;

pub use engine::{Completed, Engine, EngineSnapshot, EngineStats};
pub use trainer::text::Content;

use vs_core::{ChatRequest, ChatResponse};

use crate::chat::Chat;
use crate::error::LlmError;
use crate::resolved::{Endpoint, ResolvedLlm};

/// The engine as a provider: requests name the model by its content identity.
pub struct LocalClient {
    engine: Engine,
    model_id: String,
}

impl LocalClient {
    /// Loads the model (on the worker thread, reporting load errors here). `endpoint` is the
    /// LLM's endpoint identity as the call cache is keyed by it (the model's content digest):
    /// requests name the model `local:<endpoint>`.
    pub fn new(llm: &ResolvedLlm, endpoint: &str) -> Result<Self, LlmError> {
        let name = llm.name.as_str();
        let cfg_err = |message: String| LlmError::Config { llm: name.to_owned(), message };
        let Endpoint::Local { model_path, device, precision } = &llm.endpoint else {
            return Err(cfg_err("not a local provider".into()));
        };
        let model_id = format!("local:{endpoint}");
        // Content is read as text: prompts carry imported data and model output, which must not
        // open or close turns (prompts without special-token text tokenize as before).
        let engine = Engine::start(
            name,
            model_path,
            *device,
            *precision,
            llm.throughput.max_concurrency,
            Content::Text,
        )
        .map_err(cfg_err)?;
        Ok(Self { engine, model_id })
    }

    pub fn engine_stats(&self) -> EngineSnapshot {
        self.engine.stats().snapshot()
    }
}

impl Chat for LocalClient {
    /// What identifies this model in requests: its content digest.
    fn model_name(&self) -> String {
        self.model_id.clone()
    }

    async fn chat(&self, request: &ChatRequest, call_index: u64) -> Result<ChatResponse, LlmError> {
        Ok(self.engine.complete(request, call_index).await?.response)
    }
}
