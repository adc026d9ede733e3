//! Grading a whole model response the way the paper's harness does: math-verify's extraction
//! (read from its 0.9.0 source, `math_verify/parser.py`), then our answer equivalence.
//!
//! math-verify tries patterns by priority and, within a priority, the match that ends last:
//! 0: Minerva's "Final Answer: The final answer is X. I hope it is correct."; 50: `\boxed{X}` and
//! "final answer ... is X"; 100: "answer: ... X"; 200: "answer ... X"; 300: any math environment
//! (`$..$`, `$$..$$`, `\(..\)`, `\[..\]`, a bare `\frac{a}{b}`; several joined by "and", "or" or
//! commas form a set) or plain number/expression (decimal commas, thousands separators,
//! "percent"/"pct"). The first candidate that parses is the answer; if none does, the first
//! candidate is compared as text. `Extraction::Strict` reads only committed answers (`\boxed{}`
//! and "final answer is" phrases), as our earlier grader did: a base model that does not box is
//! then scored lower than the paper's harness would score it.
//!
//! Deliberate differences from math-verify: scientific notation (`4.5e33`) is a number (math-
//! verify reads `4.5e33` as 4.5·e·33), and an answer that merely restates a compound expression
//! of the problem (`|(1-i)^8|` for "compute |(1-i)^8|") is no answer.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::extract::{self, Method, final_answer_minerva, final_answer_plain, last_boxed, math_spans};
use super::parse;
use super::verdict::{Prepared, Verdict, answers_equal_prepared};

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

/// The answer a response commits to under `extraction`, without a gold to compare against:
/// the strict reading ([`committed_answer`]), or math-verify's candidates in priority order, the
/// first that parses (the first, as text, if none does). The verify vote reads solutions with
/// it, so its answers are read as the evaluate stage and `pipeline grade` read them.
pub fn extract_answer(response: &str, extraction: Extraction) -> Option<Cow<'_, str>> {
    match extraction {
        Extraction::Strict => committed_answer(response.trim()).map(Cow::Borrowed),
        Extraction::MathVerify => {
            let mut candidates = math_verify_candidates(response);
            let k = candidates.iter().position(|c| parse::parse_answer(c).is_ok()).unwrap_or(0);
            (k < candidates.len()).then(|| candidates.swap_remove(k))
        }
    }
}

/// How the answer is found in a response (`evaluate.extraction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extraction {
    /// math-verify's default extraction, as the paper graded (see the module doc).
    #[default]
    MathVerify,
    /// Only `\boxed{}` and "final answer is" phrases.
    Strict,
}

impl Extraction {
    /// The name configs and outputs use (`math_verify`, `strict`).
    pub fn as_str(self) -> &'static str {
        match self {
            Extraction::MathVerify => "math_verify",
            Extraction::Strict => "strict",
        }
    }
}

/// A graded response: the verdict and the answer it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graded {
    pub verdict: Verdict,
    pub extracted: Option<String>,
}

