//! Completed calls on disk, keyed by what answers and what asked: the endpoint's identity (base
//! URL and served model, or the local model's content digest), the arm the call serves (a
//! strategy, an evaluation target: no two arms ever share a reply), the full request, and the
//! call index (identical requests meant as separate samples stay separate). One JSON file per
//! call, written atomically: a crash leaves a call cached or not, never half-cached. No key or
//! header is stored, only the request body and the reply.
//!
//! [`Cached`] is the one cache layer: it puts a [`CallCache`] in front of any provider
//! ([`Chat`]), so every provider's calls are looked up, asked and written the same way.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use vs_core::digest::sha256_hex;
use vs_core::fs::write_atomic;
use vs_core::{ChatRequest, ChatResponse};

use crate::chat::Chat;
use crate::error::LlmError;

#[derive(Debug, Clone)]
pub struct CallCache {
    dir: PathBuf,
    endpoint: String,
    /// Re-ask every call (`--refresh-cache`): replies are written, never read.
    refresh: bool,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    endpoint: String,
    arm: String,
    request: ChatRequest,
    call_index: u64,
    response: ChatResponse,
}

impl CallCache {
    /// The cache under `dir` for the endpoint whose identity is `endpoint`
    /// ([`crate::ResolvedLlm::endpoint_identity`], hashed).
    pub fn new(dir: impl Into<PathBuf>, endpoint: impl Into<String>) -> Self {
        Self { dir: dir.into(), endpoint: endpoint.into(), refresh: false }
    }

    /// Ignore cached replies (and overwrite them with fresh ones).
    pub fn refreshing(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// This cache in front of `inner`: its calls are answered from here when they completed
    /// before, asked of `inner` and written here otherwise.
    pub fn in_front_of<C: Chat>(self, inner: C) -> Cached<C> {
        Cached { inner, cache: self, stats: CallStats::default() }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn key(&self, request: &ChatRequest, arm: &str, call_index: u64) -> String {
        let body =
            serde_json::to_vec(&(&self.endpoint, arm, request, call_index)).expect("requests serialize");
        sha256_hex(&body)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// The cached reply, if this exact call completed before. An unreadable entry counts as a
    /// miss (and is overwritten by the next success).
    pub fn get(&self, request: &ChatRequest, arm: &str, call_index: u64) -> Option<ChatResponse> {
        if self.refresh {
            return None;
        }
        let path = self.path(&self.key(request, arm, call_index));
        let text = std::fs::read_to_string(&path).ok()?;
        let entry: Entry = serde_json::from_str(&text).ok()?;
        (entry.endpoint == self.endpoint
            && entry.arm == arm
            && entry.request == *request
            && entry.call_index == call_index)
            .then_some(ChatResponse { cached: true, ..entry.response })
    }

    pub fn put(
        &self,
        request: &ChatRequest,
        arm: &str,
        call_index: u64,
        response: &ChatResponse,
    ) -> Result<(), LlmError> {
        let path = self.path(&self.key(request, arm, call_index));
        let entry = Entry {
            endpoint: self.endpoint.clone(),
            arm: arm.to_owned(),
            request: request.clone(),
            call_index,
            response: response.clone(),
        };
        let json = serde_json::to_vec(&entry).expect("cache entries serialize");
        write_atomic(&path, &json).map_err(|e| cache_err(&path, e))
    }
}

/// A provider with the call cache in front: a call that completed before (same endpoint,
/// arm, request and call index) is replayed with `cached: true`, unless the cache is
/// [refreshing](CallCache::refreshing); any other is asked of the provider and its reply
/// written before it is returned. A reply that cannot be written fails the call (with
/// [`LlmError::Cache`]): a run never goes on believing it has cached what it has not.
pub struct Cached<C> {
    inner: C,
    cache: CallCache,
    stats: CallStats,
}

/// Calls answered so far: from the cache, or asked of the provider (with the completion
/// tokens those replies hold).
#[derive(Debug, Default)]
pub struct CallStats {
    pub cached: AtomicU64,
    pub sent: AtomicU64,
    pub completion_tokens: AtomicU64,
}

impl CallStats {
    /// `(cached, sent, completion tokens of the sent calls)`.
    pub fn read(&self) -> (u64, u64, u64) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (load(&self.cached), load(&self.sent), load(&self.completion_tokens))
    }
}

impl<C: Chat> Cached<C> {
    /// The provider's `model` for requests ([`Chat::model_name`]).
    pub fn model_name(&self) -> String {
        self.inner.model_name()
    }

    /// The provider behind the cache.
    pub fn provider(&self) -> &C {
        &self.inner
    }

    pub fn stats(&self) -> &CallStats {
        &self.stats
    }

    /// Call `call_index` of `request` for `arm` (the strategy or evaluation target it serves):
    /// replayed from the cache, or asked and then cached.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        arm: &str,
        call_index: u64,
    ) -> Result<ChatResponse, LlmError> {
        if let Some(hit) = self.cache.get(request, arm, call_index) {
            self.stats.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        // The provider has released its slot (its concurrency permit, the server's batch) once
        // it has replied: the write (two fsyncs) never holds it.
        let response = self.inner.chat(request, call_index).await?;
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        self.stats.completion_tokens.fetch_add(response.usage.completion_tokens, Ordering::Relaxed);
        // The write goes off the async workers: its two fsyncs would otherwise stall every call
        // sharing the worker thread (measured: the stage fell 18% behind a plain client).
        let (cache, owned) = (self.cache.clone(), (request.clone(), arm.to_owned(), response.clone()));
        tokio::task::spawn_blocking(move || cache.put(&owned.0, &owned.1, call_index, &owned.2))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        Ok(response)
    }
}

fn cache_err(path: &Path, e: std::io::Error) -> LlmError {
    LlmError::Cache { path: path.display().to_string(), message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use vs_core::{Message, Role, Usage};

    use super::*;

    /// A provider that numbers its replies: `reply <n>` for the n-th call it was asked.
    #[derive(Default)]
    struct Numbered {
        asked: AtomicU64,
    }

    impl Chat for Numbered {
        fn model_name(&self) -> String {
            "numbered".into()
        }

        async fn chat(&self, request: &ChatRequest, call_index: u64) -> Result<ChatResponse, LlmError> {
            let n = self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(ChatResponse {
                content: format!("reply {n} to {} #{call_index}", request.messages[0].content),
                usage: Usage { prompt_tokens: 3, completion_tokens: 5 },
                finish_reason: Some("stop".into()),
                cached: false,
            })
        }
    }

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message::new(Role::User, text)],
            temperature: 0.7,
            top_p: 1.0,
            max_tokens: 100,
            seed: Some(42),
            response_format: None,
        }
    }

