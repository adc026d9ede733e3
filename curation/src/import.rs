//! Problems from elsewhere: rows of a JSONL, JSON or Parquet file mapped onto our fields
//! (`question` required; `answer`, `solution` and `id` optional) by a [`FieldMap`]. Every row that
//! cannot be used is named by where it sits (`file:line` for JSONL, `file[row]` otherwise) and
//! counted with its reason; nothing is skipped silently.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which field of a row holds what. A dotted name reaches into nested objects
/// (`meta.source`); a number indexes a list (`answers.0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    #[serde(default = "default_question")]
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

fn default_question() -> String {
    "question".to_owned()
}

impl Default for FieldMap {
    fn default() -> Self {
        Self { question: default_question(), answer: None, solution: None, id: None }
    }
}

/// One usable row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedRow {
    /// The mapped id field, or `row-<index>` (0-based, among all rows of the file).
    pub id: String,
    pub question: String,
    pub answer: Option<String>,
    pub solution: Option<String>,
}

/// A row that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Malformed {
    /// `file:line` (JSONL) or `file[row]` (JSON, Parquet; 0-based).
    pub at: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Imported {
    pub rows: Vec<ImportedRow>,
    pub malformed: Vec<Malformed>,
}

impl Imported {
    /// Malformed rows by reason, for manifests and summaries.
    pub fn malformed_by_reason(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for m in &self.malformed {
            *out.entry(m.reason.clone()).or_default() += 1;
        }
        out
    }
}

/// The first id that appears twice among `rows`, if any.
pub fn repeated_id(rows: &[ImportedRow]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    rows.iter().map(|r| r.id.as_str()).find(|id| !seen.insert(*id))
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
}

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
    let mut out = Imported::default();
    let mut take = |index: usize, at: String, row: Result<Value, String>| match row
        .and_then(|v| map_row(&v, fields, index))
    {
        Ok(row) => out.rows.push(row),
        Err(reason) => out.malformed.push(Malformed { at, reason }),
    };
    match Format::of(path)? {
        Format::Jsonl => {
            let text = read_text(path)?;
            let mut index = 0;
            for (line, raw) in text.lines().enumerate() {
                if raw.trim().is_empty() {
                    continue;
                }
                let row = serde_json::from_str::<Value>(raw).map_err(|e| format!("not JSON: {e}"));
                take(index, format!("{name}:{}", line + 1), row);
                index += 1;
            }
        }
        Format::Json => {
            let text = read_text(path)?;
            let value: Value = serde_json::from_str(&text).map_err(|e| ImportError::Format {
                path: path.to_owned(),
                message: format!("not JSON: {e}"),
            })?;
            // A list of rows, or an object holding one (`{"data": [...]}`, as some exports do).
            let rows = match value {
                Value::Array(rows) => rows,
                Value::Object(mut o) => match ["data", "rows", "train"].iter().find_map(|k| o.remove(*k)) {
                    Some(Value::Array(rows)) => rows,
                    _ => {
                        return Err(ImportError::Format {
                            path: path.to_owned(),
                            message:
                                "expected a list of rows, or an object whose `data`, `rows` or `train` is one"
                                    .into(),
                        });
                    }
                },
                _ => {
                    return Err(ImportError::Format {
                        path: path.to_owned(),
                        message: "expected a list of rows".into(),
                    });
                }
            };
            for (index, row) in rows.into_iter().enumerate() {
                take(index, format!("{name}[{index}]"), Ok(row));
            }
        }
        Format::Parquet => {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let file = std::fs::File::open(path)
                .map_err(|source| ImportError::Io { path: path.to_owned(), source })?;
            let bad = |e: parquet::errors::ParquetError| ImportError::Format {
                path: path.to_owned(),
                message: format!("not a readable Parquet file: {e}"),
            };
            let reader = SerializedFileReader::new(file).map_err(bad)?;
            for (index, row) in reader.get_row_iter(None).map_err(bad)?.enumerate() {
                let row = row.map(|r| r.to_json_value()).map_err(|e| format!("unreadable row: {e}"));
                take(index, format!("{name}[{index}]"), row);
            }
        }
    }
    Ok(out)
}

fn read_text(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|source| ImportError::Io { path: path.to_owned(), source })
}

/// `a.b.0`: nested objects by key, lists by index.
fn lookup<'a>(row: &'a Value, field: &str) -> Option<&'a Value> {
    if let Some(v) = row.get(field) {
        return Some(v);
    }
    field.split('.').try_fold(row, |v, part| match v {
        Value::Object(o) => o.get(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A field as text: strings as they are, numbers and booleans written out; anything else
/// (a list, an object) is not an answer or a question.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn map_row(row: &Value, fields: &FieldMap, index: usize) -> Result<ImportedRow, String> {
    if !row.is_object() {
        return Err("not an object".into());
    }
    let question = match lookup(row, &fields.question) {
        None | Some(Value::Null) => return Err(format!("no `{}` field", fields.question)),
        Some(v) => text_of(v).ok_or_else(|| format!("`{}` is not text", fields.question))?,
    };
    if question.trim().is_empty() {
        return Err(format!("`{}` is empty", fields.question));
    }
    let optional = |field: &Option<String>| -> Result<Option<String>, String> {
        let Some(field) = field else { return Ok(None) };
        match lookup(row, field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => text_of(v).map(Some).ok_or_else(|| format!("`{field}` is not text")),
        }
    };
    let id = match &fields.id {
        Some(field) => match lookup(row, field) {
            None | Some(Value::Null) => return Err(format!("no `{field}` field")),
            Some(v) => text_of(v).ok_or_else(|| format!("`{field}` is not text"))?,
        },
        None => format!("row-{index}"),
    };
    Ok(ImportedRow { id, question, answer: optional(&fields.answer)?, solution: optional(&fields.solution)? })
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
