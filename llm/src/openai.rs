//! Client for any OpenAI-compatible `POST {base_url}/chat/completions` (OpenAI, vLLM, SGLang,
//! llama.cpp, Ollama, ...): bounded concurrency, an optional requests-per-minute limit,
//! per-request timeouts, retries with backoff and jitter on transient failures honouring
//! `Retry-After`. Uncached: the call cache goes in front of it ([`crate::cache::Cached`]). The
//! API key is read from the environment variable the config names, kept in memory only, and
//! never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use vs_core::seeds::{mix, unit};
use vs_core::{ChatRequest, ChatResponse, Usage};

use crate::chat::Chat;
use crate::error::LlmError;
use crate::params::StructuredOutput;
use crate::resolved::{Endpoint, ResolvedLlm};
use crate::retry::{backoff, is_transient_status, parse_retry_after};

const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

pub struct OpenAiClient {
    http: reqwest::Client,
    url: String,
    /// The `[llm.<name>]` section and its model, for messages.
    llm: String,
    model: String,
    /// Where the key comes from, for a refused key's message (never the key).
    key_hint: String,
    key: Option<String>,
    max_retries: u32,
    deadline: Duration,
    permits: Arc<Semaphore>,
    /// When the next request may start, under `requests_per_minute`.
    next_slot: Option<(Mutex<Instant>, Duration)>,
    backoff_base: Duration,
    /// How `response_format` goes on the wire.
    dialect: StructuredOutput,
}

impl OpenAiClient {
    pub fn new(llm: &ResolvedLlm) -> Result<Self, LlmError> {
        let cfg_err = |message: &str| LlmError::Config { llm: llm.name.clone(), message: message.to_owned() };
        let Endpoint::Openai { base_url, model, api_key_env } = &llm.endpoint else {
            return Err(cfg_err("not an openai provider"));
        };
        let key = match api_key_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| LlmError::MissingKey { llm: llm.name.clone(), var: var.clone() })?,
            ),
            None => None,
        };
        let t = &llm.throughput;
        let http = reqwest::Client::builder()
            .timeout(t.timeout)
            .build()
            .map_err(|e| cfg_err(&format!("cannot build the HTTP client: {e}")))?;
        let next_slot = t
            .requests_per_minute
            .map(|rpm| (Mutex::new(Instant::now()), Duration::from_secs_f64(60.0 / f64::from(rpm.max(1)))));
        Ok(Self {
            http,
            url: format!("{base_url}/chat/completions"),
            llm: llm.name.clone(),
            model: model.clone(),
            key_hint: llm.key_hint(),
            key,
            max_retries: t.max_retries,
            deadline: t.deadline,
            permits: Arc::new(Semaphore::new(t.max_concurrency)),
            next_slot,
            backoff_base: BACKOFF_BASE,
            dialect: llm.sampling.structured_output,
        })
    }

    /// Shorter backoff, for tests against a local server.
    pub fn with_backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = base;
        self
    }

    /// Sends `request`, retrying transient failures, all within the call's deadline.
    async fn send_with_retries(
        &self,
        request: &ChatRequest,
        call_index: u64,
    ) -> Result<ChatResponse, LlmError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut last: Option<LlmError> = None;
        let (mut attempt, mut bad_replies) = (0u32, 0u32);
        let out_of_time = |last: Option<LlmError>| LlmError::Deadline {
            seconds: self.deadline.as_secs_f64(),
            last: last.map(Box::new),
        };
        loop {
            attempt += 1;
            let sent = tokio::time::timeout_at(deadline, async {
                self.wait_for_slot().await;
                self.send(request).await
            })
            .await;
            let (err, retry_after) = match sent {
                Err(_) => return Err(out_of_time(last)),
                // The permit goes with the return: the server's slot is free before the cache
                // in front writes the reply.
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(e)) => e,
            };
            // A malformed body may be a truncated reply or a proxy's fixed error page: the same
            // request is re-sent after one, never after a second.
            let retryable = match &err {
                LlmError::BadReply { .. } => {
                    bad_replies += 1;
                    bad_replies == 1
                }
                e => is_transient(e),
            };
            if !retryable || attempt > self.max_retries {
                return Err(if attempt > 1 {
                    LlmError::RetriesExhausted { attempts: attempt, last: Box::new(err) }
                } else {
                    err
                });
            }
            // Deterministic per (call, attempt): retries of different calls spread out.
            let jitter = unit(mix(call_index, u64::from(attempt)));
            let delay =
                retry_after.unwrap_or_else(|| backoff(attempt, self.backoff_base, BACKOFF_CAP, jitter));
            tracing::debug!("call {call_index}: attempt {attempt} failed ({err}); retrying in {delay:?}");
            if tokio::time::Instant::now() + delay >= deadline {
                return Err(out_of_time(Some(err)));
            }
            last = Some(err);
            tokio::time::sleep(delay).await;
        }
    }

    /// Embeddings of `inputs` from `POST {base_url}/embeddings` (retried like chat calls; not
    /// cached: they are cheap and the stage that asks is itself skipped when up to date).
    pub async fn embeddings(&self, model: &str, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        let url = self.url.replace("/chat/completions", "/embeddings");
        let body = serde_json::json!({ "model": model, "input": inputs });
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.wait_for_slot().await;
            let mut builder = self.http.post(&url).json(&body);
            if let Some(key) = &self.key {
                builder = builder.bearer_auth(key);
            }
            let result = match builder.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let text = resp.text().await.unwrap_or_default();
                    parse_embeddings(&text, inputs.len())
                        .map_err(|message| LlmError::BadReply { url: url.clone(), message })
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body: String = resp.text().await.unwrap_or_default().chars().take(500).collect();
                    Err(match status {
                        401 | 403 => {
                            LlmError::Unauthorized { status, url: url.clone(), hint: self.key_hint.clone() }
                        }
                        _ => LlmError::Status { status, url: url.clone(), body },
                    })
                }
                Err(e) => Err(LlmError::Transport { url: url.clone(), message: e.to_string() }),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if is_transient(&e) && attempt <= self.max_retries => {
                    let jitter = unit(mix(inputs.len() as u64, u64::from(attempt)));
                    tokio::time::sleep(backoff(attempt, self.backoff_base, BACKOFF_CAP, jitter)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn wait_for_slot(&self) {
        let Some((next, interval)) = &self.next_slot else { return };
        let start = {
            let mut next = next.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + *interval;
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }

    /// One attempt: the reply, or the error and the server's `Retry-After`.
    async fn send(&self, request: &ChatRequest) -> Result<ChatResponse, (LlmError, Option<Duration>)> {
        let mut body = serde_json::to_value(request).expect("requests serialize");
        self.dialect.apply(&mut body);
        let mut builder = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key);
        }
        let transport = |e: reqwest::Error| {
            // reqwest's message can include the URL, never headers: the key stays out.
            (LlmError::Transport { url: self.url.clone(), message: e.to_string() }, None)
        };
        let resp = builder.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let retry_after =
            resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let body = resp.text().await.map_err(transport)?;
        if !(200..300).contains(&status) {
            let url = self.url.clone();
            let body: String = body.chars().take(500).collect();
            let err = match status {
                401 | 403 => LlmError::Unauthorized { status, url, hint: self.key_hint.clone() },
                404 => LlmError::UnknownModel { url, model: self.model.clone(), llm: self.llm.clone(), body },
                s if !is_transient_status(s) || is_validation_error(&body) => {
                    self.rejected(status, url, body)
                }
                _ => LlmError::Status { status, url, body },
            };
            return Err((err, retry_after));
        }
        parse_completion(&body)
            .map_err(|message| (LlmError::BadReply { url: self.url.clone(), message }, None))
    }
}

