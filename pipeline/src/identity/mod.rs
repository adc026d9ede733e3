//! What made an artifact. Every stage identity, call-cache key and record provenance is built
//! here from the resolved config: an LLM's fields that change its replies
//! ([`crate::config::ResolvedLlm::identity`]), the content digest of every model and file a
//! stage reads ([`DigestCache`]), and the stage's, grader's and prompts' versions. Fields that
//! change throughput only (concurrency, rate limits, timeouts, retries) never enter.

pub mod reads;

use std::path::Path;

use serde_json::Value;
use vs_core::DigestCache;

use crate::config::{Config, ResolvedLlm};
use crate::stages::StageError;
use vs_core::digest::sha256_hex;

/// Hex characters of an identity kept in records and ids (64 bits: unique among the
/// identities one run folder ever sees).
pub const SHORT: usize = 16;

/// The short hash of an identity value's serde_json text. Object keys keep their insertion
/// order, not sorted: llguidance turns on serde_json's `preserve_order` for the whole workspace,
/// so the order of an identity's fields is part of it (see `reads`).
pub fn short(value: &Value) -> String {
    sha256_hex(value.to_string().as_bytes())[..SHORT].to_owned()
}

/// What a stage needs to compute identities: the config, and digests of what it reads.
#[derive(Clone, Copy)]
pub struct Identify<'a> {
    pub config: &'a Config,
    pub digests: &'a DigestCache,
}

impl Identify<'_> {
    /// The `[llm.<name>]` section, resolved.
    pub fn llm(&self, name: &str) -> Result<ResolvedLlm, StageError> {
        self.config.resolved_llm(name).map_err(|e| StageError::config(format!("llm.{name}"), e))
    }

    /// `llm`'s identity (endpoint, model content, sampling), or an error naming the model.
    pub fn llm_identity(&self, llm: &ResolvedLlm) -> Result<Value, StageError> {
        llm.identity(self.digests).map_err(|e| StageError::config(format!("llm.{}", llm.name), e))
    }

    /// The content digest of a model file or folder.
    pub fn model(&self, path: &Path) -> Result<String, StageError> {
        self.digests.model(path).map_err(|source| StageError::Io { path: path.to_owned(), source })
    }

    /// The content digest of a file.
    pub fn file(&self, path: &Path) -> Result<String, StageError> {
        self.digests.file(path).map_err(|source| StageError::Io { path: path.to_owned(), source })
    }
}
