//! Structured output: a grammar (JSON schema, Lark or regex) turns into a token mask at every
//! step, so the reply is valid by construction. llguidance does the work (the engine behind
//! vLLM's, SGLang's and llama.cpp's structured output); a mask over a 49k vocabulary takes
//! well under a millisecond, small beside one decoding step.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::{Constraint, ParserFactory};
use serde_json::Value;

use crate::error::ModelError;
use crate::text::token_env::TokenEnv;

/// What a reply must match.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// A JSON schema (the `schema` of an OpenAI `response_format`).
    JsonSchema(Value),
    /// A Lark grammar in llguidance's dialect.
    Lark(String),
    /// A regular expression the whole reply matches.
    Regex(String),
}

impl Grammar {
    /// From an OpenAI `response_format`: `{"type": "json_schema", "json_schema": {"schema": ..}}`
    /// or `{"type": "json_object"}` (any object); `{"type": "text"}` constrains nothing.
    pub fn from_response_format(format: &Value) -> Result<Option<Self>, String> {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => Ok(None),
            // llama.cpp's servers take a schema here; without one, any JSON object.
            Some("json_object") => Ok(Some(Self::JsonSchema(
                format.get("schema").cloned().unwrap_or_else(|| serde_json::json!({"type": "object"})),
            ))),
            Some("json_schema") => format
                .pointer("/json_schema/schema")
                .cloned()
                .map(|s| Some(Self::JsonSchema(s)))
                .ok_or_else(|| "response_format.json_schema.schema is missing".to_owned()),
            other => {
                Err(format!("response_format.type {other:?} is not one of text, json_object, json_schema"))
            }
        }
    }

    fn top_level(&self) -> TopLevelGrammar {
        match self {
            // Compact separators and no free whitespace: a small model that may not pad the
            // JSON endlessly with blanks, and the fewest tokens per reply.
            Self::JsonSchema(schema) => {
                let mut schema = schema.clone();
                if let Some(obj) = schema.as_object_mut() {
                    obj.entry("x-guidance").or_insert_with(|| {
                        serde_json::json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "})
                    });
                }
                TopLevelGrammar::from_json_schema(schema)
            }
            Self::Lark(lark) => TopLevelGrammar::from_lark(lark.clone()),
            Self::Regex(rx) => TopLevelGrammar::from_regex(rx),
        }
    }
}

/// Compiles grammars against one tokenizer's token trie (built once: `Tokenizer::grammars`
/// keeps it).
pub struct Grammars {
    factory: ParserFactory,
}

impl Grammars {
    pub fn new(env: TokenEnv) -> Result<Self, ModelError> {
        let env: toktrie::TokEnv = Arc::new(env);
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| ModelError::Grammar(e.to_string()))?;
        factory.quiet();
        Ok(Self { factory })
    }

    /// A fresh matcher for one reply; an invalid grammar is an error here, before decoding.
    pub fn start(&self, grammar: &Grammar) -> Result<Matcher, ModelError> {
        let parser = self
            .factory
            .create_parser(grammar.top_level())
            .map_err(|e| ModelError::Grammar(e.to_string()))?;
        Ok(Matcher { constraint: Constraint::new(parser), prepared: None })
    }
}

/// Where a constrained reply stands after masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Sample from the masked logits.
    Sample,
    /// The grammar allows this one token and no other: no need to sample.
    Forced(u32),
    /// The grammar is complete and allows nothing more.
    Done,
}

/// One reply's grammar state.
pub struct Matcher {
    constraint: Constraint,
    /// The next token's mask was computed ahead ([`Self::prepare`]), with its error if any.
    prepared: Option<Result<(), String>>,
}

impl Matcher {
    /// Computes the mask of the next token now, so that [`Self::mask`] only applies it: the
    /// decoder runs this beside the forward pass that computes the logits it will apply to
    /// (llguidance's design: the mask depends on the tokens so far, never on the logits).
    pub fn prepare(&mut self) {
        if self.prepared.is_none() {
            self.prepared = Some(self.constraint.compute_mask().map(|_| ()).map_err(|e| e.to_string()));
        }
    }

    /// Sets the logits of every token the grammar forbids next to -inf (the mask computed
    /// ahead, else now). Where the grammar allows every token the logits are left alone, and
    /// where it allows one they are left alone too: that token is the step's (`Step::Forced`).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<Step, ModelError> {
        self.prepare();
        self.prepared.take().expect("prepared above").map_err(ModelError::Grammar)?;
        let step = self.constraint.step_result();
        let Some(mask) = step.sample_mask.as_ref() else {
            // Stopped: complete, or stuck where nothing can follow (a schema that only refers
            // to itself admits no reply at all). A reply the grammar does not accept is its
            // request's error, never an empty or cut "success".
            let parser = &mut self.constraint.parser;
            if !parser.is_accepting() {
                let why = parser.error_message().unwrap_or_else(|| format!("{:?}", parser.stop_reason()));
                return Err(ModelError::Grammar(format!(
                    "the reply cannot be completed to match it (the grammar admits no reply from here: {why})"
                )));
            }
            return Ok(Step::Done);
        };
        let allowed = mask.num_set();
        if allowed == 1
            && let Some(token) = mask.first_bit_set().filter(|&t| t < logits.len())
        {
            return Ok(Step::Forced(token as u32));
        }
        if mask.len() == logits.len() && allowed == logits.len() {
            return Ok(Step::Sample);
        }
        for (id, logit) in logits.iter_mut().enumerate() {
            if !mask.is_allowed(id as u32) {
                *logit = f32::NEG_INFINITY;
            }
        }
        Ok(Step::Sample)
    }

    /// Advances the grammar past the sampled token.
    pub fn commit(&mut self, token: u32) -> Result<(), ModelError> {
        self.prepared = None;
        self.constraint.commit_token(Some(token)).map(|_| ()).map_err(|e| ModelError::Grammar(e.to_string()))
    }
}
