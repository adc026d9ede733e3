//! Content digests of the files and models a stage reads, cached per file by (size, mtime in
//! ns, inode) in `<run.out_dir>/.cache/file-digests.json`, so a 3 GB model folder is hashed once
//! and not on every run, and a file replaced in place (new mtime or inode) is hashed again.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::digest::{sha256_file, sha256_hex};
use crate::fs::write_atomic;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    sha256: String,
}

impl Entry {
    fn stamp(meta: &std::fs::Metadata) -> (u64, i128, u64) {
        (meta.len(), i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()), meta.ino())
    }
}

/// File digests, remembered across runs (a missing or unreadable cache file is an empty cache).
#[derive(Debug)]
pub struct DigestCache {
    path: Option<PathBuf>,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl DigestCache {
    /// The cache stored at `path` (read now, written whenever a new digest is computed).
    pub fn open(path: PathBuf) -> Self {
        let entries = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Self { path: Some(path), entries: Mutex::new(entries) }
    }

    /// A cache that forgets everything when dropped (tests, one-off commands).
    pub fn in_memory() -> Self {
        Self { path: None, entries: Mutex::new(BTreeMap::new()) }
    }

    /// The sha256 of a file's content.
    pub fn file(&self, path: &Path) -> io::Result<String> {
        let (sha256, new) = self.lookup(path)?;
        if new {
            self.save();
        }
        Ok(sha256)
    }

    /// A file's digest, and whether it was computed now (and so is not saved yet).
    fn lookup(&self, path: &Path) -> io::Result<(String, bool)> {
        let key = std::path::absolute(path)?.to_string_lossy().into_owned();
        let meta = std::fs::metadata(path)?;
        let (size, mtime_ns, inode) = Entry::stamp(&meta);
        if let Some(e) = self.entries.lock().expect("not poisoned").get(&key)
            && (e.size, e.mtime_ns, e.inode) == (size, mtime_ns, inode)
        {
            return Ok((e.sha256.clone(), false));
        }
        let (sha256, _) = sha256_file(path)?;
        // A file changed while it was hashed is not recorded: the next run hashes it again.
        let after = Entry::stamp(&std::fs::metadata(path)?);
        let unchanged = after == (size, mtime_ns, inode);
        if unchanged {
            let entry = Entry { size, mtime_ns, inode, sha256: sha256.clone() };
            self.entries.lock().expect("not poisoned").insert(key, entry);
        }
        Ok((sha256, unchanged))
    }

    /// Writes the digests to the cache file. Losing the cache costs time, never correctness: a
    /// failed write is only logged.
    fn save(&self) {
        let Some(p) = &self.path else { return };
        let json =
            serde_json::to_vec(&*self.entries.lock().expect("not poisoned")).expect("digests serialize");
        if let Err(e) = write_atomic(p, &json) {
            tracing::warn!("{}: cannot save file digests: {e}", p.display());
        }
    }

    /// The content identity of a model: a GGUF (or any single) file's sha256, or for a Hugging
    /// Face folder the sha256 over `relative/path<TAB>sha256` lines of every file that defines it
    /// (weights, config, tokenizer, chat template; hidden files, docs and licences left out).
    pub fn model(&self, path: &Path) -> io::Result<String> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_dir() {
            return self.file(path);
        }
        let mut files = Vec::new();
        defining_files(path, path, &mut files)?;
        if files.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "the model folder holds no model files"));
        }
        files.sort();
        // One save for the folder, not one per file (a sharded checkpoint has dozens).
        let (mut lines, mut new) = (String::new(), false);
        for (rel, abs) in &files {
            let (sha256, fresh) = self.lookup(abs)?;
            lines.push_str(&format!("{rel}\t{sha256}\n"));
            new |= fresh;
        }
        if new {
            self.save();
        }
        Ok(sha256_hex(lines.as_bytes()))
    }
}

fn defining_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        if name.starts_with('.')
            || lower.ends_with(".md")
            || lower.starts_with("license")
            || lower.starts_with("notice")
        {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            defining_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            out.push((rel, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_identified_by_content_and_cached_by_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m");
        std::fs::create_dir_all(model.join("1_Pooling")).unwrap();
        std::fs::write(model.join("config.json"), "{}").unwrap();
        std::fs::write(model.join("model.safetensors"), "weights").unwrap();
        std::fs::write(model.join("1_Pooling/config.json"), "{\"pool\":1}").unwrap();
        std::fs::write(model.join("README.md"), "docs").unwrap();
        let cache_file = tmp.path().join("digests.json");
        let cache = DigestCache::open(cache_file.clone());
        let a = cache.model(&model).unwrap();
        // Docs do not define the model; a weight or a nested config does.
        std::fs::write(model.join("README.md"), "other docs").unwrap();
        assert_eq!(cache.model(&model).unwrap(), a);
        std::fs::write(model.join("1_Pooling/config.json"), "{\"pool\":2}").unwrap();
        let b = cache.model(&model).unwrap();
        assert_ne!(a, b);
        std::fs::write(model.join("model.safetensors"), "weightz").unwrap();
        assert_ne!(cache.model(&model).unwrap(), b);
        // Another process reads the saved digests: the same answer without hashing again
        // (proved by a stale cached value being served for an unchanged stamp).
        let saved: BTreeMap<String, Entry> =
            serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
        assert_eq!(saved.len(), 3);
        let weights = std::path::absolute(model.join("model.safetensors")).unwrap();
        let mut forged = saved.clone();
        forged.get_mut(&*weights.to_string_lossy()).unwrap().sha256 = "cached".into();
        std::fs::write(&cache_file, serde_json::to_vec(&forged).unwrap()).unwrap();
        assert_eq!(DigestCache::open(cache_file).file(&weights).unwrap(), "cached");
        assert_eq!(DigestCache::in_memory().file(&weights).unwrap(), sha256_hex(b"weightz"));
    }
}
