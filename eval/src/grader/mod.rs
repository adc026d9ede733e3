//! Answer grading with math-verify's semantics: extract the answer from a response, normalize,
//! parse into an expression tree, and compare gold first (see `compare`). Bounded in time by a
//! step budget and free of panics: garbage in gives `equal: false` and a reason.

mod compare;
pub mod extract;
pub mod normalize;
pub mod parse;
mod response;

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use compare::Budget;
pub use compare::{REL_TOL, STEP_BUDGET};
use extract::Method;
use normalize::Units;
use parse::Answer;
pub use response::{Extraction, Graded, grade_response, math_verify_candidates, restates};

/// Bumped whenever a verdict can change (extraction, normalisation, parsing, comparison): it
/// enters the identity of the verify and evaluate outputs that rest on the grader.
pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub equal: bool,
    /// How the verdict was reached, or why the answers could not be compared.
    pub reason: String,
}

impl Verdict {
    fn new(equal: bool, reason: impl Into<String>) -> Self {
        Self { equal, reason: reason.into() }
    }
}

/// Grades `pred` (a bare answer or a whole response) against `gold` exactly as the evaluate
/// stage does by default: [`grade_response`] with math-verify's extraction and no problem text.
/// Every caller that grades a response goes through [`grade_response`], so `pipeline grade`
/// and the evaluate stage cannot disagree.
pub fn grade(gold: &str, pred: &str) -> Verdict {
    grade_response(gold, pred, None, Extraction::default()).verdict
}

/// The final answer a full solution commits to: its last `\boxed{}` or "final answer is"
/// phrase, nothing else (a solution that boxes nothing has no answer to vote with). This is
/// [`Extraction::Strict`]'s reading.
pub fn committed_answer(solution: &str) -> Option<&str> {
    let config = extract::ExtractConfig { order: vec![Method::Boxed, Method::FinalAnswer] };
    extract::extract(solution.trim(), &config).map(|e| e.answer)
}

static CHOICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\\(?:text|textbf|mathrm)\{)?\s*\(?\s*([A-E])\s*\)?\s*\}?$").expect("valid regex")
});

/// The letter of a normalized multiple-choice answer (`(C)`, `\text{C}`).
fn choice(normalized: &str) -> Option<char> {
    CHOICE.captures(normalized).and_then(|c| c[1].chars().next())
}

/// Compares two bare answers, gold first.
pub fn answers_equal(gold: &str, pred: &str) -> Verdict {
    let stripped = (normalize::normalize(gold), normalize::normalize(pred));
    let first = answers_equal_normalized(&stripped.0, &stripped.1);
    if first.equal {
        return first;
    }
    // A unit dropped on one side only (`6 m` vs `6m`): read both with their units kept.
    let kept = (normalize::normalize_with(gold, Units::Keep), normalize::normalize_with(pred, Units::Keep));
    if kept == stripped {
        return first;
    }
    let second = answers_equal_normalized(&kept.0, &kept.1);
    if second.equal { Verdict::new(true, format!("{} (units kept)", second.reason)) } else { first }
}

fn answers_equal_normalized(g: &str, p: &str) -> Verdict {
    if g.is_empty() {
        return Verdict::new(false, "empty gold answer");
    }
    if g == p {
        return Verdict::new(true, "same text after normalization");
    }
    if let Some(gc) = choice(g) {
        return match choice(p) {
            Some(pc) => Verdict::new(gc == pc, "multiple-choice letters"),
            None => Verdict::new(false, "gold is a choice letter, prediction is not"),
        };
    }
    let gold_tree = match parse::parse_prepared(g) {
        Ok(t) => t,
        Err(e) => return Verdict::new(false, format!("gold not parsed ({e}); texts differ")),
    };
    let pred_tree = match parse::parse_prepared(p) {
        Ok(t) => t,
        Err(e) => return Verdict::new(false, format!("prediction not parsed: {e}")),
    };
    let mut budget = Budget::new();
    let equal = compare::answers_equal(&gold_tree, &pred_tree, &mut budget);
    let reason = if budget.exhausted() {
        "step budget exhausted".to_owned()
    } else {
        format!("{} vs {}", shape(&gold_tree), shape(&pred_tree))
    };
    Verdict::new(equal && !budget.exhausted(), reason)
}

fn shape(a: &Answer) -> &'static str {
    match a {
        Answer::Expr(_) => "expression",
        Answer::Relation { .. } => "relation",
        Answer::Tuple(_) => "tuple",
        Answer::Set(_) => "set",
        Answer::List(_) => "list",
        Answer::Intervals(_) => "interval",
        Answer::Matrix(_) => "matrix",
        Answer::Text(_) => "text",
    }
}

/// Structural equality of two parsed answers (gold first), under a fresh step budget.
pub fn trees_equal(gold: &Answer, pred: &Answer) -> bool {
    compare::answers_equal(gold, pred, &mut Budget::new())
}

#[cfg(test)]
mod tests;
