//! Completed calls on disk, keyed by the sha256 of the full request plus the call index (so
//! identical requests meant as separate samples stay separate). One JSON file per call, written
//! atomically: a crash leaves a call cached or not, never half-cached. No key or header is
//! stored, only the request body and the reply.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ChatRequest, ChatResponse, LlmError};
use crate::manifest::{sha256_hex, write_atomic};

#[derive(Debug, Clone)]
pub struct CallCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    request: ChatRequest,
    call_index: u64,
    response: ChatResponse,
}

impl CallCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn key(request: &ChatRequest, call_index: u64) -> String {
        let body = serde_json::to_vec(&(request, call_index)).expect("requests serialize");
        sha256_hex(&body)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// The cached reply, if this exact call completed before. An unreadable entry counts as a
    /// miss (and is overwritten by the next success).
    pub fn get(&self, request: &ChatRequest, call_index: u64) -> Option<ChatResponse> {
        let path = self.path(&Self::key(request, call_index));
        let text = std::fs::read_to_string(&path).ok()?;
        let entry: Entry = serde_json::from_str(&text).ok()?;
        (entry.request == *request && entry.call_index == call_index)
            .then_some(ChatResponse { cached: true, ..entry.response })
    }

    pub fn put(
        &self,
        request: &ChatRequest,
        call_index: u64,
        response: &ChatResponse,
    ) -> Result<(), LlmError> {
        let path = self.path(&Self::key(request, call_index));
        let entry = Entry { request: request.clone(), call_index, response: response.clone() };
        let json = serde_json::to_vec(&entry).expect("cache entries serialize");
        write_atomic(&path, &json).map_err(|e| cache_err(&path, e))
    }
}

fn cache_err(path: &Path, e: std::io::Error) -> LlmError {
    LlmError::Cache { path: path.display().to_string(), message: e.to_string() }
}
