//! Finding the final answer in a model's whole response. Methods are tried in a configurable
//! order (as math-verify's priorities); the default suits the paper's prompt, which asks for a
//! `\boxed{}` answer: boxed, then a "final answer is" phrase (incl. Minerva's "Final Answer: The
//! final answer is X. I hope it is correct."), then the last math environment, then the last
//! number. Within a method the last occurrence wins.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The last `\boxed{...}` / `\fbox{...}` (nested braces matched), or `\boxed 5`.
    Boxed,
    /// "final answer is X", "the answer is X", "Final Answer: The final answer is X. I hope ...".
    FinalAnswer,
    /// The last `$...$`, `$$...$$`, `\(...\)` or `\[...\]`.
    MathEnv,
    /// The last number (integer, decimal, thousands-separated, or `a/b`).
    LastNumber,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractConfig {
    pub order: Vec<Method>,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        Self { order: vec![Method::Boxed, Method::FinalAnswer, Method::MathEnv, Method::LastNumber] }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted<'a> {
    pub answer: &'a str,
    pub method: Method,
}

/// The answer in `response` by the first method of `config.order` that finds one.
pub fn extract<'a>(response: &'a str, config: &ExtractConfig) -> Option<Extracted<'a>> {
    config.order.iter().find_map(|&method| {
        let answer = match method {
            Method::Boxed => last_boxed(response),
            Method::FinalAnswer => final_answer(response),
            Method::MathEnv => last_math_env(response),
            Method::LastNumber => last_number(response),
        }?;
        Some(Extracted { answer, method })
    })
}

/// The content of the last complete `\boxed{...}` or `\fbox{...}` (or the token after
/// `\boxed `), trimmed. A box cut off before its closing brace is passed over.
pub fn last_boxed(text: &str) -> Option<&str> {
    let mut end = text.len();
    loop {
        let start = ["\\boxed", "\\fbox"]
            .iter()
            .filter_map(|cmd| text[..end].rfind(cmd).map(|i| (i, i + cmd.len())))
            .max_by_key(|&(i, _)| i)?;
        end = start.0;
        if let Some(content) = box_argument(&text[start.1..]) {
            return Some(content);
        }
    }
}

fn box_argument(rest: &str) -> Option<&str> {
    if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None; // another command, e.g. `\boxedsymbol`
    }
    let trimmed = rest.trim_start();
    if let Some(inner) = trimmed.strip_prefix('{') {
        return braced(inner).map(str::trim).filter(|s| !s.is_empty());
    }
    // `\boxed 5`: one token, without trailing sentence punctuation.
    if rest.len() == trimmed.len() {
        return None;
    }
    let token = trimmed.split(|c: char| c.is_whitespace() || c == '$').next()?;
    let token = token.trim_end_matches(['.', ',']);
    (!token.is_empty()).then_some(token)
}

/// `inner` starts just after an opening brace; returns the text up to its matching close.
/// Escaped braces (`\{`, `\}`) are literal characters, not grouping.
fn braced(inner: &str) -> Option<&str> {
    super::normalize::matching_brace(inner, 0).map(|close| &inner[..close])
}

static FINAL_ANSWER: LazyLock<Regex> = LazyLock::new(|| {
    // Minerva's sentence first: its answer may itself contain ". ".
    Regex::new(
        r"(?is)final answer:\s*the final answer is\s*(?P<minerva>.+?)\.?\s*I hope it is correct|(?:final answer|the answer)\s*(?:is|:)\s*:?\s*(?P<plain>\$\$.+?\$\$|\$.+?\$|\\\(.+?\\\)|\\\[.+?\\\]|.+?)(?:\.\s|\.$|\n|$)",
    )
    .expect("valid regex")
});

fn final_answer(text: &str) -> Option<&str> {
    let caps = FINAL_ANSWER.captures_iter(text).last()?;
    let m = caps.name("minerva").or_else(|| caps.name("plain"))?;
    clean_phrase_answer(m.as_str())
}

/// Minerva's "Final Answer: The final answer is X. I hope it is correct." (the last one).
pub fn final_answer_minerva(text: &str) -> Option<&str> {
    last_phrase(text, "minerva")
}

/// The last "final answer is X" / "the answer is X" phrase's X.
pub fn final_answer_plain(text: &str) -> Option<&str> {
    last_phrase(text, "plain")
}

fn last_phrase<'a>(text: &'a str, group: &str) -> Option<&'a str> {
    FINAL_ANSWER
        .captures_iter(text)
        .filter_map(|c| c.name(group))
        .last()
        .and_then(|m| clean_phrase_answer(m.as_str()))
}

fn clean_phrase_answer(m: &str) -> Option<&str> {
    let answer = m.trim();
    let answer = unwrap_math(answer).trim().trim_end_matches('.').trim();
    (!answer.is_empty()).then_some(answer)
}

/// `$x$`, `$$x$$`, `\(x\)`, `\[x\]` -> `x`; anything else unchanged.
fn unwrap_math(s: &str) -> &str {
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close))
            && !inner.is_empty()
        {
            return inner;
        }
    }
    s
}

/// The content of the math environment that ends last. `\$` is a literal dollar sign.
pub fn last_math_env(text: &str) -> Option<&str> {
    math_spans(text).into_iter().rev().map(|(_, inner, _)| inner).find(|inner| !inner.is_empty())
}

