//! Shared by the integration tests that train: a tiny student with SmolLM2's vocabulary,
//! tokenizer and chat template (random weights), written as a Hugging Face folder; and the
//! mock OpenAI-compatible server (`mock`).
// Each test binary uses its own part of this module.
#![allow(dead_code)]

pub mod mock;

use std::path::{Path, PathBuf};

use trainer::load::gguf::GgufFile;
use trainer::load::random::RandomWeights;
use trainer::model::CausalLm;
use trainer::model::config::{Family, ModelConfig};
use trainer::text::{ChatTemplate, Tokenizer};
use trainer::{DeviceSpec, Pretrained};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The path of config `name` under `tmp`, with a tiny Llama student made once per `tmp` at
/// `tmp/student` (from `seed`).
pub fn config_with_student(tmp: &Path, name: &str, seed: u64) -> std::path::PathBuf {
    if !tmp.join("student").exists() {
        tiny_student(&tmp.join("student"), Family::Llama, seed);
    }
    tmp.join(format!("{name}.toml"))
}

pub fn tiny_student(dir: &Path, family: Family, seed: u64) {
    let gguf = GgufFile::open(&root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let (tokenizer, template) = Tokenizer::from_gguf(&gguf).unwrap();
    let config =
        ModelConfig { bos_token_id: Some(1), eos_token_ids: vec![2], ..ModelConfig::tiny(family, 49152) };
    let model =
        CausalLm::build(config, &mut RandomWeights::new(seed, 0.05), &DeviceSpec::Cpu.device()).unwrap();
    let template = ChatTemplate::for_tokenizer(&template.unwrap(), &tokenizer).unwrap();
    trainer::export::save_hf(
        &Pretrained { model, tokenizer, template: Some(template), source: dir.into() },
        dir,
    )
    .unwrap();
}

/// A mock generator's problem: `Q-<n>?` (what the mock solvers key their answers on) and a
/// sentence that varies with `n`, so it is well formed and not a near copy of its neighbours.
pub fn question(n: u64) -> String {
    const OBJECTS: [&str; 7] = ["marbles", "coins", "tiles", "books", "cards", "stamps", "shells"];
    const ASKS: [&str; 5] = [
        "how many are left after giving away a third of them",
        "what is the remainder when the total is divided by nine",
        "in how many ways can they be split into two equal piles",
        "what is the sum of the digits of the total count",
        "how many more are needed to reach the next perfect square",
    ];
    let (a, b) = (n % 97 + 3, n / 97 % 89 + 2);
    format!(
        "Q-{n}? A collector has {a} boxes of {} with {b} in each box and {} extra; {}?",
        OBJECTS[(n % 7) as usize],
        n % 13 + 1,
        ASKS[(n / 7 % 5) as usize]
    )
}

/// Every comparison's decision agrees with its adjusted p and with its interval.
pub fn assert_one_rule(report: &serde_json::Value) {
    let alpha = report["method"]["alpha"].as_f64().unwrap();
    let comparisons = report["comparisons"].as_array().unwrap();
    assert!(!comparisons.is_empty());
    for c in comparisons {
        let resolved = c["resolved"].as_bool().unwrap();
        match c["p_adjusted"].as_f64() {
            Some(q) => {
                assert_eq!(resolved, q < alpha, "{c}");
                let lo = c["interval"][0].as_f64().unwrap();
                let hi = c["interval"][1].as_f64().unwrap();
                assert_eq!(resolved, lo > 0.0 || hi < 0.0, "{c}");
                assert!(hi > lo, "zero width: {c}");
                assert!(c["p"].as_f64().unwrap() <= q + 1e-15, "{c}");
                assert!(["primary", "exploratory"].contains(&c["family"].as_str().unwrap()));
                assert!(c["method"].as_str().is_some_and(|m| !m.is_empty()));
            }
            None => assert!(!resolved && c["interval"].is_null(), "{c}"),
        }
    }
}

/// The math-verify interpreter for tests that grade with math-verify itself (see
/// [`eval::grader::reference::test_python`]).
#[allow(dead_code)]
pub fn math_verify_python() -> Option<PathBuf> {
    eval::grader::reference::test_python(&root())
}
