//! Writing files so a crash leaves the old content or the new, never half of it, and never over
//! what the writer reads.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// `path` absolute, with links and `..` resolved as far as it exists (the rest appended as
/// written): two names of one place compare equal before either exists in full.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let abs = if path.is_absolute() { path.to_owned() } else { std::env::current_dir()?.join(path) };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return Ok(rest.iter().rev().fold(real, |p, name| p.join(name)));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(abs),
        }
    }
}

/// Whether writing `out` can destroy `input`: `out` is `input`, holds it, or lies inside it
/// (after [`resolve`]: another name of the same place counts). What every writer checks before
/// it writes: an output never replaces what it was made from.
pub fn overlaps(out: &Path, input: &Path) -> bool {
    match (resolve(out), resolve(input)) {
        (Ok(out), Ok(input)) => out.starts_with(&input) || input.starts_with(&out),
        // A path that cannot be resolved (no working directory) is compared as written.
        _ => out.starts_with(input) || input.starts_with(out),
    }
}
