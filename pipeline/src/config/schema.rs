//! The config file's shape. Field names are the TOML keys; defaults follow the paper's setting
//! (`../shared/reference/paper-and-peers.md` §2) unless a comment says otherwise, so a config
//! only states what differs from the paper. Every struct rejects unknown keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use eval::Benchmark;

pub use crate::strategy::{SelectionConfig, SelectionMode};
pub use curation::params::{
    DecontaminateConfig, DedupConfig, EmbeddingsConfig, EmbeddingsProvider, ImportConfig, MinHashConfig,
    SemanticDedupConfig,
};
pub use llm::{LlmConfig, Provider, ServeConfig, ServeEngine, StructuredOutput};
use vs_core::{ProbabilityDefinition, Strategy};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConfig,
    /// Named LLM endpoints; stages refer to them by name (`generate.llm = "<name>"`).
    #[serde(default)]
    pub llm: BTreeMap<String, LlmConfig>,
    pub generate: GenerateConfig,
    #[serde(default)]
    pub solve: SolveConfig,
    #[serde(default)]
    pub dedup: DedupConfig,
    #[serde(default)]
    pub verify: VerifyConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub evaluate: EvaluateConfig,
    #[serde(default)]
    pub report: ReportConfig,
    /// How `pipeline slurm` schedules the stages on a cluster.
    #[serde(default)]
    pub slurm: SlurmConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Outputs go to `<out_dir>/<name>/`.
    pub name: String,
    /// Relative paths are relative to the working directory.
    pub out_dir: PathBuf,
    /// Seed for every random choice the pipeline makes (sampling, shuffles, subsets).
    pub seed: u64,
    /// Share of a stage's planned calls (conversations for `generate`) that may fail for good
    /// before the stage stops with a non-zero exit and a per-reason summary. What succeeded is
    /// kept, and what failed is asked again on the next run.
    pub max_failed_fraction: f64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self { name: "default".into(), out_dir: "runs".into(), seed: 42, max_failed_fraction: 0.02 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Name of an `[llm.<name>]` section.
    pub llm: String,
    #[serde(default)]
    pub strategies: Vec<Strategy>,
    /// Problem sets made elsewhere, each its own arm beside the strategies' (by name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub import: BTreeMap<String, ImportConfig>,
    /// Task prompt: a built-in task's name (`competition_math`, `gsm8k`: `data/prompts/`, built
    /// into the binary), or the path of your own text file, relative to the config file.
    #[serde(default = "defaults::task")]
    pub task: String,
    /// Problems to keep per strategy.
    #[serde(default = "defaults::num_problems")]
    pub num_problems: usize,
    /// Items asked for per call (Direct and CoT always ask for one).
    #[serde(default = "defaults::k")]
    pub k: usize,
    #[serde(default = "defaults::target_words")]
    pub target_words: usize,
    /// VS-Multi: items asked for in the first turn; later turns ask for the same or the remainder.
    #[serde(default = "defaults::samples_per_turn")]
    pub samples_per_turn: usize,
    /// Overrides the paper's per-strategy default (explicit for VS-Standard/VS-CoT,
    /// confidence for VS-Multi).
    #[serde(default)]
    pub probability_definition: Option<ProbabilityDefinition>,
    /// Prompt-side threshold ("each response's probability must be below p"); off when absent.
    #[serde(default)]
    pub probability_tuning: Option<f64>,
    /// Re-asks of a call whose reply cannot be parsed, before it is recorded as failed.
    #[serde(default = "defaults::max_parse_retries")]
    pub max_parse_retries: u32,
    #[serde(default)]
    pub selection: SelectionConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SolveConfig {
    /// Name of an `[llm.<name>]` section; `generate.llm` when absent.
    pub llm: Option<String>,
    /// Solutions per problem (`m`), voted on by the verify stage.
    pub num_solutions: usize,
    pub temperature: f64,
    pub top_p: f64,
    /// The LLM section's `max_tokens` when absent.
    pub max_tokens: Option<u32>,
}

impl Default for SolveConfig {
    fn default() -> Self {
        // Temperature/top-p as App. G.6.1 states (the script used 0.7; we follow the text).
        Self { llm: None, num_solutions: 4, temperature: 0.6, top_p: 0.95, max_tokens: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// A problem is kept when its largest answer class holds *more than* this share of the
    /// solutions asked for, and more than any other class (a tie is no majority).
    pub min_agreement: f64,
    /// Which data each strategy trains on; every entry is its own arm of the comparison:
    /// `paper` keeps every reply with a question and every problem with an answered
    /// solution, nothing filtered (exactly the paper); `curated` keeps what survives the
    /// well-formedness filter, dedup, decontamination and the agreement vote (ours).
    #[serde(deserialize_with = "one_or_many")]
    pub curation: Vec<Curation>,
    /// How each solution's answer is read for the vote, with the grader's one entry point
    /// ([`eval::grader::extract_answer`]): `strict` (default: the solver is asked to box its
    /// answer, and a solution that commits to none has no vote) or `math_verify` (as
    /// `evaluate.extraction`: the last math or number counts too).
    #[serde(skip_serializing_if = "is_strict")]
    pub extraction: eval::grader::Extraction,
}

/// Left out of serialized configs when strict (the default), so identities made before the
/// key existed stay.
fn is_strict(e: &eval::grader::Extraction) -> bool {
    *e == eval::grader::Extraction::Strict
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            min_agreement: 0.5,
            curation: vec![Curation::Curated],
            extraction: eval::grader::Extraction::Strict,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Curation {
    Paper,
    Curated,
}

impl Curation {
    pub fn as_str(self) -> &'static str {
        match self {
            Curation::Paper => "paper",
            Curation::Curated => "curated",
        }
    }
}

/// `"curated"` or `["paper", "curated"]`.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(x) => vec![x],
        OneOrMany::Many(v) => v,
    })
}

