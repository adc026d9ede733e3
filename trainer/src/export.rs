//! Export to a Hugging Face folder that transformers and vLLM load: `config.json`,
//! `model.safetensors` (f32), `generation_config.json`, and the tokenizer files with the chat
//! template. Our own loader reads it back too (tested round trip).

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

use crate::error::ModelError;
use crate::load::weights::named_params;
use crate::model::CausalLm;
use crate::model::config::to_hf_json;
use crate::pretrained::Pretrained;

/// Every parameter under its transformers name, as f32 bytes. The names are the module tree's
/// paths, the same ones the model was loaded from (see [`crate::load::weights`]).
pub fn named_tensors(model: &CausalLm) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    named_params(model)
        .into_iter()
        .map(|p| {
            let values: Vec<f32> =
                p.data.convert::<f32>().try_into_vec::<f32>().expect("converted to f32 just above");
            (p.name, p.shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect()
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), ModelError> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text + "\n").map_err(|e| ModelError::io(path, e))
}

/// Writes the weights of `model` as one f32 safetensors file.
pub fn save_weights(model: &CausalLm, weights: &Path) -> Result<(), ModelError> {
    let dir = weights.parent().unwrap_or(Path::new("."));
    let tensors = named_tensors(model);
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| ModelError::format(dir, format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
    safetensors::serialize_to_file(views, Some(metadata), weights)
        .map_err(|e| ModelError::format(weights, e.to_string()))
}

/// Writes `model` (with its tokenizer and chat template) as an HF folder at `dir`.
pub fn save_hf(pretrained: &Pretrained, dir: &Path) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let model = &pretrained.model;
    save_weights(model, &dir.join("model.safetensors"))?;

    write_json(&dir.join("config.json"), &to_hf_json(&model.config))?;
    let tok = &pretrained.tokenizer;
    write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": tok.bos, "eos_token_id": tok.stop_ids, "pad_token_id": tok.pad}),
    )?;
    tok.save(&dir.join("tokenizer.json"))?;
    let mut config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tok.special_text(tok.bos),
        "eos_token": tok.special_text(tok.eos),
        "pad_token": tok.special_text(Some(tok.pad)),
        "add_bos_token": tok.adds_bos(),
        "model_max_length": model.config.max_position_embeddings,
    });
    if let Some(t) = &pretrained.template {
        config["chat_template"] = t.source().into();
    }
    write_json(&dir.join("tokenizer_config.json"), &config)
}
