//! Tokenization throughput (the SmolLM2 tokenizer rebuilt from GGUF metadata, on benchmark
//! problems) and GGUF dequantization speed. `just bench` runs it; needs `just setup`'s model.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trainer::load::gguf::GgufFile;
use trainer::text::Tokenizer;

fn model_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn texts() -> Vec<String> {
    // MATH500 problems: realistic LaTeX-heavy text.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/eval/math500.jsonl");
    std::fs::read_to_string(path)
        .expect("data/eval/math500.jsonl")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["problem"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn tokenize(c: &mut Criterion) {
    let file = GgufFile::open(&model_path()).unwrap();
    let (tokenizer, _) = Tokenizer::from_gguf(&file).unwrap();
    let texts = texts();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut g = c.benchmark_group("tokenize");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.bench_function("encode 500 MATH500 problems", |b| {
        b.iter(|| texts.iter().map(|t| tokenizer.encode(t, false).unwrap().len()).sum::<usize>())
    });
    g.finish();
}

fn dequantize(c: &mut Criterion) {
    let file = GgufFile::open(&model_path()).unwrap();
    let names: Vec<String> = file.tensors.keys().cloned().collect();
    let elements: usize = file.tensors.values().map(|t| t.shape.iter().product::<usize>()).sum();
    let mut g = c.benchmark_group("gguf");
    g.throughput(Throughput::Elements(elements as u64));
    g.sample_size(10);
    g.bench_function("dequantize all SmolLM2 tensors (Q4_1/Q8_0/F32)", |b| {
        b.iter(|| names.iter().map(|n| file.dequantize(n).unwrap().len()).sum::<usize>())
    });
    g.finish();
}

criterion_group!(benches, tokenize, dequantize);
criterion_main!(benches);
