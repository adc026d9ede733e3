use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use super::token_env::TokenEnv;
use crate::error::ModelError;
use crate::generate::constraint::Grammars;
use crate::load::gguf::{GgufFile, Value as Meta};

/// A tokenizer and its special tokens.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Every id that ends a reply (eos, end-of-turn, ...).
    pub stop_ids: Vec<u32>,
    pub pad: u32,
    /// Prepend `bos` ourselves when encoding with special tokens (GGUF `add_bos_token`;
    /// `tokenizer.json` files do this in their post-processor instead).
    manual_bos: bool,
    /// Structured-output compiler, built on first use (the token trie costs ~0.1 s).
    grammars: OnceLock<Result<Arc<Grammars>, String>>,
    /// The same tokenizer reading special-token text as plain text (built on first use).
    as_text: OnceLock<tokenizers::Tokenizer>,
    /// The texts of the special tokens, longest first (built on first use).
    specials: OnceLock<Vec<String>>,
}

/// A copy shares nothing mutable; its grammar compiler and text tokenizer are rebuilt on
/// first use (the engine keeps one copy to tokenize requests off the model's thread).
impl Clone for Tokenizer {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            bos: self.bos,
            eos: self.eos,
            stop_ids: self.stop_ids.clone(),
            pad: self.pad,
            manual_bos: self.manual_bos,
            grammars: OnceLock::new(),
            as_text: OnceLock::new(),
            specials: OnceLock::new(),
        }
    }
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

/// A special token in `tokenizer_config.json`: a string or an `AddedToken` object.
fn token_text(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v.get("content").and_then(Value::as_str))
}

