//! The model trains: gradients flow through every module on the autodiff device, a tiny model
//! overfits a handful of sequences with AdamW, and prompt tokens carry no loss.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Int, Tensor, TensorData};
use trainer::DeviceSpec;
use trainer::load::random::RandomWeights;
use trainer::model::config::{Family, ModelConfig};
use trainer::model::{CausalLm, Inputs};
use trainer::sft::loss::masked_cross_entropy;

fn tiny(family: Family) -> ModelConfig {
    ModelConfig {
        family,
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 64,
        attention_bias: family == Family::Qwen2,
        qk_norm: family == Family::Qwen3,
        tie_word_embeddings: family != Family::Llama,
        bos_token_id: None,
        eos_token_ids: vec![],
    }
}

/// Three sequences of 10 tokens: the first 4 are the prompt.
fn batch(device: &burn::tensor::Device) -> (Inputs, Tensor<2, Int>, Tensor<2>) {
    let seqs: Vec<Vec<u32>> =
        (0..3).map(|r| (0..11).map(|i| ((i * 7 + r * 13 + 5) % 60 + 2) as u32).collect()).collect();
    let inputs: Vec<Vec<u32>> = seqs.iter().map(|s| s[..10].to_vec()).collect();
    let targets: Vec<i64> = seqs.iter().flat_map(|s| s[1..].iter().map(|&t| i64::from(t))).collect();
    let weights: Vec<f32> = (0..3).flat_map(|_| (0..10).map(|i| if i < 3 { 0.0 } else { 1.0 })).collect();
    (
        Inputs::dense(&inputs, device),
        Tensor::from_data(TensorData::new(targets, [3, 10]), device),
        Tensor::from_data(TensorData::new(weights, [3, 10]), device),
    )
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0]
}

#[test]
fn tiny_models_overfit_with_adamw() {
    let device = DeviceSpec::Cpu.training_device();
    for family in [Family::Llama, Family::Qwen2, Family::Qwen3] {
        let mut model = CausalLm::build(tiny(family), &mut RandomWeights::new(7, 0.1), &device).unwrap();
        let mut optim = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0).init();
        let (inputs, targets, weights) = batch(&device);
        let mut first = None;
        let mut last = 0.0;
        for _ in 0..40 {
            let loss =
                masked_cross_entropy(model.forward(inputs.clone(), None), targets.clone(), weights.clone());
            last = scalar(loss.clone());
            first.get_or_insert(last);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(2e-2, model, grads);
        }
        let first = first.unwrap();
        eprintln!("{family:?}: loss {first} -> {last}");
        assert!(last < 0.1 * first, "{family:?}: loss {first} -> {last}");
    }
}

#[test]
fn prompt_positions_carry_no_loss() {
    let device = DeviceSpec::Cpu.device();
    let model = CausalLm::build(tiny(Family::Llama), &mut RandomWeights::new(3, 0.1), &device).unwrap();
    let (inputs, targets, weights) = batch(&device);
    let logits = model.forward(inputs, None);
    let base = scalar(masked_cross_entropy(logits.clone(), targets.clone(), weights.clone()));
    // Change the targets at the three prompt positions of every row: the loss is unchanged.
    let changed = targets.clone().slice_assign([0..3, 0..3], Tensor::<2, Int>::zeros([3, 3], &device));
    assert_eq!(scalar(masked_cross_entropy(logits.clone(), changed, weights.clone())), base);
    // Changing a completion target does change it.
    let changed = targets.slice_assign([0..1, 5..6], Tensor::<2, Int>::zeros([1, 1], &device));
    assert_ne!(scalar(masked_cross_entropy(logits, changed, weights)), base);
}
