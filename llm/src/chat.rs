//! What a provider is to the rest of the crate: something that answers one chat request. The
//! OpenAI-compatible client and the local engine's client implement it, uncached; the call
//! cache ([`crate::cache::Cached`]) is the one layer put in front of either.

use std::future::Future;

use vs_core::{ChatRequest, ChatResponse};

use crate::error::LlmError;

/// Answers one chat request, with no cache of its own.
pub trait Chat {
    /// The `model` to put in requests: the configured name for servers, the model's content
    /// identity for the local provider.
    fn model_name(&self) -> String;

    /// The reply to `request`, asked now. `call_index` tells apart identical requests meant as
    /// separate samples (the local engine seeds by it when the request has no seed; retries
    /// jitter by it). The arm a call serves is the cache's business, not the provider's.
    ///
    /// Whatever the call holds while it runs (a concurrency permit, the server's slot) is
    /// released by the time the future completes: the cache writes after that.
    fn chat(
        &self,
        request: &ChatRequest,
        call_index: u64,
    ) -> impl Future<Output = Result<ChatResponse, LlmError>> + Send;
}
