//! Degenerate items: what a small or collapsing generator emits instead of a problem. Tried on
//! the default run, `vs_multi` gave `</description`, `</textarea` and `Question: Question:
//! Question: ...`, and Direct `[problem statement in natural language]`. The curated arm drops
//! them (reason `degenerate`, with the kind); every arm reports their share per strategy,
//! since how often a strategy degenerates is itself a finding.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

/// Why an item is not a problem, or `None` when it looks like one.
pub fn degenerate(question: &str) -> Option<&'static str> {
    let text = question.trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 5 || text.chars().filter(|c| c.is_alphanumeric()).count() < 15 {
        return Some("too_short");
    }
    if MARKUP.is_match(text) {
        return Some("markup");
    }
    if PLACEHOLDER.is_match(text) {
        return Some("placeholder");
    }
    if repeats(&words) {
        return Some("repetition");
    }
    None
}

static MARKUP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)</?(?:description|textarea|div|span|p|html|body|br|problem|question|answer|response|json|xml|script|input)\b[^>]*>?|```|\{\s*\x22[a-z_]+\x22\s*:")
        .expect("valid regex")
});

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\[(?:[^\]]{0,40}\b)?(?:problem|question|statement|insert|your|placeholder|answer|text|description|prompt|challenge|difficulty)\b[^\]]{0,60}\]",
        r"|<(?:problem|question|insert|your)[^>]{0,40}>|\{(?:problem|question|answer)\}|\b(?:lorem ipsum|placeholder)\b",
    ))
    .expect("valid regex")
});

/// A phrase of 1-4 words repeated back to back at least three times (`Question: Question:
/// Question:`), or a long text most of whose 3-grams are repeats: a decoding loop.
fn repeats(words: &[&str]) -> bool {
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    for n in 1..=4 {
        let mut run = 1;
        let mut i = n;
        while i + n <= lower.len() {
            if lower[i..i + n] == lower[i - n..i] {
                run += 1;
                if run >= 3 {
                    return true;
                }
                i += n;
            } else {
                run = 1;
                i += 1;
            }
        }
    }
    if lower.len() >= 30 {
        let mut seen: HashMap<&[String], usize> = HashMap::new();
        for g in lower.windows(3) {
            *seen.entry(g).or_default() += 1;
        }
        let grams = lower.len() - 2;
        if (seen.len() as f64) < 0.5 * grams as f64 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_runs_degenerate_items_are_caught() {
        // Items the default run's SmolLM2 gave.
        assert_eq!(degenerate("</description"), Some("too_short"));
        assert_eq!(
            degenerate("Find the area of the region </textarea> bounded by the curves y = x and y = x^2."),
            Some("markup")
        );
        assert_eq!(degenerate("Question: Question: Question: Question: what is it?"), Some("repetition"));
        assert_eq!(
            degenerate("Here is the problem: [problem statement in natural language] with details"),
            Some("placeholder")
        );
        assert_eq!(degenerate("[original prompt],"), Some("too_short"));
        assert_eq!(
            degenerate("Please solve the following: [original prompt] and explain it"),
            Some("placeholder")
        );
        assert_eq!(
            degenerate("Question:\n Question:\nQuestion:\nQuestion:\nProblem: find the value of x"),
            Some("repetition")
        );
        let looped = "Let x be a real number such that ".repeat(8);
        assert_eq!(degenerate(&looped), Some("repetition"));
    }

    #[test]
    fn real_problems_pass() {
        for q in [
            "Find the number of ordered pairs $(a, b)$ of positive integers with $a + b = 100$.",
            "Let $f(x) = x^2 + 3x + 2$. Compute $f(f(1))$.",
            "How many positive divisors does 3600 have?",
            "A bag has 3 red and 5 blue balls. Two are drawn without replacement; what is the probability both are red?",
            "Compute $\\sum_{k=1}^{10} k^2$ and give the answer as an integer.",
        ] {
            assert_eq!(degenerate(q), None, "{q}");
        }
    }
}