/// Every `$..$`, `$$..$$`, `\(..\)`, `\[..\]` in order: (start, trimmed content, end).
pub(crate) fn math_spans(text: &str) -> Vec<(usize, &str, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (open, close): (&str, &str) = match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'(') => ("\\(", "\\)"),
            b'\\' if bytes.get(i + 1) == Some(&b'[') => ("\\[", "\\]"),
            b'\\' => {
                i += 2; // an escaped character, `\$` included
                continue;
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => ("$$", "$$"),
            b'$' => ("$", "$"),
            _ => {
                i += 1;
                continue;
            }
        };
        let body_start = i + open.len();
        match find_close(&text[body_start..], close) {
            Some(len) => {
                let end = body_start + len + close.len();
                spans.push((i, text[body_start..body_start + len].trim(), end));
                i = end;
            }
            None => i = body_start,
        }
    }
    spans
}

/// Offset of the first unescaped `close` in `s`.
fn find_close(s: &str, close: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(close.as_bytes()) {
            return Some(i);
        }
        // Skip escapes, but `\)`/`\]` are themselves closers.
        if bytes[i] == b'\\' && !close.starts_with('\\') {
            i += 2;
            continue;
        }
        i += 1;
    }
    None
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+").expect("valid regex")
});

pub fn last_number(text: &str) -> Option<&str> {
    NUMBER.find_iter(text).last().map(|m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str) -> Option<(&str, Method)> {
        extract(text, &ExtractConfig::default()).map(|e| (e.answer, e.method))
    }

    #[test]
    fn boxed_takes_the_last_box_with_nested_braces() {
        assert_eq!(last_boxed(r"so \boxed{1} or rather \boxed{\frac{1}{2}}."), Some(r"\frac{1}{2}"));
        assert_eq!(
            last_boxed(r"\boxed{\left\{ 1, \sqrt{2} \right\}}"),
            Some(r"\left\{ 1, \sqrt{2} \right\}")
        );
        assert_eq!(last_boxed(r"\fbox{7} then \boxed{ 3 }"), Some("3"));
        assert_eq!(last_boxed(r"\boxed{3} and \fbox{x^{2}}"), Some("x^{2}"));
        assert_eq!(last_boxed(r"The answer is $\boxed 5$."), Some("5"));
        assert_eq!(last_boxed(r"thus \boxed 12."), Some("12"));
        // Truncated last box: fall back to the previous complete one.
        assert_eq!(last_boxed(r"\boxed{4} ... \boxed{\frac{1}{"), Some("4"));
        assert_eq!(last_boxed(r"\boxed{}"), None);
        assert_eq!(last_boxed("no box"), None);
        assert_eq!(last_boxed(r"\boxedx{3}"), None);
    }

    #[test]
    fn final_answer_phrases() {
        let minerva = "So s = 1.6 cm.\nFinal Answer: The final answer is $1.6$. I hope it is correct.";
        assert_eq!(ex(minerva), Some(("1.6", Method::FinalAnswer)));
        let minerva_expr = "Final Answer: The final answer is 2.5 \\times 10^{-3}. I hope it is correct.";
        assert_eq!(final_answer(minerva_expr), Some("2.5 \\times 10^{-3}"));
        assert_eq!(ex("Therefore, the final answer is 42. Done"), Some(("42", Method::FinalAnswer)));
        assert_eq!(ex("The answer is $\\frac{3}{4}$."), Some(("\\frac{3}{4}", Method::FinalAnswer)));
        assert_eq!(ex("Final answer: x = 3"), Some(("x = 3", Method::FinalAnswer)));
        // The last phrase wins.
        assert_eq!(final_answer("The answer is 1.\nWait, the answer is 2."), Some("2"));
    }

    #[test]
    fn math_environments_and_escaped_dollars() {
        assert_eq!(ex("We get $x=1$ and then $y = 2$ as required"), Some(("y = 2", Method::MathEnv)));
        assert_eq!(last_math_env(r"\[ a^2 \] then \( b \)"), Some("b"));
        assert_eq!(last_math_env(r"$$\frac12$$"), Some(r"\frac12"));
        assert_eq!(last_math_env(r"it costs \$5 and \$6"), None);
        assert_eq!(last_math_env(r"$\$10$"), Some(r"\$10"));
        assert_eq!(last_math_env("unclosed $x"), None);
    }

    #[test]
    fn last_number_fallback() {
        assert_eq!(ex("I think it's 7, no, 1,234.5 total"), Some(("1,234.5", Method::LastNumber)));
        assert_eq!(last_number("ratio 3/4"), Some("3/4"));
        assert_eq!(last_number("about -.5"), Some("-.5"));
        assert_eq!(last_number("t = -12 s"), Some("-12"));
        assert_eq!(ex("no digits at all"), None);
    }

    #[test]
    fn order_is_configurable() {
        let text = r"The answer is 3. Check: $x = \boxed{4}$";
        assert_eq!(ex(text), Some(("4", Method::Boxed)));
        let cfg = ExtractConfig { order: vec![Method::FinalAnswer, Method::Boxed] };
        assert_eq!(extract(text, &cfg).map(|e| e.answer), Some("3"));
        let cfg = ExtractConfig { order: vec![Method::LastNumber] };
        assert_eq!(extract(text, &cfg).map(|e| e.answer), Some("4"));
    }

    #[test]
    fn never_panics_on_awkward_input() {
        for text in [
            "\\",
            "$",
            "$$",
            "\\boxed",
            "\\boxed{",
            "\\(",
            "é\\boxed{ü}",
            "\\fbox é",
            "{}}}{{",
            "\\$",
            "$\\é$",
            "$x\\é",
            "\\(\\é",
        ] {
            let _ = ex(text);
        }
        assert_eq!(last_boxed("é\\boxed{ü}"), Some("ü"));
    }
}
