//! A chat request turned into the engine's terms (prompt ids, sampling, grammar), on the
//! caller's side: tokenizing a long prompt or compiling a schema never stalls the model's
//! thread, and a request that cannot run is refused here, alone.

use trainer::generate::{Grammar, Request, Sampling};
use trainer::text::{ChatMessage, ChatTemplate, Content, Tokenizer};
use vs_core::ChatRequest;

use crate::error::LlmError;

/// What requests are tokenized and checked with: copies of the model's tokenizer and template,
/// and the limits of the model.
pub(super) struct Prompter {
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
    pub vocab: usize,
    pub context: usize,
    pub content: Content,
}

impl Prompter {
    /// The engine's request for `r` (seeded by its `seed`, else by `call_index`), or why the
    /// request cannot run ([`LlmError::LocalRefused`]: the request's own fault).
    pub fn prepare(&self, r: &ChatRequest, call_index: u64) -> Result<Request, LlmError> {
        let refused = |m: String| LlmError::LocalRefused(m);
        let sampling =
            Sampling { temperature: r.temperature as f32, top_p: r.top_p as f32, min_p: 0.0, top_k: 0 };
        sampling.check().map_err(refused)?;
        let messages: Vec<ChatMessage> =
            r.messages.iter().map(|m| ChatMessage::new(m.role.as_str(), &m.content)).collect();
        let prompt = trainer::text::prompt::chat_prompt(
            &self.tokenizer,
            self.template.as_ref(),
            &messages,
            self.content,
        )
        .map_err(|e| refused(e.to_string()))?;
        if prompt.len() >= self.context {
            return Err(refused(format!(
                "the prompt has {} tokens; the model's context is {}",
                prompt.len(),
                self.context
            )));
        }
        let grammar = match &r.response_format {
            Some(format) => Grammar::from_response_format(format).map_err(refused)?,
            None => None,
        };
        if let Some(g) = &grammar {
            // Compiled here once so a schema that cannot compile is refused before it queues.
            let refuse = |e: trainer::ModelError| refused(format!("response_format: {e}"));
            self.tokenizer.grammars(self.vocab).map_err(refuse)?.start(g).map_err(refuse)?;
        }
        Ok(Request {
            prompt,
            max_new_tokens: r.max_tokens as usize,
            sampling,
            stop: Vec::new(),
            seed: r.seed.unwrap_or(call_index),
            ignore_eos: false,
            grammar,
            cancel: None,
        })
    }
}
