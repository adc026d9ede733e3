//! Which stage reads which config key. Every leaf of a full config is changed in turn (through
//! `--set`, so validation applies) and each stage's identity compared with the unchanged one's:
//! the stages a key reaches must be exactly those in `golden/identity_reads.json`. A key no
//! stage reads changes no identity (it costs no rerun); a new config key shows up here first,
//! and enters no identity until a stage lists it (`pipeline::identity::reads`). After a
//! deliberate change, rewrite the table with `BLESS=1 cargo test -p pipeline --test identity_reads`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use pipeline::config::{self, Config};
use pipeline::identity::{Identify, short};
use pipeline::stages;
use trainer::model::config::Family;
use vs_core::DigestCache;

const CONFIG: &str = r#"
[run]
name = "reads"
[llm]
gen = { provider = "openai", base_url = "http://127.0.0.1:9/v1", model = "gen-model" }
solver = { provider = "openai", base_url = "http://127.0.0.1:9/v1", model = "solver-model" }
judge = { provider = "openai", base_url = "http://127.0.0.1:9/v1", model = "judge" }
[train.students]
tiny = { model_path = "@STUDENT@" }
[generate]
llm = "gen"
strategies = ["direct", "vs_multi"]
num_problems = 4
import.mine.path = "@IMPORT@"
[solve]
llm = "solver"
[dedup.embeddings]
provider = "none"
[evaluate]
llm = "judge"
benchmarks = ["math500"]
"#;

/// Every stage's identity, or the first error (a changed model path names no file).
fn identities(c: &Config, digests: &DigestCache) -> Result<BTreeMap<String, String>, String> {
    let id = Identify { config: c, digests };
    stages::implemented()
        .iter()
        .map(|s| {
            let slice = s.config_slice(id).map_err(|e| format!("{}: {e}", s.name()))?;
            Ok((s.name().to_string(), short(&slice)))
        })
        .collect()
}

/// Every leaf of `v` by its dotted key; arrays are leaves.
fn leaves(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(&key, v, out);
            }
        }
        _ => out.push((prefix.to_owned(), v.clone())),
    }
}

/// Other values for a leaf, tried in turn until one validates.
fn changes(v: &toml::Value) -> Vec<toml::Value> {
    use toml::Value as V;
    match v {
        V::Integer(n) => vec![V::Integer(n + 1), V::Integer((n - 1).max(0))],
        V::Float(x) => vec![V::Float(x * 0.5 + 0.01), V::Float(x * 0.9)],
        V::Boolean(b) => vec![V::Boolean(!b)],
        V::String(s) => vec![V::String(format!("{s}x")), V::String(format!("{s}/x"))],
        V::Array(a) if a.len() > 1 => vec![V::Array(a[..a.len() - 1].to_vec())],
        V::Array(a) if a.len() == 1 => {
            let mut two = a.clone();
            two.extend(changes(&a[0]).into_iter().take(1));
            vec![two.into()]
        }
        _ => Vec::new(),
    }
}

#[test]
fn each_config_key_reaches_exactly_the_stages_that_read_it() {
    std::env::set_current_dir(common::root()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let student = tmp.path().join("student");
    common::tiny_student(&student, Family::Llama, 3);
    let import = tmp.path().join("mine.jsonl");
    std::fs::write(&import, "{\"question\": \"What is 1 + 1?\"}\n").unwrap();
    let text = CONFIG
        .replace("@STUDENT@", &student.display().to_string())
        .replace("@IMPORT@", &import.display().to_string());
    let load = |sets: &[String]| config::load_str(&text, Path::new("reads.toml"), sets).map(|l| l.config);
    let base = load(&[]).unwrap();
    let digests = DigestCache::in_memory();
    let before = identities(&base, &digests).unwrap();

    let table: toml::Value = base.to_toml().parse::<toml::Table>().unwrap().into();
    let mut keys = Vec::new();
    leaves("", &table, &mut keys);
    let mut reached: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in keys {
        // The first change the config accepts (and whose identities can be computed); a key
        // none of them is valid for is listed as "(not changed)" so that it is still seen.
        let after = changes(&value).into_iter().find_map(|v| {
            let set = format!("{key}={v}");
            identities(&load(std::slice::from_ref(&set)).ok()?, &digests).ok()
        });
        let stages = match after {
            Some(after) => before.keys().filter(|s| before[*s] != after[*s]).cloned().collect(),
            None => vec!["(not changed)".to_owned()],
        };
        reached.insert(key, stages);
    }

    let path = common::root().join("pipeline/tests/golden/identity_reads.json");
    let got = serde_json::to_string_pretty(&reached).unwrap() + "\n";
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    let want: BTreeMap<String, Vec<String>> = serde_json::from_str(&want).unwrap_or_default();
    let mut diffs = Vec::new();
    for key in reached.keys().chain(want.keys()).collect::<std::collections::BTreeSet<_>>() {
        if reached.get(key) != want.get(key) {
            diffs.push(format!("  {key}: now {:?}, table {:?}", reached.get(key), want.get(key)));
        }
    }
    assert!(
        diffs.is_empty(),
        "config keys reach other stages' identities than golden/identity_reads.json says \
         (rerun with BLESS=1 if deliberate):\n{}",
        diffs.join("\n")
    );
}
