//! `--set key.path=value`: a TOML value (number, bool, string, array, inline table) or, when it
//! does not parse as one, a bare string, so `--set run.name=exp1` needs no quotes.

use super::error::{ConfigError, KeyPath, Origin, Segment};

#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub key: KeyPath,
    pub value: toml::Value,
}

impl Override {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let bad = |msg: &str| {
            let key = raw.split_once('=').map_or(raw, |(k, _)| k).trim();
            ConfigError::single(Origin::Override { key: key.to_owned() }, None, msg)
        };
        let (key, value) = raw.split_once('=').ok_or_else(|| bad("expected `key.path=value`"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|s| s.trim().is_empty()) {
            return Err(bad("the key path is empty or has an empty segment"));
        }
        if key.split('.').any(|s| s.parse::<usize>().is_ok()) {
            return Err(bad(
                "array elements cannot be set one by one; set the whole array, e.g. `generate.strategies=[\"direct\", \"vs_multi\"]`",
            ));
        }
        let value = value.trim();
        let value = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        Ok(Self { key: KeyPath::parse(key), value })
    }

    /// Writes the value into `table`, creating intermediate tables as needed.
    pub fn apply(&self, table: &mut toml::Table) -> Result<(), ConfigError> {
        let keys: Vec<&str> = self
            .key
            .segments()
            .iter()
            .map(|s| match s {
                Segment::Key(k) => k.as_str(),
                Segment::Index(_) => unreachable!("parse rejects index segments"),
            })
            .collect();
        let (last, parents) = keys.split_last().expect("parse rejects empty keys");
        let mut cur = table;
        for (depth, k) in parents.iter().enumerate() {
            let entry = cur.entry(k.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
            cur = entry.as_table_mut().ok_or_else(|| {
                ConfigError::single(
                    Origin::Override { key: self.key.to_string() },
                    None,
                    format!("`{}` is a value, not a table", keys[..=depth].join(".")),
                )
            })?;
        }
        cur.insert(last.to_string(), self.value.clone());
        Ok(())
    }
}
