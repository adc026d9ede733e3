//! Loading refuses weights that do not fit the config, naming the tensor.

use std::path::Path;

use trainer::DeviceSpec;
use trainer::load::safetensors::SafetensorsSource;
use trainer::model::{CausalLm, HfConfig, ModelConfig};

fn tiny(edit: impl FnOnce(&mut ModelConfig)) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/llama");
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut config = serde_json::from_str::<HfConfig>(&text).unwrap().into_config().unwrap();
    edit(&mut config);
    let mut weights = SafetensorsSource::open(&dir).unwrap();
    match CausalLm::build(config, &mut weights, &DeviceSpec::Cpu.device()) {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_fixture_loads_as_is() {
    assert_eq!(tiny(|_| {}), "ok");
}

#[test]
fn misshaped_tensor_names_both_shapes() {
    let err = tiny(|c| c.intermediate_size = 80);
    assert_eq!(
        err,
        "tensor `model.layers.0.mlp.gate_proj.weight` has shape [96, 64], the model expects [80, 64]"
    );
}

#[test]
fn missing_tensor_is_named() {
    let err = tiny(|c| c.num_layers = 3);
    assert!(err.starts_with("tensor `model.layers.2.self_attn.q_proj.weight` is missing from"), "{err}");
    let err = tiny(|c| c.attention_bias = true);
    assert!(err.contains("`model.layers.0.self_attn.q_proj.bias` is missing"), "{err}");
}

#[test]
fn unused_tensors_are_refused() {
    let err = tiny(|c| c.num_layers = 1);
    assert!(err.contains("tensors the model does not use: model.layers.1."), "{err}");
}
