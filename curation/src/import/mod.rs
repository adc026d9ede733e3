//! Problems from elsewhere: rows of a JSONL, JSON or Parquet file mapped onto our fields
//! (`question` required; `answer`, `solution` and `id` optional) by a [`FieldMap`]. Every row that
//! cannot be used is named by where it sits (`file:line` for JSONL, `file[row]` otherwise) and
//! counted with its reason; nothing is skipped silently. Values are kept as the file writes them
//! (a number is its source text); a reader never panics and never loops: a file it cannot read
//! is an [`ImportError`] naming it.

mod error;
mod json;
mod parquet;
mod row;

use std::path::Path;

pub use error::ImportError;
pub use row::{FieldMap, Imported, ImportedRow, Malformed, repeated_id};

/// The importer's version, in the identity of an imported set: 2 since numbers are their
/// source text (no longer an `f64`'s), a byte order mark is skipped and a JSONL line that is not
/// UTF-8 is that row's problem.
pub const VERSION: u32 = 2;

/// What a file holds, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Json,
    Parquet,
}

impl Format {
    pub fn of(path: &Path) -> Result<Self, ImportError> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("jsonl" | "ndjson") => Ok(Format::Jsonl),
            Some("json") => Ok(Format::Json),
            Some("parquet") => Ok(Format::Parquet),
            _ => Err(ImportError::Format {
                path: path.to_owned(),
                message: "unknown format: expected a .jsonl, .json or .parquet file".into(),
            }),
        }
    }
}

/// Reads every row of `path` through `fields`.
pub fn read(path: &Path, fields: &FieldMap) -> Result<Imported, ImportError> {
    read_as(path, fields, &path.display().to_string())
}

/// As [`read`], rows located as `<name>:line` / `<name>[row]` (a stage records the file's
/// name only, so that its outputs do not depend on where the file sits).
pub fn read_as(path: &Path, fields: &FieldMap, name: &str) -> Result<Imported, ImportError> {
    let format = Format::of(path)?;
    let io = |source| ImportError::Io { path: path.to_owned(), source };
    match format {
        // Parquet is read where it lies (files of gigabytes), the others whole.
        Format::Parquet => {
            let file = std::fs::File::open(path).map_err(io)?;
            guarded(path, || {
                parquet::read_parquet(file, fields, name)
                    .map_err(|message| ImportError::Format { path: path.to_owned(), message })
            })
        }
        Format::Jsonl | Format::Json => {
            let bytes = std::fs::read(path).map_err(io)?;
            read_bytes(&bytes, format, fields, name, path)
        }
    }
}

/// The rows of a file's bytes in `format` (errors name `path`): what [`read_as`] does once
/// the file is read, for callers that hold the bytes (the fuzz targets).
pub fn read_bytes(
    bytes: &[u8],
    format: Format,
    fields: &FieldMap,
    name: &str,
    path: &Path,
) -> Result<Imported, ImportError> {
    let format_error = |message| ImportError::Format { path: path.to_owned(), message };
    guarded(path, || match format {
        Format::Jsonl => {
            let mut out = Imported::default();
            json::read_jsonl(bytes, fields, name, &mut out);
            Ok(out)
        }
        Format::Json => json::read_json(bytes, fields, name, format_error),
        Format::Parquet => {
            let bytes = ::bytes::Bytes::copy_from_slice(bytes);
            parquet::read_parquet(bytes, fields, name).map_err(format_error)
        }
    })
}