/// How many examples each arm trains on (`train.examples_per_arm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExamplesPerArm {
    /// `"min"` (every arm the size of the smallest) or `"all"` (no matching).
    Keyword(BudgetKeyword),
    /// Exactly this many per arm.
    Count(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKeyword {
    Min,
    All,
}

impl Default for ExamplesPerArm {
    fn default() -> Self {
        ExamplesPerArm::Keyword(BudgetKeyword::Min)
    }
}

/// `f32`, `bf16` (bf16 matmuls, f32 master weights, norms, softmax and loss) or `auto` (bf16
/// on CUDA and on CPUs with native bf16, AVX512-BF16/AMX-BF16; f32 elsewhere).
pub use trainer::PrecisionChoice as DType;

/// `constant`, `linear` or `cosine` decay after the warmup: the trainer's own type, so the
/// config and the training options name a schedule the same way.
pub use trainer::sft::schedule::ScheduleKind as LrSchedule;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentConfig {
    /// A GGUF file or a Hugging Face model folder.
    pub model_path: PathBuf,
}

/// Supervised fine-tuning; defaults follow the paper ("the SFT setting of LIMO").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Students to fine-tune, by name; each is trained once per strategy.
    pub students: BTreeMap<String, StudentConfig>,
    /// A JSONL file of `{prompt, completion}` (or `{messages, completion}`) pairs to train on
    /// instead of the verified data of each strategy (then one run per student, `custom`).
    pub data: Option<PathBuf>,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Data parallel training, one worker per device (`["cuda:0", "cuda:1"]`; instead of
    /// `device`): the workers share each optimizer step's `grad_accum_steps` micro-batches
    /// (which must be a multiple of their number), so the effective batch stays
    /// `batch_size x grad_accum_steps` and the loss curve the same as on one device. The first
    /// device holds the optimizer state. `cpu` may be listed more than once (workers sharing
    /// the CPU: a test of the machinery, not a speed-up).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// `f32` (the default: the same weights on every machine), `bf16` or `auto`; what was
    /// chosen is in the train manifest.
    pub dtype: DType,
    /// Recompute each decoder layer's activations in the backward pass instead of keeping
    /// them, with libtorch's fused attention: memory linear in the sequence instead of
    /// quadratic, and faster from a few hundred tokens on (an extra forward, but no
    /// `[heads x T x T]` scores). `false` keeps every activation (burn's explicit attention).
    pub checkpoint_activations: bool,
    /// Supervised positions whose logits exist at once in the loss (the full
    /// `[tokens x vocab]` logits never do).
    pub loss_chunk_tokens: usize,
    /// Refuse to start when the memory plan exceeds this many GB (the device's memory is
    /// always checked: the machine's RAM on CPU).
    pub memory_limit_gb: Option<f64>,
    pub epochs: u32,
    /// Stops early when reached; epochs decide otherwise.
    pub max_steps: Option<u64>,
    pub learning_rate: f64,
    pub lr_schedule: LrSchedule,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    pub batch_size: usize,
    pub grad_accum_steps: usize,
    /// Global gradient-norm clipping; none when absent.
    pub max_grad_norm: Option<f64>,
    pub max_seq_len: usize,
    pub packing: bool,
    pub log_every: u64,
    /// Checkpoint every N optimizer steps (and always at the end); only at the end when absent.
    pub checkpoint_every: Option<u64>,
    /// Every arm of a curation trains on the same budget (a subsample drawn per training seed,
    /// nested: a larger budget contains a smaller one): `"min"` (the smallest arm of the
    /// curation), a number of examples, or `"all"` (no matching; arms then differ in size).
    pub examples_per_arm: ExamplesPerArm,
    /// What the budget counts: `"examples"` (the paper: the same number of examples, hence of
    /// optimizer steps) or `"tokens"` (the same number of supervised tokens of the student's
    /// tokenizer, so an arm of shorter solutions trains on more problems; needs
    /// `examples_per_arm = "min"`).
    #[serde(skip_serializing_if = "BudgetUnit::is_examples")]
    pub budget: BudgetUnit,
    /// Train each arm once per seed (data order and the arm's subsample); `[run.seed]` when
    /// empty. The report's tests and intervals count the variance between seeds (a random
    /// effect of the training run); with one seed they cannot, and say so.
    pub seeds: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    #[default]
    Examples,
    Tokens,
}

impl BudgetUnit {
    /// Left out of serialized configs when `examples`, so identities made before the key
    /// existed stay the same.
    pub fn is_examples(&self) -> bool {
        *self == BudgetUnit::Examples
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetUnit::Examples => "examples",
            BudgetUnit::Tokens => "tokens",
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            students: BTreeMap::new(),
            data: None,
            device: "cpu".into(),
            devices: Vec::new(),
            dtype: DType::F32,
            checkpoint_activations: true,
            loss_chunk_tokens: trainer::sft::train::default_loss_chunk(),
            memory_limit_gb: None,
            epochs: 5,
            max_steps: None,
            learning_rate: 5e-6,
            lr_schedule: LrSchedule::Cosine,
            warmup_ratio: 0.0,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            batch_size: 1,
            grad_accum_steps: 1,
            max_grad_norm: Some(1.0),
            max_seq_len: 16384,
            packing: false,
            log_every: 10,
            checkpoint_every: None,
            examples_per_arm: ExamplesPerArm::default(),
            budget: BudgetUnit::Examples,
            seeds: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluateConfig {
    pub benchmarks: Vec<Benchmark>,
    /// Evaluate a seeded, stable sample of this many problems per benchmark; all when absent.
    pub subset: Option<usize>,
    pub max_new_tokens: u32,
    pub batch_size: usize,
    /// `cpu`, `cuda` or `cuda:N` for the local engine.
    pub device: String,
    /// The local engine's weights and matmuls: `f32`, `bf16`, `int8` (CPU only) or `auto`.
    pub dtype: DType,
    /// Evaluate through this `[llm.<name>]` endpoint (e.g. vLLM serving the export) instead of
    /// the local engine.
    pub llm: Option<String>,
    /// Serve each target in turn (the baseline, then each fine-tuned export) with this engine
    /// and evaluate it through the server (`model` is the target; the rest as in
    /// `[llm.<name>.serve]`): paper-scale evaluation on vLLM, as the paper's harness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve: Option<ServeConfig>,
    /// With `llm`: the `model` each target is asked for by.
    pub endpoint_model: EndpointModel,
    /// Also evaluate each student without fine-tuning.
    pub baseline: bool,
    /// How the answer is read from a response: `math_verify` (the paper's grader's
    /// extraction: boxed, "final answer" phrases, then the last math or number) or `strict`
    /// (boxed and "final answer" phrases only, which scores models that do not box lower).
    pub extraction: eval::grader::Extraction,
    /// Who decides `correct`: `native` (our grader, offline, no Python), `math_verify` (the
    /// math-verify package itself, as the paper graded, in `evaluate.math_verify.python`) or
    /// `both` (each record carries both verdicts; math-verify's is the headline, as the
    /// paper's, and the report counts where they disagree).
    #[serde(skip_serializing_if = "GraderChoice::is_native")]
    pub grader: GraderChoice,
    /// Where math-verify runs (with `grader = "math_verify"` or `"both"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub math_verify: Option<MathVerifyConfig>,
    /// Also evaluate each student's baseline on this many problems of each arm's training
    /// data (a seeded sample of what the first seed trains on; gold: the answer verify kept):
    /// how hard each arm's problems are for the student before training, in the report next to
    /// the arm. 0 (the default): not measured.
    #[serde(skip_serializing_if = "is_zero")]
    pub training_probe: usize,
}

/// Left out of serialized configs when 0, so identities made before the key existed stay.
fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for EvaluateConfig {
    fn default() -> Self {
        Self {
            benchmarks: Benchmark::ALL.to_vec(),
            subset: None,
            max_new_tokens: 16384,
            batch_size: 16,
            device: "cpu".into(),
            dtype: DType::F32,
            llm: None,
            serve: None,
            endpoint_model: EndpointModel::Path,
            baseline: true,
            extraction: eval::grader::Extraction::MathVerify,
            grader: GraderChoice::Native,
            math_verify: None,
            training_probe: 0,
        }
    }
}

/// `evaluate.grader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraderChoice {
    #[default]
    Native,
    MathVerify,
    Both,
}

impl GraderChoice {
    /// The name configs and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            GraderChoice::Native => "native",
            GraderChoice::MathVerify => "math_verify",
            GraderChoice::Both => "both",
        }
    }

    pub fn is_native(&self) -> bool {
        *self == GraderChoice::Native
    }

    /// Whether math-verify runs.
    pub fn uses_math_verify(self) -> bool {
        self != GraderChoice::Native
    }

    /// Whether our grader runs.
    pub fn uses_native(self) -> bool {
        self != GraderChoice::MathVerify
    }
}

