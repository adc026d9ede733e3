use std::path::PathBuf;

/// Everything that can go wrong loading or running a model, each naming what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model config: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("tensor `{name}` is missing from {source_name}")]
    MissingTensor { name: String, source_name: String },
    #[error("tensor `{name}` has shape {found:?}, the model expects {expected:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("{source_name}: tensors the model does not use: {names}")]
    UnusedTensors { source_name: String, names: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("generation: {0}")]
    Generation(String),
    /// A request's grammar (structured output) does not compile, or cannot be followed.
    #[error("grammar: {0}")]
    Grammar(String),
    /// The caller cancelled the request (nobody waits for its reply).
    #[error("generation: cancelled")]
    Cancelled,
}

impl ModelError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format { path: path.into(), message: message.into() }
    }

    /// The error as one request of a batch failed: `request {i}: ...`.
    pub fn for_request(self, i: usize) -> Self {
        match self {
            Self::Generation(m) => Self::Generation(format!("request {i}: {m}")),
            Self::Grammar(m) => Self::Grammar(format!("request {i}: {m}")),
            other => other,
        }
    }
}
