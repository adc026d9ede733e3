//! `pipeline serve`: an OpenAI-compatible server over the local engine, so a fine-tuned export
//! (or any GGUF / Hugging Face folder it loads) answers any OpenAI client, and so a stage can
//! start it like any other server (`engine = "pipeline"`). Routes: `POST /v1/chat/completions`
//! (greedy or sampled, seeded; a JSON schema in any of the dialects clients send:
//! `response_format` `json_schema`, llama.cpp's `json_object` + `schema`, vLLM's
//! `guided_json`), `GET /v1/models`, `GET /health`. Concurrent requests are decoded together by
//! the engine's batching worker; each reply says its batch's size in `x-batch-size`.
//! Streaming is not supported (a request with `stream: true` is refused with 400).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use vs_core::{ChatRequest, Message, Role};

use crate::error::LlmError;
use crate::local::Engine;

/// Tokens generated when a request gives no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

pub struct Server {
    engine: Engine,
    /// The name `/v1/models` lists and requests must ask for.
    model: String,
    next_id: AtomicU64,
}

impl Server {
    pub fn new(engine: Engine, model: String) -> Self {
        Self { engine, model, next_id: AtomicU64::new(0) }
    }
}

/// The routes, ready for `axum::serve`.
pub fn router(server: Arc<Server>) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { "ok" }))
        .with_state(server)
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": {"message": message.into(), "type": kind}}))).into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

async fn models(State(s): State<Arc<Server>>) -> axum::Json<Value> {
    axum::Json(
        json!({"object": "list", "data": [{"id": s.model, "object": "model", "owned_by": "pipeline"}]}),
    )
}

async fn chat(State(s): State<Arc<Server>>, body: String) -> Response {
    let body: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return invalid(format!("the body is not JSON: {e}")),
    };
    let request = match parse(&body, &s.model) {
        Ok(r) => r,
        Err(Refusal::Invalid(message)) => return invalid(message),
        Err(Refusal::UnknownModel(message)) => {
            return error(StatusCode::NOT_FOUND, "not_found_error", message);
        }
    };
    let n = s.next_id.fetch_add(1, Ordering::Relaxed);
    match s.engine.complete(&request, n).await {
        Ok((reply, batch)) => {
            let usage = reply.usage;
            let created =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let mut resp = axum::Json(json!({
                "id": format!("chatcmpl-{n}"),
                "object": "chat.completion",
                "created": created,
                "model": s.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                             "finish_reason": reply.finish_reason}],
                "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                          "total_tokens": usage.prompt_tokens + usage.completion_tokens},
            }))
            .into_response();
            resp.headers_mut().insert("x-batch-size", batch.into());
            resp
        }
        // The request's own fault (a prompt longer than the context, a schema that does not
        // compile): 400, so clients do not retry it.
        Err(LlmError::Local(message)) => invalid(message),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()),
    }
}

/// Why a request is refused before it reaches the engine.
enum Refusal {
    Invalid(String),
    UnknownModel(String),
}

/// The request in our terms, or what is wrong with it.
fn parse(body: &Value, served: &str) -> Result<ChatRequest, Refusal> {
    let invalid = |m: String| Refusal::Invalid(m);
    if body["stream"].as_bool() == Some(true) {
        return Err(invalid("stream: true is not supported by `pipeline serve`; send stream: false".into()));
    }
    if body["n"].as_u64().is_some_and(|n| n > 1) {
        return Err(invalid(
            "n > 1 is not supported; send one request per sample (with its own seed)".into(),
        ));
    }
    let model = body["model"].as_str().unwrap_or(served);
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
    let number = |key: &str, default: f64| body[key].as_f64().unwrap_or(default);
    let max_tokens = body["max_tokens"].as_u64().or_else(|| body["max_completion_tokens"].as_u64());
    Ok(ChatRequest {
        model: served.to_owned(),
        messages,
        temperature: number("temperature", 1.0),
        top_p: number("top_p", 1.0),
        max_tokens: max_tokens.map_or(DEFAULT_MAX_TOKENS, |t| t.min(u64::from(u32::MAX)) as u32),
        seed: body["seed"].as_i64().map(|s| s as u64),
        response_format: schema_format(body),
    })
}

/// Whichever way the client asked for a schema, as the `response_format` the engine reads.
fn schema_format(body: &Value) -> Option<Value> {
    if let Some(schema) = body.get("guided_json").filter(|v| !v.is_null()) {
        return Some(
            json!({"type": "json_schema", "json_schema": {"name": "guided_json", "schema": schema}}),
        );
    }
    body.get("response_format").filter(|v| !v.is_null()).cloned()
}