impl Tokenizer {
    /// From an HF folder: `tokenizer.json`, with specials from `tokenizer_config.json` and
    /// stop ids from `generation_config.json` / `config.json`. Returns the chat template too
    /// (`tokenizer_config.json` `chat_template`, or `chat_template.jinja`).
    pub fn from_hf_dir(dir: &Path, config_eos: &[u32]) -> Result<(Self, Option<String>), ModelError> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ModelError::format(&path, format!("cannot load tokenizer: {e}")))?;
        let read_json = |name: &str| -> Result<Option<Value>, ModelError> {
            let p = dir.join(name);
            if !p.exists() {
                return Ok(None);
            }
            let text = std::fs::read_to_string(&p).map_err(|e| ModelError::io(&p, e))?;
            serde_json::from_str(&text).map(Some).map_err(|e| ModelError::format(&p, e.to_string()))
        };
        let tc = read_json("tokenizer_config.json")?.unwrap_or(Value::Null);
        let id_of = |key: &str| tc.get(key).and_then(token_text).and_then(|t| inner.token_to_id(t));
        let bos = id_of("bos_token");
        let eos = id_of("eos_token").or_else(|| config_eos.first().copied());
        let mut stop_ids: Vec<u32> = eos.into_iter().chain(config_eos.iter().copied()).collect();
        if let Some(gen_config) = read_json("generation_config.json")? {
            match &gen_config["eos_token_id"] {
                Value::Number(n) => stop_ids.extend(n.as_u64().map(|v| v as u32)),
                Value::Array(a) => stop_ids.extend(a.iter().filter_map(Value::as_u64).map(|v| v as u32)),
                _ => {}
            }
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let pad = id_of("pad_token").or(eos).unwrap_or(0);
        let mut template = match tc.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            // A list of named templates: the "default" one.
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .map(str::to_owned),
            _ => None,
        };
        let jinja = dir.join("chat_template.jinja");
        if template.is_none() && jinja.exists() {
            template = Some(std::fs::read_to_string(&jinja).map_err(|e| ModelError::io(&jinja, e))?);
        }
        // An exported GGUF tokenizer has no post-processor; `add_bos_token` then says what to do.
        let manual_bos = inner.get_post_processor().is_none() && tc["add_bos_token"].as_bool() == Some(true);
        Ok((
            Self {
                inner,
                bos,
                eos,
                stop_ids,
                pad,
                manual_bos,
                grammars: OnceLock::new(),
                as_text: OnceLock::new(),
                specials: OnceLock::new(),
            },
            template,
        ))
    }

    /// From GGUF metadata: a byte-level BPE (`tokenizer.ggml.model = gpt2`) with the
    /// pre-tokenizer llama.cpp names in `tokenizer.ggml.pre`. Returns the chat template too.
    pub fn from_gguf(file: &GgufFile) -> Result<(Self, Option<String>), ModelError> {
        let err = |m: String| ModelError::format(&file.path, m);
        let meta = |k: &str| file.get(&format!("tokenizer.ggml.{k}"));
        let model = meta("model").and_then(Meta::as_str).unwrap_or("?");
        if model != "gpt2" {
            return Err(err(format!(
                "tokenizer.ggml.model `{model}` is not supported (only byte-level BPE, `gpt2`); use the Hugging Face folder"
            )));
        }
        let strings = |k: &str| -> Result<Vec<&str>, ModelError> {
            meta(k)
                .and_then(Meta::as_array)
                .ok_or_else(|| err(format!("tokenizer.ggml.{k} is missing")))?
                .iter()
                .map(|v| v.as_str().ok_or_else(|| err(format!("tokenizer.ggml.{k} holds a non-string"))))
                .collect()
        };
        let tokens = strings("tokens")?;
        let merges = strings("merges")?;
        let types: Vec<u64> = meta("token_type")
            .and_then(Meta::as_array)
            .map(|a| a.iter().filter_map(Meta::as_u64).collect())
            .unwrap_or_default();
        let pre = meta("pre").and_then(Meta::as_str).unwrap_or("default");
        let doc = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added_tokens(&tokens, &types),
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer(pre).ok_or_else(|| err(format!("pre-tokenizer `{pre}` is not supported")))?,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": tokens.iter().enumerate().map(|(i, t)| ((*t).to_owned(), json!(i))).collect::<serde_json::Map<_, _>>(),
                "merges": merges,
            },
        });
        let inner: tokenizers::Tokenizer =
            doc.to_string().parse().map_err(|e| err(format!("cannot build the tokenizer: {e}")))?;
        let id = |k: &str| meta(k).and_then(Meta::as_u64).map(|v| v as u32);
        let eos = id("eos_token_id");
        let mut stop_ids: Vec<u32> =
            [eos, id("eot_token_id"), id("eom_token_id")].into_iter().flatten().collect();
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let template = file.get("tokenizer.chat_template").and_then(Meta::as_str).map(str::to_owned);
        let manual_bos = meta("add_bos_token").and_then(Meta::as_bool).unwrap_or(false);
        Ok((
            Self {
                inner,
                bos: id("bos_token_id"),
                eos,
                stop_ids,
                pad: id("padding_token_id").or(eos).unwrap_or(0),
                manual_bos,
                grammars: OnceLock::new(),
                as_text: OnceLock::new(),
                specials: OnceLock::new(),
            },
            template,
        ))
    }

    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, ModelError> {
        let enc = self.inner.encode(text, add_special_tokens).map_err(tok_err)?;
        let mut ids = enc.get_ids().to_vec();
        if let (true, true, Some(bos)) = (add_special_tokens, self.manual_bos, self.bos) {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// [`Self::encode`], with special-token text in `text` read as plain text.
    pub fn encode_as_text(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, ModelError> {
        let plain = self.as_text.get_or_init(|| {
            let mut t = self.inner.clone();
            t.set_encode_special_tokens(true);
            t
        });
        let enc = plain.encode(text, add_special_tokens).map_err(tok_err)?;
        let mut ids = enc.get_ids().to_vec();
        if let (true, true, Some(bos)) = (add_special_tokens, self.manual_bos, self.bos) {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Whether `text` spells a special token (`<|im_end|>`, `</s>`).
    pub fn spells_special(&self, text: &str) -> bool {
        let specials = self.specials.get_or_init(|| {
            let mut v: Vec<String> = self
                .inner
                .get_added_tokens_decoder()
                .into_values()
                .filter(|t| t.special && !t.content.is_empty())
                .map(|t| t.content)
                .collect();
            v.sort_by_key(|t| std::cmp::Reverse(t.len()));
            v
        });
        specials.iter().any(|t| text.contains(t.as_str()))
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, ModelError> {
        self.inner.decode(ids, skip_special_tokens).map_err(tok_err)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The text of a special token id (`bos`, `eos`), for templates.
    pub fn special_text(&self, id: Option<u32>) -> Option<String> {
        id.and_then(|i| self.inner.id_to_token(i))
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Whether encoding with special tokens prepends `bos` (GGUF `add_bos_token`).
    pub fn adds_bos(&self) -> bool {
        self.manual_bos
    }

    /// The structured-output compiler for a model with `vocab` outputs (built once; `vocab`
    /// may exceed the tokenizer's size, padded embeddings).
    pub fn grammars(&self, vocab: usize) -> Result<Arc<Grammars>, ModelError> {
        self.grammars
            .get_or_init(|| {
                TokenEnv::new(&self.inner, self.eos, &self.stop_ids, vocab)
                    .and_then(Grammars::new)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(ModelError::Generation)
    }

    /// Writes `tokenizer.json` (for exports).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.inner.save(path, false).map_err(tok_err)
    }
}

/// Control (3) and user-defined (4) tokens are matched whole before BPE, as llama.cpp does.
fn added_tokens(tokens: &[&str], types: &[u64]) -> Vec<Value> {
    types
        .iter()
        .enumerate()
        .filter(|&(_, &t)| t == 3 || t == 4)
        .map(|(i, &t)| {
            json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": t == 3})
        })
        .collect()
}

const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizers` pre-tokenizer equal to llama.cpp's `tokenizer.ggml.pre` choice.
fn pre_tokenizer(pre: &str) -> Option<Value> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |pattern: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            byte_level(false),
        ]})
    };
    Some(match pre {
        "default" | "gpt2" => byte_level(true),
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            byte_level(true),
        ]}),
        "llama-bpe" | "llama3" => split(LLAMA3_PATTERN),
        "qwen2" => split(QWEN2_PATTERN),
        _ => return None,
    })
}
