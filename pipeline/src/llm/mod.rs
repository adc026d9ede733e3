//! LLM access. One request type and one [`Client`] for every provider: the OpenAI-compatible
//! client (`openai`) with retries (`retry`), and the trainer's model in-process (`local`);
//! both behind an on-disk cache keyed by the request (`cache`), so a rerun pays for nothing
//! twice.

pub mod cache;
pub mod local;
pub mod openai;
pub mod retry;
pub mod server;

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
    /// 401/403: no retry can help, and the server's body is left out (some echo part of the key).
    #[error("HTTP {status} from {url}: the endpoint refused the credentials; {hint}")]
    Unauthorized { status: u16, url: String, hint: String },
    #[error(
        "HTTP 404 from {url}: the endpoint does not serve model `{model}` (llm.{llm}.model) or has no such route: {body}"
    )]
    UnknownModel { url: String, model: String, llm: String, body: String },
    #[error("HTTP {status} from {url}: {body}")]
    Status { status: u16, url: String, body: String },
    /// The server refused the request itself (a 4xx, or a 5xx whose body is a request
    /// validation error): the same request would be refused again, so it is not retried.
    /// `shape` when the refusal is about how the request is built (its fields, the schema's
    /// dialect): every call would be refused alike, so the stage stops at once.
    #[error("HTTP {status} from {url}: the server rejected the request (not retried): {body}{hint}")]
    Rejected { status: u16, url: String, body: String, hint: String, shape: bool },
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("unexpected reply from {url}: {message}")]
    BadReply { url: String, message: String },
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { attempts: u32, last: Box<LlmError> },
    #[error("no reply within the call's deadline of {seconds:.0} s (llm.<name>.deadline_s){}", last.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    Deadline { seconds: f64, last: Option<Box<LlmError>> },
    #[error("cache {path}: {message}")]
    Cache { path: String, message: String },
    #[error("local model: {0}")]
    Local(String),
    #[error("local model: {0}")]
    WorkerStopped(String),
}

impl LlmError {
    /// A failure no retry and no later call can fix until the user changes something (a
    /// refused key, an unknown model, a dead local model, an unusable cache): the stage stops
    /// at once instead of failing every remaining call.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::MissingKey { .. }
            | Self::Config { .. }
            | Self::Unauthorized { .. }
            | Self::UnknownModel { .. }
            | Self::Cache { .. }
            | Self::WorkerStopped(_) => true,
            Self::Rejected { shape, .. } => *shape,
            Self::RetriesExhausted { last, .. } => last.is_fatal(),
            _ => false,
        }
    }

    /// A short name for per-reason failure counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingKey { .. } => "missing_key",
            Self::Config { .. } => "config",
            Self::Unauthorized { .. } => "unauthorized",
            Self::UnknownModel { .. } => "unknown_model",
            Self::Status { .. } => "http_status",
            Self::Rejected { .. } => "rejected",
            Self::Transport { .. } => "transport",
            Self::BadReply { .. } => "bad_reply",
            Self::RetriesExhausted { last, .. } => last.kind(),
            Self::Deadline { .. } => "deadline",
            Self::Cache { .. } => "cache",
            Self::Local(_) => "local",
            Self::WorkerStopped(_) => "local_worker_stopped",
        }
    }
}

/// The client for one `[llm.<name>]` section, whichever its provider.
pub enum Client {
    OpenAi(Box<openai::OpenAiClient>),
    Local(local::LocalClient),
}

impl Client {
    /// Builds the client; for `local`, loads the model now so a bad path fails early. `cache`
    /// must be keyed by this LLM's endpoint identity.
    pub fn new(llm: &crate::config::ResolvedLlm, cache: cache::CallCache) -> Result<Self, LlmError> {
        Ok(match &llm.endpoint {
            crate::config::Endpoint::Openai { .. } => {
                Self::OpenAi(Box::new(openai::OpenAiClient::new(llm, cache)?))
            }
            crate::config::Endpoint::Local { .. } => Self::Local(local::LocalClient::new(llm, cache)?),
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
