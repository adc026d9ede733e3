//! Curation's settings as the config file writes them (`[dedup]` and an imported set's
//! `[generate.import.<name>]`); the config schema composes them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::dedup::{MinHasher, lsh_params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Drop degenerate items first (too short, markup, template placeholders, repetition
    /// loops); counted per reason for every strategy either way.
    pub well_formed: bool,
    /// Exact duplicates after normalising case, whitespace and LaTeX spacing.
    pub exact: bool,
    pub minhash: MinHashConfig,
    /// Also count duplicates across strategies (reported in the manifest, not dropped: each
    /// strategy's set stays whole for the comparison).
    pub across_strategies: bool,
    pub decontaminate: DecontaminateConfig,
    pub semantic: SemanticDedupConfig,
    /// Sentence embeddings for semantic diversity and semantic dedup.
    pub embeddings: EmbeddingsConfig,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            well_formed: true,
            exact: true,
            minhash: MinHashConfig::default(),
            across_strategies: true,
            decontaminate: DecontaminateConfig::default(),
            semantic: SemanticDedupConfig::default(),
            embeddings: EmbeddingsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingsProvider {
    /// A sentence-transformers folder in-process (all-MiniLM-L6-v2 from `just setup`).
    Local,
    /// The `/embeddings` endpoint of an `[llm.<name>]` section (e.g. the paper's
    /// text-embedding-3-small).
    Openai,
    /// Semantic diversity is not measured (and semantic dedup cannot run).
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingsConfig {
    pub provider: EmbeddingsProvider,
    /// local: the sentence-transformers folder.
    pub model_path: PathBuf,
    /// local: `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// local: sentences per forward pass.
    pub batch_size: usize,
    /// openai: the `[llm.<name>]` section whose `model` is an embedding model.
    pub llm: Option<String>,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        Self {
            provider: EmbeddingsProvider::Local,
            model_path: "models/all-MiniLM-L6-v2".into(),
            device: "cpu".into(),
            batch_size: 64,
            llm: None,
        }
    }
}

/// Near-duplicate detection: MinHash-LSH over character n-grams, true Jaccard checked on every
/// candidate pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinHashConfig {
    pub enabled: bool,
    /// Character n-gram length.
    pub ngram: usize,
    /// True Jaccard similarity at or above which a candidate pair is a duplicate.
    pub threshold: f64,
    /// Signature length: `bands x rows` is at most this.
    pub num_perm: usize,
    /// The LSH trade-off when `bands` and `rows` are not given: how much a missed duplicate
    /// weighs against a needless candidate check (datasketch's `weights`, as
    /// `(1 - this, this)`; its default is 0.5). At 0.99 with 256 values: 28 bands x 9 rows,
    /// a pair at Jaccard 0.85 is missed with probability 0.0006, one at 0.5 checked with 0.05.
    pub false_negative_weight: f64,
    /// Explicit banding (both or neither): overrides the two keys above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bands: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
}

impl Default for MinHashConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ngram: 5,
            threshold: 0.8,
            num_perm: 256,
            false_negative_weight: 0.99,
            bands: None,
            rows: None,
        }
    }
}

impl MinHashConfig {
    /// `(bands, rows)`: as given, or [`lsh_params`] for the threshold.
    pub fn lsh_params(&self) -> (usize, usize) {
        match (self.bands, self.rows) {
            (Some(b), Some(r)) => (b, r),
            _ => lsh_params(self.threshold, self.num_perm, self.false_negative_weight),
        }
    }

    /// The hasher this section describes: its bands and rows, or those [`lsh_params`] picks.
    pub fn hasher(&self, seed: u64) -> MinHasher {
        let (bands, rows) = self.lsh_params();
        MinHasher::new(bands, rows, seed)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecontaminateConfig {
    pub enabled: bool,
    /// Word n-gram length for benchmark overlap.
    pub ngram: usize,
    /// MinHash Jaccard similarity to a benchmark problem at or above which a problem is dropped.
    pub minhash_threshold: f64,
}

impl Default for DecontaminateConfig {
    fn default() -> Self {
        Self { enabled: true, ngram: 13, minhash_threshold: 0.8 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SemanticDedupConfig {
    pub enabled: bool,
    /// Cosine similarity above which a problem duplicates a kept one.
    pub threshold: f64,
}

impl Default for SemanticDedupConfig {
    fn default() -> Self {
        Self { enabled: false, threshold: 0.95 }
    }
}

/// `[generate.import.<name>]`: an arm whose problems come from a file (JSONL, JSON or Parquet),
/// its rows mapped onto ours by field name; malformed rows are named and counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// The file; a relative path is relative to the config file.
    pub path: PathBuf,
    /// The field holding the problem (dotted for nested fields: `meta.problem`).
    #[serde(default = "question_field")]
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    /// A unique id per row (default: the row's index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Keep the first this many usable rows (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl ImportConfig {
    pub fn fields(&self) -> crate::import::FieldMap {
        crate::import::FieldMap {
            question: self.question.clone(),
            answer: self.answer.clone(),
            solution: self.solution.clone(),
            id: self.id.clone(),
        }
    }
}

fn question_field() -> String {
    "question".into()
}
