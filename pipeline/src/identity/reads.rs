//! What each stage reads from its config sections: positive lists, one typed struct per
//! section slice, so a key added to the config enters no stage's identity until it is listed
//! here. Each constructor destructures its section without `..`: a new field does not compile
//! until someone decides whether the stage reads it (a field here) or not (`_`, with why).
//!
//! Field order is the identity's JSON order (serde_json keeps insertion order in this build,
//! llguidance turns on its `preserve_order`), and the serde attributes are the config's: the
//! identities are the same strings that serializing the section and deleting keys made.

use std::path::PathBuf;

use serde::Serialize;
use vs_core::ProbabilityDefinition;

use crate::config::{
    Benchmark, BudgetUnit, EndpointModel, EvaluateConfig, ExamplesPerArm, GenerateConfig, GraderChoice,
    ImportConfig, LrSchedule, SelectionConfig, TrainConfig,
};

/// `[generate]` as one strategy's problems depend on it.
#[derive(Debug, Serialize)]
pub struct GenerateReads<'a> {
    /// A built-in task by name; a user's file is known by its content instead (not here).
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<&'a str>,
    k: usize,
    target_words: usize,
    samples_per_turn: usize,
    probability_definition: Option<ProbabilityDefinition>,
    probability_tuning: Option<f64>,
    max_parse_retries: u32,
    selection: &'a SelectionConfig,
}

impl<'a> GenerateReads<'a> {
    pub fn new(g: &'a GenerateConfig, task_is_file: bool) -> Self {
        let GenerateConfig {
            // The generator's identity enters as its own (its name does not).
            llm: _,
            // Which other strategies run does not change this one's problems.
            strategies: _,
            // Imported sets have identities of their own (`ImportReads`).
            import: _,
            task,
            // The problems are a prefix of one stream: asking for fewer keeps the first ones,
            // more extends them.
            num_problems: _,
            k,
            target_words,
            samples_per_turn,
            probability_definition,
            probability_tuning,
            max_parse_retries,
            selection,
        } = g;
        Self {
            task: (!task_is_file).then_some(task.as_str()),
            k: *k,
            target_words: *target_words,
            samples_per_turn: *samples_per_turn,
            probability_definition: *probability_definition,
            probability_tuning: *probability_tuning,
            max_parse_retries: *max_parse_retries,
            selection,
        }
    }
}

/// `[generate.import.<name>]` as the imported problems depend on it.
#[derive(Debug, Serialize)]
pub struct ImportReads<'a> {
    question: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    solution: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
}

impl<'a> ImportReads<'a> {
    pub fn new(i: &'a ImportConfig) -> Self {
        // The file is known by its content: moving it (or the config) changes nothing.
        let ImportConfig { path: _, question, answer, solution, id, limit } = i;
        Self {
            question,
            answer: answer.as_deref(),
            solution: solution.as_deref(),
            id: id.as_deref(),
            limit: *limit,
        }
    }
}

/// `[evaluate]` as the evaluation records depend on it.
#[derive(Debug, Serialize)]
pub struct EvaluateReads<'a> {
    benchmarks: &'a [Benchmark],
    subset: Option<usize>,
    max_new_tokens: u32,
    device: &'a str,
    llm: Option<&'a str>,
    endpoint_model: EndpointModel,
    baseline: bool,
    extraction: eval::grader::Extraction,
    #[serde(skip_serializing_if = "GraderChoice::is_native")]
    grader: GraderChoice,
    #[serde(skip_serializing_if = "is_zero")]
    training_probe: usize,
}

impl<'a> EvaluateReads<'a> {
    pub fn new(e: &'a EvaluateConfig) -> Self {
        let EvaluateConfig {
            benchmarks,
            subset,
            max_new_tokens,
            // How fast, not what: a reply does not depend on its batch.
            batch_size: _,
            device,
            // As resolved on this machine it is in each target's identity; `auto` is not.
            dtype: _,
            llm,
            // What a served target answers with (engine, args) is in each target's identity;
            // its port, timeout and GPUs are not what it answers.
            serve: _,
            endpoint_model,
            baseline,
            extraction,
            grader,
            // What grades is in the stage's `grading` label; math-verify's interpreter path
            // and timeout are not what it answers.
            math_verify: _,
            training_probe,
        } = e;
        Self {
            benchmarks,
            subset: *subset,
            max_new_tokens: *max_new_tokens,
            device,
            llm: llm.as_deref(),
            endpoint_model: *endpoint_model,
            baseline: *baseline,
            extraction: *extraction,
            grader: *grader,
            training_probe: *training_probe,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `[train]` as the trained weights depend on it.
#[derive(Debug, Serialize)]
pub struct TrainReads<'a> {
    data: Option<&'a PathBuf>,
    device: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    devices: &'a [String],
    /// As resolved on this machine (`auto` counts as what it picks).
    dtype: String,
    checkpoint_activations: bool,
    loss_chunk_tokens: usize,
    epochs: u32,
    max_steps: Option<u64>,
    learning_rate: f64,
    lr_schedule: LrSchedule,
    warmup_ratio: f64,
    weight_decay: f64,
    adam_beta1: f64,
    adam_beta2: f64,
    adam_epsilon: f64,
    batch_size: usize,
    grad_accum_steps: usize,
    max_grad_norm: Option<f64>,
    max_seq_len: usize,
    packing: bool,
    examples_per_arm: ExamplesPerArm,
    #[serde(skip_serializing_if = "BudgetUnit::is_examples")]
    budget: BudgetUnit,
    seeds: &'a [u64],
}

impl<'a> TrainReads<'a> {
    /// `dtype` is the section's precision as resolved on the training device.
    pub fn new(t: &'a TrainConfig, dtype: String) -> Self {
        let TrainConfig {
            // Each student enters by its content (the stage's `students`), not its path.
            students: _,
            data,
            device,
            devices,
            dtype: _,
            checkpoint_activations,
            loss_chunk_tokens,
            // No weight depends on the memory limit.
            memory_limit_gb: _,
            epochs,
            max_steps,
            learning_rate,
            lr_schedule,
            warmup_ratio,
            weight_decay,
            adam_beta1,
            adam_beta2,
            adam_epsilon,
            batch_size,
            grad_accum_steps,
            max_grad_norm,
            max_seq_len,
            packing,
            // How often it logs and checkpoints changes no weight (a resume is exact).
            log_every: _,
            checkpoint_every: _,
            examples_per_arm,
            budget,
            seeds,
        } = t;
        Self {
            data: data.as_ref(),
            device,
            devices,
            dtype,
            checkpoint_activations: *checkpoint_activations,
            loss_chunk_tokens: *loss_chunk_tokens,
            epochs: *epochs,
            max_steps: *max_steps,
            learning_rate: *learning_rate,
            lr_schedule: *lr_schedule,
            warmup_ratio: *warmup_ratio,
            weight_decay: *weight_decay,
            adam_beta1: *adam_beta1,
            adam_beta2: *adam_beta2,
            adam_epsilon: *adam_epsilon,
            batch_size: *batch_size,
            grad_accum_steps: *grad_accum_steps,
            max_grad_norm: *max_grad_norm,
            max_seq_len: *max_seq_len,
            packing: *packing,
            examples_per_arm: *examples_per_arm,
            budget: *budget,
            seeds,
        }
    }
}
