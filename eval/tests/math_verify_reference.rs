//! The real math-verify through `eval::grader::reference`: known verdicts, the pinned version,
//! the server's handling of bad input, and its speed. Needs the grader venv
//! (`just grader-venv`) or `MATH_VERIFY_PYTHON=/path/to/python` with math-verify 0.9.0; without
//! one each test says so and passes, so a checkout without Python still tests.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eval::grader::reference::{DEFAULT_CASE_TIMEOUT, MathVerify, Outcome};
use serde_json::json;

/// (gold, response, math-verify's verdict, what it extracts from the response). The verdicts
/// and extractions are math-verify 0.9.0's own, taken from it directly.
const CASES: &[(&str, &str, bool, Option<&str>)] = &[
    (r"\frac{1}{2}", r"The answer is $\boxed{0.5}$", true, Some(r"\frac{1}{2}")),
    ("3", "so x = 4", false, Some("4")),
    // Minerva's few-shot answer format.
    ("34", "Final Answer: The final answer is 34. I hope it is correct.", true, Some("34")),
    (
        r"\frac{\sqrt{3}}{2}",
        r"Thus $\cos 30^\circ = \boxed{\frac{\sqrt3}{2}}$.",
        true,
        Some(r"\frac{\sqrt{3}}{2}"),
    ),
    (r"\left( 3, \frac{\pi}{2} \right)", r"The point is $\boxed{(3, \frac{\pi}{2})}$.", true, None),
    ("10", "We get $x = 10$.", true, Some("x = 10")),
    (r"2\sqrt{2}", r"$\boxed{\sqrt{8}}$", true, Some(r"\sqrt{8}")),
    ("x^2+2x+1", r"Expanding, $\boxed{(x+1)^2}$.", true, Some("(x+1)^2")),
    ("5", r"The answer is $\boxed{6}$.", false, Some("6")),
    ("x", "I cannot solve this.", false, None),
    ("0.25", r"So the probability is $\frac14$.", true, Some(r"\frac{1}{4}")),
    ("12", r"First I thought 13, but the answer is $\boxed{12}$.", true, Some("12")),
    (r"\text{(C)}", r"The answer is $\boxed{\text{(C)}}$.", true, None),
    ("1000", r"The total is $\boxed{1,000}$.", true, Some("1,000")),
    ("[-2, 3)", r"$\boxed{(-2,3)}$", false, Some("(-2,3)")),
];

/// The interpreter to test with, or `None` after saying why the test does not run: only when
/// the default venv is absent, since a `MATH_VERIFY_PYTHON` that names nothing is a mistake.
fn python(test: &str) -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("MATH_VERIFY_PYTHON") {
        let python = PathBuf::from(python);
        assert!(python.exists(), "MATH_VERIFY_PYTHON={} does not exist", python.display());
        return Some(python);
    }
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-grader/bin/python");
    if python.exists() {
        return Some(python);
    }
    // Straight to stderr: the test harness swallows print!'s output of a passing test, and a
    // test that did not run must say so in every log.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: NOT RUN: no interpreter at {} (make it with `just grader-venv`, or set MATH_VERIFY_PYTHON)",
        python.display()
    );
    None
}

