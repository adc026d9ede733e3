//! From an LLM reply to items, never panicking: strict JSON, a fenced ```json block, the first
//! `{` to the last `}`, trailing commas, a Python list of strings (Sequence), and
//! `<response><text>..</text><probability>..</probability></response>` tags. Field aliases
//! (`response` for `text`; `probability|confidence|perplexity|nll` for the score) are accepted,
//! and scores are repaired with the repair recorded. A reply that yields nothing is an error of a
//! named kind, for the manifest's counts and the caller's retry.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PromptSpec;
use super::text::probability_field;
use vs_core::{ProbabilityDefinition, Strategy};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The item as the model wrote it.
    pub text: String,
    /// The verbalized score after repair; `None` for strategies that verbalize none.
    pub score: Option<f64>,
    pub repair: Option<Repair>,
}

/// How a verbalized score was changed to be usable (the reference library's `repair_weight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// `"70%"` (or 70 under the percentage definition) read as 0.70.
    Percentage,
    /// Below zero: set to 0.
    Negative,
    /// Above one: set to 1.
    AboveOne,
    /// Not a number (or NaN/infinite): set to 0.
    Invalid,
    /// No score given: left absent.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the reply is empty")]
    Empty,
    #[error("no JSON in the reply")]
    NoJson,
    #[error("the reply's JSON does not parse: {0}")]
    BadJson(String),
    #[error("the JSON has no `responses` list")]
    NoResponses,
    #[error("the reply holds no non-empty item")]
    NoItems,
}

impl ReplyError {
    /// A stable name for counting failures by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ReplyError::Empty => "empty",
            ReplyError::NoJson => "no_json",
            ReplyError::BadJson(_) => "bad_json",
            ReplyError::NoResponses => "no_responses",
            ReplyError::NoItems => "no_items",
        }
    }
}

/// Parses one reply of `strategy` into its items.
pub fn parse_reply(strategy: Strategy, spec: &PromptSpec, reply: &str) -> Result<Vec<Item>, ReplyError> {
    let reply = reply.trim();
    if reply.is_empty() {
        return Err(ReplyError::Empty);
    }
    let items = match strategy {
        Strategy::Direct | Strategy::MultiTurn => vec![plain(reply)],
        // CoT asks for `{reasoning, response}`; a model that answers in prose still answered.
        Strategy::Cot => match find_json(reply) {
            Ok(v) => vec![plain(
                v.get("response").or_else(|| v.get("text")).and_then(Value::as_str).unwrap_or(reply),
            )],
            Err(_) => vec![plain(reply)],
        },
        Strategy::Sequence => sequence_items(reply)?,
        Strategy::VsStandard | Strategy::VsCot | Strategy::VsMulti => scored_items(reply, spec)?,
    };
    let items: Vec<Item> = items.into_iter().filter(|i| !i.text.trim().is_empty()).collect();
    if items.is_empty() { Err(ReplyError::NoItems) } else { Ok(items) }
}

/// The complete items of a reply cut short by its token budget (`finish_reason: length`):
/// `{"responses": [{..}, {..}, {"text": "half` keeps the two items that closed; an item cut
/// mid-way is dropped, never completed. For the strategies whose items are objects with a score (VS-*); the others
/// parse as [`parse_reply`] does, which is also the error when no item closed. Only for cut
/// replies: a reply that ended on its own and does not parse is the model's error, asked again.
pub fn parse_truncated_reply(
    strategy: Strategy,
    spec: &PromptSpec,
    reply: &str,
) -> Result<Vec<Item>, ReplyError> {
    if !matches!(strategy, Strategy::VsStandard | Strategy::VsCot | Strategy::VsMulti) {
        return parse_reply(strategy, spec, reply);
    }
    let start = reply.find('{').ok_or(ReplyError::NoJson)?;
    let json = &reply[start..];
    // Cut after each `}` outside a string, the last first, and close the list and the object.
    let mut closes = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in json.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '}' if !in_string => closes.push(i),
            _ => {}
        }
    }
    for &end in closes.iter().rev() {
        let candidate = format!("{}]}}", &json[..=end]);
        if let Ok(items) = parse_reply(strategy, spec, &candidate) {
            return Ok(items);
        }
    }
    parse_reply(strategy, spec, reply)
}

