//! Batched generation with a KV cache. Prompts are padded (left by default, or right) into one
//! prefill; every row keeps its own positions, sampling settings, seed, stop strings and token
//! budget; rows that finish leave the batch (their cache rows are dropped), so a long reply
//! does not make the short ones pay, and rows can join a running batch ([`Decoder`]: what an
//! engine serving requests as they come uses). A request's own fault (an invalid prompt, grammar or
//! sampling setting, a grammar that fails mid-reply) and a cancelled request end that row
//! alone ([`generate_each`]); only a failure of the model itself fails the batch.

pub mod constraint;
mod decoder;
mod request;
pub mod sampling;

pub use constraint::Grammar;
pub use decoder::{Answer, Decoder};
pub use request::{BatchProfile, Finish, Generation, Padding, Request};
pub use sampling::Sampling;

use crate::error::ModelError;
use crate::model::CausalLm;
use crate::text::Tokenizer;

/// Generates replies for `requests`; `on_token(request, token)` sees every sampled token as
/// it comes (the CLI streams with it). The first request that fails fails the call, named by
/// its index (callers for whom any failure is fatal; a server uses [`generate_each`]).
pub fn generate(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    requests: &[Request],
    padding: Padding,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<Vec<Generation>, ModelError> {
    generate_each(model, tokenizer, requests, padding, on_token, &mut BatchProfile::default())?
        .into_iter()
        .enumerate()
        .map(|(i, g)| g.map_err(|e| e.for_request(i)))
        .collect()
}

/// Generates replies for `requests`, one result per request: a request that cannot run (its
/// prompt, sampling or grammar is invalid), whose grammar fails mid-reply, or that is
/// cancelled gets its own error and leaves the batch; the others go on. The outer error is a
/// failure of the model itself, which no row survives. `profile` is filled with where the time
/// went.
pub fn generate_each(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    requests: &[Request],
    padding: Padding,
    on_token: &mut dyn FnMut(usize, u32),
    profile: &mut BatchProfile,
) -> Result<Vec<Result<Generation, ModelError>>, ModelError> {
    let mut results: Vec<Option<Result<Generation, ModelError>>> = Vec::with_capacity(requests.len());
    results.resize_with(requests.len(), || None);
    let mut decoder = Decoder::new(model, tokenizer);
    let mut answer = |answers: Vec<decoder::Answer>| {
        for (id, answer) in answers {
            results[id] = Some(answer);
        }
    };
    answer(decoder.admit(requests.iter().cloned().enumerate().collect(), padding)?);
    while !decoder.is_empty() {
        answer(decoder.step(on_token)?);
    }
    *profile = decoder.take_profile();
    Ok(results.into_iter().map(|g| g.expect("every request is answered")).collect())
}
