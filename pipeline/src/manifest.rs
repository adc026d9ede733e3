//! A stage's `manifest.json`: what it read (input digests, the config slice), what it wrote
//! (sha256 of every output), counts and timings. A matching manifest lets the next run skip
//! the stage. It is written last and atomically, so its presence means the stage finished.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use trainer::digest::{sha256_file, sha256_hex};

use crate::stages::StageName;

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
        write_atomic(path, &json).map_err(|source| ManifestError::Io { path: path.to_owned(), source })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a valid manifest: {source}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
}

/// Replaces `path` with `contents` atomically: a uniquely named temp file in the same folder,
/// fsync'd, renamed over `path`, then the folder fsync'd. A failure removes the temp file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // 0o666 before the umask, as `File::create` would: tempfile's default 0o600 would hide
    // run outputs from the rest of a group sharing a cluster's scratch space.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/manifest.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> =
            fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("manifest.json")]);
        // Readable like any file the process creates (the umask decides), not private.
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        let created = dir.path().join("plain");
        fs::write(&created, b"x").unwrap();
        assert_eq!(mode, fs::metadata(&created).unwrap().permissions().mode() & 0o777);
    }

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
