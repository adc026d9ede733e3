//! Writing files atomically, and JSONL record files that a read never changes.

use std::fs;
use std::path::PathBuf;

use vs_core::fs::write_atomic;
use vs_core::jsonl::{JsonlError, append_file, read_jsonl, write_line};

/// A scratch folder (removed when dropped) and `name` in it.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn atomic_write_replaces_and_leaves_no_temp_file() {
    let (dir, p) = scratch("sub/manifest.json");
    write_atomic(&p, b"one").unwrap();
    write_atomic(&p, b"two").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"two");
    let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("manifest.json")]);
    // Readable like any file the process creates (the umask decides), not private.
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    let created = dir.path().join("plain");
    fs::write(&created, b"x").unwrap();
    assert_eq!(mode, fs::metadata(&created).unwrap().permissions().mode() & 0o777);
}

#[test]
fn reading_skips_a_torn_tail_without_writing_and_appending_cuts_it() {
    let (dir, p) = scratch("r.jsonl");
    fs::write(&p, "1\n2\n{\"torn").unwrap();
    let rows: Vec<u32> = read_jsonl(&p).unwrap();
    assert_eq!(rows, vec![1, 2]);
    assert_eq!(fs::read_to_string(&p).unwrap(), "1\n2\n{\"torn", "a read never writes");
    let mut f = append_file(&p).unwrap();
    write_line(&mut f, &p, &3u32).unwrap();
    assert_eq!(fs::read_to_string(&p).unwrap(), "1\n2\n3\n");
    // A torn file with no complete line at all, and a missing file.
    fs::write(&p, "{\"no newline").unwrap();
    drop(append_file(&p).unwrap());
    assert_eq!(fs::read_to_string(&p).unwrap(), "");
    assert!(read_jsonl::<u32>(&dir.path().join("missing.jsonl")).unwrap().is_empty());
}

#[test]
fn a_bad_complete_line_names_the_file_and_line() {
    let (_dir, p) = scratch("r.jsonl");
    fs::write(&p, "1\nnope\n").unwrap();
    let err = read_jsonl::<u32>(&p).unwrap_err();
    assert!(matches!(err, JsonlError::Parse { line: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("r.jsonl:2:"), "{err}");
}

#[test]
fn a_same_size_rewrite_with_the_same_mtime_gets_a_new_digest() {
    use vs_core::DigestCache;
    use vs_core::digest::sha256_hex;
    let (dir, p) = scratch("tokenizer.json");
    fs::write(&p, "aaaa").unwrap();
    let cache_file = dir.path().join("file-digests.json");
    let cache = DigestCache::open(cache_file.clone());
    assert_eq!(cache.file(&p).unwrap(), sha256_hex(b"aaaa"));
    // Rewritten in place, the same size, and its mtime set back: size, mtime and inode agree.
    let stamp = |p: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(p).unwrap();
        (m.len(), m.mtime(), m.mtime_nsec(), m.ino())
    };
    let before = stamp(&p);
    let mtime = fs::metadata(&p).unwrap().modified().unwrap();
    fs::write(&p, "bbbb").unwrap();
    fs::File::options().write(true).open(&p).unwrap().set_modified(mtime).unwrap();
    assert_eq!(stamp(&p), before);
    assert_eq!(cache.file(&p).unwrap(), sha256_hex(b"bbbb"));
    assert_eq!(DigestCache::open(cache_file).file(&p).unwrap(), sha256_hex(b"bbbb"), "another run");
}

/// Issue 28, item 10: a line that is not UTF-8 is an error naming that line (it was an I/O
/// error of the whole file, "stream did not contain valid UTF-8", with no line), and a byte
/// order mark is no part of the first record.
#[test]
fn a_line_that_is_not_utf8_is_named_and_a_bom_is_skipped() {
    let (_dir, p) = scratch("r.jsonl");
    fs::write(&p, b"\xEF\xBB\xBF\"a\"\n\"b\"\n").unwrap();
    assert_eq!(read_jsonl::<String>(&p).unwrap(), ["a", "b"]);
    fs::write(&p, b"\"a\"\n\"caf\xE9\"\n").unwrap();
    let err = read_jsonl::<String>(&p).unwrap_err();
    assert!(matches!(err, JsonlError::Parse { line: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("r.jsonl:2:"), "{err}");
}

/// Issue 28, item 12: reading changes nothing, on a file the process may not write (the bytes
/// and the modification time are checked too: as root, permissions do not stop a write).
#[test]
fn reading_a_read_only_file_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, p) = scratch("r.jsonl");
    fs::write(&p, "1\n2\n{\"torn").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
    let before = (fs::read(&p).unwrap(), fs::metadata(&p).unwrap().modified().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(read_jsonl::<u32>(&p).unwrap(), [1, 2]);
    assert_eq!((fs::read(&p).unwrap(), fs::metadata(&p).unwrap().modified().unwrap()), before);
}

/// An output overlaps an input when it is it, holds it or lies inside it, under any name.
#[test]
fn overlaps_sees_through_other_names_of_a_place() {
    use vs_core::fs::overlaps;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    fs::create_dir_all(run.join("verify")).unwrap();
    std::os::unix::fs::symlink(&run, dir.path().join("link")).unwrap();
    let verify = run.join("verify");
    assert!(overlaps(&verify, &verify));
    assert!(overlaps(&dir.path().join("link/verify/new/deeper"), &verify), "inside, by a link, not yet made");
    assert!(overlaps(&run, &verify), "holds it");
    assert!(overlaps(&run.join("verify/../verify/x.json"), &verify));
    assert!(!overlaps(&run.join("exports"), &verify));
    assert!(!overlaps(&run.join("verify-old"), &verify), "a longer name is another place");
}
