//! What a strategy's prompt is made of: items per turn, target length, how probabilities are
//! asked for.

use vs_core::ProbabilityDefinition;

#[derive(Debug, Clone, PartialEq)]
pub struct PromptSpec {
    /// Items per call (1 for Direct and CoT, whatever the config says).
    pub k: usize,
    pub target_words: usize,
    /// VS-Multi: items asked for in the first turn.
    pub samples_per_turn: usize,
    pub probability_definition: ProbabilityDefinition,
    pub probability_tuning: Option<f64>,
}
