//! VS-CoT: reasoning first, then k items with verbalized probabilities.

use serde_json::Value;

use super::PromptSpec;
use super::text::probability_field;
use super::{schema, text};

pub fn system_prompt(spec: &PromptSpec) -> String {
    format!("{}\n\n{}", text::head_vs_cot(spec), text::format_vs_cot(spec))
}

pub fn response_schema(spec: &PromptSpec) -> Value {
    let (field, _) = probability_field(spec.probability_definition);
    let list = schema::scored_list_description(field);
    schema::wrap(
        &format!("chain_of_thought_{field}_response"),
        schema::scored_items(spec, &list, "The text of the response.", &["reasoning"]),
    )
}
