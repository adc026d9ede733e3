//! Sequence: k items per call as a list of strings, with no probabilities.

use serde_json::{Value, json};

use super::PromptSpec;
use super::{schema, text};

pub fn system_prompt(spec: &PromptSpec) -> String {
    format!("{}\n\n{}", text::head_standard(spec), text::format_sequence(spec))
}

pub fn response_schema() -> Value {
    schema::wrap(
        "sequence_responses_schema",
        json!({
            "type": "object",
            "properties": {
                "responses": { "type": "array", "items": { "type": "string", "minLength": 1 } }
            },
            "required": ["responses"],
            "additionalProperties": false
        }),
    )
}
