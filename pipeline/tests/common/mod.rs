//! Shared by the integration tests that train: a tiny student with SmolLM2's vocabulary,
//! tokenizer and chat template (random weights), written as a Hugging Face folder; and the
//! mock OpenAI-compatible server (`mock`).

#[allow(dead_code)]
pub mod mock;

use std::path::{Path, PathBuf};

use trainer::load::gguf::GgufFile;
use trainer::load::random::RandomWeights;
use trainer::model::CausalLm;
use trainer::model::config::{Family, ModelConfig};
use trainer::text::{ChatTemplate, Tokenizer};
use trainer::{DeviceSpec, Pretrained};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn tiny_student(dir: &Path, family: Family, seed: u64) {
    let gguf = GgufFile::open(&root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let (tokenizer, template) = Tokenizer::from_gguf(&gguf).unwrap();
    let config =
        ModelConfig { bos_token_id: Some(1), eos_token_ids: vec![2], ..ModelConfig::tiny(family, 49152) };
    let model =
        CausalLm::build(config, &mut RandomWeights::new(seed, 0.05), &DeviceSpec::Cpu.device()).unwrap();
    let template = ChatTemplate::for_tokenizer(&template.unwrap(), &tokenizer).unwrap();
    trainer::export::save_hf(
        &Pretrained { model, tokenizer, template: Some(template), source: dir.into() },
        dir,
    )
    .unwrap();
}
