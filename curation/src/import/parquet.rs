//! Parquet rows through the `parquet` crate's row API. Only the columns the field map reads are
//! decoded (an unmapped column can hold anything, a date no calendar holds included), values
//! are converted by us (numbers as their exact text, dates checked), and the first error of the
//! row iterator ends the read: after a corrupt page it would return the same error forever.

use parquet::file::reader::{ChunkReader, FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use parquet::schema::types::Type;
use serde_json::{Map, Value};

use super::row::{FieldMap, Imported, map_row, value_cell};

/// Every row of a Parquet file, named `<name>[<index>]`; `Err` is why the file cannot be read
/// (the caller names the file).
pub(super) fn read_parquet<R: ChunkReader + 'static>(
    reader: R,
    fields: &FieldMap,
    name: &str,
) -> Result<Imported, String> {
    let reader =
        SerializedFileReader::new(reader).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let schema = reader.metadata().file_metadata().schema();
    // The top-level columns a mapped field names (the whole name, or its first dotted part).
    let wanted: Vec<_> = schema
        .get_fields()
        .iter()
        .filter(|c| fields.names().any(|f| f == c.name() || f.split('.').next() == Some(c.name())))
        .cloned()
        .collect();
    if wanted.is_empty() {
        let columns: Vec<&str> = schema.get_fields().iter().map(|c| c.name()).collect();
        return Err(format!("no column `{}` (the columns: {})", fields.question, columns.join(", ")));
    }
    let projection = Type::group_type_builder(schema.name())
        .with_fields(wanted)
        .build()
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let rows =
        reader.get_row_iter(Some(projection)).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let mut out = Imported::default();
    for (index, row) in rows.enumerate() {
        let row = row.map_err(|e| format!("row {index} cannot be read: {e}"))?;
        let value = row_value(&row);
        out.take(format!("{name}[{index}]"), map_row(|f| value_cell(&value, f), fields, index));
    }
    Ok(out)
}

fn row_value(row: &Row) -> Value {
    Value::Object(row.get_column_iter().map(|(k, v)| (k.clone(), field_value(v))).collect())
}

/// A Parquet value as JSON, numbers as strings of their exact text: an `int64`, `uint64` or
/// decimal never passes through an `f64`.
fn field_value(field: &Field) -> Value {
    let text = |s: String| Value::String(s);
    match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => text(n.to_string()),
        Field::Short(n) => text(n.to_string()),
        Field::Int(n) => text(n.to_string()),
        Field::Long(n) => text(n.to_string()),
        Field::UByte(n) => text(n.to_string()),
        Field::UShort(n) => text(n.to_string()),
        Field::UInt(n) => text(n.to_string()),
        Field::ULong(n) => text(n.to_string()),
        // The shortest text that reads back as the same float (an f32's own: 0.1, not
        // 0.10000000149011612); NaN and infinities are no number.
        Field::Float16(n) => float(f32::from(*n).into(), |_| serde_json::to_string(&f32::from(*n))),
        Field::Float(n) => float(f64::from(*n), |_| serde_json::to_string(n)),
        Field::Double(n) => float(*n, |n| serde_json::to_string(&n)),
        Field::Decimal(_) | Field::TimeMillis(_) | Field::TimeMicros(_) => text(field.to_string()),
        Field::Str(s) => text(s.clone()),
        Field::Bytes(_) => field.to_json_value(),
        Field::Date(days) => {
            text(chrono::DateTime::from_timestamp(i64::from(*days) * 86_400, 0).map_or_else(
                || format!("{days} days after 1970-01-01"),
                |d| d.format("%Y-%m-%d").to_string(),
            ))
        }
        Field::TimestampMillis(ms) => text(chrono::DateTime::from_timestamp_millis(*ms).map_or_else(
            || format!("{ms} ms after 1970-01-01T00:00:00Z"),
            |d| d.format("%Y-%m-%d %H:%M:%S%.3f %:z").to_string(),
        )),
        Field::TimestampMicros(us) => text(chrono::DateTime::from_timestamp_micros(*us).map_or_else(
            || format!("{us} µs after 1970-01-01T00:00:00Z"),
            |d| d.format("%Y-%m-%d %H:%M:%S%.6f %:z").to_string(),
        )),
        Field::Group(row) => row_value(row),
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(field_value).collect()),
        Field::MapInternal(map) => {
            let entries = map.entries().iter().map(|(k, v)| {
                let key = match field_value(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (key, field_value(v))
            });
            Value::Object(entries.collect::<Map<_, _>>())
        }
    }
}

fn float(n: f64, text: impl FnOnce(f64) -> serde_json::Result<String>) -> Value {
    match n.is_finite() {
        true => text(n).map_or(Value::Null, Value::String),
        false => Value::Null,
    }
}
