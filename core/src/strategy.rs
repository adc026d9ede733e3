//! The seven prompting strategies of the VS paper, by name: what configs, folders, records and
//! report rows call them. How each one prompts and parses lives with the generate stage.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Direct,
    Cot,
    Sequence,
    MultiTurn,
    VsStandard,
    VsCot,
    VsMulti,
}

impl Strategy {
    pub const ALL: [Strategy; 7] = [
        Strategy::Direct,
        Strategy::Cot,
        Strategy::Sequence,
        Strategy::MultiTurn,
        Strategy::VsStandard,
        Strategy::VsCot,
        Strategy::VsMulti,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Direct => "direct",
            Strategy::Cot => "cot",
            Strategy::Sequence => "sequence",
            Strategy::MultiTurn => "multi_turn",
            Strategy::VsStandard => "vs_standard",
            Strategy::VsCot => "vs_cot",
            Strategy::VsMulti => "vs_multi",
        }
    }

    /// Whether the model verbalizes a probability (or other score) per item.
    pub fn is_verbalized(self) -> bool {
        matches!(self, Strategy::VsStandard | Strategy::VsCot | Strategy::VsMulti)
    }

    /// The paper's probability field per strategy (ablation H.3): `explicit` for VS-Standard
    /// and VS-CoT, `confidence` for VS-Multi; `None` for strategies that verbalize none.
    pub fn default_probability_definition(self) -> Option<ProbabilityDefinition> {
        match self {
            Strategy::VsStandard | Strategy::VsCot => Some(ProbabilityDefinition::Explicit),
            Strategy::VsMulti => Some(ProbabilityDefinition::Confidence),
            _ => None,
        }
    }
}

/// What shapes a strategy's prompts, resolved from `[generate]` for one strategy.
impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the prompt asks the model to score each item (`vs-prompts.md`, probability definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbabilityDefinition {
    Explicit,
    Implicit,
    Relative,
    Percentage,
    Confidence,
    Perplexity,
    Nll,
}
