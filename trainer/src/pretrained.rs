//! A model ready to use: weights, tokenizer and chat template from one path, a GGUF file or
//! a Hugging Face folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;

use crate::error::ModelError;
use crate::generate::{self, Generation, Padding, Request};
use crate::load::gguf::{GgufFile, GgufSource};
use crate::load::safetensors::SafetensorsSource;
use crate::model::{CausalLm, HfConfig};
use crate::text::{ChatMessage, ChatTemplate, Content, Tokenizer};

pub struct Pretrained {
    pub model: CausalLm,
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
    pub source: PathBuf,
}

/// The architecture of the model at `path` (a `.gguf` file, an HF folder or its
/// `config.json`), read without loading its weights.
pub fn model_config(path: &Path) -> Result<crate::model::ModelConfig, ModelError> {
    if path.is_dir() || path.extension().is_some_and(|e| e == "json") {
        let config_path = if path.is_dir() { path.join("config.json") } else { path.to_owned() };
        let text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let hf: HfConfig =
            serde_json::from_str(&text).map_err(|e| ModelError::format(&config_path, e.to_string()))?;
        hf.into_config().map_err(|e| ModelError::format(&config_path, e.to_string()))
    } else {
        GgufFile::open(path)?.model_config()
    }
}

/// The tokenizer of the model at `path` (a `.gguf` file or an HF folder), without its weights.
pub fn tokenizer(path: &Path) -> Result<Tokenizer, ModelError> {
    if path.is_dir() {
        let config = model_config(path)?;
        Ok(Tokenizer::from_hf_dir(path, &config.eos_token_ids)?.0)
    } else {
        Ok(Tokenizer::from_gguf(&GgufFile::open(path)?)?.0)
    }
}

impl Pretrained {
    /// Loads `path`: a `.gguf` file (dequantized to f32) or an HF folder with `config.json`,
    /// `tokenizer.json` and safetensors weights.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let start = Instant::now();
        let (model, tokenizer, template) = if path.is_dir() {
            let config_path = path.join("config.json");
            let text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
            let hf: HfConfig =
                serde_json::from_str(&text).map_err(|e| ModelError::format(&config_path, e.to_string()))?;
            let config = hf.into_config().map_err(|e| ModelError::format(&config_path, e.to_string()))?;
            let (tokenizer, template) = Tokenizer::from_hf_dir(path, &config.eos_token_ids)?;
            let mut weights = SafetensorsSource::open(path)?;
            (CausalLm::build(config, &mut weights, device)?, tokenizer, template)
        } else if path.exists() {
            let file = GgufFile::open(path)?;
            let config = file.model_config()?;
            let (tokenizer, template) = Tokenizer::from_gguf(&file)?;
            let mut weights = GgufSource::new(&file, &config);
            (CausalLm::build(config, &mut weights, device)?, tokenizer, template)
        } else {
            return Err(ModelError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            ));
        };
        let template = template.map(|t| ChatTemplate::for_tokenizer(&t, &tokenizer)).transpose()?;
        tracing::info!(
            "loaded {} ({:?}, {:.1}M parameters) in {:.1?}",
            path.display(),
            model.config.family,
            model.config.num_parameters() as f64 / 1e6,
            start.elapsed()
        );
        Ok(Self { model, tokenizer, template, source: path.to_owned() })
    }

    /// A model with `dir`'s tokenizer and architecture (an HF folder; its weights are not
    /// read, and need not be there) or `architecture`'s (a `config.json`), and seeded random
    /// weights: benchmarks of models too large to carry.
    pub fn random(
        dir: &Path,
        architecture: Option<&Path>,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let config = model_config(architecture.unwrap_or(dir))?;
        let (tokenizer, template) = Tokenizer::from_hf_dir(dir, &config.eos_token_ids)?;
        let template = template.map(|t| ChatTemplate::for_tokenizer(&t, &tokenizer)).transpose()?;
        let mut weights = crate::load::random::RandomWeights::new(seed, 0.02);
        let model = CausalLm::build(config, &mut weights, device)?;
        Ok(Self { model, tokenizer, template, source: dir.to_owned() })
    }

    /// The same model with its weights stored (and its matmuls run) in `precision`: for
    /// inference; training keeps f32 master weights ([`crate::model::CausalLm::with_precision`]).
    /// The error is int8 that cannot be had (not on the CPU).
    pub fn stored_in(self, precision: crate::Precision) -> Result<Self, ModelError> {
        Ok(Self { model: self.model.stored_in(precision)?, ..self })
    }

    /// The prompt ids for a conversation, through the model's chat template (with the
    /// assistant header). A model without a template gets the messages' contents joined by
    /// blank lines, as base models are prompted. Special-token text in the content is read as
    /// the tokens it spells: for content the caller wrote ([`Self::chat_prompt_for`] otherwise).
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, ModelError> {
        self.chat_prompt_for(messages, Content::Trusted)
    }

    /// [`Self::chat_prompt`], reading special-token text in the content as `content` says.
    pub fn chat_prompt_for(
        &self,
        messages: &[ChatMessage],
        content: Content,
    ) -> Result<Vec<u32>, ModelError> {
        crate::text::prompt::chat_prompt(&self.tokenizer, self.template.as_ref(), messages, content)
    }

    pub fn generate(
        &self,
        requests: &[Request],
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Vec<Generation>, ModelError> {
        generate::generate(&self.model, &self.tokenizer, requests, Padding::Left, on_token)
    }
}
