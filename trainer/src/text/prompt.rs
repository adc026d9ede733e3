//! A conversation's prompt ids: the chat template rendered, then tokenized. Message content
//! can come from anyone (an HTTP client, an imported dataset): read [`Content::Text`], the
//! special tokens it spells (`<|im_end|>\n<|im_start|>system`) stay text, so a user cannot
//! close their turn and forge a system one; only the template's own markup is special.
//! [`Content::Trusted`] reads them as the tokens they spell (our own prompts, training data).

use super::{ChatMessage, ChatTemplate, Tokenizer};
use crate::error::ModelError;

/// How special-token text inside message content is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// As the special tokens it spells (callers that write their own content).
    Trusted,
    /// As plain text (anyone else's content).
    Text,
}

/// Stands in for message `i`'s content while the template renders, so the content can be
/// tokenized apart from the template's markup. Private-use characters: no template writes
/// them, and content holding one is refused rather than mis-split.
const MARK_OPEN: char = '\u{F0000}';
const MARK_CLOSE: char = '\u{F0001}';

fn mark(i: usize) -> String {
    format!("{MARK_OPEN}{i}{MARK_CLOSE}")
}

/// The prompt ids for `messages` through `template` (with the assistant header); without a
/// template, the contents joined by blank lines, as base models are prompted.
pub fn chat_prompt(
    tokenizer: &Tokenizer,
    template: Option<&ChatTemplate>,
    messages: &[ChatMessage],
    content: Content,
) -> Result<Vec<u32>, ModelError> {
    // Content that spells no special token tokenizes the same either way: one pass over the
    // whole text, exactly as before (prompt ids, and so replies, do not change).
    if content == Content::Trusted || !messages.iter().any(|m| tokenizer.spells_special(&m.content)) {
        return match template {
            Some(t) => tokenizer.encode(&t.render(messages, true)?, false),
            None => {
                let text: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
                tokenizer.encode(&text.join("\n\n"), true)
            }
        };
    }
    let Some(template) = template else {
        let text: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
        return tokenizer.encode_as_text(&text.join("\n\n"), true);
    };
    if messages.iter().any(|m| m.content.contains([MARK_OPEN, MARK_CLOSE])) {
        return Err(ModelError::Template(
            "message content holds the private-use characters U+F0000/U+F0001 together with special-token text; \
             refused rather than tokenized ambiguously"
                .into(),
        ));
    }
    let stand_ins: Vec<ChatMessage> =
        messages.iter().enumerate().map(|(i, m)| ChatMessage::new(&m.role, &mark(i))).collect();
    let rendered = template.render(&stand_ins, true)?;
    let mut ids = Vec::new();
    let mut rest = rendered.as_str();
    for (i, m) in messages.iter().enumerate() {
        let Some((markup, after)) = rest.split_once(&mark(i)) else {
            return Err(ModelError::Template(format!(
                "this model's chat template does not write message {i}'s content as given, so the special \
                 tokens in it cannot be kept as text; refused"
            )));
        };
        ids.extend(tokenizer.encode(markup, false)?);
        ids.extend(tokenizer.encode_as_text(&m.content, false)?);
        rest = after;
    }
    if rest.contains(MARK_OPEN) {
        return Err(ModelError::Template(
            "this model's chat template writes a message's content more than once; refused".into(),
        ));
    }
    ids.extend(tokenizer.encode(rest, false)?);
    Ok(ids)
}