fn plain(text: &str) -> Item {
    Item { text: text.trim().to_owned(), score: None, repair: None }
}

static FENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)```(?:json|JSON)?\s*\n?(.*?)```").expect("valid regex"));
static TRAILING_COMMA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r",(\s*[}\]])").expect("valid regex"));

fn parse_lenient(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).or_else(|first: serde_json::Error| {
        let fixed = TRAILING_COMMA.replace_all(text, "$1");
        serde_json::from_str(&fixed).map_err(|_| first.to_string())
    })
}

/// The JSON value in a reply: the whole reply, a fenced block, or the outermost `{...}`/`[...]`.
fn find_json(reply: &str) -> Result<Value, ReplyError> {
    if let Ok(v) = serde_json::from_str(reply) {
        return Ok(v);
    }
    let mut last_err = None;
    let fenced = FENCE.captures(reply).map(|c| c.get(1).map_or("", |m| m.as_str()).trim().to_owned());
    let spans = [('{', '}'), ('[', ']')].into_iter().filter_map(|(open, close)| {
        let start = reply.find(open)?;
        let end = reply.rfind(close)?;
        (end > start).then(|| reply[start..=end].to_owned())
    });
    for candidate in fenced.into_iter().chain(spans) {
        match parse_lenient(&candidate) {
            Ok(v) => return Ok(v),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.map_or(ReplyError::NoJson, ReplyError::BadJson))
}

fn sequence_items(reply: &str) -> Result<Vec<Item>, ReplyError> {
    let from_json = |v: &Value| -> Option<Vec<Item>> {
        let list = v.get("responses").unwrap_or(v).as_array()?;
        Some(
            list.iter()
                .filter_map(|x| x.as_str().or_else(|| x.get("text").and_then(Value::as_str)))
                .map(plain)
                .collect(),
        )
    };
    if let Ok(v) = find_json(reply)
        && let Some(items) = from_json(&v)
    {
        return Ok(items);
    }
    python_string_list(reply).map(|v| v.iter().map(|s| plain(s)).collect()).ok_or(ReplyError::NoJson)
}

/// `['a', "b\n"]`: a Python list of string literals (what the Sequence prompt asks for).
fn python_string_list(reply: &str) -> Option<Vec<String>> {
    let start = reply.find('[')?;
    let chars: Vec<char> = reply[start + 1..].chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        match chars.get(i)? {
            ']' => return Some(out),
            &q @ ('\'' | '"') => {
                i += 1;
                let mut s = String::new();
                loop {
                    match *chars.get(i)? {
                        '\\' => {
                            let c = *chars.get(i + 1)?;
                            s.push(match c {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                            i += 2;
                        }
                        c if c == q => {
                            i += 1;
                            break;
                        }
                        c => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(s);
            }
            _ => return None,
        }
    }
}

static XML_RESPONSE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<response>(.*?)</response>").expect("valid regex"));
static XML_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<text>(.*?)</text>").expect("valid regex"));
static XML_SCORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?s)<(probability|confidence|perplexity|nll)>(.*?)</(?:probability|confidence|perplexity|nll)>",
    )
    .expect("valid regex")
});

const SCORE_FIELDS: [&str; 4] = ["probability", "confidence", "perplexity", "nll"];

fn scored_items(reply: &str, spec: &PromptSpec) -> Result<Vec<Item>, ReplyError> {
    let json = find_json(reply);
    if let Ok(v) = &json {
        let list = v.get("responses").or_else(|| v.as_array().map(|_| v));
        if let Some(list) = list.and_then(Value::as_array) {
            return Ok(list.iter().filter_map(|x| scored_item(x, spec)).collect());
        }
    }
    let tagged: Vec<Item> = XML_RESPONSE
        .captures_iter(reply)
        .filter_map(|c| {
            let body = c.get(1)?.as_str();
            let text = XML_TEXT.captures(body)?.get(1)?.as_str();
            let score = XML_SCORE.captures(body).map(|s| Value::String(s[2].trim().to_owned()));
            let (score, repair) = repair(score.as_ref(), spec.probability_definition);
            Some(Item { text: text.trim().to_owned(), score, repair })
        })
        .collect();
    if !tagged.is_empty() {
        return Ok(tagged);
    }
    match json {
        Ok(_) => Err(ReplyError::NoResponses),
        Err(e) => Err(e),
    }
}

