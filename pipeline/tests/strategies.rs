//! The strategies' requests, checked against the prompts the reference implementation sends
//! for the paper's synthetic-math runs (k = 5, 80 words, VS-Multi 3 then 2): golden files copied
//! verbatim from `vs-prompts.md` §2.

use std::path::Path;

use pipeline::config::{self, Config};
use pipeline::strategy::{PromptSpec, Prompting, task_prompt};
use vs_core::{ProbabilityDefinition, Role, Strategy};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn config(extra: &[&str]) -> Config {
    let text = "[llm.m]\nprovider = \"openai\"\nbase_url = \"http://x/v1\"\nmodel = \"m\"\n[generate]\nllm = \"m\"\nstrategies = [\"vs_multi\"]\n";
    let overrides: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    config::load_str(text, Path::new("t.toml"), &overrides).unwrap().config
}

fn golden(name: &str) -> String {
    let text =
        std::fs::read_to_string(root().join(format!("pipeline/tests/golden/system_{name}.txt"))).unwrap();
    text.trim_end_matches('\n').to_owned()
}

#[test]
fn system_prompts_match_the_reference_verbatim() {
    let c = config(&[]);
    for (strategy, name) in [
        (Strategy::Direct, "direct"),
        (Strategy::Cot, "cot"),
        (Strategy::Sequence, "sequence"),
        (Strategy::MultiTurn, "direct"),
        (Strategy::VsStandard, "vs_standard"),
        (Strategy::VsCot, "vs_cot"),
        (Strategy::VsMulti, "vs_multi"),
    ] {
        let spec = PromptSpec::new(strategy, &c.generate);
        assert_eq!(strategy.system_prompt(&spec), golden(name), "{strategy}");
    }
}

#[test]
fn first_turn_is_system_then_the_task_prompt_as_written() {
    let c = config(&[]);
    let task = task_prompt("competition_math").unwrap();
    assert!(task.starts_with("Generate a math competition problem in the style of AMC 10, AMC 12, or AIME."));
    assert!(task.contains("under a line starting with “Question:”."), "curly quotes kept");
    assert!(
        task.ends_with("[difficulty level, exactly one of: AMC or AIME]\n        "),
        "trailing spaces kept"
    );
    let spec = PromptSpec::new(Strategy::VsMulti, &c.generate);
    let msgs = Strategy::VsMulti.first_messages(&spec, &task);
    assert_eq!(msgs.iter().map(|m| m.role).collect::<Vec<_>>(), vec![Role::System, Role::User]);
    assert_eq!(msgs[1].content, task);
    let gsm = task_prompt("gsm8k").unwrap();
    assert!(gsm.ends_with("        Question: [question]"));
    let err = task_prompt("nope.txt").unwrap_err().to_string();
    assert!(err.starts_with("task prompt nope.txt: "), "{err}");
    // The built-in copies are the vendored files, byte for byte.
    for (name, text) in pipeline::strategy::BUILTIN_TASKS {
        let file = std::fs::read_to_string(root().join(format!("data/prompts/{name}.txt"))).unwrap();
        assert_eq!(text, file, "{name}");
    }
}

#[test]
fn turn_arithmetic_and_continue_prompts() {
    let c = config(&[]);
    let spec = |s| PromptSpec::new(s, &c.generate);
    assert_eq!(Strategy::VsMulti.turns(&spec(Strategy::VsMulti)), vec![3, 2]);
    assert_eq!(Strategy::MultiTurn.turns(&spec(Strategy::MultiTurn)), vec![1; 5]);
    assert_eq!(Strategy::Direct.turns(&spec(Strategy::Direct)), vec![1]);
    assert_eq!(Strategy::Cot.turns(&spec(Strategy::Cot)), vec![1]);
    assert_eq!(Strategy::VsStandard.turns(&spec(Strategy::VsStandard)), vec![5]);
    let c7 = config(&["generate.k=7", "generate.samples_per_turn=2"]);
    assert_eq!(Strategy::VsMulti.turns(&PromptSpec::new(Strategy::VsMulti, &c7.generate)), vec![2, 2, 2, 1]);
    assert_eq!(
        Strategy::VsMulti.continue_prompt(2).as_deref(),
        Some("Randomly sample 2 alternative data instances based on the original input prompt.")
    );
    assert_eq!(
        Strategy::MultiTurn.continue_prompt(1).as_deref(),
        Some("Generate one more data instance based on the original input prompt.")
    );
    assert_eq!(Strategy::VsStandard.continue_prompt(2), None);
}

#[test]
fn probability_definition_and_tuning_change_the_prompt() {
    let c = config(&["generate.probability_definition=percentage", "generate.probability_tuning=0.1"]);
    let spec = PromptSpec::new(Strategy::VsStandard, &c.generate);
    assert_eq!(spec.probability_definition, ProbabilityDefinition::Percentage);
    let p = Strategy::VsStandard.system_prompt(&spec);
    assert!(p.contains("- 'probability': the probability of this response relative to the full distribution, expressed as a percentage from 0% to 100%."), "{p}");
    assert!(p.contains("Randomly sample the responses from the distribution, with the probability of each response must be below 0.1. Return ONLY"), "{p}");
    let c = config(&[]);
    assert_eq!(
        PromptSpec::new(Strategy::VsCot, &c.generate).probability_definition,
        ProbabilityDefinition::Explicit
    );
    assert_eq!(
        PromptSpec::new(Strategy::VsMulti, &c.generate).probability_definition,
        ProbabilityDefinition::Confidence
    );
    assert_eq!(PromptSpec::new(Strategy::Cot, &c.generate).k, 1);
}

#[test]
fn json_schemas_follow_the_reference() {
    let c = config(&[]);
    let schema = |s| s_schema(s, &c);
    let vs = schema(Strategy::VsStandard);
    assert_eq!(vs["type"], "json_schema");
    assert_eq!(vs["json_schema"]["name"], "structured_with_probability_schema");
    assert_eq!(vs["json_schema"]["strict"], true);
    let items = &vs["json_schema"]["schema"]["properties"]["responses"]["items"];
    assert_eq!(items["required"], serde_json::json!(["text", "probability"]));
    assert_eq!(items["additionalProperties"], false);
    let multi = schema(Strategy::VsMulti);
    assert_eq!(multi["json_schema"]["name"], "combined_confidence_response");
    assert!(
        multi["json_schema"]["schema"]["properties"]["responses"]["items"]["properties"]["confidence"]
            .is_object()
    );
    let cot = schema(Strategy::VsCot);
    assert_eq!(cot["json_schema"]["name"], "chain_of_thought_probability_response");
    assert_eq!(cot["json_schema"]["schema"]["required"], serde_json::json!(["reasoning", "responses"]));
    assert_eq!(schema(Strategy::Sequence)["json_schema"]["name"], "sequence_responses_schema");
    assert_eq!(schema(Strategy::Cot)["json_schema"]["name"], "direct_response");
    assert!(Strategy::Direct.response_schema(&PromptSpec::new(Strategy::Direct, &c.generate)).is_none());
}

fn s_schema(s: Strategy, c: &Config) -> serde_json::Value {
    s.response_schema(&PromptSpec::new(s, &c.generate)).unwrap()
}
