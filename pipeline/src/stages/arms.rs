//! The arms of the comparison and the training runs made of them. An arm is a strategy's data
//! under one curation (`vs_multi/curated`, `direct/paper`); a training run is an arm (or the
//! user's `train.data`, `custom`) trained with one seed (`vs_multi/curated/seed-42`). Every
//! stage from verify on names folders and report rows by these labels.

use std::path::{Path, PathBuf};

use crate::config::{Config, Curation};
use vs_core::Origin;

/// The label of the run over `train.data`.
pub const CUSTOM: &str = "custom";

/// Every origin of problems: the strategies, then the imported sets (by name).
pub fn origins(config: &Config) -> Vec<Origin> {
    let g = &config.generate;
    g.strategies
        .iter()
        .map(|&s| Origin::Strategy(s))
        .chain(g.import.keys().cloned().map(Origin::Import))
        .collect()
}

/// The origins' names, for config slices: the strategies' list as before when nothing is
/// imported, so existing runs keep their identities.
pub fn origin_names(config: &Config) -> serde_json::Value {
    serde_json::Value::Array(origins(config).iter().map(|o| o.as_str().into()).collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    pub origin: Origin,
    pub curation: Curation,
}

impl Arm {
    /// `vs_multi/curated`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.origin.as_str(), self.curation.as_str())
    }

    /// The arm's folder under a stage's folder.
    pub fn path(&self) -> PathBuf {
        Path::new(self.origin.as_str()).join(self.curation.as_str())
    }
}

/// Every origin under every configured curation, origins first.
pub fn arms(config: &Config) -> Vec<Arm> {
    origins(config)
        .into_iter()
        .flat_map(|origin| {
            config.verify.curation.iter().map(move |&curation| Arm { origin: origin.clone(), curation })
        })
        .collect()
}

/// The training seeds: `train.seeds`, or `[run.seed]`.
pub fn seeds(config: &Config) -> Vec<u64> {
    if config.train.seeds.is_empty() { vec![config.run.seed] } else { config.train.seeds.clone() }
}

/// The data a training run learns from: an arm, or the user's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Arm(Arm),
    Custom(PathBuf),
}

impl Source {
    /// The row label in the report, the folder under train/ and evaluate/: `vs_multi/curated`
    /// or `custom`.
    pub fn label(&self) -> String {
        match self {
            Source::Arm(a) => a.label(),
            Source::Custom(_) => CUSTOM.to_owned(),
        }
    }
}

/// One fine-tuning run: a source and a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingRun {
    pub source: Source,
    pub seed: u64,
}

impl TrainingRun {
    /// `vs_multi/curated/seed-42`: its folder under `train/<student>/` and `evaluate/<student>/`.
    pub fn label(&self) -> String {
        format!("{}/seed-{}", self.source.label(), self.seed)
    }
}

/// The sources this config trains on.
pub fn sources(config: &Config) -> Vec<Source> {
    match &config.train.data {
        Some(path) => vec![Source::Custom(path.clone())],
        None => arms(config).into_iter().map(Source::Arm).collect(),
    }
}

/// Every training run of a student: each source once per seed.
pub fn training_runs(config: &Config) -> Vec<TrainingRun> {
    let seeds = seeds(config);
    sources(config)
        .into_iter()
        .flat_map(|source| seeds.iter().map(move |&seed| TrainingRun { source: source.clone(), seed }))
        .collect()
}

#[cfg(test)]
mod tests;
