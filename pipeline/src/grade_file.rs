//! `pipeline grade`: batch grading of JSONL records `{gold, pred, ...}` with the evaluate
//! stage's own entry point ([`eval::grader::grade_response`], the same extraction option; an
//! optional `problem` field is passed as the evaluate stage passes the benchmark problem). Each
//! output line is the input object with `equal`, `extracted` and `extraction` set (replacing
//! any already there); every other field is passed through byte for byte, in its original order.

use std::path::{Path, PathBuf};

use eval::grader::Extraction;
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

/// One parsed record: the object, gold, prediction and the problem when given.
type Parsed = (Record, String, String, Option<String>);

/// Grades every record of `text` (the contents of `path`) in parallel and returns the output
/// lines in input order. Blank lines are skipped; any malformed line fails the whole file
/// before anything is written.
pub fn grade_jsonl(text: &str, path: &Path, extraction: Extraction) -> Result<Vec<String>, GradeFileError> {
    let lines: Vec<(usize, &str)> =
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, l)).collect();
    let parsed = lines
        .iter()
        .map(|&(line, raw)| {
            parse_record(raw).map_err(|message| GradeFileError::Line { path: path.to_owned(), line, message })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let how = serde_json::to_string(&extraction).expect("an enum serializes");
    Ok(parsed
        .into_par_iter()
        .map(|(mut record, gold, pred, problem)| {
            let graded = eval::grader::grade_response(&gold, &pred, problem.as_deref(), extraction);
            let raw = |v: String| RawValue::from_string(v).expect("serialized JSON is valid JSON");
            record.insert("equal".to_owned(), raw(graded.verdict.equal.to_string()));
            record
                .insert("extracted".to_owned(), raw(serde_json::to_string(&graded.extracted).expect("JSON")));
            record.insert("extraction".to_owned(), raw(how.clone()));
            serde_json::to_string(&record).expect("records serialize")
        })
        .collect())
}

fn parse_record(raw: &str) -> Result<Parsed, String> {
    let record: Record = serde_json::from_str(raw).map_err(|e| format!("not a JSON object: {e}"))?;
    let field = |name: &str| -> Result<Option<String>, String> {
        record
            .get(name)
            .map(|value| {
                serde_json::from_str::<String>(value.get())
                    .map_err(|_| format!("field `{name}` must be a string"))
            })
            .transpose()
    };
    let required = |name: &str| field(name)?.ok_or_else(|| format!("missing string field `{name}`"));
    let (gold, pred, problem) = (required("gold")?, required("pred")?, field("problem")?);
    Ok((record, gold, pred, problem))
}

/// Reads `path` (`-` for standard input) and grades it.
pub fn grade_file(path: &Path, extraction: Extraction) -> Result<Vec<String>, GradeFileError> {
    let io_err = |source| GradeFileError::Io { path: path.to_owned(), source };
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(io_err)?
    } else {
        std::fs::read_to_string(path).map_err(io_err)?
    };
    grade_jsonl(&text, path, extraction)
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
        let out = grade_jsonl(input, Path::new("in.jsonl"), Extraction::MathVerify).unwrap();
        assert_eq!(
            out,
            vec![
                r#"{"id":7,"gold":"\\frac{1}{2}","pred":"so \\boxed{0.5}","score":1.50,"equal":true,"extracted":"0.5","extraction":"math_verify"}"#,
                r#"{"gold":"3","pred":"4","meta":{"z": 1, "a": [1e3]},"equal":false,"extracted":"4","extraction":"math_verify"}"#,
            ]
        );
        // Strict reads only committed answers: an unboxed last number is no answer.
        let strict =
            grade_jsonl(r#"{"gold": "12", "pred": "so it is 12"}"#, Path::new("x"), Extraction::Strict);
        assert_eq!(
            strict.unwrap(),
            vec![
                r#"{"gold":"12","pred":"so it is 12","equal":false,"extracted":null,"extraction":"strict"}"#
            ]
        );
    }

    /// `pipeline grade --input` against the evaluate stage's own graders
    /// ([`crate::stages::grading::Graders`], native): the same verdict and extraction on every
    /// pair, under both extractions. Records with a problem text are graded by the stage with
    /// it; those without, as the stage's entry point grades them with none.
    fn same_as_the_evaluate_stage(pairs: &[(String, String)]) {
        let mut lines = String::new();
        let problems: Vec<Option<String>> = (0..pairs.len())
            .map(|i| (i % 2 == 0).then(|| format!("Compute the value asked for, record {i}.")))
            .collect();
        for ((gold, response), problem) in pairs.iter().zip(&problems) {
            let mut record = serde_json::json!({ "gold": gold, "pred": response });
            if let Some(p) = problem {
                record["problem"] = serde_json::json!(p);
            }
            lines.push_str(&(record.to_string() + "\n"));
        }
        for extraction in [Extraction::MathVerify, Extraction::Strict] {
            let config = crate::config::EvaluateConfig { extraction, ..Default::default() };
            let mut stage = crate::stages::grading::Graders::new(&config);
            let out = grade_jsonl(&lines, Path::new("x"), extraction).unwrap();
            assert_eq!(out.len(), pairs.len());
            for ((line, (gold, response)), problem) in out.iter().zip(pairs).zip(&problems) {
                let (equal, extracted) = match problem {
                    Some(p) => {
                        let item = crate::stages::grading::Item { gold, response, problem: p };
                        let g = stage.grade(&[item]).unwrap().remove(0);
                        (g.correct, g.extracted)
                    }
                    None => {
                        let g = eval::grader::grade_response(gold, response, None, extraction);
                        (g.verdict.equal, g.extracted)
                    }
                };
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["equal"], equal, "{line}");
                assert_eq!(v["extracted"].as_str(), extracted.as_deref(), "{line}");
            }
        }
    }

    /// On every response of the differential suite (math-verify 0.9.0's fixture).
    #[test]
    fn the_same_verdicts_as_the_evaluate_stage_on_the_differential_suite() {
        let text = include_str!("../../eval/tests/fixtures/math_verify_responses.jsonl");
        let pairs: Vec<(String, String)> = text
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                (v["gold"].as_str().unwrap().to_owned(), v["response"].as_str().unwrap().to_owned())
            })
            .collect();
        assert!(pairs.len() > 300);
        same_as_the_evaluate_stage(&pairs);
    }

    /// On every pair of the differential fuzzer (the seed `eval/tests/grader_fuzz.rs` uses).
    #[test]
    fn the_same_verdicts_as_the_evaluate_stage_on_the_fuzzer() {
        let pairs: Vec<(String, String)> =
            eval::grader::fuzz::pairs(2026, 6000).into_iter().map(|p| (p.gold, p.response)).collect();
        same_as_the_evaluate_stage(&pairs);
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let p = Path::new("in.jsonl");
        let grade = |text: &str| grade_jsonl(text, p, Extraction::MathVerify);
        let err = grade("{\"gold\": \"1\", \"pred\": \"1\"}\n[1, 2]\n").unwrap_err().to_string();
        assert!(err.starts_with("in.jsonl:2: not a JSON object"), "{err}");
        let err = grade("{\"gold\": \"1\"}").unwrap_err().to_string();
        assert_eq!(err, "in.jsonl:1: missing string field `pred`");
        let err = grade("{\"gold\": 1, \"pred\": \"1\"}").unwrap_err().to_string();
        assert_eq!(err, "in.jsonl:1: field `gold` must be a string");
    }
}
