//! Config errors that say where: the file and line (or the `--set` argument) and the key path.

use std::fmt;
use std::path::{Path, PathBuf};

/// A key path such as `llm.local.model_path` or `generate.strategies[1]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn new() -> Self {
        Self::default()
    }

    /// A path from dotted keys; an all-digit segment is an array index.
    pub fn parse(dotted: &str) -> Self {
        Self(
            dotted
                .split('.')
                .map(|s| s.parse().map(Segment::Index).unwrap_or_else(|_| Segment::Key(s.to_owned())))
                .collect(),
        )
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(Segment::Key(key.into()));
        self
    }

    pub fn index(mut self, index: usize) -> Self {
        self.0.push(Segment::Index(index));
        self
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    pub(super) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let mut out = Self::new();
        for seg in path.iter() {
            match seg {
                S::Map { key } => out.0.push(Segment::Key(key.clone())),
                S::Seq { index } => out.0.push(Segment::Index(*index)),
                S::Enum { .. } => {}
                S::Unknown => break,
            }
        }
        out
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where a config value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File {
        path: PathBuf,
        line: Option<usize>,
    },
    /// A `--set` argument, by its key (the value is not repeated: it may be sensitive).
    Override {
        key: String,
    },
}

impl Origin {
    pub fn file(path: &Path, line: Option<usize>) -> Self {
        Self::File { path: path.to_owned(), line }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line: Some(line) } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Override { key } => write!(f, "--set {key}"),
        }
    }
}

/// One thing wrong with the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    /// Empty for whole-file problems (unreadable, bad syntax outside any key).
    pub key: KeyPath,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.segments().is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.message)
        }
    }
}

/// Everything wrong with a config, one problem a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    pub fn new(problems: Vec<Problem>) -> Self {
        Self { problems }
    }

    pub fn single(origin: Origin, key: Option<KeyPath>, message: impl Into<String>) -> Self {
        Self::new(vec![Problem { origin, key: key.unwrap_or_default(), message: message.into() }])
    }
}
