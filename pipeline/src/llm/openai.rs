//! Client for any OpenAI-compatible `POST {base_url}/chat/completions` (OpenAI, vLLM, SGLang,
//! llama.cpp, Ollama, ...): bounded concurrency, an optional requests-per-minute limit,
//! per-request timeouts, retries with backoff and jitter on transient failures honouring
//! `Retry-After`, and the on-disk call cache in front. The API key is read from the
//! environment variable the config names, kept in memory only, and never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use super::cache::CallCache;
use super::retry::{backoff, is_transient_status, parse_retry_after};
use super::{ChatRequest, ChatResponse, LlmError, Usage};
use crate::config::{LlmConfig, Provider};

const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

pub struct OpenAiClient {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
    max_retries: u32,
    permits: Arc<Semaphore>,
    /// When the next request may start, under `requests_per_minute`.
    next_slot: Option<(Mutex<Instant>, Duration)>,
    cache: CallCache,
    backoff_base: Duration,
}

impl OpenAiClient {
    /// `name` is the `[llm.<name>]` section, for messages.
    pub fn new(name: &str, config: &LlmConfig, cache: CallCache) -> Result<Self, LlmError> {
        let cfg_err = |message: &str| LlmError::Config { llm: name.to_owned(), message: message.to_owned() };
        if config.provider != Provider::Openai {
            return Err(cfg_err("not an openai provider"));
        }
        let base = config.base_url.as_deref().ok_or_else(|| cfg_err("base_url is required"))?;
        let key = match &config.api_key_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| LlmError::MissingKey { llm: name.to_owned(), var: var.clone() })?,
            ),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(config.timeout_s))
            .build()
            .map_err(|e| cfg_err(&format!("cannot build the HTTP client: {e}")))?;
        let next_slot = config
            .requests_per_minute
            .map(|rpm| (Mutex::new(Instant::now()), Duration::from_secs_f64(60.0 / f64::from(rpm.max(1)))));
        Ok(Self {
            http,
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            key,
            max_retries: config.max_retries,
            permits: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            next_slot,
            cache,
            backoff_base: BACKOFF_BASE,
        })
    }

    /// Shorter backoff, for tests against a local server.
    pub fn with_backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = base;
        self
    }

    /// Sends `request` (unless call `call_index` of it is cached), retrying transient failures.
    pub async fn chat(&self, request: &ChatRequest, call_index: u64) -> Result<ChatResponse, LlmError> {
        if let Some(hit) = self.cache.get(request, call_index) {
            return Ok(hit);
        }
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.wait_for_slot().await;
            let (err, retry_after) = match self.send(request).await {
                Ok(response) => {
                    self.cache.put(request, call_index, &response)?;
                    return Ok(response);
                }
                Err(e) => e,
            };
            if !is_transient(&err) || attempt > self.max_retries {
                return Err(if attempt > 1 {
                    LlmError::RetriesExhausted { attempts: attempt, last: Box::new(err) }
                } else {
                    err
                });
            }
            // Deterministic per (call, attempt): retries of different calls spread out.
            let jitter = crate::seeds::unit(crate::seeds::mix(call_index, u64::from(attempt)));
            let delay =
                retry_after.unwrap_or_else(|| backoff(attempt, self.backoff_base, BACKOFF_CAP, jitter));
            tracing::debug!("call {call_index}: attempt {attempt} failed ({err}); retrying in {delay:?}");
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
                    Err(LlmError::Status { status, url: url.clone(), body })
                }
                Err(e) => Err(LlmError::Transport { url: url.clone(), message: e.to_string() }),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if is_transient(&e) && attempt <= self.max_retries => {
                    let jitter =
                        crate::seeds::unit(crate::seeds::mix(inputs.len() as u64, u64::from(attempt)));
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
        let mut builder = self.http.post(&self.url).json(request);
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
            let body: String = body.chars().take(500).collect();
            return Err((LlmError::Status { status, url: self.url.clone(), body }, retry_after));
        }
        parse_completion(&body)
            .map_err(|message| (LlmError::BadReply { url: self.url.clone(), message }, None))
    }
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
