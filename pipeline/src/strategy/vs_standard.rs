//! VS-Standard: k items per call, each with its verbalized probability.

use serde_json::Value;

use super::PromptSpec;
use super::text::probability_field;
use super::{schema, text};

pub fn system_prompt(spec: &PromptSpec) -> String {
    format!("{}\n\n{}", text::head_standard(spec), text::format_vs(spec))
}

pub fn response_schema(spec: &PromptSpec) -> Value {
    let (field, _) = probability_field(spec.probability_definition);
    let list = schema::scored_list_description(field);
    let name = if field == "probability" {
        "structured_with_probability_schema".to_owned()
    } else {
        format!("structured_with_{field}_schema")
    };
    schema::wrap(&name, schema::scored_items(spec, &list, "The text of the response.", &[]))
}
