//! Incremental decoding for streaming: emits text only once it is complete UTF-8 and stable
//! (byte-level BPE can split a character across tokens).

use crate::error::ModelError;
use crate::text::Tokenizer;

pub struct TokenStream<'a> {
    tokenizer: &'a Tokenizer,
    tokens: Vec<u32>,
    /// Tokens before `prev` are already printed; `prev..current` is the context the next
    /// piece is decoded against.
    prev: usize,
    current: usize,
}

impl<'a> TokenStream<'a> {
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        Self { tokenizer, tokens: Vec::new(), prev: 0, current: 0 }
    }

    /// Text newly completed by `token`, if any.
    pub fn push(&mut self, token: u32) -> Result<Option<String>, ModelError> {
        let before = self.tokenizer.decode(&self.tokens[self.prev..self.current], false)?;
        self.tokens.push(token);
        let after = self.tokenizer.decode(&self.tokens[self.prev..], false)?;
        if after.len() > before.len() && !after.ends_with('\u{FFFD}') && after.is_char_boundary(before.len())
        {
            self.prev = self.current;
            self.current = self.tokens.len();
            Ok(Some(after[before.len()..].to_owned()))
        } else {
            Ok(None)
        }
    }

    /// Whatever is still held back at the end.
    pub fn flush(&self) -> Result<Option<String>, ModelError> {
        let before = self.tokenizer.decode(&self.tokens[self.prev..self.current], false)?;
        let all = self.tokenizer.decode(&self.tokens[self.prev..], false)?;
        Ok((all.len() > before.len() && all.is_char_boundary(before.len()))
            .then(|| all[before.len()..].to_owned()))
    }
}
