//! VS-Multi: the k items over several turns (`samples_per_turn` first, then the same again,
//! then the remainder), each item with a verbalized score (`confidence` by default).

use serde_json::Value;

use super::PromptSpec;
use super::text::probability_field;
use super::{schema, text};

pub fn system_prompt(spec: &PromptSpec) -> String {
    format!("{}\n\n{}", text::head_vs_multi(spec), text::format_vs(spec))
}

/// Items per turn: `k // m` turns of `m`, then one of `k % m` if that is not zero.
pub fn turns(spec: &PromptSpec) -> Vec<usize> {
    let m = spec.samples_per_turn.max(1);
    let mut turns = vec![m; spec.k / m];
    if !spec.k.is_multiple_of(m) {
        turns.push(spec.k % m);
    }
    turns
}

pub fn continue_prompt(n: usize) -> String {
    format!("Randomly sample {n} alternative data instances based on the original input prompt.")
}

pub fn response_schema(spec: &PromptSpec) -> Value {
    let (field, _) = probability_field(spec.probability_definition);
    schema::wrap(
        &format!("combined_{field}_response"),
        schema::scored_items(
            spec,
            &format!("A list of response objects containing text and {field}."),
            "The text response.",
            &[],
        ),
    )
}

/// What a later turn's history holds for an earlier reply: the reference sends
/// `str(parsed_list_of_dicts)`, Python's repr of the parsed items (its parser has renamed the
/// score field to `probability` by then), not the raw JSON.
pub fn history_content(items: &[super::reply::Item]) -> String {
    let dicts: Vec<String> = items
        .iter()
        .map(|i| match i.score {
            Some(p) => format!("{{'text': {}, 'probability': {}}}", py_repr_str(&i.text), py_repr_float(p)),
            None => format!("{{'text': {}}}", py_repr_str(&i.text)),
        })
        .collect();
    format!("[{}]", dicts.join(", "))
}

/// Python 3's `repr(str)`.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python 3's `repr(float)`: shortest round-trip digits, `1.0` for whole numbers, and
/// `1e-05`-style exponents outside [1e-4, 1e16).
pub fn py_repr_float(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("integer exponent");
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    if x.fract() == 0.0 { format!("{x:.1}") } else { format!("{x}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::reply::Item;

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr_str("plain"), "'plain'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("say \"hi\" it's"), "'say \"hi\" it\\'s'");
        assert_eq!(py_repr_str("a\\b\nc\td"), "'a\\\\b\\nc\\td'");
        assert_eq!(py_repr_str("é ∑"), "'é ∑'");
        for (x, py) in [
            (0.2, "0.2"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(py_repr_float(x), py, "{x}");
        }
    }

    #[test]
    fn history_is_the_python_repr_of_the_parsed_items() {
        let items = vec![
            Item { text: "Question: 1+1?\nDifficulty: AMC".into(), score: Some(0.3), repair: None },
            Item { text: "Question: it's 2".into(), score: Some(1.0), repair: None },
        ];
        assert_eq!(
            history_content(&items),
            "[{'text': 'Question: 1+1?\\nDifficulty: AMC', 'probability': 0.3}, {'text': \"Question: it's 2\", 'probability': 1.0}]"
        );
    }
}
