//! An `[llm.<name>]` section resolved into the typed values clients use: an `[llm.<name>]` section becomes a
//! [`ResolvedLlm`] whose provider is an enum with exactly its own fields, whose device is
//! parsed, and which says in one method ([`ResolvedLlm::identity`]) which of its fields change
//! its replies. Nothing else lists those fields.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use trainer::DeviceSpec;

use vs_core::DigestCache;

/// How the local engine batches (part of its identity): how rows share a batch changes the
/// rounding of their logits, hence a sampled reply.
const BATCHING: &str = "continuous, shared prefixes, length runs";
/// Which attention kernel decodes (part of its identity, for the same reason): libtorch's
/// fused scaled-dot-product attention over the KV cache.
const ATTENTION: &str = "fused";
/// How the projections multiply (part of its identity, for the same reason): q/k/v and gate/up
/// each one matmul, over weights packed once for oneDNN on the CPU (`trainer::model::packed`).
const MATMUL: &str = "fused projections, packed weights";
use crate::params::{LlmConfig, Provider, ServeConfig, StructuredOutput};

/// Who answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// An OpenAI-compatible server.
    Openai { base_url: String, model: String, api_key_env: Option<String> },
    /// The trainer's model in this process, its weights stored in `precision`.
    Local { model_path: PathBuf, device: DeviceSpec, precision: trainer::Precision },
}

/// Decoding settings: they change replies.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    pub max_tokens: u32,
    /// Constrain replies to the strategy's schema (sent as `response_format`, in the
    /// server's `structured_output` dialect).
    pub json_schema: bool,
    pub structured_output: StructuredOutput,
}

/// How fast and how persistently calls are made: never changes a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub max_concurrency: usize,
    pub requests_per_minute: Option<u32>,
    pub timeout: Duration,
    /// Total time one call may take, retries and their waits included.
    pub deadline: Duration,
    pub max_retries: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedLlm {
    /// The `[llm.<name>]` section, for messages.
    pub name: String,
    pub endpoint: Endpoint,
    pub sampling: Sampling,
    pub throughput: Throughput,
    /// The server a stage starts for this LLM (its `base_url` is then set when it starts).
    pub serve: Option<ServeConfig>,
}

impl ResolvedLlm {
    /// Resolves a validated section (an invalid one is an error naming what is missing).
    pub fn new(name: &str, c: &LlmConfig) -> Result<Self, String> {
        let need = |v: &Option<String>, key: &str| {
            v.clone().ok_or_else(|| format!("llm.{name}.{key}: required for provider = \"openai\""))
        };
        let endpoint = match c.provider {
            Provider::Openai => Endpoint::Openai {
                base_url: match (&c.base_url, &c.serve) {
                    (None, Some(serve)) => format!("http://127.0.0.1:{}/v1", serve.port),
                    _ => need(&c.base_url, "base_url")?.trim_end_matches('/').to_owned(),
                },
                model: match (&c.model, &c.serve) {
                    (None, Some(serve)) => need(&serve.model, "serve.model")?,
                    _ => need(&c.model, "model")?,
                },
                api_key_env: c.api_key_env.clone(),
            },
            Provider::Local => {
                let device: DeviceSpec = c
                    .device
                    .as_deref()
                    .unwrap_or("cpu")
                    .parse()
                    .map_err(|e: trainer::DeviceSpecError| format!("llm.{name}.device: {e}"))?;
                Endpoint::Local {
                    model_path: c
                        .model_path
                        .clone()
                        .ok_or_else(|| format!("llm.{name}.model_path: required for provider = \"local\""))?,
                    device,
                    precision: c.dtype.unwrap_or(trainer::PrecisionChoice::F32).resolve(device),
                }
            }
        };
        let secs = |s: f64, key: &str| {
            Duration::try_from_secs_f64(s).map_err(|_| format!("llm.{name}.{key}: {s} is not a duration"))
        };
        Ok(Self {
            name: name.to_owned(),
            endpoint,
            sampling: Sampling {
                temperature: c.temperature,
                top_p: c.top_p,
                max_tokens: c.max_tokens,
                // A dialect asks for schemas by itself; `none` sends none.
                json_schema: match c.structured_output {
                    None => c.json_schema,
                    Some(d) => d != StructuredOutput::None,
                },
                structured_output: c.structured_output.unwrap_or(if c.json_schema {
                    StructuredOutput::JsonSchema
                } else {
                    StructuredOutput::None
                }),
            },
            throughput: Throughput {
                max_concurrency: c.max_concurrency.max(1),
                requests_per_minute: c.requests_per_minute,
                timeout: secs(c.timeout_s, "timeout_s")?,
                deadline: secs(c.deadline_s, "deadline_s")?,
                max_retries: c.max_retries,
            },
            serve: c.serve.clone(),
        })
    }

    /// Who answers: the server (base URL and served model) or the local model's content digest.
    /// The call cache is keyed by it, so another server or model never answers from the cache.
    pub fn endpoint_identity(&self, digests: &DigestCache) -> std::io::Result<Value> {
        let mut id = self.who_answers(digests)?;
        // Another schema dialect is another request on the wire (a server may honour one and
        // not the other), so the call cache must not answer one with the other's replies; the
        // default dialect keeps the identity it had before dialects were a setting.
        let s = &self.sampling;
        if s.json_schema && s.structured_output != StructuredOutput::JsonSchema {
            id["structured_output"] = json!(s.structured_output);
        }
        Ok(id)
    }

