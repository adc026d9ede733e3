//! Our grader against math-verify (the paper's grader) on whole model responses: prose,
//! unboxed last lines, display math, Minerva's "Final Answer:" line, decimal commas, percent
//! words, matrices, `\text{}` answers, built from every benchmark's gold answers and
//! hand-written cases (`tools/grader_diff/responses.py` made the fixture with math-verify 0.9.0).
//! Prints the agreement table; fails when agreement with math-verify drops below its floor or
//! when we are wrong where a careful human's verdict is known, beyond the listed places where
//! we deliberately differ.

use eval::grader::{Extraction, grade_response};
use serde::Deserialize;

#[derive(Deserialize)]
struct Row {
    gold: String,
    response: String,
    expected: bool,
    math_verify: bool,
    kind: String,
}

fn rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/math_verify_responses.jsonl");
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn math_verify_extraction_agrees_with_math_verify_on_whole_responses() {
    let rows = rows();
    let mut with_mv = 0;
    let mut with_human = 0;
    let mut mv_with_human = 0;
    let mut differ = Vec::new();
    for r in &rows {
        let ours = grade_response(&r.gold, &r.response, None, Extraction::MathVerify).verdict.equal;
        with_mv += usize::from(ours == r.math_verify);
        with_human += usize::from(ours == r.expected);
        mv_with_human += usize::from(r.math_verify == r.expected);
        if ours != r.expected {
            differ.push(format!(
                "[{}] gold `{}`: ours {ours}, expected {}, math-verify {}\n    {}",
                r.kind,
                r.gold,
                r.expected,
                r.math_verify,
                r.response.replace('\n', "\\n")
            ));
        }
    }
    let n = rows.len() as f64;
    println!("| grader | agrees with math-verify | agrees with the human verdict |");
    println!("|---|---:|---:|");
    println!(
        "| ours (math_verify extraction) | {:.1}% | {:.1}% |",
        100.0 * with_mv as f64 / n,
        100.0 * with_human as f64 / n
    );
    println!("| math-verify 0.9.0 | 100% | {:.1}% |", 100.0 * mv_with_human as f64 / n);
    println!("({} responses)\nwhere we differ from the human verdict:\n{}", rows.len(), differ.join("\n"));
    assert!(with_mv as f64 >= 0.9 * n, "agreement with math-verify {with_mv}/{}", rows.len());
    assert!(with_human as f64 >= 0.95 * n, "agreement with the human verdict {with_human}/{}", rows.len());
}

#[test]
fn strict_extraction_reads_only_committed_answers() {
    let rows = rows();
    // Strict takes boxed answers and "final answer is" phrases only: an unboxed prose answer
    // is no answer, so it never marks a wrong response right and misses right prose ones.
    let mut false_positives = 0;
    let mut missed = 0;
    for r in &rows {
        let strict = grade_response(&r.gold, &r.response, None, Extraction::Strict).verdict.equal;
        false_positives += usize::from(strict && !r.expected);
        missed += usize::from(!strict && r.expected);
    }
    assert_eq!(false_positives, 0);
    assert!(missed > 20, "strict misses unboxed answers ({missed})");
}

#[derive(Deserialize)]
struct RecordRow {
    gold: String,
    response: String,
    math_verify: bool,
    kind: String,
    problem: String,
}

/// Real responses of a default run (`tools/grader_diff/records.py`): the students' evaluation
/// responses against the benchmarks' golds, and the solver's solutions against the answer of
/// the problem's first solution. No human verdict here: the check is that both graders read
/// the same answer out of the same unedited model text.
#[test]
fn agrees_with_math_verify_on_a_real_runs_responses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/math_verify_records.jsonl");
    let rows: Vec<RecordRow> =
        std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut by_kind: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let mut differ = Vec::new();
    for r in &rows {
        let kind = if r.kind.starts_with("evaluate") { "evaluate" } else { "solve" };
        let ours =
            grade_response(&r.gold, &r.response, Some(&r.problem), Extraction::MathVerify).verdict.equal;
        let e = by_kind.entry(kind).or_default();
        e.0 += usize::from(ours == r.math_verify);
        e.1 += 1;
        if ours != r.math_verify && differ.len() < 15 {
            let tail: String =
                r.response.chars().rev().take(160).collect::<Vec<_>>().into_iter().rev().collect();
            differ.push(format!(
                "[{}] gold `{}`: ours {ours}, math-verify {}\n    ...{}",
                r.kind,
                r.gold,
                r.math_verify,
                tail.replace('\n', "\\n")
            ));
        }
    }
    println!("| responses | agree with math-verify |\n|---|---:|");
    for (kind, (agree, n)) in &by_kind {
        println!("| {kind} ({n}) | {:.1}% |", 100.0 * *agree as f64 / *n as f64);
    }
    println!("first differences:\n{}", differ.join("\n"));
    let (agree, n) = by_kind.values().fold((0, 0), |(a, n), (x, y)| (a + x, n + y));
    assert!(n >= 100, "the fixture holds {n} responses");
    assert!(agree as f64 >= 0.9 * n as f64, "agreement {agree}/{n}");
}
