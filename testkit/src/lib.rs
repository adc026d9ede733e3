//! Test support for the workspace: one mock OpenAI-compatible server ([`MockServer`]) for every
//! test and bench that talks to an LLM endpoint.
//!
//! What it answers is the caller's: a responder (a function of the [`Request`]) for
//! `/v1/chat/completions` and optionally `/v1/embeddings`, and a script of [`Reply`]s sent in
//! order before the responder is asked. A reply is a chat completion, any JSON, or any status
//! and text (failures, garbage), with headers (`retry-after`) and a delay. The server numbers
//! the requests of each route, records every chat request (body, `authorization`, the status
//! it got), counts requests in flight, notes the first arrival and the last reply, and can
//! hold every chat request for a while before answering (a slow server, to kill runs in).
//!
//! A chat request must be a JSON object with a `messages` array: anything else panics the
//! connection's task, so the client under test sees its call fail.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// A request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Its place among the requests to its route, in arrival order, from 0.
    pub index: usize,
    /// The JSON body.
    pub body: Value,
    /// The `authorization` header, if any.
    pub authorization: Option<String>,
}

impl Request {
    /// The `content` of the message at `i` (negative: from the end), or "".
    pub fn message(&self, i: isize) -> &str {
        let messages = self.body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
        let at = if i < 0 { messages.len().checked_sub(i.unsigned_abs()) } else { Some(i as usize) };
        at.and_then(|at| messages.get(at)).and_then(|m| m["content"].as_str()).unwrap_or("")
    }

    /// The request's `seed`, if it has one.
    pub fn seed(&self) -> Option<u64> {
        self.body["seed"].as_u64()
    }
}

/// A chat request recorded with the status it was answered with.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub request: Request,
    pub status: u16,
}

#[derive(Clone, Debug)]
enum Body {
    Chat { content: String, usage: (u64, u64), finish_reason: Option<String> },
    Json(Value),
    Text(String),
}

/// What the server answers one request with.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    body: Body,
    headers: Vec<(String, String)>,
    delay: Duration,
}

impl Reply {
    /// A chat completion of one assistant message (usage: 10 prompt and 10 completion tokens
    /// unless [`Reply::usage`] says otherwise; no `finish_reason` unless given).
    pub fn chat(content: impl Into<String>) -> Self {
        Self::with(200, Body::Chat { content: content.into(), usage: (10, 10), finish_reason: None })
    }

    /// Any JSON, with status 200.
    pub fn json(value: Value) -> Self {
        Self::with(200, Body::Json(value))
    }

    /// An embeddings response: `data` holds each vector with its index.
    pub fn embeddings(vectors: impl IntoIterator<Item = Vec<f64>>) -> Self {
        let data: Vec<Value> =
            vectors.into_iter().enumerate().map(|(i, v)| json!({"index": i, "embedding": v})).collect();
        Self::json(json!({ "data": data }))
    }

    /// `status` with a plain-text body: an error, or (with 200) a body no client can parse.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::with(status, Body::Text(body.into()))
    }

    fn with(status: u16, body: Body) -> Self {
        Self { status, body, headers: Vec::new(), delay: Duration::ZERO }
    }

    /// The token counts of a chat completion's `usage`.
    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        if let Body::Chat { usage, .. } = &mut self.body {
            *usage = (prompt_tokens, completion_tokens);
        }
        self
    }

    /// A chat completion's `finish_reason`.
    pub fn finish_reason(mut self, reason: &str) -> Self {
        if let Body::Chat { finish_reason, .. } = &mut self.body {
            *finish_reason = Some(reason.to_owned());
        }
        self
    }

    /// A response header, e.g. `retry-after`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sent `delay` after the request arrives (after any hold of [`MockServer::set_delay`]).
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sent after `ms` milliseconds: [`Reply::after`].
    pub fn after_ms(self, ms: u64) -> Self {
        self.after(Duration::from_millis(ms))
    }

    /// The HTTP status it is sent with.
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).expect("a valid HTTP status");
        let mut response = match self.body {
            Body::Chat { content, usage, finish_reason } => {
                let mut choice = json!({"message": {"role": "assistant", "content": content}});
                if let Some(reason) = finish_reason {
                    choice["finish_reason"] = reason.into();
                }
                let body = json!({
                    "choices": [choice],
                    "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1}
                });
                (status, axum::Json(body)).into_response()
            }
            Body::Json(value) => (status, axum::Json(value)).into_response(),
            Body::Text(text) => (status, text).into_response(),
        };
        for (name, value) in self.headers {
            response.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(&value).expect("a header value"),
            );
        }
        response
    }
}

type Responder = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// Sets up a [`MockServer`]: its responders and script.
#[must_use]
pub struct MockBuilder {
    chat: Responder,
    embeddings: Option<Responder>,
    script: VecDeque<Reply>,
}

impl MockBuilder {
    /// Answers `/v1/chat/completions` (once the script is used up). The default says "ok".
    pub fn chat(mut self, responder: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        self.chat = Arc::new(responder);
        self
    }

    /// These replies first, one per chat request in arrival order; then the responder.
    pub fn script(mut self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.script.extend(replies);
        self
    }