/// Grades a whole `response` against `gold`. With the `problem` text, a compound expression
/// copied from it is not taken as an answer.
pub fn grade_response(gold: &str, response: &str, problem: Option<&str>, extraction: Extraction) -> Graded {
    // math-verify parses the gold as it parses a response: a gold that is a whole solution
    // (`... so $\boxed{5}$.`) is the answer it commits to.
    let (gold, gold_prepared) = gold_answer(gold);
    let gold = gold.as_ref();
    let gold_parses = gold_prepared.parses();
    // Writing the gold itself is an answer even where the problem shows it (`\sqrt{53}`).
    let restated = |c: &str| problem.is_some_and(|p| restates(p, c)) && squash(c) != squash(gold);
    // Candidates are produced one priority at a time and stop at the first that parses
    // (math-verify's "any match"): most responses box their answer, and the lower priorities
    // (every number and math span of the text) are then never looked for.
    let text = response.trim();
    let levels = match extraction {
        Extraction::MathVerify => LEVELS + 1,
        Extraction::Strict => 1,
    };
    let mut seen = false;
    let mut first_usable: Option<(Cow<'_, str>, Prepared)> = None;
    let mut chosen: Option<(Cow<'_, str>, Prepared)> = None;
    'levels: for k in 0..levels {
        let candidates = match extraction {
            Extraction::Strict => committed_answer(text).map(Cow::Borrowed).into_iter().collect(),
            Extraction::MathVerify if k < LEVELS => level(text, k),
            Extraction::MathVerify if seen => Vec::new(),
            Extraction::MathVerify => bare(text).map(Cow::Borrowed).into_iter().collect(),
        };
        for c in candidates {
            seen = true;
            if restated(&c) {
                continue;
            }
            let prepared = Prepared::new(&c);
            // Against a gold the parser cannot read either, the first one, compared as text.
            if !gold_parses || prepared.parses() {
                chosen = Some((c, prepared));
                break 'levels;
            }
            if first_usable.is_none() {
                first_usable = Some((c, prepared));
            }
        }
    }
    let Some((chosen, prepared)) = chosen.or(first_usable) else {
        let reason = if seen {
            "the response's answer restates an expression of the problem"
        } else {
            "no answer found in the response"
        };
        return Graded { verdict: Verdict::new(false, reason), extracted: None };
    };
    // A gold written as a definition (`N(n) = \lfloor 2n/3 \rfloor + 1`) is its value, as the
    // prediction's is.
    let verdict = answers_equal_prepared(&gold_prepared, &prepared);
    let whole = gold.trim().trim_matches('$');
    let gold_value = value_side(whole);
    let verdict = if !verdict.equal && gold_value != whole {
        answers_equal_prepared(&Prepared::new(gold_value), &prepared)
    } else {
        verdict
    };
    Graded { verdict, extracted: Some(chosen.into_owned()) }
}

/// The gold's answer, prepared: the gold itself when it parses, else the first candidate
/// extracted from it that does (math-verify extracts from `"$" + gold + "$"`).
fn gold_answer(gold: &str) -> (Cow<'_, str>, Prepared) {
    let prepared = Prepared::new(gold);
    // Only a gold that is a solution: a bare answer we cannot parse is
    // compared as text, not replaced by a number inside it (`y' = 0` is not 0).
    if prepared.parses() || !is_solution(gold) {
        return (Cow::Borrowed(gold), prepared);
    }
    first_parsing_candidate(gold).unwrap_or((Cow::Borrowed(gold), prepared))
}

/// The first of [`math_verify_candidates`] that parses, found one priority level at a time: a
/// solution's box parses, and its every number and math span (the costly lowest levels) are
/// then never looked for. The same answer as searching the whole list: the levels come in its
/// order, and a candidate the phrase level repeats, or the bare text (only where no level
/// found any), can parse only where an earlier candidate, the same text, already did.
fn first_parsing_candidate(text: &str) -> Option<(Cow<'_, str>, Prepared)> {
    let text = text.trim();
    let mut seen = false;
    for k in 0..LEVELS {
        for c in level(text, k) {
            seen = true;
            let p = Prepared::new(&c);
            if p.parses() {
                return Some((c, p));
            }
        }
    }
    if seen {
        return None;
    }
    bare(text).map(|c| (Cow::Borrowed(c), Prepared::new(c))).filter(|(_, p)| p.parses())
}

/// Whether `gold` is a worked solution rather than an answer: it boxes its answer. (A prose
/// gold without a box, OlympiadBench's "`$f(x)=ax+b$`, where ...", is compared as written.)
fn is_solution(gold: &str) -> bool {
    gold.contains("\\boxed")
}

/// math-verify's priorities (0, 50, 100, 200, 300), then our "the answer is X" phrase.
const LEVELS: usize = 6;

/// Candidate answers in math-verify's order of priority.
pub fn math_verify_candidates(response: &str) -> Vec<Cow<'_, str>> {
    let text = response.trim();
    let mut out: Vec<Cow<'_, str>> = Vec::new();
    for k in 0..LEVELS {
        for c in level(text, k) {
            // The phrase level repeats nothing found before.
            if k + 1 < LEVELS || !out.contains(&c) {
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        out.extend(bare(text).map(Cow::Borrowed));
    }
    out
}

/// A bare short answer (`\sqrt{2}`, `x^2+1`) is itself the answer.
fn bare(text: &str) -> Option<&str> {
    (!text.is_empty() && !text.contains('\n') && text.split_whitespace().count() <= 12).then_some(text)
}

/// Whether `text` holds `word` (lower case ASCII) in any case: a cheap test before a regex.
fn contains_ignore_case(text: &str, word: &str) -> bool {
    let (t, w) = (text.as_bytes(), word.as_bytes());
    let Some((&first, rest)) = w.split_first() else { return true };
    t.iter().enumerate().any(|(i, &b)| {
        (b | 0x20) == first && t.get(i + 1..i + w.len()).is_some_and(|r| r.eq_ignore_ascii_case(rest))
    })
}

/// The candidates of priority level `k`, best first.
fn level(text: &str, k: usize) -> Vec<Cow<'_, str>> {
    let answer_word = || contains_ignore_case(text, "answer");
    match k {
        0 if contains_ignore_case(text, "i hope") => {
            final_answer_minerva(text).map(Cow::Borrowed).into_iter().collect()
        }
        // The box or "final answer ... is" that ends last.
        1 => {
            let boxed = last_boxed(text).map(|a| (end_of(text, a), Cow::Borrowed(a)));
            // Boxes in math spans joined by "and", "or" or commas are one answer, a set.
            let boxed = match (boxed, joined_boxes(text)) {
                (Some((end, _)), Some((group_end, set))) if group_end >= end => {
                    Some((group_end, Cow::Owned(set)))
                }
                (b, _) => b,
            };
            let phrase = if answer_word() {
                FINAL_IS.captures_iter(text).last().and_then(|c| c.get(1)).map(|m| (m.end(), m.as_str()))
            } else {
                None
            };
            let mut fifty: Vec<(usize, Cow<'_, str>)> = boxed
                .into_iter()
                .chain(phrase.and_then(|(e, s)| leading_answer(s).map(|a| (e, Cow::Borrowed(a)))))
                .collect();
            fifty.sort_by_key(|(end, _)| std::cmp::Reverse(*end));
            fifty.into_iter().map(|(_, a)| a).collect()
        }
        // An answer anchor, then the first math or number within 50 characters.
        2 | 3 if answer_word() => {
            let anchor = if k == 2 { &*ANSWER_COLON } else { &*ANSWER_WORD };
            let mut found: Vec<(usize, Cow<'_, str>)> = Vec::new();
            for m in anchor.find_iter(text) {
                let window_end = floor_char(text, (m.end() + 50).min(text.len()));
                if let Some((end, a)) = first_answer_after(text, m.end(), window_end) {
                    found.push((end, a));
                }
            }
            found.sort_by_key(|(end, _)| std::cmp::Reverse(*end));
            found.into_iter().map(|(_, a)| a).collect()
        }
        // Whatever math or number ends last.
        4 => {
            let mut last: Vec<(usize, Cow<'_, str>)> =
                math_envs(text).into_iter().map(|(_, e, a)| (e, a)).collect();
            last.extend(numbers(text).into_iter().map(|(_, e, a)| (e, a)));
            last.sort_by_key(|(end, _)| std::cmp::Reverse(*end));
            last.into_iter().map(|(_, a)| a).collect()
        }
        5 if answer_word() => final_answer_plain(text).map(Cow::Borrowed).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The last run of two or more math spans that each hold a `\boxed{}`, joined only by "and",
/// "or" or commas (math-verify's boxed pattern and its `next` groups): (where the run ends,
/// the boxes' contents as a set).
fn joined_boxes(text: &str) -> Option<(usize, String)> {
    // Two boxes at least, or no run to find.
    text.matches("\\boxed").nth(1)?;
    let spans: Vec<(usize, usize, &str)> = math_spans(text)
        .into_iter()
        .filter_map(|(start, inner, end)| last_boxed(inner).map(|b| (start, end, b)))
        .collect();
    let mut best: Option<(usize, String)> = None;
    let mut k = 0;
    while k < spans.len() {
        let mut j = k;
        while j + 1 < spans.len() && JOINER.is_match(&text[spans[j].1..spans[j + 1].0]) {
            j += 1;
        }
        if j > k {
            let items: Vec<&str> = spans[k..=j].iter().map(|s| s.2).collect();
            best = Some((spans[j].1, format!("\\{{{}\\}}", items.join(", "))));
        }
        k = j + 1;
    }
    best
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn end_of(text: &str, inner: &str) -> usize {
    inner.as_ptr() as usize - text.as_ptr() as usize + inner.len()
}

static FINAL_IS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)final answer.{0,100}?\s+is:?\s*(\S.*?)(?:\n|$)").expect("valid regex")
});
static ANSWER_COLON: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)answer:").expect("valid regex"));
static ANSWER_WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)answer").expect("valid regex"));

/// The math or number a phrase starts with.
fn leading_answer(s: &str) -> Option<&str> {
    let s = s.trim_start();
    if let Some((start, _, a)) = math_envs(s).into_iter().next()
        && start == 0
        && let Cow::Borrowed(a) = a
    {
        return Some(a);
    }
    numbers(s).into_iter().next().filter(|(start, _, _)| *start == 0).and_then(|(_, _, a)| match a {
        Cow::Borrowed(a) => Some(a),
        Cow::Owned(_) => None,
    })
}

/// The first math environment or number that starts in `text[from..to]`.
fn first_answer_after(text: &str, from: usize, to: usize) -> Option<(usize, Cow<'_, str>)> {
    let rest = &text[from..];
    let mut all: Vec<(usize, usize, Cow<'_, str>)> = math_envs(rest);
    all.extend(numbers(rest));
    all.retain(|(start, _, _)| from + start < to);
    all.sort_by_key(|(start, _, _)| *start);
    all.into_iter().next().map(|(_, end, a)| (from + end, a))
}

/// Every math environment: (start, end, content); neighbours joined by "and"/"or"/"," are one
/// set answer, as math-verify joins them.
fn math_envs(text: &str) -> Vec<(usize, usize, Cow<'_, str>)> {
    let spans = math_spans(text);
    let mut envs: Vec<(usize, usize, &str)> = Vec::new();
    for &(start, inner, end) in &spans {
        // An inline `$..$` does not span lines (math-verify's pattern).
        let inline = text[start..].starts_with('$') && !text[start..].starts_with("$$");
        if inner.is_empty() || (inline && inner.contains('\n')) {
            continue;
        }
        match PERCENT_AFTER.find(&text[end..]) {
            Some(p) => envs.push((start, end + p.end(), &text[start..end + p.end()])),
            None => envs.push((start, end, inner)),
        }
    }
    // A bare `\frac{3}{4}` outside math counts as math too.
    for m in BARE_FRAC.find_iter(text) {
        if !spans.iter().any(|&(s, _, e)| s <= m.start() && m.start() < e) {
            envs.push((m.start(), m.end(), m.as_str()));
        }
    }
    envs.sort_by_key(|&(start, _, _)| start);
    let mut out: Vec<(usize, usize, Cow<'_, str>)> = Vec::new();
    let mut k = 0;
    while k < envs.len() {
        let mut group = vec![envs[k]];
        while k + 1 < envs.len() && JOINER.is_match(&text[group.last().expect("non-empty").1..envs[k + 1].0])
        {
            k += 1;
            group.push(envs[k]);
        }
        let (start, end) = (group[0].0, group.last().expect("non-empty").1);
        if group.len() == 1 {
            out.push((start, end, Cow::Borrowed(last_side(group[0].2))));
        } else {
            let items: Vec<String> = group.iter().map(|g| rhs(last_side(g.2)).to_owned()).collect();
            out.push((start, end, Cow::Owned(format!("\\{{{}\\}}", items.join(", ")))));
        }
        k += 1;
    }
    out
}

/// The last side of a chain `a = b = c` (math-verify's `get_last_eq`): the value a worked
/// line ends on. A single `x = 3` or a list is left whole.
fn last_side(s: &str) -> &str {
    // `x = 1/3 \approx 0.33`: the exact value, before the approximation.
    // A lone `x \approx 11` is the value 11 (the parser reads `\approx` as `=`).
    let s = match s.split_once("\\approx") {
        Some((exact, _)) if exact.contains('=') => exact.trim(),
        _ => s.trim(),
    };
    if s.contains([',', ';']) {
        return s;
    }
    value_side(s)
}

/// `3 \cdot 4 = 12`, `\sin 60^\circ = \frac{\sqrt3}2`, `f(t) = e^t/3`: the value on the right of
/// a worked constant or a function's definition. An equation in unknowns (`x = 3`,
/// `y' + ry = 0`) stays whole: the grader compares those itself.
pub(super) fn value_side(s: &str) -> &str {
    if let Some((lhs, r)) = s.split_once('=')
        && !r.contains('=')
        && !lhs.ends_with(['<', '>', '!', '\\'])
        && !r.trim().is_empty()
    {
        let lhs = lhs.trim();
        let constant = !COMMAND.replace_all(lhs, "").chars().any(|c| c.is_ascii_alphabetic());
        if constant || FUNCTION_NOTATION.is_match(lhs) {
            return r.trim();
        }
    }
    let parts: Vec<&str> = s.split('=').collect();
    if parts.len() > 2 && parts[..parts.len() - 1].iter().all(|p| !p.ends_with(['<', '>', '!', '\\'])) {
        return parts[parts.len() - 1].trim();
    }
    s
}

/// The value side of `x = 3`.
fn rhs(s: &str) -> &str {
    match s.rsplit_once('=') {
        Some((lhs, r)) if !lhs.ends_with(['<', '>', '!', '\\']) => r.trim(),
        _ => s.trim(),
    }
}

static COMMAND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\\[A-Za-z]+").expect("valid regex"));
static FUNCTION_NOTATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z](?:_\{?\w+\}?)?\s*\([^()=]*\)$").expect("valid regex"));
static BARE_FRAC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?\\d?frac\{-?\d+(?:[.,]\d+)?\}\{-?\d+(?:[.,]\d+)?\}").expect("valid regex")
});
static PERCENT_AFTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:\\?%|[Pp]ercentage|[Pp]ercent|[Pp]ct)").expect("valid regex"));
static JOINER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:,?\s*and|,?\s*or|,)\s*$").expect("valid regex"));
// math-verify's plain expression (digits and operators, at least one operator) must end at
// punctuation, a space or the end; a number need not (`0.5€`, `100m2`), as in its
// `number_with_anchors`. Both follow the start, a space or `=`.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:^|[\s=])\**(?:",
        r"(?P<x>-?\(?-?\d[\d.\s+\-*×/^()÷]*[+\-*×/^()÷][\d.+\-*×/^()÷]*[\d)])\**(?:[.,:\s)$]|$)",
        r"|[$€£¥]?(?P<n>",
        r"-?[1-9]\d{0,2}(?:[ ,]\d{3})+(?:\.\d+)?",
        r"|-?\d+[.,]\d+(?:[eE][-+]?\d+)?",
        r"|-?\d+(?:[eE][-+]?\d+)?",
        r"|-?\.\d+",
        r")(?P<pct>\s*(?:%|[Pp]ercentage|[Pp]ercent|[Pp]ct))?",
        r")",
    ))
    .expect("valid regex")
});

