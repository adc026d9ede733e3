//! `pipeline grade`: batch grading of JSONL records `{gold, pred, ...}`. Each output line is the
//! input object with `equal` set (replacing any `equal` already there); every other field is
//! passed through byte for byte, in its original order.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::value::RawValue;

#[derive(Debug, thiserror::Error)]
pub enum GradeFileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Line { path: PathBuf, line: usize, message: String },
}

type Record = IndexMap<String, Box<RawValue>>;

/// Grades every record of `text` (the contents of `path`) in parallel and returns the output
/// lines in input order. Blank lines are skipped; any malformed line fails the whole file
/// before anything is written.
pub fn grade_jsonl(text: &str, path: &Path) -> Result<Vec<String>, GradeFileError> {
    let lines: Vec<(usize, &str)> =
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, l)).collect();
    let parsed = lines
        .iter()
        .map(|&(line, raw)| {
            parse_record(raw).map_err(|message| GradeFileError::Line { path: path.to_owned(), line, message })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parsed
        .into_par_iter()
        .map(|(mut record, gold, pred)| {
            let equal = eval::grader::grade(&gold, &pred).equal;
            let value = RawValue::from_string(equal.to_string()).expect("a bool is valid JSON");
            record.insert("equal".to_owned(), value);
            serde_json::to_string(&record).expect("records serialize")
        })
        .collect())
}

fn parse_record(raw: &str) -> Result<(Record, String, String), String> {
    let record: Record = serde_json::from_str(raw).map_err(|e| format!("not a JSON object: {e}"))?;
    let field = |name: &str| -> Result<String, String> {
        let value = record.get(name).ok_or_else(|| format!("missing string field `{name}`"))?;
        serde_json::from_str::<String>(value.get()).map_err(|_| format!("field `{name}` must be a string"))
    };
    let (gold, pred) = (field("gold")?, field("pred")?);
    Ok((record, gold, pred))
}

/// Reads `path` (`-` for standard input) and grades it.
pub fn grade_file(path: &Path) -> Result<Vec<String>, GradeFileError> {
    let io_err = |source| GradeFileError::Io { path: path.to_owned(), source };
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(io_err)?
    } else {
        std::fs::read_to_string(path).map_err(io_err)?
    };
    grade_jsonl(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_equal_in_order_and_passes_other_fields_through_untouched() {
        let input = concat!(
            r#"{"id": 7, "gold": "\\frac{1}{2}", "pred": "so \\boxed{0.5}", "score": 1.50, "equal": "stale"}"#,
            "\n\n",
            r#"{"gold": "3", "pred": "4", "meta": {"z": 1, "a": [1e3]}}"#,
            "\n"
        );
        let out = grade_jsonl(input, Path::new("in.jsonl")).unwrap();
        assert_eq!(
            out,
            vec![
                r#"{"id":7,"gold":"\\frac{1}{2}","pred":"so \\boxed{0.5}","score":1.50,"equal":true}"#,
                r#"{"gold":"3","pred":"4","meta":{"z": 1, "a": [1e3]},"equal":false}"#,
            ]
        );
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let p = Path::new("in.jsonl");
        let err = grade_jsonl("{\"gold\": \"1\", \"pred\": \"1\"}\n[1, 2]\n", p).unwrap_err().to_string();
        assert!(err.starts_with("in.jsonl:2: not a JSON object"), "{err}");
        let err = grade_jsonl("{\"gold\": \"1\"}", p).unwrap_err().to_string();
        assert_eq!(err, "in.jsonl:1: missing string field `pred`");
        let err = grade_jsonl("{\"gold\": 1, \"pred\": \"1\"}", p).unwrap_err().to_string();
        assert_eq!(err, "in.jsonl:1: field `gold` must be a string");
    }
}
