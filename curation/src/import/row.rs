//! What a row becomes: the field map, the usable row, the malformed one, and the mapping from
//! a row's cells (whatever the file format) onto our fields.

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

impl FieldMap {
    /// Every field name this map reads.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.question.as_str())
            .chain(self.answer.as_deref())
            .chain(self.solution.as_deref())
            .chain(self.id.as_deref())
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

    /// Maps one row (or records why it could not be read) at `at`.
    pub(super) fn take(&mut self, at: String, row: Result<ImportedRow, String>) {
        match row {
            Ok(row) => self.rows.push(row),
            Err(reason) => self.malformed.push(Malformed { at, reason }),
        }
    }
}

/// The first id that appears twice among `rows`, if any.
pub fn repeated_id(rows: &[ImportedRow]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    rows.iter().map(|r| r.id.as_str()).find(|id| !seen.insert(*id))
}

/// A field of a row, as far as we care: numbers arrive as the text the file holds them as
/// (`123456789012345678901234567890` stays that, never `1.2345678901234568e29`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Absent,
    Null,
    Text(String),
    /// A list or an object: not an answer or a question.
    NotText,
}

/// Maps a row whose fields `get` finds onto ours; `index` is the row's 0-based index among
/// all rows of the file (for `row-<index>` ids).
pub(super) fn map_row(
    get: impl Fn(&str) -> Cell,
    fields: &FieldMap,
    index: usize,
) -> Result<ImportedRow, String> {
    let question = match get(&fields.question) {
        Cell::Absent | Cell::Null => return Err(format!("no `{}` field", fields.question)),
        Cell::NotText => return Err(format!("`{}` is not text", fields.question)),
        Cell::Text(t) => t,
    };
    if question.trim().is_empty() {
        return Err(format!("`{}` is empty", fields.question));
    }
    let optional = |field: &Option<String>| -> Result<Option<String>, String> {
        let Some(field) = field else { return Ok(None) };
        match get(field) {
            Cell::Absent | Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t)),
            Cell::NotText => Err(format!("`{field}` is not text")),
        }
    };
    let id = match &fields.id {
        Some(field) => match get(field) {
            Cell::Absent | Cell::Null => return Err(format!("no `{field}` field")),
            Cell::NotText => return Err(format!("`{field}` is not text")),
            Cell::Text(t) => t,
        },
        None => format!("row-{index}"),
    };
    Ok(ImportedRow { id, question, answer: optional(&fields.answer)?, solution: optional(&fields.solution)? })
}

/// `a.b.0` in a value whose numbers are already text (a Parquet row): nested objects by key,
/// lists by index; a key holding the dots itself first.
pub(super) fn value_cell(row: &Value, field: &str) -> Cell {
    let found = row.get(field).or_else(|| {
        field.split('.').try_fold(row, |v, part| match v {
            Value::Object(o) => o.get(part),
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    });
    match found {
        None => Cell::Absent,
        Some(Value::Null) => Cell::Null,
        Some(Value::String(s)) => Cell::Text(s.clone()),
        Some(Value::Number(n)) => Cell::Text(n.to_string()),
        Some(Value::Bool(b)) => Cell::Text(b.to_string()),
        Some(Value::Array(_) | Value::Object(_)) => Cell::NotText,
    }
}
