//! The config text, for turning key paths and byte offsets into line numbers in errors.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, KeyPath, Origin, Problem, Segment};
use super::overrides::Override;

/// The config text, for turning key paths and byte offsets into line numbers.
pub(super) struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        Self { path, text }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].bytes().filter(|&b| b == b'\n').count() + 1
    }

    pub fn syntax_error(&self, e: &toml::de::Error) -> ConfigError {
        let line = e.span().map(|s| self.line_of(s.start));
        ConfigError::single(
            Origin::file(self.path, line),
            None,
            format!("invalid TOML: {}", e.message().trim()),
        )
    }

    /// Attributes a problem at `key` to the `--set` that wrote it (the key or a table holding
    /// it, or a key the file lacks that an override created by writing below it), or else to
    /// the file line holding the key (or its nearest enclosing table, for a missing key).
    pub fn problem_at(&self, key: KeyPath, message: String, overrides: &[Override]) -> Problem {
        let (span, exact) = self.span_of(&key);
        let by_override =
            overrides.iter().rev().find(|o| key.starts_with(&o.key) || (!exact && o.key.starts_with(&key)));
        let origin = match by_override {
            Some(o) => Origin::Override { key: o.key.to_string() },
            None => Origin::file(self.path, span.map(|s| self.line_of(s.start))),
        };
        Problem { origin, key, message }
    }

    pub fn deserialize_error(
        &self,
        e: serde_path_to_error::Error<toml::de::Error>,
        overrides: &[Override],
    ) -> ConfigError {
        let mut key = KeyPath::from_serde(e.path());
        let raw = e.inner().message().trim().to_owned();
        let message = if let Some((field, expected)) = parse_unknown(&raw, "unknown field") {
            if key.segments().last() != Some(&Segment::Key(field.to_owned())) {
                key = key.key(field);
            }
            let mut m = format!("unknown key; {}", expected_clause(&expected));
            if field == "api_key" {
                m.push_str(". Keys are never written in configs: put it in an environment variable and set `api_key_env` to that variable's name");
            } else if let Some(s) = suggestion(field, &expected) {
                m.push_str(&format!(" (did you mean `{s}`?)"));
            }
            m
        } else if let Some((variant, expected)) = parse_unknown(&raw, "unknown variant") {
            let mut m = format!("unknown value `{variant}`; {}", expected_clause(&expected));
            if let Some(s) = suggestion(variant, &expected) {
                m.push_str(&format!(" (did you mean `{s}`?)"));
            }
            m
        } else if let Some(field) = raw.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
            if key.segments().last() != Some(&Segment::Key(field.to_owned())) {
                key = key.key(field);
            }
            "required key is missing".to_owned()
        } else {
            raw
        };
        ConfigError::new(vec![self.problem_at(key, message, overrides)])
    }

    /// Span of the deepest part of `key` present in the file, and whether that is all of it.
    fn span_of(&self, key: &KeyPath) -> (Option<Range<usize>>, bool) {
        let Ok(root) = DeTable::parse(self.text) else { return (None, false) };
        let mut table: &DeTable = root.get_ref();
        let mut value: Option<&DeValue> = None;
        let mut best = None;
        let mut found = 0;
        for seg in key.segments() {
            let next = match (seg, value) {
                (Segment::Key(k), None) | (Segment::Key(k), Some(DeValue::Table(_))) => {
                    if let Some(DeValue::Table(t)) = value {
                        table = t;
                    }
                    table.iter().find(|(name, _)| name.get_ref() == k).map(|(name, v)| (name.span(), v))
                }
                (Segment::Index(i), Some(DeValue::Array(items))) => items.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((span, v)) = next else { break };
            best = Some(span);
            value = Some(v.get_ref());
            found += 1;
        }
        (best, found == key.segments().len())
    }
}

/// `unknown field `x`, expected one of `a`, `b`` -> ("x", ["a", "b"]).
fn parse_unknown<'m>(message: &'m str, prefix: &str) -> Option<(&'m str, Vec<&'m str>)> {
    let rest = message.strip_prefix(prefix)?.trim_start().strip_prefix('`')?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((name, expected))
}

fn expected_clause(expected: &[&str]) -> String {
    match expected {
        [] => "this table takes no keys".to_owned(),
        [one] => format!("expected `{one}`"),
        many => format!(
            "expected one of {}",
            many.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn suggestion<'e>(given: &str, expected: &[&'e str]) -> Option<&'e str> {
    // The same measure and a similar cut-off as clap's "did you mean" hints.
    expected
        .iter()
        .map(|e| (strsim::jaro_winkler(given, e), *e))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, e)| e)
}
