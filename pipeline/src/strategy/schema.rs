//! `response_format` JSON schemas (`methods/schema.py` of the reference; vs-prompts.md §4).

use serde_json::{Value, json};

use super::PromptSpec;
use super::text::probability_field;

/// How VS-Standard and VS-CoT describe their `responses` list.
pub fn scored_list_description(field: &str) -> String {
    format!(
        "A list of dicts, each with a 'text' and '{field}' field, representing possible responses to the input prompt and corresponding {field} scores of each response."
    )
}

pub fn wrap(name: &str, schema: Value) -> Value {
    json!({
        "type": "json_schema",
        "json_schema": { "name": name, "schema": schema, "strict": true }
    })
}

/// `{"responses": [{"text": ..., "<field>": number}]}`, with `extra` top-level properties
/// (VS-CoT's `reasoning`) required first.
pub fn scored_items(
    spec: &PromptSpec,
    list_description: &str,
    text_description: &str,
    extra: &[&str],
) -> Value {
    let (field, meaning) = probability_field(spec.probability_definition);
    let mut properties = serde_json::Map::new();
    for name in extra {
        properties.insert((*name).to_owned(), json!({ "type": "string" }));
    }
    properties.insert(
        "responses".to_owned(),
        json!({
            "type": "array",
            "description": list_description,
            "items": {
                "type": "object",
                "properties": {
                    "text": { "type": "string", "description": text_description },
                    field: { "type": "number", "description": meaning }
                },
                "required": ["text", field],
                "additionalProperties": false
            }
        }),
    );
    let mut required: Vec<&str> = extra.to_vec();
    required.push("responses");
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}
