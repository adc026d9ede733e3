//! LLM access. One request type and one [`Client`] for every provider: the OpenAI-compatible
//! client (`openai`) with retries (`retry`), and the trainer's model in-process (`local`);
//! both behind an on-disk cache keyed by the request (`cache`), so a rerun pays for nothing
//! twice.

pub mod cache;
pub mod local;
pub mod openai;
pub mod retry;

use serde::{Deserialize, Serialize};

use crate::strategy::Message;

/// One chat-completions request, everything that determines its reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: f64,
    pub top_p: f64,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// A `response_format` (JSON schema) for servers that support it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub content: String,
    pub usage: Usage,
    /// `stop` (end of sequence or stop string), `length` (token budget), or what the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Answered from the cache: no request was sent.
    #[serde(skip)]
    pub cached: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("environment variable {var} (named by llm.{llm}.api_key_env) is not set")]
    MissingKey { llm: String, var: String },
    #[error("llm.{llm}: {message}")]
    Config { llm: String, message: String },
    #[error("HTTP {status} from {url}: {body}")]
    Status { status: u16, url: String, body: String },
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("unexpected reply from {url}: {message}")]
    BadReply { url: String, message: String },
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { attempts: u32, last: Box<LlmError> },
    #[error("cache {path}: {message}")]
    Cache { path: String, message: String },
    #[error("local model: {0}")]
    Local(String),
}

/// The client for one `[llm.<name>]` section, whichever its provider.
pub enum Client {
    OpenAi(openai::OpenAiClient),
    Local(local::LocalClient),
}

impl Client {
    /// Builds the client; for `local`, loads the model now so a bad path fails early.
    pub fn new(
        name: &str,
        config: &crate::config::LlmConfig,
        cache: cache::CallCache,
    ) -> Result<Self, LlmError> {
        Ok(match config.provider {
            crate::config::Provider::Openai => Self::OpenAi(openai::OpenAiClient::new(name, config, cache)?),
            crate::config::Provider::Local => Self::Local(local::LocalClient::new(name, config, cache)?),
        })
    }

    /// The `model` to put in requests: the configured name for servers, the model file's
    /// identity for the local provider (so cache keys change with the model).
    pub fn model_name(&self, config: &crate::config::LlmConfig) -> String {
        match self {
            Self::OpenAi(_) => config.model.clone().unwrap_or_default(),
            Self::Local(c) => c.model_id().to_owned(),
        }
    }

    pub async fn chat(&self, request: &ChatRequest, call_index: u64) -> Result<ChatResponse, LlmError> {
        match self {
            Self::OpenAi(c) => c.chat(request, call_index).await,
            Self::Local(c) => c.chat(request, call_index).await,
        }
    }
}
