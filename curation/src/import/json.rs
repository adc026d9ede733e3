//! JSONL and JSON rows. Rows are kept as their raw text and only the mapped fields are decoded,
//! so that a number is the text the file holds (`123456789012345678901234567890`, `1.50`), not
//! what an `f64` makes of it. A UTF-8 byte order mark is skipped; in JSONL a line that is not
//! UTF-8 or not JSON is that line's problem, never the file's.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::error::ImportError;
use super::row::{Cell, FieldMap, Imported, map_row};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The file's bytes without a leading byte order mark (Windows tools write one).
pub(super) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// Every non-blank line of `bytes` a row, named `<name>:<line>` (1-based).
pub(super) fn read_jsonl(bytes: &[u8], fields: &FieldMap, name: &str, out: &mut Imported) {
    let mut index = 0;
    for (line, raw) in strip_bom(bytes).split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let row = match std::str::from_utf8(raw) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => row_of(text).and_then(|row| map_row(|f| row.cell(f), fields, index)),
            Err(e) => Err(format!("not UTF-8: {e}")),
        };
        out.take(format!("{name}:{}", line + 1), row);
        index += 1;
    }
}

/// A JSON document: a list of rows, or an object holding one (`{"data": [...]}`, as some
/// exports do); rows named `<name>[<index>]`.
pub(super) fn read_json(
    bytes: &[u8],
    fields: &FieldMap,
    name: &str,
    format_error: impl Fn(String) -> ImportError,
) -> Result<Imported, ImportError> {
    // One document: bytes that are not UTF-8 are not JSON (RFC 8259), and there is no row to
    // blame them on before it parses.
    let body = strip_bom(bytes);
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        format_error(format!("not UTF-8 (line {line}): {e}"))
    })?;
    let doc: &RawValue = serde_json::from_str(text).map_err(|e| format_error(format!("not JSON: {e}")))?;
    let rows = match kind(doc) {
        b'[' => list(doc),
        b'{' => serde_json::from_str::<HashMap<String, &RawValue>>(doc.get())
            .ok()
            .and_then(|mut o| {
                ["data", "rows", "train"].iter().find_map(|k| o.remove(*k)).filter(|v| kind(v) == b'[')
            })
            .and_then(list),
        _ => return Err(format_error("expected a list of rows".into())),
    }
    .ok_or_else(|| {
        format_error("expected a list of rows, or an object whose `data`, `rows` or `train` is one".into())
    })?;
    let mut out = Imported::default();
    for (index, raw) in rows.into_iter().enumerate() {
        let row = JsonRow::of(raw).and_then(|row| map_row(|f| row.cell(f), fields, index));
        out.take(format!("{name}[{index}]"), row);
    }
    Ok(out)
}

fn list(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

fn row_of(text: &str) -> Result<JsonRow<'_>, String> {
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    JsonRow::of(raw)
}

/// The first byte of a value's text: `{`, `[`, `"`, a digit or `-`, `t`, `f` or `n`.
fn kind(raw: &RawValue) -> u8 {
    raw.get().trim_start().bytes().next().unwrap_or(b' ')
}

/// An object row: its members still raw, decoded along a mapped field's path only.
struct JsonRow<'a> {
    members: HashMap<String, &'a RawValue>,
}

impl<'a> JsonRow<'a> {
    fn of(raw: &'a RawValue) -> Result<Self, String> {
        if kind(raw) != b'{' {
            return Err("not an object".into());
        }
        let members = serde_json::from_str(raw.get()).map_err(|e| format!("not JSON: {e}"))?;
        Ok(Self { members })
    }

    /// `a.b.0`: a key holding the dots itself first, else nested objects by key and lists by
    /// index.
    fn cell(&self, field: &str) -> Cell {
        if let Some(v) = self.members.get(field) {
            return leaf(v);
        }
        let mut parts = field.split('.');
        let Some(mut v) = parts.next().and_then(|p| self.members.get(p).copied()) else {
            return Cell::Absent;
        };
        for part in parts {
            let next = match kind(v) {
                b'{' => serde_json::from_str::<HashMap<String, &RawValue>>(v.get())
                    .ok()
                    .and_then(|mut o| o.remove(part)),
                b'[' => part.parse::<usize>().ok().and_then(|i| {
                    serde_json::from_str::<Vec<&RawValue>>(v.get()).ok().and_then(|a| a.get(i).copied())
                }),
                _ => None,
            };
            match next {
                Some(n) => v = n,
                None => return Cell::Absent,
            }
        }
        leaf(v)
    }
}

/// A value as text: strings decoded, numbers and booleans as written.
fn leaf(raw: &RawValue) -> Cell {
    let text = raw.get().trim();
    match kind(raw) {
        b'"' => serde_json::from_str::<String>(text).map_or(Cell::NotText, Cell::Text),
        b'n' => Cell::Null,
        b'{' | b'[' => Cell::NotText,
        _ => Cell::Text(text.to_owned()),
    }
}
