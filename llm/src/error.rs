//! What can go wrong calling an LLM, and whether a retry or a later call can help.

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
    /// The local model failed (not the request's fault): a server answers 5xx, clients retry.
    #[error("local model: {0}")]
    Local(String),
    /// The local model refused the request as given (its prompt, settings or schema): the same
    /// request would be refused again, so it is not retried; a server answers 400.
    #[error("local model refused the request: {0}")]
    LocalRefused(String),
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
            Self::LocalRefused(_) => "local_refused",
            Self::WorkerStopped(_) => "local_worker_stopped",
        }
    }
}
