//! The prompt pieces shared by the strategies, verbatim from the reference implementation
//! (`verbalized_sampling/methods/prompt.py`, Apache-2.0; `../shared/reference/vs-prompts.md` §3).

use super::PromptSpec;

use vs_core::ProbabilityDefinition;

/// `" The data instance should be approximately N words."` (or `Each data instance ...`);
/// empty when `target_words` is 0.
fn words(spec: &PromptSpec, plural: bool) -> String {
    match (spec.target_words, plural) {
        (0, _) => String::new(),
        (n, false) => format!(" The data instance should be approximately {n} words."),
        (n, true) => format!(" Each data instance should be approximately {n} words."),
    }
}

/// Head for one item per call (Direct, Multi-turn).
pub fn head_base(spec: &PromptSpec) -> String {
    format!(
        "Generate a data instance based on the input prompt.{}\nOutput only the specified format of data instance, without any explanations or extra text.",
        words(spec, false)
    )
}

pub fn head_base_cot(spec: &PromptSpec) -> String {
    format!(
        "Generate a data instance based on the input prompt using chain-of-thought reasoning.{}\nOutput only the specified format of data instance, without any explanations or extra text.",
        words(spec, false)
    )
}

/// Head for k items per call (Sequence, VS-Standard).
pub fn head_standard(spec: &PromptSpec) -> String {
    format!(
        "Generate {} data instances based on the input prompt.{}\nOutput only the specified format of data instance, with no explanations or extra text.",
        spec.k,
        words(spec, true)
    )
}

pub fn head_vs_cot(spec: &PromptSpec) -> String {
    format!(
        "Generate {} data instances based on the input prompt using chain-of-thought reasoning.{}\nOutput only the specified format of data instance, with no explanations or extra text.",
        spec.k,
        words(spec, true)
    )
}

pub fn head_vs_multi(spec: &PromptSpec) -> String {
    format!("{}\n\nFirst, sample {} data instances.", head_standard(spec), spec.samples_per_turn)
}

/// The JSON field an item's score goes in, and what the prompt says it means.
pub fn probability_field(def: ProbabilityDefinition) -> (&'static str, &'static str) {
    use ProbabilityDefinition as P;
    match def {
        P::Implicit => ("probability", "how likely this response would be (from 0.0 to 1.0)."),
        P::Explicit => (
            "probability",
            "the estimated probability from 0.0 to 1.0 of this response given the input prompt (relative to the full distribution).",
        ),
        P::Relative => (
            "probability",
            "the probability between 0.0 and 1.0, reflecting the relative likelihood of this response given the input.",
        ),
        P::Percentage => (
            "probability",
            "the probability of this response relative to the full distribution, expressed as a percentage from 0% to 100%.",
        ),
        P::Confidence => (
            "confidence",
            "the normalized likelihood score between 0.0 and 1.0 that indicates how representative or typical this response is compared to the full distribution.",
        ),
        P::Perplexity => (
            "perplexity",
            "the exponentiated average negative log likelihood of the response tokens, where lower values indicate higher model certainty in predicting each token.",
        ),
        P::Nll => (
            "nll",
            "the sum of the negative log probabilities of each token in the response given the input prompt, with smaller values reflecting higher model confidence.",
        ),
    }
}

/// Python's `str(float)` for the values configs hold (`0.1`, `1.0`).
pub fn py_float(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 { format!("{x:.1}") } else { format!("{x}") }
}

fn distribution(spec: &PromptSpec) -> String {
    match spec.probability_tuning {
        Some(p) => format!(
            "Randomly sample the responses from the distribution, with the probability of each response must be below {}.",
            py_float(p)
        ),
        None => "Randomly sample the responses from the full distribution.".to_owned(),
    }
}

fn items_block(spec: &PromptSpec) -> String {
    let (field, meaning) = probability_field(spec.probability_definition);
    format!(
        "- 'text': the response string only (no explanation or extra text).\n- '{field}': {meaning}\n\n{} Return ONLY the JSON object, with no additional explanations or text.",
        distribution(spec)
    )
}

/// Format block of VS-Standard and VS-Multi.
pub fn format_vs(spec: &PromptSpec) -> String {
    format!(
        "Return the responses in JSON format with the key: \"responses\" (list of dicts). Each dictionary must include:\n{}",
        items_block(spec)
    )
}

pub fn format_vs_cot(spec: &PromptSpec) -> String {
    format!(
        "First, provide a single \"reasoning\" field as a string, detailing your step-by-step thought process.\nThen, return the output in JSON format with the key \"responses\" (list of dicts). Each dictionary must include:\n{}",
        items_block(spec)
    )
}

pub fn format_sequence(spec: &PromptSpec) -> String {
    format!(
        "Return exactly {} responses as a Python list of strings, formatted as:\n[\"response1\", \"response2\", \"response3\", ...]\n\nReturn ONLY the list, with no additional explanations or text.",
        spec.k
    )
}

pub fn format_cot() -> &'static str {
    "First, provide a single \"reasoning\" field as a string, detailing your step-by-step thought process.\nThen, provide your response in the \"response\" field.\n\nReturn ONLY the JSON object, with no additional explanations or text."
}
