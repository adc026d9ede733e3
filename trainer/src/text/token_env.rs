//! The tokenizer as llguidance sees it: every token id's raw bytes in a `toktrie::TokTrie`.
//! Adapted from `toktrie_hf_tokenizers` 1.9.1 (MIT, github.com/guidance-ai/llguidance), which
//! pins `tokenizers` 0.21 and so cannot take our 0.22 tokenizer.

use std::collections::HashMap;

use tokenizers::DecoderWrapper;
use toktrie::{TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::error::ModelError;

/// GPT-2's byte <-> printable-char table, inverted: the char a byte-level vocab entry shows
/// for each byte.
fn byte_level_chars() -> HashMap<char, u8> {
    let self_mapped = |c: char| matches!(c, '!'..='~' | '\u{00A1}'..='\u{00AC}' | '\u{00AE}'..='\u{00FF}');
    let mut map = HashMap::with_capacity(256);
    let mut next = 0x100u32;
    for byte in 0..=255u8 {
        let c = byte as char;
        if self_mapped(c) {
            map.insert(c, byte);
        } else {
            map.insert(char::from_u32(next).expect("below 0x200"), byte);
            next += 1;
        }
    }
    map
}

#[derive(Default)]
struct DecoderKind {
    byte_level: bool,
    byte_fallback: bool,
}

fn inspect(d: &DecoderWrapper, kind: &mut DecoderKind) {
    match d {
        DecoderWrapper::ByteLevel(_) => kind.byte_level = true,
        DecoderWrapper::ByteFallback(_) => kind.byte_fallback = true,
        DecoderWrapper::Sequence(seq) => seq.get_decoders().iter().for_each(|d| inspect(d, kind)),
        _ => {}
    }
}

/// The bytes each id stands for; special tokens get `TokTrie::SPECIAL_TOKEN_MARKER` first,
/// so a grammar never produces them as text. `vocab` may exceed the tokenizer's size (models
/// pad their embedding); the extra ids become unreachable specials.
pub fn token_bytes(inner: &tokenizers::Tokenizer, vocab: usize) -> Result<Vec<Vec<u8>>, ModelError> {
    let mut kind = DecoderKind::default();
    if let Some(d) = inner.get_decoder() {
        inspect(d, &mut kind);
    }
    if !kind.byte_level && !kind.byte_fallback {
        return Err(ModelError::Tokenizer(
            "structured output needs a byte-level or byte-fallback tokenizer; this decoder is neither".into(),
        ));
    }
    let special = |text: &str| {
        let mut b = vec![TokTrie::SPECIAL_TOKEN_MARKER];
        b.extend_from_slice(text.as_bytes());
        b
    };
    let added = inner.get_added_tokens_decoder();
    let chars = byte_level_chars();
    let mut out = Vec::with_capacity(vocab);
    for id in 0..vocab as u32 {
        let bytes = match (added.get(&id), inner.id_to_token(id)) {
            (Some(a), _) if a.special || (a.content.starts_with('<') && a.content.ends_with('>')) => {
                special(&a.content)
            }
            (Some(a), _) => a.content.as_bytes().to_vec(),
            (None, Some(piece)) if kind.byte_level => {
                match piece.chars().map(|c| chars.get(&c).copied()).collect::<Option<Vec<u8>>>() {
                    Some(b) => b,
                    // A piece outside the byte alphabet cannot be produced as text.
                    None => special(&piece),
                }
            }
            (None, Some(piece)) => {
                let hex = piece.strip_prefix("<0x").and_then(|h| h.strip_suffix('>'));
                match hex.map(|h| u8::from_str_radix(h, 16)) {
                    Some(Ok(b)) => vec![b],
                    _ => piece.replace('\u{2581}', " ").into_bytes(),
                }
            }
            (None, None) => special(&format!("<[{id}]>")),
        };
        out.push(bytes);
    }
    Ok(out)
}

/// `toktrie`'s view of a tokenizer: the trie plus its encoder for the few strings a grammar
/// forces.
pub struct TokenEnv {
    trie: TokTrie,
    inner: tokenizers::Tokenizer,
}

impl TokenEnv {
    /// `inner` with its end-of-sequence id and every id that ends a reply (as
    /// `Tokenizer` holds them), for a model with `vocab` outputs.
    pub fn new(
        inner: &tokenizers::Tokenizer,
        eos: Option<u32>,
        stop_ids: &[u32],
        vocab: usize,
    ) -> Result<Self, ModelError> {
        let vocab = vocab.max(inner.get_vocab_size(true));
        let words = token_bytes(inner, vocab)?;
        let eos = eos.or(stop_ids.first().copied()).unwrap_or(0);
        let mut trie = TokTrie::from(&TokRxInfo::new(vocab as u32, eos), &words);
        if stop_ids.len() > 1 {
            trie = trie.with_eos_tokens(stop_ids);
        }
        Ok(Self { trie, inner: inner.clone() })
    }
}

impl TokenizerEnv for TokenEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.inner.encode(text, false).map(|e| e.get_ids().to_vec()).unwrap_or_default()
        })
    }
}