fn start(python: &std::path::Path) -> MathVerify {
    MathVerify::start(python, DEFAULT_CASE_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn known_cases_get_math_verify_0_9_0_verdicts() {
    let Some(python) = python("known_cases_get_math_verify_0_9_0_verdicts") else { return };
    let mut server = start(&python);
    assert!(server.version().starts_with("math-verify 0.9.0"), "{}", server.version());
    let versions = server.versions();
    assert_eq!(versions["latex2sympy2_extended"], "1.11.0", "{versions}");
    assert_eq!(versions["sympy"], "1.14.0", "{versions}");

    let pairs: Vec<(&str, &str)> = CASES.iter().map(|&(g, r, _, _)| (g, r)).collect();
    let verdicts = server.grade_all(&pairs, &mut |_| {});
    for (&(gold, response, correct, extracted), verdict) in CASES.iter().zip(&verdicts) {
        let want = if correct { Outcome::Correct } else { Outcome::Wrong };
        assert_eq!(verdict.outcome, want, "gold {gold:?}, response {response:?}: {verdict:?}");
        if extracted.is_some() || !correct {
            assert_eq!(verdict.extracted.as_deref(), extracted, "gold {gold:?}, response {response:?}");
        }
        assert!(verdict.gold_extracted.is_some(), "math-verify reads every gold here: {gold:?}");
    }
}

#[test]
fn throughput_through_the_client() {
    let Some(python) = python("throughput_through_the_client") else { return };
    let started = Instant::now();
    let mut server = start(&python);
    let start_up = started.elapsed();
    let pairs: Vec<(&str, &str)> =
        CASES.iter().cycle().take(CASES.len() * 40).map(|&(g, r, _, _)| (g, r)).collect();
    // Once untimed: math-verify caches parsed LaTeX, and the loop below should measure a warm
    // server as a long evaluation sees it.
    server.grade_all(&pairs[..CASES.len()], &mut |_| {});
    let started = Instant::now();
    let verdicts = server.grade_all(&pairs, &mut |_| {});
    let took = started.elapsed();
    assert!(verdicts.iter().all(|v| matches!(v.outcome, Outcome::Correct | Outcome::Wrong)));
    println!(
        "math-verify reference: started in {:.2} s; {} pairs in {:.2} s = {:.0} pairs/s",
        start_up.as_secs_f64(),
        pairs.len(),
        took.as_secs_f64(),
        pairs.len() as f64 / took.as_secs_f64()
    );
}

/// The server script on its own: one reply per line, bad lines included, only JSON on stdout,
/// exit 0 at end of input.
#[test]
fn the_server_answers_every_line_and_exits_at_end_of_input() {
    let Some(python) = python("the_server_answers_every_line_and_exits_at_end_of_input") else { return };
    let script = include_str!("../../tools/grader/math_verify_server.py");
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = [
        r#"{"id": 1, "gold": "\\frac{1}{2}", "response": "$0.5$"}"#,
        "not json",
        "",
        "[1, 2]",
        r#"{"id": "seven", "gold": "1", "response": "1"}"#,
        r#"{"id": 4, "gold": 1, "response": "1"}"#,
        r#"{"gold": "1", "response": "1"}"#,
        r#"{"id": 6, "gold": "3", "response": "no number here"}"#,
    ];
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all((input.join("\n") + "\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON on stdout ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 1 + input.len(), "{lines:?}");
    assert_eq!(lines[0]["ready"], true);
    let replies = &lines[1..];
    assert_eq!(
        replies[0],
        json!({"id": 1, "correct": true, "extracted": r"\frac{1}{2}", "gold_extracted": r"\frac{1}{2}", "error": null})
    );
    let ids: Vec<_> = replies.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(
        ids,
        [json!(1), json!(null), json!(null), json!(null), json!("seven"), json!(4), json!(null), json!(6)]
    );
    for reply in &replies[1..7] {
        assert_eq!(reply["correct"], false);
        assert!(reply["error"].as_str().is_some_and(|e| e.starts_with("malformed request")), "{reply}");
    }
    assert_eq!(
        replies[7],
        json!({"id": 6, "correct": false, "extracted": null, "gold_extracted": "3", "error": null})
    );
}

/// A gold whose comparison runs into math-verify's own 5 s limit (sympy evaluating a power
/// tower): the harness calls that wrong after 5 s; a shorter per-case timeout here cuts it off,
/// restarts the server and grades the rest.
#[test]
fn a_slow_case_hits_the_per_case_timeout_and_the_rest_are_graded() {
    let Some(python) = python("a_slow_case_hits_the_per_case_timeout_and_the_rest_are_graded") else {
        return;
    };
    let pairs = [("1", "$1$"), ("9^{9^{9^{9}}}", "$1$"), ("2", "$2$")];

    let mut server = MathVerify::start(&python, Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
    let outcomes: Vec<Outcome> =
        server.grade_all(&pairs, &mut |_| {}).into_iter().map(|v| v.outcome).collect();
    assert_eq!(outcomes, [Outcome::Correct, Outcome::Timeout, Outcome::Correct]);

    let mut server = start(&python);
    let started = Instant::now();
    let outcomes: Vec<Outcome> =
        server.grade_all(&pairs, &mut |_| {}).into_iter().map(|v| v.outcome).collect();
    assert_eq!(outcomes, [Outcome::Correct, Outcome::Wrong, Outcome::Correct]);
    assert!(started.elapsed() >= Duration::from_secs(5), "math-verify's own limit: {:?}", started.elapsed());
}