    #[tokio::test]
    async fn replays_a_completed_call_and_asks_any_other() {
        let dir = tempfile::tempdir().unwrap();
        let client = CallCache::new(dir.path(), "e1").in_front_of(Numbered::default());
        assert_eq!(client.model_name(), "numbered");
        let first = client.chat(&request("q"), "direct", 0).await.unwrap();
        assert_eq!((first.content.as_str(), first.cached), ("reply 0 to q #0", false));
        let again = client.chat(&request("q"), "direct", 0).await.unwrap();
        assert_eq!(again, ChatResponse { cached: true, ..first.clone() });
        // Another arm, call index or request is another call.
        assert_eq!(client.chat(&request("q"), "multi_turn", 0).await.unwrap().content, "reply 1 to q #0");
        assert_eq!(client.chat(&request("q"), "direct", 1).await.unwrap().content, "reply 2 to q #1");
        assert_eq!(client.chat(&request("r"), "direct", 0).await.unwrap().content, "reply 3 to r #0");
        // Four calls asked (five completion tokens each), one replayed.
        assert_eq!(client.stats().read(), (1, 4, 20));
        // Another endpoint over the same folder shares nothing.
        let other = CallCache::new(dir.path(), "e2").in_front_of(Numbered::default());
        assert!(!other.chat(&request("q"), "direct", 0).await.unwrap().cached);
        // A rerun (a new client over the same folder) replays.
        let rerun = CallCache::new(dir.path(), "e1").in_front_of(Numbered::default());
        assert_eq!(rerun.chat(&request("q"), "direct", 0).await.unwrap(), again);
        assert_eq!(rerun.inner.asked.load(Ordering::SeqCst), 0);
        assert_eq!(rerun.stats().read(), (1, 0, 0));
    }

    #[tokio::test]
    async fn refreshing_asks_again_and_keeps_the_fresh_reply() {
        let dir = tempfile::tempdir().unwrap();
        let numbered = Numbered::default();
        numbered.asked.store(7, Ordering::SeqCst);
        CallCache::new(dir.path(), "e")
            .in_front_of(Numbered::default())
            .chat(&request("q"), "a", 0)
            .await
            .unwrap();
        let refreshed = CallCache::new(dir.path(), "e").refreshing(true).in_front_of(numbered);
        let fresh = refreshed.chat(&request("q"), "a", 0).await.unwrap();
        assert_eq!((fresh.content.as_str(), fresh.cached), ("reply 7 to q #0", false));
        let later = CallCache::new(dir.path(), "e").in_front_of(Numbered::default());
        let hit = later.chat(&request("q"), "a", 0).await.unwrap();
        assert_eq!((hit.content.as_str(), hit.cached), ("reply 7 to q #0", true));
    }

    #[tokio::test]
    async fn a_reply_that_cannot_be_written_fails_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, "a file where the cache's folder should be").unwrap();
        let client = CallCache::new(&blocked, "e").in_front_of(Numbered::default());
        let err = client.chat(&request("q"), "a", 0).await.unwrap_err();
        assert!(matches!(err, LlmError::Cache { .. }), "{err}");
    }

    /// Run folders written before keep hitting: the key and the entry's place and fields are
    /// what they were.
    #[tokio::test]
    async fn keys_and_entries_keep_their_format() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CallCache::new(dir.path(), "e");
        let key = cache.key(&request("q"), "direct", 3);
        // sha256 of `["e","direct",{"model":"m",...,"seed":42},3]`, the JSON of (endpoint, arm, request, call index).
        assert_eq!(key, "7d221a7c9c5b01e951e99ad8b2b537a2fa1159928c1676479506069e40ef3149");
        cache.clone().in_front_of(Numbered::default()).chat(&request("q"), "direct", 3).await.unwrap();
        let path = dir.path().join(&key[..2]).join(format!("{key}.json"));
        let entry: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut fields: Vec<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["arm", "call_index", "endpoint", "request", "response"]);
        assert_eq!(entry["response"]["content"], "reply 0 to q #3");
        assert!(entry["response"].get("cached").is_none(), "a hit is marked when read, never stored");
    }
}
