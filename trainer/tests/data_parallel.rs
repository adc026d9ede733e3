//! Data parallel training on two CPU workers: each optimizer step's micro-batches are shared
//! between the workers and their gradients summed, so the loss curve and the weights are the
//! ones one worker gets from the same options (the same micro-batches, accumulated).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use trainer::DeviceSpec;
use trainer::load::random::RandomWeights;
use trainer::model::CausalLm;
use trainer::model::config::{Family, ModelConfig};
use trainer::sft::data::Encoded;
use trainer::sft::schedule::ScheduleKind;
use trainer::sft::train::{TrainOptions, train};

fn examples(n: usize, vocab: usize) -> Vec<Encoded> {
    (0..n)
        .map(|r| Encoded {
            ids: (0..7 + r % 6).map(|i| ((i * 5 + r * 11 + 3) % (vocab - 2) + 2) as u32).collect(),
            prompt_len: 2 + r % 3,
        })
        .collect()
}

fn options(devices: Vec<DeviceSpec>, checkpoint_activations: bool, grad_accum_steps: usize) -> TrainOptions {
    TrainOptions {
        epochs: 4,
        learning_rate: 5e-3,
        schedule: ScheduleKind::Cosine,
        warmup_ratio: 0.1,
        weight_decay: 0.01,
        batch_size: 2,
        grad_accum_steps,
        seed: 3,
        checkpoint_activations,
        loss_chunk_tokens: 8,
        devices,
        ..TrainOptions::default()
    }
}

fn weights(model: &CausalLm) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// The loss of every step and the final weights.
fn run(
    devices: Vec<DeviceSpec>,
    checkpoint_activations: bool,
    grad_accum_steps: usize,
) -> (Vec<f64>, Vec<f32>) {
    let config =
        ModelConfig { hidden_size: 32, intermediate_size: 64, ..ModelConfig::tiny(Family::Qwen3, 96) };
    let device = DeviceSpec::Cpu.training_device();
    let model = CausalLm::build(config, &mut RandomWeights::new(4, 0.1), &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut losses = Vec::new();
    let out = train(
        model,
        &examples(22, 96),
        0,
        &options(devices, checkpoint_activations, grad_accum_steps),
        dir.path(),
        false,
        &mut |log| {
            losses.push(log.loss);
            true
        },
    )
    .unwrap();
    (losses, weights(&out.model))
}

#[test]
fn two_workers_follow_one_workers_loss_curve() {
    for checkpoint_activations in [false, true] {
        let (one, w1) = run(Vec::new(), checkpoint_activations, 4);
        let (two, w2) = run(vec![DeviceSpec::Cpu, DeviceSpec::Cpu], checkpoint_activations, 4);
        // 22 examples in batches of 2, 4 micro-batches a step: 3 steps an epoch (the last one
        // with 3 micro-batches, shared unevenly), over 4 epochs.
        assert_eq!(one.len(), 12);
        assert_eq!(two.len(), one.len());
        assert!(one[11] < 0.8 * one[0], "it learns: {one:?}");
        for (step, (a, b)) in one.iter().zip(&two).enumerate() {
            assert!((a - b).abs() <= 1e-5 * a.abs(), "step {}: one worker {a}, two {b}", step + 1);
        }
        let worst = w1.iter().zip(&w2).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "weights differ by up to {worst}");
    }
    // The tolerance is far below what a different step makes: two micro-batches a step instead
    // of four (what a worker whose gradients were dropped would amount to) leaves the curve.
    let (four, _) = run(Vec::new(), false, 4);
    let (halved, _) = run(Vec::new(), false, 2);
    assert!(four.iter().zip(&halved).any(|(a, b)| (a - b).abs() > 1e-2 * a.abs()));
}
