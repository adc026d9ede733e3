//! VS-Multi: the k items over several turns (`samples_per_turn` first, then the same again,
//! then the remainder), each item with a verbalized score (`confidence` by default).

use serde_json::Value;

use super::PromptSpec;
use super::text::probability_field;
use super::{schema, text};

pub fn system_prompt(spec: &PromptSpec) -> String {
    format!("{}\n\n{}", text::head_vs_multi(spec), text::format_vs(spec))
}

/// Items per turn: `k // m` turns of `m`, then one of `k % m` if that is not zero.
pub fn turns(spec: &PromptSpec) -> Vec<usize> {
    let m = spec.samples_per_turn.max(1);
    let mut turns = vec![m; spec.k / m];
    if !spec.k.is_multiple_of(m) {
        turns.push(spec.k % m);
    }
    turns
}

pub fn continue_prompt(n: usize) -> String {
    format!("Randomly sample {n} alternative data instances based on the original input prompt.")
}

pub fn response_schema(spec: &PromptSpec) -> Value {
    let (field, _) = probability_field(spec.probability_definition);
    schema::wrap(
        &format!("combined_{field}_response"),
        schema::scored_items(
            spec,
            &format!("A list of response objects containing text and {field}."),
            "The text response.",
            &[],
        ),
    )
}