fn scored_item(x: &Value, spec: &PromptSpec) -> Option<Item> {
    if let Some(s) = x.as_str() {
        let (score, repair) = repair(None, spec.probability_definition);
        return Some(Item { text: s.trim().to_owned(), score, repair });
    }
    let text = x.get("text").or_else(|| x.get("response")).and_then(Value::as_str)?;
    let (expected, _) = probability_field(spec.probability_definition);
    let raw = x.get(expected).or_else(|| SCORE_FIELDS.iter().find_map(|f| x.get(*f)));
    let (score, repair) = repair(raw, spec.probability_definition);
    Some(Item { text: text.trim().to_owned(), score, repair })
}

/// A usable score from what the model wrote, and how it was changed.
fn repair(raw: Option<&Value>, def: ProbabilityDefinition) -> (Option<f64>, Option<Repair>) {
    let Some(raw) = raw else { return (None, Some(Repair::Missing)) };
    let (mut x, mut repaired) = match raw {
        Value::Number(n) => (n.as_f64().unwrap_or(f64::NAN), None),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_suffix('%') {
                Some(p) => {
                    (p.trim().parse::<f64>().map(|v| v / 100.0).unwrap_or(f64::NAN), Some(Repair::Percentage))
                }
                None => (s.parse::<f64>().unwrap_or(f64::NAN), None),
            }
        }
        _ => (f64::NAN, None),
    };
    if !x.is_finite() {
        return (Some(0.0), Some(Repair::Invalid));
    }
    // Perplexity and NLL are not probabilities: only their sign is checked.
    let unbounded = matches!(def, ProbabilityDefinition::Perplexity | ProbabilityDefinition::Nll);
    if x < 0.0 {
        return (Some(0.0), Some(Repair::Negative));
    }
    if !unbounded && x > 1.0 {
        if def == ProbabilityDefinition::Percentage && x <= 100.0 {
            x /= 100.0;
            repaired = Some(Repair::Percentage);
        } else {
            return (Some(1.0), Some(Repair::AboveOne));
        }
    }
    (Some(x), repaired)
}

/// A generated problem: the text between `Question:` and `Difficulty:`, and the difficulty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedProblem {
    pub question: String,
    pub difficulty: Option<String>,
}