    /// Answers `/v1/embeddings` (a route the server has only when given this).
    pub fn embeddings(mut self, responder: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        self.embeddings = Some(Arc::new(responder));
        self
    }

    /// Serves on a free loopback port, on the current tokio runtime, until it shuts down.
    pub async fn start(self) -> MockServer {
        let shared = Arc::new(Shared {
            chat: self.chat,
            embeddings: self.embeddings.clone(),
            script: Mutex::new(self.script),
            hold_ms: AtomicU64::new(0),
            chat_requests: AtomicUsize::new(0),
            embedding_requests: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            recorded: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            first_arrival_us: AtomicU64::new(u64::MAX),
            last_reply_us: AtomicU64::new(0),
        });
        let mut app = axum::Router::new().route("/v1/chat/completions", post(chat));
        if self.embeddings.is_some() {
            app = app.route("/v1/embeddings", post(embeddings));
        }
        let app = app.with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let url = format!("http://{}/v1", listener.local_addr().expect("a bound address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("the mock server") });
        MockServer { url, shared }
    }
}

struct Shared {
    chat: Responder,
    embeddings: Option<Responder>,
    script: Mutex<VecDeque<Reply>>,
    hold_ms: AtomicU64,
    chat_requests: AtomicUsize,
    embedding_requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    recorded: Mutex<Vec<Exchange>>,
    epoch: Instant,
    first_arrival_us: AtomicU64,
    last_reply_us: AtomicU64,
}

impl Shared {
    fn micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn instant(&self, us: u64) -> Instant {
        self.epoch + Duration::from_micros(us)
    }
}

/// A chat request in flight until dropped (also when the client gives up first).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn parse(index: usize, headers: &HeaderMap, body: &str) -> Request {
    let body: Value = serde_json::from_str(body).expect("a JSON request body");
    let authorization =
        headers.get(header::AUTHORIZATION).map(|v| v.to_str().expect("an ASCII header").to_owned());
    Request { index, body, authorization }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let hold = shared.hold_ms.load(Ordering::SeqCst);
    if hold > 0 {
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
    let index = shared.chat_requests.fetch_add(1, Ordering::SeqCst);
    shared.first_arrival_us.fetch_min(shared.micros(), Ordering::SeqCst);
    let _in_flight = InFlight::enter(&shared);
    let request = parse(index, &headers, &body);
    assert!(request.body["messages"].is_array(), "a chat request without messages: {body}");
    let scripted = shared.script.lock().unwrap().pop_front();
    let reply = scripted.unwrap_or_else(|| (shared.chat)(&request));
    shared.recorded.lock().unwrap().push(Exchange { request, status: reply.status });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    shared.last_reply_us.fetch_max(shared.micros(), Ordering::SeqCst);
    reply.into_response()
}

async fn embeddings(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let index = shared.embedding_requests.fetch_add(1, Ordering::SeqCst);
    let request = parse(index, &headers, &body);
    let reply = (shared.embeddings.as_ref().expect("an embeddings responder"))(&request);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    reply.into_response()
}

/// A running mock OpenAI-compatible server (a handle: clones share it).
#[derive(Clone)]
pub struct MockServer {
    url: String,
    shared: Arc<Shared>,
}

impl MockServer {
    /// A server to set up: chat replies "ok" until told otherwise.
    pub fn builder() -> MockBuilder {
        MockBuilder { chat: Arc::new(|_| Reply::chat("ok")), embeddings: None, script: VecDeque::new() }
    }

    /// A server whose chat replies are `responder`'s.
    pub async fn chat(responder: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        Self::builder().chat(responder).start().await
    }

    /// The base URL clients are configured with: `http://127.0.0.1:<port>/v1`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Chat requests that arrived so far.
    pub fn requests(&self) -> usize {
        self.shared.chat_requests.load(Ordering::SeqCst)
    }

    /// Embedding requests that arrived so far.
    pub fn embedding_requests(&self) -> usize {
        self.shared.embedding_requests.load(Ordering::SeqCst)
    }

    /// The most chat requests in flight at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every chat request recorded (since [`MockServer::clear`]), in the order they were
    /// answered, with their status.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.recorded.lock().unwrap().clone()
    }

    /// The bodies of the recorded chat requests.
    pub fn bodies(&self) -> Vec<Value> {
        self.exchanges().into_iter().map(|e| e.request.body).collect()
    }

    /// The bodies of the recorded chat requests answered with status 200.
    pub fn answered_bodies(&self) -> Vec<Value> {
        self.exchanges().into_iter().filter(|e| e.status == 200).map(|e| e.request.body).collect()
    }

    /// Forgets the recorded requests (the counts stay).
    pub fn clear(&self) {
        self.shared.recorded.lock().unwrap().clear();
    }

    /// Holds every chat request this long before it counts as arrived and is answered.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.hold_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// When the first chat request arrived.
    pub fn first_arrival(&self) -> Option<Instant> {
        let us = self.shared.first_arrival_us.load(Ordering::SeqCst);
        (us != u64::MAX).then(|| self.shared.instant(us))
    }

    /// When the last chat reply was sent.
    pub fn last_reply(&self) -> Option<Instant> {
        let us = self.shared.last_reply_us.load(Ordering::SeqCst);
        (self.requests() > 0).then(|| self.shared.instant(us))
    }
}
