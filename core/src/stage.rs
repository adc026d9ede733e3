//! The stages' names and flow order, and the shards of a stage's work (one task of a job array).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    Generate,
    Solve,
    Dedup,
    Verify,
    Train,
    Evaluate,
    Report,
}

impl StageName {
    /// Flow order: each stage reads the one before it.
    pub const FLOW: [StageName; 7] = [
        StageName::Generate,
        StageName::Solve,
        StageName::Dedup,
        StageName::Verify,
        StageName::Train,
        StageName::Evaluate,
        StageName::Report,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Generate => "generate",
            StageName::Solve => "solve",
            StageName::Dedup => "dedup",
            StageName::Verify => "verify",
            StageName::Train => "train",
            StageName::Evaluate => "evaluate",
            StageName::Report => "report",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            StageName::Generate => {
                "ask the generator LLM for problems with each strategy (VS-Multi, Direct, ...)"
            }
            StageName::Solve => "have the solver LLM write several solutions per problem",
            StageName::Dedup => "drop exact and near duplicates and benchmark overlaps",
            StageName::Verify => "keep problems whose solutions agree on the answer",
            StageName::Train => "fine-tune each student on each strategy's verified data",
            StageName::Evaluate => {
                "score baseline and fine-tuned students on MATH500, OlympiadBench, Minerva"
            }
            StageName::Report => "tables, confidence intervals, data funnel, diversity and plots",
        }
    }

    pub fn previous(self) -> Option<StageName> {
        let i = Self::FLOW.iter().position(|&s| s == self).expect("every stage is in FLOW");
        i.checked_sub(1).map(|j| Self::FLOW[j])
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown stage `{0}`; stages are: generate, solve, dedup, verify, train, evaluate, report")]
pub struct UnknownStage(String);

impl FromStr for StageName {
    type Err = UnknownStage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::FLOW.into_iter().find(|n| n.as_str() == s.trim()).ok_or_else(|| UnknownStage(s.to_owned()))
    }
}

/// One task of a Slurm job array: share `index` (from 0) of `count` of a stage's work. A
/// shard does a disjoint range of the work and writes no manifest; the unsharded run of the
/// stage that follows merges the shards' work (from the call cache for `generate` and
/// `solve`, from shard files for `evaluate`) and pays for nothing twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// This shard's part of `0..n`: contiguous, disjoint across shards, covering `0..n`.
    pub fn range(self, n: usize) -> std::ops::Range<usize> {
        n * self.index / self.count..n * (self.index + 1) / self.count
    }

    /// The file-name tag of this shard's own outputs: `shard-002-of-008`.
    pub fn tag(self) -> String {
        format!("shard-{:03}-of-{:03}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("shard `{0}`: expected INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 3/8")]
pub struct BadShard(String);

impl FromStr for Shard {
    type Err = BadShard;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadShard(s.to_owned());
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}