    fn who_answers(&self, digests: &DigestCache) -> std::io::Result<Value> {
        Ok(match &self.endpoint {
            // A server we start answers the same wherever it listens (its port may be picked
            // anew each time): it is known by what it serves, with what engine and flags.
            Endpoint::Openai { model, .. } if self.serve.is_some() => {
                let serve = self.serve.as_ref().expect("checked");
                let weights = serve.model.as_deref().unwrap_or(model);
                let path = std::path::Path::new(weights);
                let weights =
                    if path.exists() { json!({ "sha256": digests.model(path)? }) } else { json!(weights) };
                let mut served = json!({ "engine": serve.engine, "weights": weights, "args": serve.args });
                // The command and the environment run the server too; left out when unset, so a
                // section without them keeps the identity it had before they were counted.
                if let Some(command) = &serve.command {
                    served["command"] = json!(command);
                }
                if !serve.env.is_empty() {
                    served["env"] = env_identity(&serve.env);
                }
                json!({ "provider": "openai", "model": model, "served": served })
            }
            Endpoint::Openai { base_url, model, .. } => {
                json!({ "provider": "openai", "base_url": base_url, "model": model })
            }
            // bf16 weights answer differently from f32 ones; f32 keeps the identity it had
            // before precision was a setting. `content: text`: special-token text in message
            // content is read as text (issue 28), which changes the reply to content that
            // spells one, so replies cached before that are not reused. `batching`
            // (issue 29): rows join a running batch and reuse the keys and values of prompts that
            // start alike, so a row's padding and batch, hence the rounding of its logits and a
            // sampled reply, differ from the static batches' before; newcomers are then
            // prefilled in runs of similar length, a repeated prompt once (see [`BATCHING`]).
            Endpoint::Local { model_path, precision: trainer::Precision::F32, .. } => {
                json!({ "provider": "local", "model_sha256": digests.model(model_path)?, "content": "text",
                        "batching": BATCHING, "attention": ATTENTION, "matmul": MATMUL })
            }
            Endpoint::Local { model_path, precision, .. } => {
                json!({ "provider": "local", "model_sha256": digests.model(model_path)?,
                        "dtype": precision.to_string(), "content": "text", "batching": BATCHING,
                        "attention": ATTENTION, "matmul": MATMUL })
            }
        })
    }

    /// Every field that changes this LLM's replies: who answers and how it decodes. The device
    /// is left out (the same weights answer alike on any device, up to floating point).
    pub fn identity(&self, digests: &DigestCache) -> std::io::Result<Value> {
        let s = &self.sampling;
        Ok(json!({
            "endpoint": self.endpoint_identity(digests)?,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "json_schema": s.json_schema,
        }))
    }

    /// Where the key comes from, for messages that must never show the key itself.
    pub fn key_hint(&self) -> String {
        match &self.endpoint {
            Endpoint::Openai { api_key_env: Some(var), .. } => {
                format!("[llm.{}] api_key_env = \"{var}\": check the key in ${var}", self.name)
            }
            Endpoint::Openai { api_key_env: None, .. } => {
                format!(
                    "[llm.{}] sends no key (no api_key_env); set api_key_env to the variable holding one",
                    self.name
                )
            }
            Endpoint::Local { .. } => format!("[llm.{}]", self.name),
        }
    }
}

/// A server's environment as its identity: the variables' names, and one sha256 over the names
/// and values together. Values may be secrets (an `HF_TOKEN`, an API key): the identity lands
/// in manifests and names the call cache, so no value appears in it, and one digest over all of
/// them (rather than one per value) gives no short value a digest of its own to be guessed from.
/// Another value (a rotated token included) is another identity: the cache is not reused
/// across it, which costs calls, never correctness.
fn env_identity(env: &std::collections::BTreeMap<String, String>) -> Value {
    let names: Vec<&String> = env.keys().collect();
    let pairs = serde_json::to_vec(env).expect("strings serialize");
    json!({ "names": names, "sha256": vs_core::digest::sha256_hex(&pairs) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ServeEngine;

    fn served(serve: ServeConfig) -> Value {
        let section = LlmConfig { model: Some("q".into()), serve: Some(serve), ..LlmConfig::default() };
        ResolvedLlm::new("s", &section).unwrap().endpoint_identity(&DigestCache::in_memory()).unwrap()
    }

    #[test]
    fn a_served_endpoint_is_known_by_its_command_and_environment_without_their_secrets() {
        let command = |line: &str| ServeConfig {
            engine: ServeEngine::Command,
            command: Some(line.into()),
            ..ServeConfig::default()
        };
        let a = served(command("srv-a --port {port}"));
        assert_ne!(a, served(command("srv-b --port {port}")), "another command is another server");
        let env = |token: &str| ServeConfig {
            env: [("HF_TOKEN".to_owned(), token.to_owned()), ("VLLM_ATTENTION".into(), "FLASH".into())]
                .into(),
            ..command("srv-a --port {port}")
        };
        let (one, two) = (served(env("hf_secret_one")), served(env("hf_secret_two")));
        assert_ne!(one, two, "another environment is another server");
        assert_ne!(one, a);
        let text = one.to_string();
        assert!(
            text.contains("HF_TOKEN") && !text.contains("hf_secret_one") && !text.contains("FLASH"),
            "{text}"
        );
        // Neither set: the identity a served section had before they were counted.
        let plain = served(ServeConfig { model: Some("w".into()), ..ServeConfig::default() });
        assert_eq!(
            plain,
            json!({ "provider": "openai", "model": "q", "served": { "engine": "vllm", "weights": "w", "args": [] } })
        );
    }
}