/// `[evaluate.math_verify]`: the reference grader's process. Neither key can change a verdict
/// that completes (the package version is pinned and checked at start), so neither is part of
/// the stage's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MathVerifyConfig {
    /// The interpreter with math-verify installed: `.venv-grader/bin/python`, which
    /// `tools/setup/setup.sh --config <this config>` (or `just grader-venv`) makes.
    pub python: PathBuf,
    /// Seconds one case may take before the process is restarted and the case counted as a
    /// timeout (named in the report, never silently wrong).
    pub timeout_s: f64,
}

impl Default for MathVerifyConfig {
    fn default() -> Self {
        Self { python: PathBuf::from(eval::grader::reference::VENV_PYTHON), timeout_s: 30.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointModel {
    /// The target's path (`runs/<name>/train/<student>/<strategy>/model`, the student's
    /// `model_path` for the baseline): what `vllm serve <path>` serves it as.
    Path,
    /// The endpoint's configured `model` for every target (a server per target).
    Configured,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Bootstrap replicates of the diversity measures (items resampled by generation
    /// conversation). Accuracy needs none: its test and interval are closed-form.
    pub bootstrap_samples: usize,
    /// Confidence of the intervals; `1 - confidence` is the `alpha` every decision is made at
    /// (family-wise over the primary comparisons, false discovery rate over the rest).
    pub confidence: f64,
    pub plots: bool,
    /// The comparisons the run is for (Holm over them); every other comparison is
    /// exploratory (Benjamini-Hochberg). Empty: each arm against Direct of its curation on the
    /// benchmark average, for every student (against the baseline when the run has no Direct).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub primary: Vec<PrimaryComparison>,
    /// How the variance between training runs enters each accuracy comparison: `"pooled"`
    /// (default: one run-effect variance per student, estimated from all its arms' seeds; it
    /// assumes the arms vary alike, which the report tests) or `"per_comparison"` (the two
    /// compared arms' own seeds only: no such assumption, far less power with few seeds).
    pub training_variance: TrainingVarianceMode,
    /// What `pipeline validate` assumes to say what the run can detect before it runs.
    pub power: PowerConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingVarianceMode {
    #[default]
    Pooled,
    PerComparison,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            bootstrap_samples: 10_000,
            confidence: 0.95,
            plots: true,
            primary: Vec::new(),
            training_variance: TrainingVarianceMode::Pooled,
            power: PowerConfig::default(),
        }
    }
}

impl ReportConfig {
    /// The level every decision is made at: `1 - confidence` (rounded, so 0.95 gives 0.05).
    pub fn alpha(&self) -> f64 {
        ((1.0 - self.confidence) * 1e12).round() / 1e12
    }
}

/// One primary comparison: `arm - against` on `benchmark`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimaryComparison {
    /// An arm, `<strategy or import>/<curation>` (`"vs_multi/curated"`), or `"custom"`.
    pub arm: String,
    /// `"baseline"` or another arm; Direct of the arm's curation when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
    /// A benchmark or `"average"` (the mean of benchmark means; the default).
    #[serde(default = "PrimaryComparison::average")]
    pub benchmark: String,
    /// One student; every student when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<String>,
}

impl PrimaryComparison {
    pub const AVERAGE: &'static str = "average";

    /// What the arm is compared with: `against`, or Direct of the arm's curation
    /// (`direct/<curation>`; `None` for an arm without one, such as `custom`).
    pub fn against_or_direct(&self) -> Option<String> {
        self.against
            .clone()
            .or_else(|| self.arm.rsplit_once('/').map(|(_, curation)| format!("direct/{curation}")))
    }

    fn average() -> String {
        Self::AVERAGE.to_owned()
    }
}

/// Planning assumptions for the minimum detectable difference of each primary comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowerConfig {
    /// The power asked of a difference to call it detectable.
    pub power: f64,
    /// Assumed share of problems on which two single training runs (of the two arms compared)
    /// disagree, one right and one wrong. The report replaces it with what it observes.
    pub discordance: f64,
    /// Assumed standard deviation, in points, of one training run's accuracy from the seed
    /// beyond per-problem noise (a good or bad run as a whole).
    pub seed_sd_points: f64,
    /// A difference, in points, the run should be able to detect (e.g. the paper's 3.5 for
    /// VS-Multi over Direct): validate says whether it can, and how many seeds would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_points: Option<f64>,
}

impl Default for PowerConfig {
    fn default() -> Self {
        Self { power: 0.8, discordance: 0.25, seed_sd_points: 1.0, target_points: None }
    }
}

/// `pipeline slurm`: one sbatch script per stage, chained with `afterok`, generate/solve/
/// evaluate sharded over job arrays. Secrets are not set here: sbatch passes the submitting
/// shell's environment (API keys included) to the jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Wall-time limit per job (`--time`), `HH:MM:SS` or `D-HH:MM:SS`.
    pub time: String,
    pub cpus_per_task: u32,
    /// Memory per node (`--mem`), e.g. `64G`.
    pub mem: Option<String>,
    /// `module load` these first.
    pub modules: Vec<String>,
    /// Exported in every job, double-quoted (`$USER` expands). Not for secrets.
    pub env: BTreeMap<String, String>,
    /// Shell lines run before the stage (e.g. `source venv/bin/activate`).
    pub setup: Vec<String>,
    /// Extra `#SBATCH` options, e.g. `--constraint=h100`.
    pub extra: Vec<String>,
    /// The pipeline binary the jobs run; the one writing the scripts when absent.
    pub binary: Option<PathBuf>,
    /// The sbatch template (minijinja).
    pub template: PathBuf,
    /// Array tasks for the shardable stages (1 = no array).
    pub shards: SlurmShards,
    /// Per-stage overrides: `[slurm.stages.train] gpus = 8, time = "12:00:00"`.
    pub stages: BTreeMap<String, SlurmStage>,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: None,
            account: None,
            qos: None,
            time: "04:00:00".into(),
            cpus_per_task: 8,
            mem: None,
            modules: Vec::new(),
            env: BTreeMap::new(),
            setup: Vec::new(),
            extra: Vec::new(),
            binary: None,
            template: "configs/slurm/stage.sbatch.j2".into(),
            shards: SlurmShards::default(),
            stages: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmShards {
    pub generate: usize,
    pub solve: usize,
    pub evaluate: usize,
}

impl Default for SlurmShards {
    fn default() -> Self {
        Self { generate: 1, solve: 1, evaluate: 1 }
    }
}

/// What one stage's jobs ask for, over the section's defaults. GPUs default to 1 for `train`
/// and `evaluate` (the local engine) and 0 elsewhere (API calls, CPU work).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmStage {
    pub gpus: Option<u32>,
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub partition: Option<String>,
}

/// Defaults of fields in structs that also have required fields.
mod defaults {
    pub fn task() -> String {
        "competition_math".into()
    }
    pub fn num_problems() -> usize {
        1000
    }
    pub fn k() -> usize {
        5
    }
    pub fn target_words() -> usize {
        80
    }
    pub fn samples_per_turn() -> usize {
        3
    }
    pub fn max_parse_retries() -> u32 {
        2
    }
}

impl Config {
    /// The `[llm.<name>]` section, resolved; an error names a missing section.
    pub fn resolved_llm(&self, name: &str) -> Result<llm::ResolvedLlm, String> {
        let llm = self.llm.get(name).ok_or_else(|| format!("no [llm.{name}] section"))?;
        llm::ResolvedLlm::new(name, llm)
    }
}
