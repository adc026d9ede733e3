//! Diversity with bootstrap intervals at the paper's scale: 1,000 generated items of one
//! strategy, 10,000 replicates (the report's default), pairwise measures over at most 400
//! items, with 384-dimensional embeddings. Items in conversations of 15 (VS-Multi: 3 turns of
//! k = 5) or one per conversation (Direct). The dedup stage runs this twice per strategy (all
//! generated items, kept items).
//! Run: `just bench` or `cargo bench -p eval --bench diversity`.

use criterion::{Criterion, criterion_group, criterion_main};
use eval::diversity::intervals::{Resampling, estimate};

fn corpus(n: usize) -> (Vec<String>, Vec<Vec<f32>>) {
    let words = [
        "triangle",
        "integer",
        "prime",
        "sum",
        "area",
        "circle",
        "digits",
        "remainder",
        "probability",
        "sequence",
    ];
    let texts = (0..n)
        .map(|i| {
            (0..40)
                .map(|w| format!("{}{}", words[(i * 7 + w * 3) % words.len()], (i * w) % 13))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let embeddings =
        (0..n).map(|i| (0..384).map(|d| (((i * 31 + d * 17) % 97) as f32 / 97.0) - 0.5).collect()).collect();
    (texts, embeddings)
}

fn bench(c: &mut Criterion) {
    let (texts, embeddings) = corpus(1000);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let r = Resampling { replicates: 10_000, confidence: 0.95, seed: 1, max_pairwise: 400 };
    let mut group = c.benchmark_group("diversity_1000_items_10000_replicates");
    group.sample_size(10);
    for (name, per) in [("conversations_of_15", 15), ("one_item_per_conversation", 1)] {
        let labels: Vec<String> = (0..texts.len()).map(|i| format!("c{}", i / per)).collect();
        let clusters: Vec<&str> = labels.iter().map(String::as_str).collect();
        group.bench_function(name, |b| b.iter(|| estimate(&refs, &clusters, Some(&embeddings), r)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
