//! Why a server could not be started or used.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{key}: cannot start `{program}`: {source} (is it installed on this node?)")]
    Spawn { key: String, program: String, source: std::io::Error },
    #[error("{key}: {message}; the server's log ({log}) ends with:\n{tail}")]
    Failed { key: String, message: String, log: PathBuf, tail: String },
    /// The configured port is taken before the server starts.
    #[error(
        "{key}.port = {port}: 127.0.0.1:{port} is already in use by another process; stop it, choose \
         another port, or set port = 0 (a free one)"
    )]
    PortInUse { key: String, port: u16 },
    /// `serve.command` cannot be run as it is written.
    #[error("{key}.command: {message}")]
    Command { key: String, message: String },
    #[error("{1}: {0}")]
    Io(std::io::Error, String),
}
