//! The client for one `[llm.<name>]` section, whichever its provider.

use vs_core::{ChatRequest, ChatResponse};

use crate::cache::CallCache;
use crate::error::LlmError;
use crate::resolved::{Endpoint, ResolvedLlm};
use crate::{local, openai};

/// The client for one `[llm.<name>]` section, whichever its provider.
pub enum Client {
    OpenAi(Box<openai::OpenAiClient>),
    Local(local::LocalClient),
}

impl Client {
    /// Builds the client; for `local`, loads the model now so a bad path fails early. `cache`
    /// must be keyed by this LLM's endpoint identity.
    pub fn new(llm: &ResolvedLlm, cache: CallCache) -> Result<Self, LlmError> {
        Ok(match &llm.endpoint {
            Endpoint::Openai { .. } => Self::OpenAi(Box::new(openai::OpenAiClient::new(llm, cache)?)),
            Endpoint::Local { .. } => Self::Local(local::LocalClient::new(llm, cache)?),
        })
    }

    /// The `model` to put in requests: the configured name for servers, the model's content
    /// identity for the local provider.
    pub fn model_name(&self) -> String {
        match self {
            Self::OpenAi(c) => c.model().to_owned(),
            Self::Local(c) => c.model_id().to_owned(),
        }
    }

    /// Call `call_index` of `request` for `arm` (the strategy or evaluation target it serves).
    pub async fn chat(
        &self,
        request: &ChatRequest,
        arm: &str,
        call_index: u64,
    ) -> Result<ChatResponse, LlmError> {
        match self {
            Self::OpenAi(c) => c.chat(request, arm, call_index).await,
            Self::Local(c) => c.chat(request, arm, call_index).await,
        }
    }
}
