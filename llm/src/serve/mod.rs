//! `pipeline serve`: an OpenAI-compatible server over the local engine, so a fine-tuned export
//! (or any GGUF / Hugging Face folder it loads) answers any OpenAI client, and so a stage can
//! start it like any other server (`engine = "pipeline"`). Routes: `POST /v1/chat/completions`
//! (greedy or sampled, seeded; a JSON schema in any of the dialects clients send:
//! `response_format` `json_schema`, llama.cpp's `json_object` + `schema`, vLLM's
//! `guided_json`), `GET /v1/models`, `GET /health`. Concurrent requests join the engine's
//! running batch between decoding steps; each reply says in `x-batch-size` how many rows were
//! decoding when it joined.
//! Streaming is not supported (a request with `stream: true` is refused with 400).
//!
//! Built to face any client: a bad request is refused alone with a 400 naming the field; an
//! engine failure is a 500 (clients retry it) and fails only its own request; admission is
//! bounded ([`Limits`]: queue, connections, body size, header and body read timeouts; 429 with
//! `Retry-After` when the queue is full); a client that hangs up cancels its request; special
//! tokens typed in message content are text ([`crate::local::Content`]).

mod limits;
mod listener;
mod metrics;
mod request;
mod routes;

pub use limits::Limits;
pub use listener::{Stopped, serve};
pub use request::DEFAULT_MAX_TOKENS;
pub use routes::{Server, router};
