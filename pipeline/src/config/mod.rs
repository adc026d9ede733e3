//! Loading the TOML config: parse, apply `--set key.path=value` overrides, deserialize into the
//! typed schema, fill derived defaults, validate. Every error names where the bad value came
//! from (the file and line, or the `--set` argument) and its key path, e.g.
//! `configs/x.toml:7: generate.k: must be >= 1`.

mod error;
mod overrides;
mod prompt_spec;
mod schema;
mod source;
pub(crate) mod validate;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, Origin, Problem};
pub use llm::{Endpoint, ResolvedLlm, Sampling, Throughput};
pub use overrides::Override;
pub use schema::*;

/// A validated config and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub path: PathBuf,
    pub overrides: Vec<Override>,
}

/// Reads, overrides, deserializes and validates `path`. `overrides` are `key.path=value`
/// strings as given to `--set`.
pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::single(Origin::file(path, None), None, format!("cannot read config: {e}"))
    })?;
    load_str(&text, path, overrides)
}

/// As [`load`], for text already in memory; `path` is only used in messages.
pub fn load_str(text: &str, path: &Path, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
    let source = source::Source::new(path, text);
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| source.syntax_error(&e))?;
    table = extend(table, path, 0)?;

    let overrides = overrides.iter().map(|raw| Override::parse(raw)).collect::<Result<Vec<_>, _>>()?;
    for o in &overrides {
        o.apply(&mut table)?;
    }

    let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| source.deserialize_error(e, &overrides))?;
    fill_derived_defaults(&mut config);
    resolve_user_files(&mut config, path);

    let problems = validate::validate(&config);
    if !problems.is_empty() {
        return Err(ConfigError::new(
            problems.into_iter().map(|(key, message)| source.problem_at(key, message, &overrides)).collect(),
        ));
    }
    Ok(LoadedConfig { config, path: path.to_owned(), overrides })
}

/// `extends = "base.toml"` (relative to this file): the base's table with this one's keys laid
/// over it, tables merged key by key, anything else replaced. The paper's six settings are
/// small files over `configs/paper.toml` this way.
fn extend(mut table: toml::Table, path: &Path, depth: usize) -> Result<toml::Table, ConfigError> {
    let Some(base) = table.remove("extends") else { return Ok(table) };
    let at = |m: String| ConfigError::single(Origin::file(path, None), None, m);
    let Some(base) = base.as_str() else { return Err(at("extends: must be a path to a config file".into())) };
    if depth >= 8 {
        return Err(at(format!("extends = \"{base}\": more than 8 files deep (a cycle?)")));
    }
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let text = std::fs::read_to_string(&base_path)
        .map_err(|e| at(format!("extends = \"{base}\": cannot read {}: {e}", base_path.display())))?;
    let base_table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| source::Source::new(&base_path, &text).syntax_error(&e))?;
    let mut merged = extend(base_table, &base_path, depth + 1)?;
    merge(&mut merged, table);
    Ok(merged)
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Defaults that depend on other keys, resolved once so stages (and the manifests' config
/// slices) see the value actually used.
fn fill_derived_defaults(config: &mut Config) {
    if config.solve.llm.is_none() {
        config.solve.llm = Some(config.generate.llm.clone());
    }
}

/// Files a config brings along (its own task prompt, imported problem sets) are found next to it, wherever the run
/// starts from. Models and `run.out_dir` stay relative to the working directory.
fn resolve_user_files(config: &mut Config, path: &Path) {
    let dir = path.parent().unwrap_or(Path::new(""));
    if let crate::strategy::TaskSource::File(task) = crate::strategy::TaskSource::of(&config.generate.task)
        && task.is_relative()
    {
        config.generate.task = dir.join(task).to_string_lossy().into_owned();
    }
    for import in config.generate.import.values_mut() {
        if import.path.is_relative() {
            import.path = dir.join(&import.path);
        }
    }
}

impl Config {
    /// The config as TOML, for the run directory. Holds no secret: API keys are only ever
    /// named (`api_key_env`), never stored.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config schema serializes to TOML")
    }
}

#[cfg(test)]
mod tests;
