//! Append-only JSONL files, the resumable record stores of the stages: complete lines are
//! records, a torn last line (a crash mid-write) is cut off before appending again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StageError;

/// The complete lines of a JSONL file (a torn last line from a crash is cut off). A complete
/// line that does not parse is an error naming the file and line.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, StageError> {
    let io = |source| StageError::Io { path: path.to_owned(), source };
    let Ok(file) = File::open(path) else { return Ok(Vec::new()) };
    let mut rows = Vec::new();
    let mut complete_bytes = 0u64;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(io)?;
        if read == 0 || !line.ends_with('\n') {
            break;
        }
        let row: T = serde_json::from_str(&line)
            .map_err(|e| StageError::Failed(format!("{}:{}: {e}", path.display(), rows.len() + 1)))?;
        rows.push(row);
        complete_bytes += read as u64;
    }
    // Drop a torn tail so appends start on a fresh line.
    let f = OpenOptions::new().write(true).open(path).map_err(io)?;
    f.set_len(complete_bytes).map_err(io)?;
    Ok(rows)
}

pub fn append_file(path: &Path) -> Result<File, StageError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| StageError::Io { path: path.to_owned(), source })
}

pub fn write_line<T: Serialize>(file: &mut File, path: &Path, row: &T) -> Result<(), StageError> {
    let mut line = serde_json::to_string(row).expect("records serialize");
    line.push('\n');
    file.write_all(line.as_bytes()).map_err(|source| StageError::Io { path: path.to_owned(), source })
}

/// When appended records are fsync'd: after `every` records or a second, whichever comes
/// first (and at the end). Records reach the page cache as soon as written (a killed process
/// loses none); the fsync bounds what a machine crash can lose, without one per record.
pub struct Syncer {
    every: usize,
    unsynced: usize,
    since: std::time::Instant,
}

impl Syncer {
    pub fn new(every: usize) -> Self {
        Self { every: every.max(1), unsynced: 0, since: std::time::Instant::now() }
    }

    /// Counts one record written; true when a sync is due (then call [`Syncer::synced`]).
    pub fn due(&mut self) -> bool {
        self.unsynced += 1;
        self.unsynced >= self.every || self.since.elapsed() >= std::time::Duration::from_secs(1)
    }

    pub fn synced(&mut self) {
        self.unsynced = 0;
        self.since = std::time::Instant::now();
    }
}

/// `fsync`s the data of `file`.
pub fn sync(file: &File, path: &Path) -> Result<(), StageError> {
    file.sync_data().map_err(|source| StageError::Io { path: path.to_owned(), source })
}

/// Writes `rows` as a whole new file, atomically (for stages that rewrite their output).
pub fn write_all<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), StageError> {
    let text: String =
        rows.iter().map(|r| serde_json::to_string(r).expect("records serialize") + "\n").collect();
    crate::manifest::write_atomic(path, text.as_bytes())
        .map_err(|source| StageError::Io { path: path.to_owned(), source })
}

/// The records of `path` made under `identity`; others (an earlier config's) are dropped from
/// the file, and how many is logged.
pub fn keep_identity<T: Serialize + for<'de> Deserialize<'de>>(
    path: &Path,
    identity: &str,
    what: &str,
    of: impl Fn(&T) -> &String,
) -> Result<Vec<T>, StageError> {
    let rows: Vec<T> = read_jsonl(path)?;
    let total = rows.len();
    let kept: Vec<T> = rows.into_iter().filter(|r| of(r) == identity).collect();
    if kept.len() < total {
        tracing::info!(
            "{what}: dropped {} of {total} records in {} made under another identity (the config, a model or the code changed)",
            total - kept.len(),
            path.display()
        );
        write_all(path, &kept)?;
    }
    Ok(kept)
}
