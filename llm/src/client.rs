//! The client for one `[llm.<name>]` section, whichever its provider: the provider, uncached,
//! with the one call cache in front.

use vs_core::{ChatRequest, ChatResponse};

use crate::cache::{Cached, CallCache};
use crate::chat::Chat;
use crate::error::LlmError;
use crate::local::LocalClient;
use crate::openai::OpenAiClient;
use crate::resolved::{Endpoint, ResolvedLlm};

/// The client for one `[llm.<name>]` section, whichever its provider: [`Client::new`],
/// [`Cached::chat`], [`Cached::model_name`].
pub type Client = Cached<Uncached>;

/// Whichever provider answers an `[llm.<name>]` section, uncached.
pub enum Uncached {
    OpenAi(Box<OpenAiClient>),
    Local(LocalClient),
}

impl Client {
    /// Builds the client; for `local`, loads the model now so a bad path fails early. `cache`
    /// must be keyed by this LLM's endpoint identity (the local model is named by it too).
    pub fn new(llm: &ResolvedLlm, cache: CallCache) -> Result<Self, LlmError> {
        let provider = match &llm.endpoint {
            Endpoint::Openai { .. } => Uncached::OpenAi(Box::new(OpenAiClient::new(llm)?)),
            Endpoint::Local { .. } => Uncached::Local(LocalClient::new(llm, cache.endpoint())?),
        };
        Ok(cache.in_front_of(provider))
    }
}

impl Uncached {
    /// What the local engine has done so far (none for a remote provider, whose batching is
    /// its own).
    pub fn engine_stats(&self) -> Option<crate::local::EngineSnapshot> {
        match self {
            Self::OpenAi(_) => None,
            Self::Local(c) => Some(c.engine_stats()),
        }
    }
}

impl Chat for Uncached {
    fn model_name(&self) -> String {
        match self {
            Self::OpenAi(c) => c.model_name(),
            Self::Local(c) => c.model_name(),
        }
    }

    async fn chat(&self, request: &ChatRequest, call_index: u64) -> Result<ChatResponse, LlmError> {
        match self {
            Self::OpenAi(c) => c.chat(request, call_index).await,
            Self::Local(c) => c.chat(request, call_index).await,
        }
    }
}
