//! A stage's `manifest.json`: what it read (input digests, the config slice), what it wrote
//! (sha256 of every output), counts and timings. A matching manifest lets the next run skip
//! the stage. It is written last and atomically, so its presence means the stage finished.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use vs_core::digest::sha256_file;

use vs_core::StageName;

/// A file and its content hash. `path` is relative to the run directory for files inside it,
/// otherwise as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

impl FileDigest {
    /// Hashes `path`, recording it as `label`.
    pub fn of(path: &Path, label: String) -> io::Result<Self> {
        let (sha256, bytes) = sha256_file(path)?;
        Ok(Self { path: label, sha256, bytes })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub stage: StageName,
    /// The stage implementation's format version; a bump invalidates old outputs.
    pub stage_version: u32,
    pub pipeline_version: String,
    /// The config keys this stage's outputs depend on. Never holds secrets.
    pub config: serde_json::Value,
    pub config_sha256: String,
    pub inputs: Vec<FileDigest>,
    pub outputs: Vec<FileDigest>,
    /// Records kept, dropped (by reason), failed (by kind), ...
    pub counts: BTreeMap<String, serde_json::Value>,
    /// Token usage, diversity, per-part timings, ...
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub started_at: String,
    pub finished_at: String,
    pub wall_seconds: f64,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Option<Self>, ManifestError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ManifestError::Io { path: path.to_owned(), source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| ManifestError::Parse { path: path.to_owned(), source })
    }

    /// Writes via a temporary file, fsync and rename, so a crash leaves the old manifest or
    /// the new one, never half of one.
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        let json = serde_json::to_vec_pretty(self).expect("manifests serialize");
        vs_core::fs::write_atomic(path, &json)
            .map_err(|source| ManifestError::Io { path: path.to_owned(), source })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a valid manifest: {source}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_manifest_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.json");
        assert!(Manifest::read(&p).unwrap().is_none());
        fs::write(&p, "{ not json").unwrap();
        let err = Manifest::read(&p).unwrap_err().to_string();
        assert!(err.contains("manifest.json") && err.contains("not a valid manifest"), "{err}");
    }
}
