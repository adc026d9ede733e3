//! Why a file could not be imported at all (a row's problems are rows' [`super::Malformed`]).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    /// The reader failed in a way it does not report as an error (a panic in a decoder): the
    /// last line of defence, so that no file can take the process down.
    #[error("{}: malformed file: {why}", path.display())]
    Malformed { path: PathBuf, why: String },
}
