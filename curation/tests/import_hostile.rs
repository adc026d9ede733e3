//! The importers under hostile and unlucky input (issue 28, items 8, 10 and 11): no panic, no
//! endless loop, a row's problem stays that row's, numbers stay their source text.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use curation::import::{FieldMap, Imported, ImportedRow, read};
use parquet::basic::Compression;
use parquet::data_type::{
    ByteArray, ByteArrayType, FixedLenByteArray, FixedLenByteArrayType, Int32Type, Int64Type,
};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

fn fields() -> FieldMap {
    FieldMap { question: "problem".into(), answer: Some("answer".into()), solution: None, id: None }
}

/// Reads on a worker thread: a read that does not end within a minute is a failure, not a
/// test that never ends.
fn read_bounded(path: &Path, fields: &FieldMap) -> Result<Imported, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (path, fields) = (path.to_owned(), fields.clone());
    std::thread::spawn(move || {
        let _ = tx.send(read(&path, &fields).map_err(|e| e.to_string()));
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the read ends within a minute (no endless loop)")
}

/// One column of a Parquet test file: its schema line and its values.
enum Column {
    Text(&'static str, Vec<&'static str>),
    Int32(&'static str, Vec<i32>),
    Int64(&'static str, Vec<i64>),
    Decimal(&'static str, Vec<i128>),
}

/// Writes `columns` (all required, one row group) as `name` in `dir`.
fn write_parquet(dir: &Path, name: &str, columns: &[Column], compression: Compression) -> PathBuf {
    let schema = format!(
        "message schema {{ {} }}",
        columns
            .iter()
            .map(|c| match c {
                Column::Text(n, _) => format!("required binary {n} (UTF8);"),
                Column::Int32(n, _) => format!("required int32 {n} (DATE);"),
                Column::Int64(n, _) if n.starts_with("ts") =>
                    format!("required int64 {n} (TIMESTAMP_MILLIS);"),
                Column::Int64(n, _) if n.starts_with('u') => format!("required int64 {n} (UINT_64);"),
                Column::Int64(n, _) => format!("required int64 {n};"),
                Column::Decimal(n, _) => format!("required fixed_len_byte_array(16) {n} (DECIMAL(38, 2));"),
            })
            .collect::<String>()
    );
    let schema = Arc::new(parse_message_type(&schema).unwrap());
    let props = Arc::new(WriterProperties::builder().set_compression(compression).build());
    let path = dir.join(name);
    let mut writer = SerializedFileWriter::new(std::fs::File::create(&path).unwrap(), schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    for column in columns {
        let mut w = group.next_column().unwrap().unwrap();
        match column {
            Column::Text(_, v) => {
                let v: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(*s)).collect();
                w.typed::<ByteArrayType>().write_batch(&v, None, None).unwrap();
            }
            Column::Int32(_, v) => {
                w.typed::<Int32Type>().write_batch(v, None, None).unwrap();
            }
            Column::Int64(_, v) => {
                w.typed::<Int64Type>().write_batch(v, None, None).unwrap();
            }
            Column::Decimal(_, v) => {
                let v: Vec<FixedLenByteArray> =
                    v.iter().map(|n| FixedLenByteArray::from(n.to_be_bytes().to_vec())).collect();
                w.typed::<FixedLenByteArrayType>().write_batch(&v, None, None).unwrap();
            }
        }
        w.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
    path
}

fn answers(got: &Imported) -> Vec<Option<&str>> {
    got.rows.iter().map(|r| r.answer.as_deref()).collect()
}

/// Item 8: a date or timestamp no calendar holds, in a column nobody mapped, panicked the
/// whole process (the crate's row-to-JSON conversion unwraps its date arithmetic).
#[test]
fn extreme_dates_in_unmapped_columns_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_parquet(
        dir.path(),
        "dates.parquet",
        &[
            Column::Text("problem", vec!["P1", "P2"]),
            Column::Text("answer", vec!["1", "2"]),
            Column::Int32("day", vec![i32::MAX, i32::MIN]),
            Column::Int64("ts", vec![i64::MAX, i64::MIN]),
        ],
        Compression::UNCOMPRESSED,
    );
    let got = read_bounded(&path, &fields()).unwrap();
    assert_eq!(answers(&got), [Some("1"), Some("2")]);
    // Mapped, such a date is text that says what it is; an ordinary one reads as a date.
    let f = FieldMap { answer: Some("day".into()), ..fields() };
    let got = read_bounded(&path, &f).unwrap();
    assert_eq!(
        answers(&got),
        [Some("2147483647 days after 1970-01-01"), Some("-2147483648 days after 1970-01-01")]
    );
    let ok = write_parquet(
        dir.path(),
        "ok.parquet",
        &[Column::Text("problem", vec!["P"]), Column::Int32("day", vec![19_000])],
        Compression::UNCOMPRESSED,
    );
    assert_eq!(answers(&read_bounded(&ok, &f).unwrap()), [Some("2022-01-08")]);
}

/// Item 8: one corrupt snappy page made the row iterator return its error forever (the loop
/// went on, the malformed list grew without end). The first error now ends the read: the
/// file's error, named.
#[test]
fn a_corrupt_page_is_the_files_error_and_the_read_ends() {
    let dir = tempfile::tempdir().unwrap();
    let problems: Vec<&'static str> = (0..50)
        .map(|i| &*Box::leak(format!("Problem number {i} of the corrupt file").into_boxed_str()))
        .collect();
    let path = write_parquet(
        dir.path(),
        "corrupt.parquet",
        &[Column::Text("problem", problems), Column::Text("answer", vec!["7"; 50])],
        Compression::SNAPPY,
    );
    let mut bytes = std::fs::read(&path).unwrap();
    // The snappy stream of the `problem` page holds its first value as a literal: everything
    // from a little before it to the end of the page is garbage.
    let at = bytes.windows(14).position(|w| w == b"Problem number").unwrap();
    for b in &mut bytes[at - 8..at + 400] {
        *b = 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = read_bounded(&path, &fields()).unwrap_err();
    assert!(err.contains("corrupt.parquet"), "{err}");
    assert!(err.contains("row 0 cannot be read") || err.contains("malformed file"), "{err}");
}

/// Item 11: numbers are the text the file holds, never what an f64 makes of them.
#[test]
fn numbers_keep_their_source_text() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("big.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            "{\"problem\": \"P1\", \"answer\": 123456789012345678901234567890}\n",
            "{\"problem\": \"P2\", \"answer\": 1.50}\n",
            "{\"problem\": \"P3\", \"answer\": -0.000000000000000000001}\n",
            "{\"problem\": \"P4\", \"answer\": {\"value\": 18446744073709551616}}\n",
            "{\"problem\": \"P5\", \"answer\": 1e400}\n",
        ),
    )
    .unwrap();
    let got = read(&jsonl, &fields()).unwrap();
    assert_eq!(
        answers(&got),
        [
            Some("123456789012345678901234567890"),
            Some("1.50"),
            Some("-0.000000000000000000001"),
            Some("1e400")
        ],
        "{:?}",
        got.malformed
    );
    // 1e400 is no f64 (that reader called the row "not JSON"); it is a number all the same.
    assert_eq!(got.malformed.len(), 1, "{:?}", got.malformed);
    assert_eq!(got.malformed[0].reason, "`answer` is not text");
    let f = FieldMap { answer: Some("answer.value".into()), ..fields() };
    let got = read(&jsonl, &f).unwrap();
    assert!(got.rows.iter().any(|r| r.answer.as_deref() == Some("18446744073709551616")), "{:?}", got.rows);

    let json = dir.path().join("big.json");
    std::fs::write(&json, r#"{"data": [{"problem": "P", "answer": 123456789012345678901234567890}]}"#)
        .unwrap();
    assert_eq!(answers(&read(&json, &fields()).unwrap()), [Some("123456789012345678901234567890")]);

    let parquet = write_parquet(
        dir.path(),
        "numbers.parquet",
        &[
            Column::Text("problem", vec!["P1", "P2"]),
            Column::Int64("answer", vec![i64::MAX, i64::MIN]),
            Column::Int64("ubig", vec![-1, 1]),
            Column::Decimal("dec", vec![i128::MAX / 1000, -5]),
        ],
        Compression::SNAPPY,
    );
    assert_eq!(
        answers(&read_bounded(&parquet, &fields()).unwrap()),
        [Some("9223372036854775807"), Some("-9223372036854775808")]
    );
    let f = FieldMap { answer: Some("ubig".into()), ..fields() };
    assert_eq!(answers(&read_bounded(&parquet, &f).unwrap()), [Some("18446744073709551615"), Some("1")]);
    let f = FieldMap { answer: Some("dec".into()), ..fields() };
    assert_eq!(
        answers(&read_bounded(&parquet, &f).unwrap()),
        [Some("1701411834604692317316873037158841.05"), Some("-0.05")]
    );
}

/// Item 10: a line that is not UTF-8 is that line's problem (named, counted), not the file's;
/// a byte order mark does not spoil the first row of a JSONL file, nor a JSON file.
#[test]
fn a_bad_line_is_its_own_problem_and_a_bom_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let mut bytes = b"\xEF\xBB\xBF{\"problem\": \"P1\", \"answer\": 1}\r\n".to_vec();
    bytes.extend_from_slice(b"{\"problem\": \"caf\xE9\"}\n");
    bytes.extend_from_slice(b"{\"problem\": \"P3\"}\n");
    std::fs::write(&path, &bytes).unwrap();
    let got = read(&path, &fields()).unwrap();
    assert_eq!(
        got.rows,
        [
            ImportedRow {
                id: "row-0".into(),
                question: "P1".into(),
                answer: Some("1".into()),
                solution: None
            },
            ImportedRow { id: "row-2".into(), question: "P3".into(), answer: None, solution: None },
        ]
    );
    assert_eq!(got.malformed.len(), 1);
    assert!(got.malformed[0].at.ends_with("mixed.jsonl:2"), "{:?}", got.malformed);
    assert!(got.malformed[0].reason.starts_with("not UTF-8"), "{:?}", got.malformed);
    assert_eq!(got.malformed_by_reason().values().sum::<usize>(), 1);

    let json = dir.path().join("bom.json");
    std::fs::write(&json, b"\xEF\xBB\xBF[{\"problem\": \"P1\"}]").unwrap();
    assert_eq!(read(&json, &fields()).unwrap().rows.len(), 1);
    // A JSON document that is not UTF-8 is no JSON: the file's error, with its line.
    std::fs::write(&json, b"[{\"problem\": \"P1\"},\n{\"problem\": \"\xE9\"}]").unwrap();
    let err = read(&json, &fields()).unwrap_err().to_string();
    assert!(err.contains("bom.json: not UTF-8 (line 2)"), "{err}");
}
