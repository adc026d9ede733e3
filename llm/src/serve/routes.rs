//! The routes and what answers them: a chat completion through the engine, bounded by the
//! queue; the model list; health; metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::limits::Limits;
use super::metrics::{Outcome, Stats};
use super::request::{self, Refusal};
use crate::error::LlmError;
use crate::local::{Completed, Engine};

pub struct Server {
    engine: Engine,
    /// The name `/v1/models` lists and requests must ask for.
    model: String,
    next_id: AtomicU64,
    limits: Limits,
    admitted: Arc<Semaphore>,
    pub(super) stats: Stats,
}

impl Server {
    pub fn new(engine: Engine, model: String, limits: Limits) -> Self {
        let admitted = Arc::new(Semaphore::new(limits.max_queue.max(1)));
        Self { engine, model, next_id: AtomicU64::new(0), limits, admitted, stats: Stats::default() }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// The routes, ready for [`serve`] (or `axum::serve`).
pub fn router(server: Arc<Server>) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Server>>| async move { s.stats.render(s.engine.stats()) }),
        )
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

/// A body over the limit by more than this factor is refused without reading the rest (the
/// connection closes, and the client may see a broken pipe rather than the 413); one closer to
/// the limit is read and discarded first, so the client gets to read its 413.
const DISCARD_FACTOR: usize = 4;

/// The body, within the size and time limits.
async fn read_body(limits: &Limits, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Response> {
    let max = limits.max_body_bytes;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the body is larger than this server's limit of {max} bytes (--max-body-bytes)"),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (max * DISCARD_FACTOR) as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut body = body;
        let (mut kept, mut seen) = (Vec::new(), 0usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| invalid(format!("cannot read the body: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            seen += data.len();
            if seen > max * DISCARD_FACTOR {
                return Err(too_large());
            }
            if seen <= max {
                kept.extend_from_slice(&data);
            }
        }
        if seen > max { Err(too_large()) } else { Ok(kept) }
    };
    match tokio::time::timeout(limits.body_timeout, read).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            format!("the body did not arrive within {:.0?} (--body-timeout-s)", limits.body_timeout),
        )),
        Ok(result) => result,
    }
}

/// Counts the request's outcome when it is answered, or as cancelled when its future is
/// dropped first (the client hung up).
struct Answering<'a> {
    stats: &'a Stats,
    outcome: Option<Outcome>,
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.stats.count(self.outcome.unwrap_or(Outcome::Cancelled));
    }
}

/// A place in the queue; leaving it (answered or cancelled) frees it.
struct Admitted<'a> {
    stats: &'a Stats,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.stats.leave();
    }
}

fn outcome_of(status: StatusCode) -> Outcome {
    match status {
        StatusCode::OK => Outcome::Ok,
        StatusCode::NOT_FOUND => Outcome::UnknownModel,
        StatusCode::REQUEST_TIMEOUT => Outcome::BodyTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge,
        StatusCode::TOO_MANY_REQUESTS => Outcome::QueueFull,
        s if s.is_server_error() => Outcome::Failed,
        _ => Outcome::Invalid,
    }
}

async fn chat(State(s): State<Arc<Server>>, headers: HeaderMap, body: Body) -> Response {
    let mut answering = Answering { stats: &s.stats, outcome: None };
    let response = answer(&s, &headers, body).await;
    answering.outcome = Some(outcome_of(response.status()));
    response
}

/// The engine's failure as the status clients expect: its request's own fault is 400 (not
/// retried); the engine failing is 500, or 503 when it has stopped (both retried).
fn failure(e: &LlmError) -> Response {
    match e {
        LlmError::LocalRefused(message) => invalid(message.clone()),
        LlmError::WorkerStopped(_) => error(StatusCode::SERVICE_UNAVAILABLE, "server_error", e.to_string()),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()),
    }
}

async fn answer(s: &Server, headers: &HeaderMap, body: Body) -> Response {
    let body = match read_body(&s.limits, headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return invalid(format!("the body is not JSON: {e}")),
    };
    let request = match request::parse(&body, &s.model) {
        Ok(r) => r,
        Err(Refusal::Invalid(message)) => return invalid(message),
        Err(Refusal::UnknownModel(message)) => {
            return error(StatusCode::NOT_FOUND, "not_found_error", message);
        }
    };
    // Admitted, or told to come back: the queue never holds more than `max_queue` requests
    // (tokenizing included), so none waits behind an unbounded burst.
    let Ok(permit) = Arc::clone(&s.admitted).try_acquire_owned() else {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!(
                "the server is full ({} requests admitted, --max-queue); retry later",
                s.limits.max_queue
            ),
        );
        r.headers_mut().insert(header::RETRY_AFTER, 1.into());
        return r;
    };
    s.stats.enter();
    let _admitted = Admitted { stats: &s.stats, _permit: permit };
    let n = s.next_id.fetch_add(1, Ordering::Relaxed);
    match s.engine.complete(&request, n).await {
        Ok(Completed { response: reply, batch, joined_ahead }) => {
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
            // How long it queued, in requests that joined the batch before it: under max_queue.
            resp.headers_mut().insert("x-queue-ahead", joined_ahead.into());
            resp
        }
        Err(e) => failure(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_failures_are_retryable_and_refusals_are_not() {
        let status = |e: LlmError| failure(&e).status();
        assert_eq!(status(LlmError::LocalRefused("response_format: bad".into())), StatusCode::BAD_REQUEST);
        assert_eq!(status(LlmError::Local("out of memory".into())), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status(LlmError::WorkerStopped("gone".into())), StatusCode::SERVICE_UNAVAILABLE);
    }
}
