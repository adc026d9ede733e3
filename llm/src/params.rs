//! An `[llm.<name>]` section as the config file writes it: the provider, its endpoint or
//! model, sampling, throughput, and the server a stage may start for it. The config schema
//! composes these; [`crate::resolved`] turns them into the typed values clients use.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, llama.cpp, ...).
    Openai,
    /// The trainer's model running in this process: no server, no key.
    Local,
}

/// One LLM endpoint. Which keys apply depends on `provider`; validation names any that
/// do not. The API key itself never appears here: `api_key_env` is the *name* of the
/// environment variable that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    pub provider: Provider,
    /// openai: e.g. `https://api.openai.com/v1` or `http://localhost:8000/v1`.
    pub base_url: Option<String>,
    /// openai: the model name sent in each request.
    pub model: Option<String>,
    /// openai: name of the environment variable holding the API key (none for open servers).
    pub api_key_env: Option<String>,
    /// local: a GGUF file or a Hugging Face model folder.
    pub model_path: Option<PathBuf>,
    /// local: `cpu`, `cuda` or `cuda:N`.
    pub device: Option<String>,
    /// local: `f32`, `bf16` (weights stored in bf16: half the bytes per decoded token) or
    /// `auto` (bf16 where the hardware has native bf16); `f32` when absent, so a config that
    /// does not ask gives the same replies on every machine.
    pub dtype: Option<trainer::PrecisionChoice>,
    /// Requests in flight at once (local: the largest generation batch).
    pub max_concurrency: usize,
    /// openai: client-side rate limit; none when absent.
    pub requests_per_minute: Option<u32>,
    /// One attempt's limit.
    pub timeout_s: f64,
    /// One call's total limit, retries and their waits included.
    pub deadline_s: f64,
    /// Retries of a transient failure (429, 5xx, timeout, connection) before giving up.
    pub max_retries: u32,
    pub temperature: f64,
    pub top_p: f64,
    pub max_tokens: u32,
    /// Send the strategy's JSON schema as `response_format` (openai: the server must support
    /// it; local: decoding is constrained to the schema).
    pub json_schema: bool,
    /// openai: how the server wants the schema asked for (servers disagree): `json_schema`
    /// (OpenAI, vLLM, SGLang: `response_format: {type: "json_schema", json_schema: {...}}`),
    /// `json_object` (llama.cpp's servers: `response_format: {type: "json_object", schema}`),
    /// `guided_json` (vLLM's own `guided_json: schema`) or `none` (send no schema). Setting it
    /// asks for schemas (`json_schema = true` implied); absent: `json_schema` when
    /// `json_schema = true`, else `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<StructuredOutput>,
    /// openai: start this server for the stages that use it (and stop it after); `base_url`
    /// is then derived from its port when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve: Option<ServeConfig>,
}

/// The inference server a stage starts for an `[llm.<name>]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServeEngine {
    Vllm,
    Sglang,
    LlamaCpp,
    /// `pipeline serve`: this binary's own engine (CPU or one GPU).
    Pipeline,
    /// Any command, from the `command` template.
    Command,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub engine: ServeEngine,
    /// A path or a hub name; the section's `model` when absent (and the served name either way
    /// is the section's `model`, or this).
    pub model: Option<String>,
    /// GPUs the server uses (its Slurm job asks for them); `tensor_parallel` when absent.
    pub gpus: Option<u32>,
    pub tensor_parallel: u32,
    /// 0 picks a free port when the server starts.
    pub port: u16,
    /// Extra command-line arguments, after the engine's own.
    pub args: Vec<String>,
    /// Environment variables for the server process.
    pub env: BTreeMap<String, String>,
    /// How long the server may take to list its model at `/v1/models`.
    pub startup_timeout_s: f64,
    /// For `engine = "command"`: the command line, with `{model}`, `{served}`, `{port}`,
    /// `{host}` and `{gpus}` replaced (run by `sh -c`).
    pub command: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            engine: ServeEngine::Vllm,
            model: None,
            gpus: None,
            tensor_parallel: 1,
            port: 0,
            args: Vec::new(),
            env: BTreeMap::new(),
            startup_timeout_s: 900.0,
            command: None,
        }
    }
}

impl ServeConfig {
    pub fn gpus(&self) -> u32 {
        self.gpus.unwrap_or(match self.engine {
            ServeEngine::Pipeline => 0,
            _ => self.tensor_parallel,
        })
    }
}

/// The request shape that asks a server for schema-constrained output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutput {
    JsonSchema,
    JsonObject,
    GuidedJson,
    None,
}

impl StructuredOutput {
    /// How `response_format` (always built in OpenAI's `json_schema` shape) is sent.
    pub fn apply(self, body: &mut serde_json::Value) {
        let Some(obj) = body.as_object_mut() else { return };
        let Some(format) = obj.remove("response_format") else { return };
        let schema = format["json_schema"]["schema"].clone();
        match self {
            Self::JsonSchema => {
                obj.insert("response_format".into(), format);
            }
            Self::JsonObject => {
                obj.insert(
                    "response_format".into(),
                    serde_json::json!({"type": "json_object", "schema": schema}),
                );
            }
            Self::GuidedJson => {
                obj.insert("guided_json".into(), schema);
            }
            Self::None => {}
        }
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        // Decoding defaults are the paper's generation setting (App. I.1).
        Self {
            provider: Provider::Openai,
            base_url: None,
            model: None,
            api_key_env: None,
            model_path: None,
            device: None,
            dtype: None,
            max_concurrency: 8,
            requests_per_minute: None,
            timeout_s: 120.0,
            deadline_s: 900.0,
            max_retries: 5,
            temperature: 0.7,
            top_p: 1.0,
            max_tokens: 8192,
            json_schema: false,
            structured_output: None,
            serve: None,
        }
    }
}
