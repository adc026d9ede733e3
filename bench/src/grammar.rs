//! `bench grammar`: the cost of structured output per token.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use trainer::{DeviceSpec, Pretrained};

#[derive(Args)]
pub struct GrammarArgs {
    #[arg(long)]
    model: PathBuf,
    /// Passes over the reply (the best is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

pub fn grammar(a: &GrammarArgs) -> anyhow::Result<()> {
    use pipeline::strategy::{PromptSpec, Prompting};
    use trainer::generate::Grammar;
    use vs_core::Strategy;

    let model = Pretrained::load(&a.model, &DeviceSpec::Cpu.device())?;
    let generate: pipeline::config::GenerateConfig =
        toml::from_str("llm = \"x\"\nstrategies = [\"vs_multi\"]\nnum_problems = 1")?;
    let spec = PromptSpec::new(Strategy::VsMulti, &generate);
    let format = Strategy::VsMulti.response_schema(&spec).expect("VS-Multi has a schema");
    let grammar = Grammar::from_response_format(&format).map_err(anyhow::Error::msg)?.expect("a schema");
    let reply = r#"{"responses": [{"text": "Question: How many positive divisors does 360 have?\nDifficulty: AMC 10", "confidence": 0.35}, {"text": "Question: Find the remainder when 2^100 is divided by 7.\nDifficulty: AIME", "confidence": 0.25}, {"text": "Question: A circle of radius 2 is inscribed in a square. What is the square's area?\nDifficulty: AMC 8", "confidence": 0.4}]}"#;
    let tokens = model.tokenizer.encode(reply, false)?;
    let vocab = model.model.config.vocab_size;
    let start = Instant::now();
    let grammars = model.tokenizer.grammars(vocab)?;
    let trie = start.elapsed().as_secs_f64();
    let start = Instant::now();
    grammars.start(&grammar)?;
    let compile = start.elapsed().as_secs_f64();
    let mut best = f64::INFINITY;
    for _ in 0..a.repeats.max(1) {
        let mut matcher = grammars.start(&grammar)?;
        let mut logits = vec![0.0f32; vocab];
        let start = Instant::now();
        for &t in &tokens {
            matcher.mask(&mut logits)?;
            anyhow::ensure!(logits[t as usize].is_finite(), "the schema refused token {t} of a valid reply");
            matcher.commit(t)?;
            logits.iter_mut().for_each(|l| *l = 0.0);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let per = best / tokens.len() as f64;
    println!(
        "| grammar | vocabulary | token trie (ms, once) | compile (ms) | reply tokens | per token (us) | masks/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| VS-Multi JSON schema | {vocab} | {:.0} | {:.1} | {} | {:.1} | {:.0} |",
        trie * 1e3,
        compile * 1e3,
        tokens.len(),
        per * 1e6,
        1.0 / per
    );
    Ok(())
}
