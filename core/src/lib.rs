//! The names every part of the project shares, and nothing else: stage names, strategy ids,
//! the origin of an arm, chat request and reply types, seeds, content digests, atomic writes
//! and JSONL records. It depends on no other crate of the workspace; every other crate may
//! depend on it.

pub mod chat;
pub mod digest;
pub mod file_digests;
pub mod fs;
pub mod jsonl;
pub mod origin;
pub mod seeds;
pub mod stage;
pub mod strategy;

pub use chat::{ChatRequest, ChatResponse, Message, Role, Usage};
pub use file_digests::DigestCache;
pub use origin::Origin;
pub use stage::{Shard, StageName};
pub use strategy::{ProbabilityDefinition, Strategy};
