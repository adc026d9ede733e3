//! Export to a Hugging Face folder and load it back: same weights, config, tokenizer and chat
//! template.

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use trainer::export::save_hf;
use trainer::load::gguf::GgufFile;
use trainer::load::safetensors::SafetensorsSource;
use trainer::model::{CausalLm, HfConfig, Inputs};
use trainer::text::{ChatMessage, ChatTemplate, Tokenizer};
use trainer::{DeviceSpec, Pretrained};

/// A tiny fixture model of `family` (written by transformers): its folder and the model.
fn fixture(family: &str, device: &burn::tensor::Device) -> (PathBuf, CausalLm) {
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny").join(family);
    let text = std::fs::read_to_string(tiny.join("config.json")).unwrap();
    let config = serde_json::from_str::<HfConfig>(&text).unwrap().into_config().unwrap();
    let model = CausalLm::build(config, &mut SafetensorsSource::open(&tiny).unwrap(), device).unwrap();
    (tiny, model)
}

fn host(t: Tensor<3>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn exported_folder_loads_back_identically() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let device = DeviceSpec::Cpu.device();
    for family in ["llama", "qwen2", "qwen3"] {
        let (tiny, model) = fixture(family, &device);
        // SmolLM2's tokenizer and template (from the GGUF metadata only) stand in for a real one.
        let gguf = GgufFile::open(&root.join("../models/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
        let (tokenizer, template) = Tokenizer::from_gguf(&gguf).unwrap();
        let template = ChatTemplate::for_tokenizer(&template.unwrap(), &tokenizer).unwrap();
        let original = Pretrained { model, tokenizer, template: Some(template), source: tiny.clone() };

        let dir = tempfile::tempdir().unwrap();
        save_hf(&original, dir.path()).unwrap();
        let back = Pretrained::load(dir.path(), &device).unwrap();

        assert_eq!(back.model.config, original.model.config, "{family}");
        let tokens = vec![vec![1u32, 5, 9, 77, 3, 120]];
        let a = host(original.model.forward(Inputs::dense(&tokens, &device), None));
        let b = host(back.model.forward(Inputs::dense(&tokens, &device), None));
        assert_eq!(a, b, "{family}: logits differ after the round trip");

        let messages = [ChatMessage::new("user", "What is 12 + 35?")];
        assert_eq!(back.chat_prompt(&messages).unwrap(), original.chat_prompt(&messages).unwrap());
        assert_eq!(back.tokenizer.stop_ids, original.tokenizer.stop_ids);
        assert_eq!((back.tokenizer.bos, back.tokenizer.eos, back.tokenizer.pad), (Some(1), Some(2), 2));
        assert_eq!(back.template.as_ref().unwrap().source(), original.template.as_ref().unwrap().source());
    }
}

/// The fixtures are f32 safetensors written by PyTorch, and between them have an untied head
/// (llama), q/k/v biases (qwen2) and q/k norms (qwen3): exporting a loaded fixture must give
/// its file back byte for byte, which pins every exported name, shape and byte.
#[test]
fn export_rewrites_each_fixture_byte_for_byte() {
    let device = DeviceSpec::Cpu.device();
    for family in ["llama", "qwen2", "qwen3"] {
        let (tiny, model) = fixture(family, &device);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.safetensors");
        trainer::export::save_weights(&model, &out).unwrap();
        let (written, original) =
            (std::fs::read(&out).unwrap(), std::fs::read(tiny.join("model.safetensors")).unwrap());
        assert!(written == original, "{family}: the export differs from the fixture's file");
    }
}
