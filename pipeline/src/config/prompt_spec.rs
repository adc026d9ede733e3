//! A strategy's prompt settings from `[generate]` (the schema builds the domain's value).

use vs_core::{ProbabilityDefinition, Strategy};

use super::schema::GenerateConfig;
use crate::strategy::PromptSpec;

impl PromptSpec {
    /// `strategy`'s settings under `g` (Direct and CoT ask for one item a call).
    pub fn new(strategy: Strategy, g: &GenerateConfig) -> Self {
        Self {
            k: if matches!(strategy, Strategy::Direct | Strategy::Cot) { 1 } else { g.k },
            target_words: g.target_words,
            samples_per_turn: g.samples_per_turn,
            probability_definition: g
                .probability_definition
                .or(strategy.default_probability_definition())
                .unwrap_or(ProbabilityDefinition::Explicit),
            probability_tuning: g.probability_tuning,
        }
    }
}
