//! The model trains: gradients flow through every module on the autodiff device, a tiny model
//! overfits a handful of sequences, prompt tokens carry no loss, and a resumed run ends with
//! exactly the weights of an uninterrupted one.

use burn::tensor::{Int, Tensor, TensorData};
use trainer::DeviceSpec;
use trainer::load::random::RandomWeights;
use trainer::model::config::{Family, ModelConfig};
use trainer::model::{CausalLm, Inputs};
use trainer::sft::data::{Encoded, collate, collate_packed};
use trainer::sft::loss::masked_cross_entropy;
use trainer::sft::schedule::ScheduleKind;
use trainer::sft::train::{TrainOptions, train};

fn tiny(family: Family) -> ModelConfig {
    ModelConfig::tiny(family, 64)
}

/// `n` sequences of 8-11 tokens; the first 4 are the prompt.
fn examples(n: usize) -> Vec<Encoded> {
    (0..n)
        .map(|r| Encoded {
            ids: (0..8 + r % 4).map(|i| ((i * 7 + r * 13 + 5) % 60 + 2) as u32).collect(),
            prompt_len: 4,
        })
        .collect()
}

fn options() -> TrainOptions {
    TrainOptions {
        epochs: 3,
        learning_rate: 2e-2,
        schedule: ScheduleKind::Cosine,
        warmup_ratio: 0.1,
        weight_decay: 0.01,
        batch_size: 2,
        grad_accum_steps: 2,
        seed: 5,
        checkpoint_every: Some(3),
        loss_chunk_tokens: 1024,
        ..TrainOptions::default()
    }
}

fn weights(model: &CausalLm) -> Vec<(String, Vec<u8>)> {
    trainer::export::named_tensors(model).into_iter().map(|(n, _, b)| (n, b)).collect()
}

#[test]
fn tiny_models_overfit() {
    let device = DeviceSpec::Cpu.training_device();
    for family in [Family::Llama, Family::Qwen2, Family::Qwen3] {
        let model = CausalLm::build(tiny(family), &mut RandomWeights::new(7, 0.1), &device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Qwen2 trains on packed rows (two rows of up to 20 tokens).
        let packing = (family == Family::Qwen2).then_some(20);
        let opts = TrainOptions {
            epochs: 40,
            batch_size: 3,
            grad_accum_steps: 1,
            checkpoint_every: None,
            packing,
            ..options()
        };
        let out = train(model, &examples(3), 0, &opts, dir.path(), false, &mut |_| true).unwrap();
        let (first, last) = (out.first_loss.unwrap(), out.last_loss.unwrap());
        assert!(last < 0.1 * first, "{family:?}: loss {first} -> {last}");
        assert_eq!(out.steps, 40);
        let lines = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 40);
        assert!(out.checkpoint.unwrap().join("model.safetensors").exists());
    }
}

#[test]
fn resuming_equals_an_uninterrupted_run() {
    let device = DeviceSpec::Cpu.training_device();
    let data = examples(6);
    let opts = options();
    let fresh = || CausalLm::build(tiny(Family::Qwen3), &mut RandomWeights::new(11, 0.1), &device).unwrap();

    let whole = tempfile::tempdir().unwrap();
    let a = train(fresh(), &data, 0, &opts, whole.path(), false, &mut |_| true).unwrap();
    assert_eq!(a.steps, 6);

    // Stop after step 4: the checkpoint of step 3 is what survives.
    let cut = tempfile::tempdir().unwrap();
    let b = train(fresh(), &data, 0, &opts, cut.path(), false, &mut |log| log.step < 4).unwrap();
    assert_eq!(b.steps, 4);
    let c = train(fresh(), &data, 0, &opts, cut.path(), true, &mut |_| true).unwrap();
    assert_eq!(c.resumed_from, Some(3));
    assert_eq!(c.steps, 6);
    assert!(weights(&a.model) == weights(&c.model), "resumed weights differ from the uninterrupted run");
    let lines = |d: &std::path::Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
    assert_eq!(
        lines(cut.path()).lines().count(),
        6,
        "metrics of the lost step 4 are replaced, not duplicated"
    );
    let losses = |t: String| {
        t.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(lines(whole.path())), losses(lines(cut.path())));
}

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

/// Packing several examples into one row changes nothing about the loss: attention and
/// positions stay inside each example.
#[test]
fn packed_rows_give_the_loss_of_separate_rows() {
    let device = DeviceSpec::Cpu.device();
    let model = CausalLm::build(tiny(Family::Qwen2), &mut RandomWeights::new(5, 0.1), &device).unwrap();
    let data = examples(3);
    let loss = |b: trainer::sft::data::Batch| {
        let n = b.supervised;
        (scalar(masked_cross_entropy(model.forward(b.inputs, None), b.targets, b.weights)), n)
    };
    let separate = loss(collate(&data.iter().collect::<Vec<_>>(), 0, &device));
    let packed = loss(collate_packed(&[vec![&data[0], &data[1]], vec![&data[2]]], 0, &device));
    assert_eq!(separate.1, packed.1);
    assert!((separate.0 - packed.0).abs() < 1e-5, "{separate:?} vs {packed:?}");
    // Without the segment mask the second example would see the first: a different loss.
    let one_row = loss(collate(
        &[&Encoded {
            ids: [data[0].ids.clone(), data[1].ids.clone()].concat(),
            prompt_len: data[0].prompt_len,
        }],
        0,
        &device,
    ));
    assert!((one_row.0 - packed.0).abs() > 1e-4);
}
