//! Append-only JSONL files, the resumable record stores of the stages: complete lines are
//! records. Reading never writes (a read-only run folder can be reported, and a reader racing a
//! writer cannot cut its line); a torn last line (a crash mid-write) is skipped by readers and
//! cut off only when the file is opened to append again.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A complete line that is not the record expected: the file and its 1-based line.
    #[error("{}:{line}: {source}", path.display())]
    Parse { path: PathBuf, line: usize, source: serde_json::Error },
}

impl JsonlError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }
}

/// The complete lines of a JSONL file (none when it does not exist; a torn last line is
/// skipped; a leading UTF-8 byte order mark is no part of the first record). A complete line
/// that does not parse, or is not UTF-8, is an error naming the file and line.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, JsonlError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(JsonlError::io(path)(e)),
    };
    let mut rows = Vec::new();
    let mut reader = BufReader::new(file);
    // Bytes, not a `String`: one line that is not UTF-8 is that line's error, not an I/O error
    // of the whole file without a line number.
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(JsonlError::io(path))?;
        if read == 0 || !line.ends_with(b"\n") {
            break;
        }
        let text = match rows.is_empty() {
            true => line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line),
            false => &line[..],
        };
        let row: T = serde_json::from_slice(text).map_err(|source| JsonlError::Parse {
            path: path.to_owned(),
            line: rows.len() + 1,
            source,
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Opens `path` to append records (created when missing), first cutting off a torn last line
/// so the next record starts on a line of its own.
pub fn append_file(path: &Path) -> Result<File, JsonlError> {
    let mut file =
        OpenOptions::new().create(true).read(true).append(true).open(path).map_err(JsonlError::io(path))?;
    let complete = complete_len(&mut file).map_err(JsonlError::io(path))?;
    if complete < file.metadata().map_err(JsonlError::io(path))?.len() {
        file.set_len(complete).map_err(JsonlError::io(path))?;
    }
    Ok(file)
}

/// The length of the file up to and including its last newline.
fn complete_len(file: &mut File) -> io::Result<u64> {
    let mut end = file.metadata()?.len();
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

pub fn write_line<T: Serialize>(file: &mut File, path: &Path, row: &T) -> Result<(), JsonlError> {
    let mut line = serde_json::to_string(row).expect("records serialize");
    line.push('\n');
    file.write_all(line.as_bytes()).map_err(JsonlError::io(path))
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
pub fn sync(file: &File, path: &Path) -> Result<(), JsonlError> {
    file.sync_data().map_err(JsonlError::io(path))
}

/// Writes `rows` as a whole new file, atomically (for stages that rewrite their output).
pub fn write_all<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), JsonlError> {
    let text: String =
        rows.iter().map(|r| serde_json::to_string(r).expect("records serialize") + "\n").collect();
    crate::fs::write_atomic(path, text.as_bytes()).map_err(JsonlError::io(path))
}

/// The records of `path` made under `identity`; others (an earlier config's) are dropped from
/// the file, and how many is logged.
pub fn keep_identity<T: Serialize + for<'de> Deserialize<'de>>(
    path: &Path,
    identity: &str,
    what: &str,
    of: impl Fn(&T) -> &String,
) -> Result<Vec<T>, JsonlError> {
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
