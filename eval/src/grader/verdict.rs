//! Whether two bare answers are the same answer: both normalized (units stripped, and kept
//! where one side drops a unit), parsed, and compared gold first under a step budget.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::compare::{self, Budget};
use super::normalize;
use super::parse;
use super::tree::Answer;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub equal: bool,
    /// How the verdict was reached, or why the answers could not be compared.
    pub reason: String,
}

impl Verdict {
    pub(super) fn new(equal: bool, reason: impl Into<String>) -> Self {
        Self { equal, reason: reason.into() }
    }
}

static CHOICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\\(?:text|textbf|mathrm)\{)?\s*\(?\s*([A-E])\s*\)?\s*\}?$").expect("valid regex")
});

static DECIMAL_COMMA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^-?\d+,\d+$").expect("valid regex"));
static THOUSANDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?[1-9]\d{0,2}(?:,\d{3})+$").expect("valid regex"));

/// The letter of a normalized multiple-choice answer (`(C)`, `\text{C}`).
fn choice(normalized: &str) -> Option<char> {
    CHOICE.captures(normalized).and_then(|c| c[1].chars().next())
}

/// Compares two bare answers, gold first.
pub fn answers_equal(gold: &str, pred: &str) -> Verdict {
    answers_equal_prepared(&Prepared::new(gold), &Prepared::new(pred))
}

/// An answer normalized both ways (units stripped and kept) and parsed once, so that grading
/// a response neither normalizes nor parses the same text twice.
pub(crate) struct Prepared {
    strip: String,
    keep: String,
    tree: Result<Answer, String>,
}

impl Prepared {
    pub(crate) fn new(raw: &str) -> Self {
        if raw.len() > parse::MAX_ANSWER_CHARS {
            let err = Err(format!("longer than {} characters", parse::MAX_ANSWER_CHARS));
            return Self { strip: String::new(), keep: String::new(), tree: err };
        }
        let (strip, keep) = normalize::normalize_both(raw);
        let tree = parse::parse_prepared(&strip);
        Self { strip, keep, tree }
    }

    pub(crate) fn parses(&self) -> bool {
        self.tree.is_ok()
    }
}

pub(crate) fn answers_equal_prepared(gold: &Prepared, pred: &Prepared) -> Verdict {
    let first = answers_equal_normalized((&gold.strip, &gold.tree), (&pred.strip, &pred.tree));
    if first.equal || (gold.keep == gold.strip && pred.keep == pred.strip) {
        return first;
    }
    // A unit dropped on one side only (`6 m` vs `6m`): read both with their units kept.
    let reparse = |p: &Prepared| if p.keep == p.strip { None } else { Some(parse::parse_prepared(&p.keep)) };
    let (gk, pk) = (reparse(gold), reparse(pred));
    let second = answers_equal_normalized(
        (&gold.keep, gk.as_ref().unwrap_or(&gold.tree)),
        (&pred.keep, pk.as_ref().unwrap_or(&pred.tree)),
    );
    if second.equal { Verdict::new(true, format!("{} (units kept)", second.reason)) } else { first }
}

type Parsed<'a> = (&'a str, &'a Result<Answer, String>);

fn answers_equal_normalized((g, gold_tree): Parsed<'_>, (p, pred_tree): Parsed<'_>) -> Verdict {
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
    let gold_tree = match gold_tree {
        Ok(t) => t,
        Err(e) => return Verdict::new(false, format!("gold not parsed ({e}); texts differ")),
    };
    // `0,15` against a number is a decimal comma, not the list 0, 15 (a list gold keeps
    // `11,13` a list; `1,234` stays a thousands grouping).
    let decimal_comma =
        matches!(gold_tree, Answer::Expr(_)) && DECIMAL_COMMA.is_match(p) && !THOUSANDS.is_match(p);
    let reread = decimal_comma.then(|| parse::parse_prepared(&p.replacen(',', ".", 1)));
    let pred_tree = match reread.as_ref().unwrap_or(pred_tree) {
        Ok(t) => t,
        Err(e) => return Verdict::new(false, format!("prediction not parsed: {e}")),
    };
    let mut budget = Budget::new();
    let equal = compare::answers_equal(gold_tree, pred_tree, &mut budget);
    let reason = if budget.exhausted() {
        "step budget exhausted".to_owned()
    } else {
        format!("{} vs {}", shape(gold_tree), shape(pred_tree))
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