impl Chat for OpenAiClient {
    fn model_name(&self) -> String {
        self.model.clone()
    }

    async fn chat(&self, request: &ChatRequest, call_index: u64) -> Result<ChatResponse, LlmError> {
        self.send_with_retries(request, call_index).await
    }
}

impl OpenAiClient {
    fn rejected(&self, status: u16, url: String, body: String) -> LlmError {
        let lower = body.to_lowercase();
        let about_schema = ["response_format", "json_schema", "guided_json", "json_object"]
            .iter()
            .any(|f| lower.contains(f));
        let hint = if about_schema {
            format!(
                "; servers differ in how a JSON schema is asked for: llm.{}.structured_output chooses \
                 (\"json_object\" for llama.cpp's servers, \"guided_json\" for vLLM's own parameter, \
                 \"none\" to send no schema; now {})",
                self.llm,
                serde_json::to_string(&self.dialect).expect("dialects serialize")
            )
        } else {
            String::new()
        };
        let shape = about_schema || is_validation_error(&body);
        LlmError::Rejected { status, url, body, hint, shape }
    }
}

/// A body that says the request's fields are wrong (pydantic's validation errors from
/// llama-cpp-python and vLLM, OpenAI's unknown-parameter errors), whatever the status code.
fn is_validation_error(body: &str) -> bool {
    let lower = body.to_lowercase();
    [
        "validation error",
        "extra inputs are not permitted",
        "extra_forbidden",
        "literal_error",
        "unrecognized request argument",
        "input should be",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

fn is_transient(e: &LlmError) -> bool {
    match e {
        LlmError::Status { status, .. } => is_transient_status(*status),
        LlmError::Transport { .. } => true,
        // A truncated or garbled body from an overloaded server is worth another try.
        LlmError::BadReply { .. } => true,
        _ => false,
    }
}

fn parse_completion(body: &str) -> Result<ChatResponse, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let content =
        v["choices"][0]["message"]["content"].as_str().ok_or("no choices[0].message.content")?.to_owned();
    let usage = Usage {
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
    };
    let finish_reason = v["choices"][0]["finish_reason"].as_str().map(str::to_owned);
    Ok(ChatResponse { content, usage, finish_reason, cached: false })
}

fn parse_embeddings(body: &str, expected: usize) -> Result<Vec<Vec<f32>>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let data = v["data"].as_array().ok_or("no `data` array")?;
    let mut out = vec![Vec::new(); expected];
    for (i, item) in data.iter().enumerate() {
        let index = item["index"].as_u64().map_or(i, |x| x as usize);
        let emb = item["embedding"].as_array().ok_or("an item has no `embedding`")?;
        let slot = out.get_mut(index).ok_or("an embedding index is out of range")?;
        *slot = emb.iter().map(|x| x.as_f64().unwrap_or(0.0) as f32).collect();
    }
    if out.iter().any(Vec::is_empty) {
        return Err(format!("expected {expected} embeddings, got {}", data.len()));
    }
    Ok(out)
}
