//! Completed calls on disk, keyed by what answers and what asked: the endpoint's identity (base
//! URL and served model, or the local model's content digest), the arm the call serves (a
//! strategy, an evaluation target: no two arms ever share a reply), the full request, and the
//! call index (identical requests meant as separate samples stay separate). One JSON file per
//! call, written atomically: a crash leaves a call cached or not, never half-cached. No key or
//! header is stored, only the request body and the reply.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use vs_core::digest::sha256_hex;
use vs_core::fs::write_atomic;
use vs_core::{ChatRequest, ChatResponse};

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

impl CallCache {
    /// [`CallCache::put`] off the async workers: its two fsyncs would otherwise stall every
    /// call sharing the worker thread (measured: the stage fell 18% behind a plain client).
    pub async fn put_async(
        &self,
        request: &ChatRequest,
        arm: &str,
        call_index: u64,
        response: &ChatResponse,
    ) -> Result<(), LlmError> {
        let (cache, request, arm, response) =
            (self.clone(), request.clone(), arm.to_owned(), response.clone());
        tokio::task::spawn_blocking(move || cache.put(&request, &arm, call_index, &response))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

fn cache_err(path: &Path, e: std::io::Error) -> LlmError {
    LlmError::Cache { path: path.display().to_string(), message: e.to_string() }
}
