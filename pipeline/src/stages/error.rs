//! What can stop a stage. Each error names what is at fault (the file and line, the config
//! key, the LLM, the model, the unit of work) and [`StageError::rerun`] says whether running
//! again can succeed, so a caller (the runner, a Slurm job's retry, a person) can tell a
//! transient failure from one that needs a change.

use std::fmt;
use std::path::PathBuf;

/// Whether running the stage again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rerun {
    /// As is: the failure may not recur (a full disk, a dropped connection, a busy server).
    Retry,
    /// As is, and it continues from what was kept: too many units failed for good this time,
    /// and a rerun asks only for the rest.
    Resume,
    /// Not until something named in the error changes (a config key, an input file, a model).
    AfterFix,
}

impl fmt::Display for Rerun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rerun::Retry => "a rerun may succeed as is",
            Rerun::Resume => "a rerun continues from what was kept",
            Rerun::AfterFix => "a rerun fails the same way until what is named above changes",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A record file holds a line that is not a record (the file and line).
    #[error(transparent)]
    Records(#[from] vs_core::jsonl::JsonlError),
    /// A config key whose value cannot work.
    #[error("{key}: {message}")]
    Config { key: String, message: String },
    /// An input file (a data set, a task prompt, a model) that is not what the stage needs.
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    /// Records that do not fit together: an upstream stage's outputs changed, or one is
    /// missing what the others have (the message says which stage to rerun).
    #[error("{}: {message}", path.display())]
    Inconsistent { path: PathBuf, message: String },
    /// The data cannot do what the config asks (an arm with no verified example, a data file
    /// with no usable one): the message says what would.
    #[error("{0}")]
    Insufficient(String),
    /// A model that cannot be loaded, encoded for or run (`what`: the student, arm or key).
    #[error("{what}: {source}")]
    Model { what: String, source: trainer::ModelError },
    /// An LLM that cannot be set up or called (`what`: `llm.<name>` or the config key).
    #[error("{what}: {source}")]
    Llm { what: String, source: Box<llm::LlmError> },
    /// A stage's manifest that cannot be read.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// A benchmark file that is missing or not the pinned one.
    #[error(transparent)]
    Benchmark(#[from] eval::BenchmarkError),
    /// The reference grader (math-verify) gave up on this run's cases (it restarted too often
    /// or failed too many in a row); they are graded again on the next run.
    #[error("math-verify ({}) stopped grading: {why}", python.display())]
    GraderStopped { python: PathBuf, why: String },
    /// More units failed for good than `run.max_failed_fraction` allows.
    #[error(transparent)]
    TooManyFailures(Box<TooManyFailures>),
    /// What the stage runs on could not start (an async runtime, a worker thread).
    #[error("{0}")]
    Runtime(String),
    /// One unit of the stage's work failed: which (an arm, a strategy, a student on an arm).
    #[error("{unit}: {source}")]
    In { unit: String, source: Box<StageError> },
    #[error(transparent)]
    Other(#[from] Box<dyn std::error::Error + Send + Sync>),
}

impl StageError {
    pub fn config(key: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Config { key: key.into(), message: message.to_string() }
    }

    pub fn input(path: impl Into<PathBuf>, message: impl fmt::Display) -> Self {
        Self::Input { path: path.into(), message: message.to_string() }
    }

    pub fn llm(what: impl Into<String>, source: llm::LlmError) -> Self {
        Self::Llm { what: what.into(), source: Box::new(source) }
    }

    pub fn model(what: impl Into<String>, source: trainer::ModelError) -> Self {
        Self::Model { what: what.into(), source }
    }

    /// This error as the failure of one `unit` of the stage's work.
    pub fn within(self, unit: impl Into<String>) -> Self {
        Self::In { unit: unit.into(), source: Box::new(self) }
    }

    /// Whether running the stage again can succeed.
    pub fn rerun(&self) -> Rerun {
        match self {
            Self::Io { .. } | Self::Runtime(_) => Rerun::Retry,
            Self::Llm { source, .. } if !source.is_fatal() => Rerun::Retry,
            Self::TooManyFailures(_) => Rerun::Resume,
            Self::In { source, .. } => source.rerun(),
            Self::GraderStopped { .. } => Rerun::Retry,
            Self::Records(_)
            | Self::Config { .. }
            | Self::Input { .. }
            | Self::Inconsistent { .. }
            | Self::Insufficient(_)
            | Self::Model { .. }
            | Self::Llm { .. }
            | Self::Benchmark(_)
            | Self::Manifest(_)
            | Self::Other(_) => Rerun::AfterFix,
        }
    }
}

/// Units of a stage that failed for good, more than `run.max_failed_fraction` of those it
/// planned: what succeeded is kept and a rerun asks only for the rest.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what}: {failed} of {planned} failed ({summary}), more than run.max_failed_fraction = {fraction}; \
     what succeeded is kept and the next run asks only for the rest. First errors: {examples}"
)]
pub struct TooManyFailures {
    pub what: String,
    pub failed: u64,
    pub planned: usize,
    pub fraction: f64,
    /// Failures by reason, `reason: count, ...`.
    pub summary: String,
    /// The first few errors, ` | `-separated.
    pub examples: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_unit_and_say_whether_a_rerun_helps() {
        let e = StageError::config("generate.k", "must be >= 1").within("vs_multi");
        assert_eq!(e.to_string(), "vs_multi: generate.k: must be >= 1");
        assert_eq!(e.rerun(), Rerun::AfterFix);
        let io = StageError::Io { path: "x.jsonl".into(), source: std::io::Error::other("disk full") };
        assert_eq!(io.rerun(), Rerun::Retry);
        let many = StageError::TooManyFailures(Box::new(TooManyFailures {
            what: "solve direct".into(),
            failed: 3,
            planned: 10,
            fraction: 0.02,
            summary: "transport: 3".into(),
            examples: "timeout".into(),
        }));
        assert_eq!(many.rerun(), Rerun::Resume);
        let transient = llm::LlmError::Transport { url: "http://x".into(), message: "reset".into() };
        assert_eq!(StageError::llm("llm.gen", transient).rerun(), Rerun::Retry);
        let refused = llm::LlmError::MissingKey { llm: "gen".into(), var: "KEY".into() };
        assert_eq!(StageError::llm("llm.gen", refused).rerun(), Rerun::AfterFix);
    }
}
