//! `report.json` as types: everything `report.md` shows is here, and the markdown is rendered
//! from this value alone ([`super::markdown::render`]), so the two cannot disagree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::multiplicity::Adjustment;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportDoc {
    pub run: String,
    /// Benchmarks in the config's order (the tables' columns).
    pub benchmarks: Vec<String>,
    /// Curations in the config's order.
    pub curations: Vec<String>,
    pub method: Method,
    pub summary: Summary,
    /// Every comparison the report makes, each with its test, interval and decision.
    pub comparisons: Vec<Comparison>,
    /// Per strategy against Direct: the ids of its diversity and accuracy comparisons.
    pub headline: Vec<Headline>,
    /// Per student, the rows of its accuracy table.
    pub students: BTreeMap<String, Vec<Row>>,
    /// Per primary comparison, what it could detect.
    pub power: Vec<Power>,
    /// Per student and arm: what the arm trained on (from the budget).
    pub training_data: Vec<TrainingData>,
    /// Per origin: the funnel and diversity (empty with `train.data`).
    pub data: BTreeMap<String, Value>,
    /// The train stage's budget decision, as it wrote it.
    pub budget: Value,
    pub wall_seconds: BTreeMap<String, f64>,
    pub extraction: Value,
    /// Which grader decided every accuracy above, and how often the graders disagree.
    #[serde(default)]
    pub grading: Grading,
    pub train_seeds: Vec<u64>,
    /// Figures drawn beside the report (PNG names; an SVG of each too).
    pub plots: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub alpha: f64,
    pub confidence: f64,
    pub accuracy_test: String,
    pub accuracy_interval: String,
    pub diversity_test: String,
    pub primary: Family,
    pub exploratory: Family,
    /// Whether the training-run variance is in the accuracy tests (some arm has two seeds).
    pub training_variance: bool,
    pub bootstrap_samples: usize,
    /// Per student: how much whole training runs vary, and whether the arms vary alike.
    pub training_runs: Vec<TrainingRuns>,
    /// The paragraph report.md prints.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRuns {
    pub student: String,
    pub mode: crate::config::TrainingVarianceMode,
    /// Standard deviation of the run effect on the average (pooled over the student's arms),
    /// and the degrees of freedom it rests on; absent with one run per arm.
    pub pooled_run_sd: Option<f64>,
    pub pooled_df: Option<f64>,
    /// Each arm's own run-effect standard deviation on the average.
    pub arms: Vec<(String, f64)>,
    /// Bartlett's test that the arms' between-run variances are equal.
    pub bartlett: Option<Bartlett>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bartlett {
    pub statistic: f64,
    pub df: f64,
    pub p: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    pub adjustment: Adjustment,
    /// Comparisons with a p-value in the family.
    pub size: usize,
    pub resolved: usize,
    /// How the family was chosen (`report.primary`, or the default).
    pub chosen_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Primary comparisons that survive Holm, by id.
    pub resolved: Vec<String>,
    /// Primary comparisons that do not.
    pub not_resolved: Vec<String>,
    /// Exploratory comparisons with a test.
    pub exploratory_looked_at: usize,
    pub exploratory_resolved: usize,
    /// Exploratory comparisons shown without a test (e.g. fewer than two conversations).
    pub exploratory_untested: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyName {
    Primary,
    Exploratory,
}

impl FamilyName {
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyName::Primary => "primary",
            FamilyName::Exploratory => "exploratory",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Accuracy,
    Diversity,
}

/// Whether the interval holds the variance between training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingVarianceNote {
    /// Estimated from the seeds (pooled over the student's arms) and in the test.
    Included,
    /// One run per arm: not estimable, not in the interval.
    NotEstimable,
    /// Diversity: no training involved.
    NotApplicable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seeds {
    pub arm: Vec<u64>,
    pub against: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variance {
    /// The problem (or item) part, at "no difference".
    pub problems: f64,
    /// The training-run part.
    pub training: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// `"<student>: <arm> - <against>, <benchmark>"` or `"diversity: <measure> (<items>), <arm> - direct"`.
    pub id: String,
    pub kind: Kind,
    pub student: Option<String>,
    pub arm: String,
    pub against: String,
    pub curation: Option<String>,
    /// `accuracy`, or a diversity measure (`semantic`, `rouge_l`, `distinct_2`).
    pub measure: String,
    /// Accuracy: a benchmark or `average`.
    pub benchmark: Option<String>,
    /// Diversity: `all` (every generated item) or `kept` (after dedup).
    pub items: Option<String>,
    pub family: FamilyName,
    /// `arm - against`: accuracy as a fraction, diversity in its own units.
    pub estimate: f64,
    /// The test's interval at the level that agrees with the decision (`interval_confidence`);
    /// absent when the comparison could not be tested.
    pub interval: Option<[f64; 2]>,
    pub interval_confidence: Option<f64>,
    /// The same test's interval at `report.confidence`, without multiplicity adjustment.
    pub interval_unadjusted: Option<[f64; 2]>,
    pub p: Option<f64>,
    /// Holm-adjusted (primary) or Benjamini-Hochberg q-value (exploratory).
    pub p_adjusted: Option<f64>,
    pub adjustment: Adjustment,
    /// `p_adjusted < alpha`; the interval excludes 0 exactly then.
    pub resolved: bool,
    pub method: String,
    /// Degrees of freedom of the reference distribution (`null`: normal).
    pub df: Option<f64>,
    /// Problems per benchmark (accuracy), or items per side (diversity).
    pub n: BTreeMap<String, usize>,
    pub seeds: Option<Seeds>,
    pub training_variance: TrainingVarianceNote,
    pub variance: Option<Variance>,
    /// Accuracy: share of problems on which the two sides' first runs disagree (mean over the
    /// benchmarks of the statistic).
    pub discordance: Option<f64>,
    /// One run each: per benchmark, problems only the arm got right and only `against` did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discordant: Option<BTreeMap<String, [u64; 2]>>,
    /// Why there is no test (too few items, no variation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Comparison {
    pub fn interval_excludes_zero(&self) -> bool {
        self.interval.is_some_and(|[lo, hi]| lo > 0.0 || hi < 0.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub strategy: String,
    pub diversity: Vec<String>,
    pub accuracy: Vec<String>,
}

/// One model's accuracy with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub accuracy: f64,
    pub ci: [f64; 2],
    /// Problems (per benchmark; summed for the average).
    pub n: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `baseline`, `vs_multi/curated`, `custom`.
    pub data: String,
    pub strategy: Option<String>,
    pub curation: Option<String>,
    pub seeds: Vec<u64>,
    pub benchmarks: BTreeMap<String, Accuracy>,
    pub average: Accuracy,
    /// Standard deviation over seeds of the average (two seeds or more).
    pub seed_spread: Option<f64>,
    /// The ids of this row's comparisons on the average.
    pub vs_baseline: Option<String>,
    pub vs_direct: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Power {
    pub comparison: String,
    pub power: f64,
    /// The smallest true difference found with probability `power` at Holm's first step
    /// (`alpha / m`, the bar every primary comparison may face) and at `alpha` (the last).
    pub detectable_first_step: f64,
    pub detectable_last_step: f64,
    /// Standard deviation of the estimate at "no difference", and the degrees of freedom.
    pub sd: f64,
    pub df: Option<f64>,
    /// Observed share of problems where the two first runs disagree, averaged over benchmarks.
    pub discordance: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    pub student: String,
    pub arm: String,
    /// Means over the arm's training seeds.
    pub examples: f64,
    pub supervised_tokens: Option<f64>,
    pub mean_solution_tokens: Option<f64>,
    pub mean_agreement: Option<f64>,
    /// The baseline student's accuracy on a sample of the arm's training problems
    /// (`evaluate.training_probe`), gold the answer verify kept; absent when not measured.
    pub baseline_accuracy: Option<Accuracy>,
}

/// `evaluate.grader` and what it gave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Grading {
    /// `native`, `math_verify` or `both`.
    pub grader: String,
    /// Whose verdict every accuracy and test of the report uses: `math_verify` whenever it
    /// runs (as the paper reported), else `native`.
    pub headline: String,
    /// Graders and versions, e.g. `grader-3/math_verify+math-verify-0.9.0`.
    pub label: String,
    /// Per evaluated model, with math-verify in use.
    pub models: Vec<GraderAgreement>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraderAgreement {
    pub student: String,
    /// `baseline` or a training run (`vs_multi/curated/seed-42`).
    pub model: String,
    pub records: usize,
    /// Accuracy over every benchmark's records pooled, by each grader.
    pub native_accuracy: Option<f64>,
    pub math_verify_accuracy: Option<f64>,
    /// Records the two graders decide differently (with `both`), and their share.
    pub disagreements: usize,
    pub disagreement_share: Option<f64>,
    /// Of those, right by ours only, and right by math-verify only.
    pub native_only: usize,
    pub math_verify_only: usize,
    /// Cases math-verify gave no verdict on (it raised, timed out or crashed; counted wrong).
    pub failures: usize,
    /// The first few of them, `benchmark/id: why`.
    pub failed: Vec<String>,
    pub examples: Vec<DisagreementExample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisagreementExample {
    pub benchmark: String,
    pub id: String,
    pub gold: String,
    pub native: bool,
    pub native_extracted: Option<String>,
    pub math_verify: bool,
    pub math_verify_extracted: Option<String>,
}
