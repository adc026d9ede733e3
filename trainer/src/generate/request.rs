//! What a generation request is and what it comes back as.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Grammar, Sampling};
use crate::error::ModelError;
use crate::model::CausalLm;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    #[default]
    Left,
    Right,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub prompt: Vec<u32>,
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Generation ends when the decoded reply contains one; the reply stops before it.
    pub stop: Vec<String>,
    pub seed: u64,
    /// Keep going past end-of-sequence tokens (benchmarks, as vLLM's `ignore_eos`).
    pub ignore_eos: bool,
    /// What the reply must match (structured output); decoding masks everything else.
    pub grammar: Option<Grammar>,
    /// Set by the caller when nobody waits for the reply any more (a client that hung up):
    /// the row leaves the batch at the next step with [`ModelError::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Request {
    pub fn greedy(prompt: Vec<u32>, max_new_tokens: usize) -> Self {
        Self {
            prompt,
            max_new_tokens,
            sampling: Sampling::greedy(),
            stop: Vec::new(),
            seed: 0,
            ignore_eos: false,
            grammar: None,
            cancel: None,
        }
    }

    pub(super) fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// What is wrong with this request on its own (before any decoding), if anything.
    pub(super) fn check(&self, model: &CausalLm) -> Result<(), ModelError> {
        let max_ctx = model.config.max_position_embeddings;
        if self.prompt.is_empty() {
            return Err(ModelError::Generation("empty prompt".into()));
        }
        if self.prompt.len() >= max_ctx {
            return Err(ModelError::Generation(format!(
                "prompt of {} tokens does not fit the model's context of {max_ctx}",
                self.prompt.len()
            )));
        }
        if let Some(&bad) = self.prompt.iter().find(|&&t| t as usize >= model.config.vocab_size) {
            return Err(ModelError::Generation(format!("token id {bad} is outside the vocabulary")));
        }
        self.sampling.check().map_err(ModelError::Generation)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// `max_new_tokens` (or the model's context) ran out.
    Length,
}

impl Finish {
    /// `stop` or `length`, as OpenAI's `finish_reason` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Generation {
    /// The generated ids, without the stop token.
    pub tokens: Vec<u32>,
    /// The reply: special tokens skipped, cut before a stop string.
    pub text: String,
    pub finish: Finish,
    pub prompt_tokens: usize,
    /// From the end of its batch's prefill to this row's last token.
    pub decode_time: Duration,
    /// This row's share of that time spent computing its grammar's token masks.
    pub mask_time: Duration,
}

/// Where decoding spent its time (one call of [`super::generate_each`], or a [`super::Decoder`]
/// between two readings): what a profile of the engine needs to
/// tell a small batch from a slow step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchProfile {
    /// Rows that ran (requests refused before decoding are not counted).
    pub rows: usize,
    /// The padded prompt forward passes.
    pub prefill: Duration,
    /// Prompt tokens not prefilled: their keys and values were reused from an earlier prompt.
    pub reused: usize,
    /// Positions the prefills computed, padding included (rows x padded width, summed).
    pub prefilled: usize,
    /// Decoding forward passes (one per step, over the rows still running).
    pub forward: Duration,
    /// Grammar masks, all rows.
    pub mask: Duration,
    /// Choosing tokens from the logits (masks apart), stop checks, finishing replies.
    pub sample: Duration,
    /// Rearranging the cache: rows leaving, newcomers stacked in, prompts stored for reuse.
    pub reshape: Duration,
    /// Decoding steps, and the rows summed over steps (their ratio is the mean live batch).
    pub steps: u64,
    pub row_steps: u64,
}
