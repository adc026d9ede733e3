//! Errors: a manifest or layers file that cannot be read (fatal), and source problems (a file that
//! does not parse, a `mod` whose file is missing), which are reported and skipped.

use std::path::PathBuf;

/// Why the check could not run or could not see part of the workspace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    #[error("{}:{line}: does not parse ({message}); skipped", path.display())]
    Parse { path: PathBuf, line: usize, message: String },
    #[error("{}:{line}: `mod {name};` has no file (looked for {looked}); skipped", path.display())]
    MissingModule { path: PathBuf, line: usize, name: String, looked: String },
}

pub fn read(path: &std::path::Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })
}
