//! Content digests of the files and models a stage reads. A file under 64 MB is hashed each
//! time it is asked for (keyed by its content, nothing to go stale); a bigger one (a model's
//! weights) is hashed once and its digest kept in `<run.out_dir>/.cache/file-digests.json`,
//! keyed by its size, mtime and ctime (in ns) and inode, so a 3 GB model folder is not hashed on
//! every run. The ctime cannot be set back by anyone (touch sets the mtime, and that itself
//! moves the ctime), so a same-size rewrite that restores the mtime is still seen; and a digest
//! taken within two seconds of the file's last change is not reused, since a rewrite in the same
//! clock tick could carry the very same timestamps (git's "racy clean" problem).

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::digest::{sha256_file, sha256_hex};
use crate::fs::write_atomic;

/// Files smaller than this are hashed every time rather than trusted by their stamp.
const HASH_EACH_TIME_BELOW: u64 = 64 << 20;
/// A digest taken less than this after the file's last change (its ctime) is not reused: file
/// timestamps advance in coarse clock ticks, and a rewrite within the tick could match them.
const RACY_NS: i128 = 2_000_000_000;

/// What identifies a file's version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    /// Wall-clock time (ns since the epoch) when hashing began.
    hashed_at_ns: i128,
    sha256: String,
}

impl Entry {
    /// Whether this digest answers for a file stamped `now`.
    fn holds_for(&self, now: &Stamp) -> bool {
        self.stamp == *now && self.stamp.ctime_ns < self.hashed_at_ns - RACY_NS
    }
}

fn now_ns() -> i128 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_nanos() as i128
}

/// File digests, remembered across runs (a missing or unreadable cache file is an empty cache).
#[derive(Debug)]
pub struct DigestCache {
    path: Option<PathBuf>,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Files smaller than this are hashed every time ([`HASH_EACH_TIME_BELOW`]; tests lower it).
    hash_below: u64,
}

impl DigestCache {
    /// The cache stored at `path` (read now, written whenever a new digest is computed).
    pub fn open(path: PathBuf) -> Self {
        let entries = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Self { path: Some(path), entries: Mutex::new(entries), hash_below: HASH_EACH_TIME_BELOW }
    }

    /// A cache that forgets everything when dropped (tests, one-off commands).
    pub fn in_memory() -> Self {
        Self { path: None, entries: Mutex::new(BTreeMap::new()), hash_below: HASH_EACH_TIME_BELOW }
    }

    /// The sha256 of a file's content.
    pub fn file(&self, path: &Path) -> io::Result<String> {
        let (sha256, new) = self.lookup(path)?;
        if new {
            self.save();
        }
        Ok(sha256)
    }

    /// A file's digest, and whether it was newly recorded (and so is not saved yet).
    fn lookup(&self, path: &Path) -> io::Result<(String, bool)> {
        let meta = std::fs::metadata(path)?;
        if meta.len() < self.hash_below {
            return Ok((sha256_file(path)?.0, false));
        }
        let key = std::path::absolute(path)?.to_string_lossy().into_owned();
        let stamp = Stamp::of(&meta);
        if let Some(e) = self.entries.lock().expect("not poisoned").get(&key)
            && e.holds_for(&stamp)
        {
            return Ok((e.sha256.clone(), false));
        }
        let hashed_at_ns = now_ns();
        let (sha256, _) = sha256_file(path)?;
        // A file changed while it was hashed is not recorded: the next run hashes it again.
        let unchanged = Stamp::of(&std::fs::metadata(path)?) == stamp;
        if unchanged {
            let entry = Entry { stamp, hashed_at_ns, sha256: sha256.clone() };
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

    /// A cache that keeps every file by its stamp, however small.
    fn by_stamp(path: PathBuf) -> DigestCache {
        DigestCache { hash_below: 0, ..DigestCache::open(path) }
    }

    /// The saved entries, each made to look hashed long after its file last changed (as it is
    /// on any later run), with `sha256` where given.
    fn age(cache_file: &Path, sha256: Option<&str>) {
        let mut saved: BTreeMap<String, Entry> =
            serde_json::from_str(&std::fs::read_to_string(cache_file).unwrap()).unwrap();
        for e in saved.values_mut() {
            e.hashed_at_ns = e.stamp.ctime_ns + 10 * RACY_NS;
            if let Some(s) = sha256 {
                e.sha256 = s.to_owned();
            }
        }
        std::fs::write(cache_file, serde_json::to_vec(&saved).unwrap()).unwrap();
    }

    #[test]
    fn folders_are_identified_by_content_and_big_files_cached_by_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m");
        std::fs::create_dir_all(model.join("1_Pooling")).unwrap();
        std::fs::write(model.join("config.json"), "{}").unwrap();
        std::fs::write(model.join("model.safetensors"), "weights").unwrap();
        std::fs::write(model.join("1_Pooling/config.json"), "{\"pool\":1}").unwrap();
        std::fs::write(model.join("README.md"), "docs").unwrap();
        let cache_file = tmp.path().join("digests.json");
        let cache = by_stamp(cache_file.clone());
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
        // (proved by a stale cached value being served for an unchanged stamp)...
        age(&cache_file, Some("cached"));
        let weights = std::path::absolute(model.join("model.safetensors")).unwrap();
        assert_eq!(by_stamp(cache_file.clone()).file(&weights).unwrap(), "cached");
        assert_eq!(DigestCache::in_memory().file(&weights).unwrap(), sha256_hex(b"weightz"));
        // ... but not for a small file, which is hashed each time.
        assert_eq!(DigestCache::open(cache_file).file(&weights).unwrap(), sha256_hex(b"weightz"));
    }

    #[test]
    fn a_same_size_rewrite_that_restores_the_mtime_of_a_big_file_is_hashed_again() {
        let tmp = tempfile::tempdir().unwrap();
        let (file, cache_file) = (tmp.path().join("model.gguf"), tmp.path().join("digests.json"));
        std::fs::write(&file, "aaaa").unwrap();
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        assert_eq!(by_stamp(cache_file.clone()).file(&file).unwrap(), sha256_hex(b"aaaa"));
        age(&cache_file, None);
        assert_eq!(by_stamp(cache_file.clone()).file(&file).unwrap(), sha256_hex(b"aaaa"));
        // A clock tick later: same size, same inode, the mtime set back; only the ctime moved.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = Stamp::of(&std::fs::metadata(&file).unwrap());
        std::fs::write(&file, "bbbb").unwrap();
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
        let after = Stamp::of(&std::fs::metadata(&file).unwrap());
        assert_eq!((after.size, after.mtime_ns, after.inode), (before.size, before.mtime_ns, before.inode));
        assert_eq!(by_stamp(cache_file).file(&file).unwrap(), sha256_hex(b"bbbb"));
    }

    #[test]
    fn a_digest_taken_right_after_a_change_is_not_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let (file, cache_file) = (tmp.path().join("model.gguf"), tmp.path().join("digests.json"));
        std::fs::write(&file, "aaaa").unwrap();
        by_stamp(cache_file.clone()).file(&file).unwrap();
        // Forged, with the stamp unchanged: it would be served if the entry were trusted.
        let mut saved: BTreeMap<String, Entry> =
            serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
        saved.values_mut().for_each(|e| e.sha256 = "racy".into());
        std::fs::write(&cache_file, serde_json::to_vec(&saved).unwrap()).unwrap();
        assert_eq!(by_stamp(cache_file).file(&file).unwrap(), sha256_hex(b"aaaa"));
    }
}
