//! CoT (`direct_cot`): one item per call, reasoning first, as JSON `{reasoning, response}`.

use serde_json::{Value, json};

use super::PromptSpec;
use super::{schema, text};

pub fn system_prompt(spec: &PromptSpec) -> String {
    format!("{}\n\n{}", text::head_base_cot(spec), text::format_cot())
}

pub fn response_schema() -> Value {
    schema::wrap(
        "direct_response",
        json!({
            "type": "object",
            "properties": { "reasoning": { "type": "string" }, "response": { "type": "string" } },
            "required": ["reasoning", "response"],
            "additionalProperties": false
        }),
    )
}
