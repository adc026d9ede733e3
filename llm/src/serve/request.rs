//! An OpenAI chat-completions body checked field by field and turned into our request, or
//! the reason it is refused, naming the field (so one bad request is refused alone, before it
//! can reach a batch).

use serde_json::{Value, json};
use vs_core::{ChatRequest, Message, Role};

/// Tokens generated when a request gives no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Why a request is refused before it reaches the engine.
#[derive(Debug)]
pub enum Refusal {
    Invalid(String),
    UnknownModel(String),
}

/// A number field: absent (or null) gives `default`; anything else must be a finite number in
/// `range`.
fn number(
    body: &Value,
    key: &str,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, Refusal> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && range.contains(&x) => Ok(x),
            _ => Err(Refusal::Invalid(format!(
                "{key}: {v} is not a number in [{}, {}]",
                range.start(),
                range.end()
            ))),
        },
    }
}

/// The request in our terms, or what is wrong with it.
pub fn parse(body: &Value, served: &str) -> Result<ChatRequest, Refusal> {
    let invalid = |m: String| Refusal::Invalid(m);
    if !body.is_object() {
        return Err(invalid("the body must be a JSON object".into()));
    }
    if body["stream"].as_bool() == Some(true) {
        return Err(invalid("stream: true is not supported by `pipeline serve`; send stream: false".into()));
    }
    if body["n"].as_u64().is_some_and(|n| n > 1) {
        return Err(invalid(
            "n: > 1 is not supported; send one request per sample (with its own seed)".into(),
        ));
    }
    let model = match &body["model"] {
        Value::Null => served,
        Value::String(m) => m.as_str(),
        other => return Err(invalid(format!("model: expected a string, got {other}"))),
    };
    if model != served {
        return Err(Refusal::UnknownModel(format!(
            "the model `{model}` does not exist; this server serves `{served}`"
        )));
    }
    let Some(raw) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err(invalid("messages: expected a non-empty array".into()));
    };
    let mut messages = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let role = match m["role"].as_str() {
            Some("system" | "developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            other => {
                return Err(invalid(format!(
                    "messages[{i}].role: {other:?} is not system, user or assistant"
                )));
            }
        };
        // A string, or parts of which the text ones are kept.
        let content = match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => {
                parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("")
            }
            _ => return Err(invalid(format!("messages[{i}].content: expected a string or text parts"))),
        };
        messages.push(Message::new(role, content));
    }
    // OpenAI's ranges; beyond them sampling is meaningless (an infinite temperature turns the
    // distribution into NaNs).
    let temperature = number(body, "temperature", 1.0, 0.0..=2.0)?;
    let top_p = number(body, "top_p", 1.0, 0.0..=1.0)?;
    let max_tokens = match ["max_tokens", "max_completion_tokens"].iter().find(|k| !body[**k].is_null()) {
        None => DEFAULT_MAX_TOKENS,
        Some(key) => match body[*key].as_u64() {
            Some(t) => t.min(u64::from(u32::MAX)) as u32,
            None => return Err(invalid(format!("{key}: {} is not a whole number >= 0", body[*key]))),
        },
    };
    let seed = match &body["seed"] {
        Value::Null => None,
        v => match (v.as_u64(), v.as_i64()) {
            (Some(s), _) => Some(s),
            (None, Some(s)) => Some(s as u64),
            _ => return Err(invalid(format!("seed: {v} is not an integer"))),
        },
    };
    let response_format = schema_format(body)?;
    Ok(ChatRequest {
        model: served.to_owned(),
        messages,
        temperature,
        top_p,
        max_tokens,
        seed,
        response_format,
    })
}

/// Whichever way the client asked for a schema, as the `response_format` the engine reads.
fn schema_format(body: &Value) -> Result<Option<Value>, Refusal> {
    if let Some(schema) = body.get("guided_json").filter(|v| !v.is_null()) {
        if !schema.is_object() && !schema.is_boolean() {
            return Err(Refusal::Invalid(format!(
                "guided_json: expected a JSON schema object, got {schema}"
            )));
        }
        return Ok(Some(
            json!({"type": "json_schema", "json_schema": {"name": "guided_json", "schema": schema}}),
        ));
    }
    match body.get("response_format").filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(f) if f.is_object() => Ok(Some(f.clone())),
        Some(f) => Err(Refusal::Invalid(format!("response_format: expected an object, got {f}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: Value) -> String {
        match parse(&body, "m") {
            Err(Refusal::Invalid(m)) => m,
            other => panic!("{body}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn each_bad_field_is_refused_by_name() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        assert!(refused(json!({"messages": msgs, "temperature": 1e39})).starts_with("temperature:"));
        assert!(refused(json!({"messages": msgs, "temperature": -1})).starts_with("temperature:"));
        assert!(refused(json!({"messages": msgs, "temperature": "hot"})).starts_with("temperature:"));
        assert!(refused(json!({"messages": msgs, "top_p": 2})).starts_with("top_p:"));
        assert!(refused(json!({"messages": msgs, "max_tokens": -5})).starts_with("max_tokens:"));
        assert!(
            refused(json!({"messages": msgs, "max_completion_tokens": 1.5}))
                .starts_with("max_completion_tokens:")
        );
        assert!(refused(json!({"messages": msgs, "seed": "x"})).starts_with("seed:"));
        assert!(
            refused(json!({"messages": msgs, "response_format": "json"})).starts_with("response_format:")
        );
        assert!(refused(json!({"messages": msgs, "guided_json": 3})).starts_with("guided_json:"));
        assert!(
            refused(json!({"messages": [{"role": "tool", "content": "x"}]})).starts_with("messages[0].role")
        );
        assert!(refused(json!([1, 2])).contains("object"));
        let ok =
            parse(&json!({"messages": msgs, "temperature": 0, "seed": -3, "max_tokens": 7}), "m").unwrap();
        assert_eq!((ok.temperature, ok.max_tokens, ok.seed), (0.0, 7, Some((-3i64) as u64)));
    }
}