/// Splits an item in the task's `Question: ... Difficulty: ...` format. `None` when there is
/// no `Question:` line or nothing after it.
pub fn extract_problem(item: &str) -> Option<GeneratedProblem> {
    let (_, rest) = item.split_once("Question:")?;
    let (question, difficulty) = match rest.split_once("Difficulty:") {
        Some((q, d)) => {
            (q, Some(d.trim().trim_matches(['[', ']']).trim().to_owned()).filter(|d| !d.is_empty()))
        }
        None => (rest, None),
    };
    let question = question.trim();
    (!question.is_empty()).then(|| GeneratedProblem { question: question.to_owned(), difficulty })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(def: ProbabilityDefinition) -> PromptSpec {
        PromptSpec {
            k: 5,
            target_words: 80,
            samples_per_turn: 3,
            probability_definition: def,
            probability_tuning: None,
        }
    }

    fn vs(reply: &str) -> Result<Vec<Item>, ReplyError> {
        parse_reply(Strategy::VsStandard, &spec(ProbabilityDefinition::Explicit), reply)
    }

    fn texts_scores(items: &[Item]) -> Vec<(&str, Option<f64>)> {
        items.iter().map(|i| (i.text.as_str(), i.score)).collect()
    }

    #[test]
    fn a_cut_reply_keeps_the_items_it_completed_and_drops_the_cut_one() {
        let s = spec(ProbabilityDefinition::Explicit);
        let cut = |strategy, reply| parse_truncated_reply(strategy, &s, reply);
        // Braces and quotes inside strings do not count as the end of an item.
        let reply = r#"{"responses": [{"text": "Find {x}: \"}\"", "probability": 0.5}, {"text": "B", "probability": 0.3}, {"text": "C is cut"#;
        assert!(parse_reply(Strategy::VsMulti, &s, reply).is_err());
        let items = cut(Strategy::VsMulti, reply).unwrap();
        assert_eq!(texts_scores(&items), vec![(r#"Find {x}: "}""#, Some(0.5)), ("B", Some(0.3))]);
        // Cut inside the first item's score, after the list closed, and with reasoning first.
        assert_eq!(
            cut(
                Strategy::VsStandard,
                r#"{"responses": [{"text": "A", "probability": 0.6}, {"text": "B", "probabil"#
            )
            .map(|i| i.len()),
            Ok(1)
        );
        assert_eq!(
            cut(Strategy::VsStandard, r#"{"responses": [{"text": "A", "probability": 0.6}]"#)
                .map(|i| i.len()),
            Ok(1)
        );
        assert_eq!(
            cut(
                Strategy::VsCot,
                r#"{"reasoning": "r {", "responses": [{"text": "A", "probability": 0.6}, {"te"#
            )
            .map(|i| i.len()),
            Ok(1)
        );
        // Nothing completed: the error a whole reply gets.
        assert_eq!(cut(Strategy::VsMulti, r#"{"responses": [{"text": "half"#), Err(ReplyError::NoJson));
        assert!(
            matches!(cut(Strategy::VsMulti, r#"{"responses": [{"text": "A"}, {"text": "}"#), Ok(v) if v.len() == 1)
        );
        // Strategies without scored objects parse as before.
        assert_eq!(cut(Strategy::Direct, "Question: Q").unwrap()[0].text, "Question: Q");
    }

    #[test]
    fn strict_fenced_embedded_and_trailing_comma_json() {
        let strict =
            r#"{"responses": [{"text": "A", "probability": 0.6}, {"text": "B", "probability": 0.4}]}"#;
        assert_eq!(texts_scores(&vs(strict).unwrap()), vec![("A", Some(0.6)), ("B", Some(0.4))]);
        let fenced = format!("Sure! Here you go:\n```json\n{strict}\n```\nHope that helps.");
        assert_eq!(vs(&fenced).unwrap().len(), 2);
        let embedded = format!("Output: {strict} -- end");
        assert_eq!(vs(&embedded).unwrap().len(), 2);
        let trailing =
            r#"{"responses": [{"text": "A", "probability": 0.6,}, {"text": "B", "probability": 0.4},],}"#;
        assert_eq!(texts_scores(&vs(trailing).unwrap()), vec![("A", Some(0.6)), ("B", Some(0.4))]);
    }

    #[test]
    fn field_aliases_and_score_repairs() {
        let reply = r#"{"responses": [
            {"response": "A", "confidence": "70%"},
            {"text": "B", "probability": -0.2},
            {"text": "C", "probability": 1.7},
            {"text": "D", "probability": "often"},
            {"text": "E", "probability": "0.25"},
            {"text": "F"}
        ]}"#;
        let items = vs(reply).unwrap();
        let got: Vec<(&str, Option<f64>, Option<Repair>)> =
            items.iter().map(|i| (i.text.as_str(), i.score, i.repair)).collect();
        assert_eq!(
            got,
            vec![
                ("A", Some(0.7), Some(Repair::Percentage)),
                ("B", Some(0.0), Some(Repair::Negative)),
                ("C", Some(1.0), Some(Repair::AboveOne)),
                ("D", Some(0.0), Some(Repair::Invalid)),
                ("E", Some(0.25), None),
                ("F", None, Some(Repair::Missing)),
            ]
        );
        // The percentage definition asks for 0-100: 40 means 0.40, not "above one".
        let pct = parse_reply(
            Strategy::VsStandard,
            &spec(ProbabilityDefinition::Percentage),
            r#"{"responses":[{"text":"A","probability":40}]}"#,
        );
        assert_eq!(pct.unwrap()[0].score, Some(0.4));
        // Perplexity is not a probability: large values stand.
        let ppl = parse_reply(
            Strategy::VsStandard,
            &spec(ProbabilityDefinition::Perplexity),
            r#"{"responses":[{"text":"A","perplexity":12.5}]}"#,
        );
        assert_eq!(ppl.unwrap()[0].score, Some(12.5));
    }

    #[test]
    fn xml_response_tags() {
        let reply = "<response><text>Question: A?</text><probability>0.3</probability></response>\n<response>\n<text>Question: B?</text>\n<probability>0.1</probability>\n</response>";
        assert_eq!(
            texts_scores(&vs(reply).unwrap()),
            vec![("Question: A?", Some(0.3)), ("Question: B?", Some(0.1))]
        );
    }

    #[test]
    fn sequence_json_and_python_lists() {
        let s = spec(ProbabilityDefinition::Explicit);
        let seq = |r: &str| {
            parse_reply(Strategy::Sequence, &s, r).map(|v| v.into_iter().map(|i| i.text).collect::<Vec<_>>())
        };
        assert_eq!(seq(r#"{"responses": ["a", "b"]}"#).unwrap(), vec!["a", "b"]);
        assert_eq!(seq(r#"["a", "b"]"#).unwrap(), vec!["a", "b"]);
        assert_eq!(seq(r#"['it\'s', "two\nlines"]"#).unwrap(), vec!["it's", "two\nlines"]);
        assert_eq!(seq("Here: ['x', 'y']").unwrap(), vec!["x", "y"]);
        assert_eq!(seq("no list at all").unwrap_err().kind(), "no_json");
    }

    #[test]
    fn cot_and_plain_strategies() {
        let s = spec(ProbabilityDefinition::Explicit);
        let cot =
            parse_reply(Strategy::Cot, &s, r#"{"reasoning": "think", "response": "Question: Q"}"#).unwrap();
        assert_eq!(cot[0].text, "Question: Q");
        assert_eq!(parse_reply(Strategy::Cot, &s, "Question: prose").unwrap()[0].text, "Question: prose");
        assert_eq!(parse_reply(Strategy::Direct, &s, "  Question: Q  ").unwrap()[0].text, "Question: Q");
    }

    #[test]
    fn failures_have_kinds_and_never_panic() {
        assert_eq!(vs("").unwrap_err().kind(), "empty");
        assert_eq!(vs("I cannot help with that.").unwrap_err().kind(), "no_json");
        assert_eq!(vs(r#"{"responses": [{"text": "A", "probability": 0.5}"#).unwrap_err().kind(), "bad_json");
        assert_eq!(vs(r#"{"answer": 3}"#).unwrap_err().kind(), "no_responses");
        assert_eq!(vs(r#"{"responses": [{"text": "  "}]}"#).unwrap_err().kind(), "no_items");
        for junk in
            ["{", "}", "[", "```", "```json", "<response>", "{\"responses\": 5}", "['unterminated", "é{ü}"]
        {
            for strategy in Strategy::ALL {
                let _ = parse_reply(strategy, &spec(ProbabilityDefinition::Confidence), junk);
            }
        }
    }

    #[test]
    fn problems_split_into_question_and_difficulty() {
        let p = extract_problem("Question:\nWhat is 2+2?\nDifficulty:\nAMC").unwrap();
        assert_eq!((p.question.as_str(), p.difficulty.as_deref()), ("What is 2+2?", Some("AMC")));
        let p = extract_problem("Question: Find x.").unwrap();
        assert_eq!((p.question.as_str(), p.difficulty), ("Find x.", None));
        assert_eq!(extract_problem("Find x."), None);
        assert_eq!(extract_problem("Question:\n\nDifficulty: AIME"), None);
        let p = extract_problem("Question: Q\nDifficulty: [AIME]").unwrap();
        assert_eq!(p.difficulty.as_deref(), Some("AIME"));
    }
}