/// Runs a reader so that a panic inside it (a decoder's bug on a hostile file) is the file's
/// error, "malformed file: <why>", not the end of the process.
fn guarded(
    path: &Path,
    read: impl FnOnce() -> Result<Imported, ImportError>,
) -> Result<Imported, ImportError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the reader failed".to_owned());
        Err(ImportError::Malformed { path: path.to_owned(), why })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> FieldMap {
        FieldMap {
            question: "problem".into(),
            answer: Some("answer".into()),
            solution: Some("meta.solution".into()),
            id: None,
        }
    }

    #[test]
    fn jsonl_rows_map_and_malformed_rows_are_named_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(
            &path,
            concat!(
                "{\"problem\": \"Find x.\", \"answer\": 4, \"meta\": {\"solution\": \"x = 4\"}}\n",
                "\n",
                "{\"problem\": \"\"}\n",
                "{\"question\": \"wrong field\"}\n",
                "{not json\n",
                "{\"problem\": [\"a list\"]}\n",
                "{\"problem\": \"Compute y.\", \"answer\": null}\n",
            ),
        )
        .unwrap();
        let got = read(&path, &fields()).unwrap();
        assert_eq!(got.rows.len(), 2);
        assert_eq!(
            got.rows[0],
            ImportedRow {
                id: "row-0".into(),
                question: "Find x.".into(),
                answer: Some("4".into()),
                solution: Some("x = 4".into())
            }
        );
        assert_eq!((got.rows[1].id.as_str(), got.rows[1].answer.as_ref()), ("row-5", None));
        let at: Vec<(String, String)> = got
            .malformed
            .iter()
            .map(|m| (m.at.rsplit('/').next().unwrap().to_owned(), m.reason.clone()))
            .collect();
        assert_eq!(at[0], ("x.jsonl:3".to_owned(), "`problem` is empty".to_owned()));
        assert_eq!(at[1], ("x.jsonl:4".to_owned(), "no `problem` field".to_owned()));
        assert_eq!(at[2].0, "x.jsonl:5");
        assert!(at[2].1.starts_with("not JSON: "), "{}", at[2].1);
        assert_eq!(at[3], ("x.jsonl:6".to_owned(), "`problem` is not text".to_owned()));
        assert_eq!(got.malformed_by_reason()["no `problem` field"], 1);
    }

    #[test]
    fn json_lists_and_wrapped_lists_and_unknown_formats() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("a.json");
        std::fs::write(&list, r#"[{"problem": "P1", "uid": 7}, {"problem": "P2", "uid": 8}, 3]"#).unwrap();
        let f = FieldMap { id: Some("uid".into()), ..fields() };
        let got = read(&list, &f).unwrap();
        assert_eq!(got.rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["7", "8"]);
        assert_eq!(got.malformed[0].reason, "not an object");
        assert!(got.malformed[0].at.ends_with("a.json[2]"));
        let wrapped = dir.path().join("b.json");
        std::fs::write(&wrapped, r#"{"data": [{"problem": "P1"}]}"#).unwrap();
        assert_eq!(read(&wrapped, &fields()).unwrap().rows.len(), 1);
        std::fs::write(&wrapped, r#"{"rows": 3}"#).unwrap();
        let err = read(&wrapped, &fields()).unwrap_err().to_string();
        assert!(err.contains("b.json: expected a list of rows"), "{err}");
        let err = read(&dir.path().join("c.csv"), &fields()).unwrap_err().to_string();
        assert!(err.contains("c.csv: unknown format"), "{err}");
    }

    #[test]
    fn parquet_rows_read_like_json_rows() {
        // Written by pyarrow, snappy-compressed as Hugging Face's Parquet exports are
        // (tests/fixtures/import/make_fixtures.py).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/problems.parquet");
        let f = FieldMap {
            question: "problem".into(),
            answer: Some("answer".into()),
            solution: Some("solution".into()),
            id: Some("id".into()),
        };
        let got = read(&path, &f).unwrap();
        assert_eq!(got.rows.len(), 3);
        assert_eq!(got.rows[0].question, "What is $1 + 1$?");
        assert_eq!(got.rows[0].answer.as_deref(), Some("2"));
        assert_eq!(got.rows[2].id, "c");
        assert_eq!(got.malformed.len(), 1, "{:?}", got.malformed);
        assert!(got.malformed[0].at.ends_with("problems.parquet[3]"));
        assert_eq!(got.malformed[0].reason, "no `problem` field");
    }
}