/// Plain numbers and arithmetic outside math: (start, end, text as our parser reads it).
/// Decimal commas become points, thousands separators go, percent words become `%`.
fn numbers(text: &str) -> Vec<(usize, usize, Cow<'_, str>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let Some(c) = NUMBER.captures_at(text, at) else { break };
        let Some(n) = c.name("x").or_else(|| c.name("n")) else { break };
        let whole = c.get(0).expect("match");
        // The suffix character is shared with the next match's prefix: resume on it.
        at = floor_char(text, whole.end().max(n.end()).saturating_sub(1).max(at + 1));
        // A thousands group ends at a non-digit: `1 2345` is the number 1 (then 2345), not
        // 1 234 and a stray 5.
        if text[n.end()..].starts_with(|ch: char| ch.is_ascii_digit()) && THOUSANDS.is_match(n.as_str()) {
            let cut = n.as_str().find([' ', ',']).unwrap_or(n.len());
            at = floor_char(text, n.start() + cut);
            out.push((n.start(), n.start() + cut, Cow::Borrowed(&n.as_str()[..cut])));
            continue;
        }
        let mut s: Cow<'_, str> = Cow::Borrowed(n.as_str());
        if THOUSANDS.is_match(&s) {
            s = Cow::Owned(s.replace([',', ' '], ""));
        } else if DECIMAL_COMMA.is_match(&s) {
            s = Cow::Owned(s.replace(',', "."));
        }
        let end = match c.name("pct") {
            Some(p) => {
                s = Cow::Owned(format!("{s}\\%"));
                p.end()
            }
            None => n.end(),
        };
        out.push((n.start(), end, s));
    }
    out
}

static THOUSANDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?[1-9]\d{0,2}(?:[ ,]\d{3})+(?:\.\d+)?$").expect("valid regex"));
static DECIMAL_COMMA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^-?\d+,\d+$").expect("valid regex"));

/// Whether `answer` is a compound expression (an operator, a command or brackets, not a bare
/// number or name) that appears in the problem as written: a response that loops on the
/// question without answering ends on such an expression, which is not an answer.
pub fn restates(problem: &str, answer: &str) -> bool {
    let a = squash(answer);
    let body = a.strip_prefix('-').unwrap_or(&a);
    let compound = body.chars().count() >= 3 && body.chars().any(|c| "+-*/^|()\\[]{}!".contains(c));
    if !compound {
        return false;
    }
    let envs = math_envs(problem);
    if envs.is_empty() {
        return squash(problem).contains(&a);
    }
    envs.iter().any(|(_, _, e)| squash(e) == a)
}

fn squash(s: &str) -> String {
    super::normalize::normalize(s).chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> String {
        math_verify_candidates(text).first().map(|c| c.to_string()).unwrap_or_default()
    }

    #[test]
    fn priorities_follow_math_verify() {
        assert_eq!(first("Final Answer: The final answer is $34$. I hope it is correct."), "34");
        assert_eq!(first("So $x=2$ and the answer is \\boxed{5}. Check: $2+3$"), "5");
        assert_eq!(first("Answer: 1000 apples, from $3$ crates"), "1000");
        assert_eq!(first("Adding up,\n\\[ 9 \\]"), "9");
        assert_eq!(first("The result is 2,5."), "2.5");
        assert_eq!(first("The total is 1,234,567 items."), "1234567");
        assert_eq!(first("The increase is 28 pct."), "28\\%");
        assert_eq!(first("The solutions are $x = 1$ and $x = 2$."), "\\{1, 2\\}");
        assert_eq!(first("which gives \\frac{3}{4} of it"), "\\frac{3}{4}");
    }

    #[test]
    fn restating_the_problem_is_no_answer() {
        let problem = "Compute $|(1-i)^8|$.";
        let looping = "We need $|(1-i)^8|$. Compute $|(1-i)^8|$.";
        let g = grade_response("16", looping, Some(problem), Extraction::MathVerify);
        assert!(!g.verdict.equal, "{g:?}");
        let answered = "We need $|(1-i)^8| = |1-i|^8 = 16$.";
        assert!(grade_response("16", answered, Some(problem), Extraction::MathVerify).verdict.equal);
        // A bare number from the problem can be the answer.
        assert!(
            grade_response("8", "It is $8$.", Some("Is it 8 or 9?"), Extraction::MathVerify).verdict.equal
        );
    }

    #[test]
    fn strict_needs_a_committed_answer() {
        assert!(!grade_response("9", "so we get $9$.", None, Extraction::Strict).verdict.equal);
        assert!(grade_response("9", "so \\boxed{9}.", None, Extraction::Strict).verdict.equal);
        assert!(grade_response("9", "so we get $9$.", None, Extraction::MathVerify).verdict.equal);
    }
}
