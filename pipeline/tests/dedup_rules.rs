//! The dedup rules on hand-made sets: planted exact and near duplicates and benchmark copies
//! are dropped with their reasons, distinct problems kept; and the result does not depend on
//! the input order (the survivor of a cluster is its smallest id).

use std::path::Path;

use curation::dedup::{ContaminationIndex, MinHasher};
use pipeline::config::Config;
use pipeline::stages::dedup::dedup_one;
use pipeline::stages::solve::SolvedProblem;
use proptest::prelude::*;

fn config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml");
    pipeline::config::load(&path, &[]).unwrap().config
}

fn problem(id: &str, question: &str) -> SolvedProblem {
    SolvedProblem {
        id: id.to_owned(),
        strategy: "direct".into(),
        question: question.to_owned(),
        solutions: vec![],
        failed_calls: vec![],
        identity: String::new(),
    }
}

const BASE: &str = "Let f(x) = x^2 - 6x + 13. Find the minimum value of f(x) over all real numbers x, and the value of x where it occurs.";

fn planted() -> Vec<SolvedProblem> {
    vec![
        problem("a5", BASE),
        problem("a2", &BASE.to_uppercase()), // exact after case folding
        problem("a7", &BASE.replace("real numbers", "real \\, numbers")), // exact after LaTeX spacing
        problem("a3", &format!("{BASE} Explain.")), // near
        problem(
            "a1",
            "How many ways can 8 rooks be placed on a chessboard so that no two attack each other?",
        ),
        // A MATH500 problem inside a generated one.
        problem(
            "a4",
            "Warm-up: What is the smallest positive perfect cube that can be written as the sum of three consecutive integers?",
        ),
        problem("a6", "Find all primes p such that p^2 + 2 is also prime."),
    ]
}

fn index(config: &Config) -> ContaminationIndex {
    let d = &config.dedup;
    let mut problems = Vec::new();
    for b in eval::Benchmark::ALL {
        let rows = b.load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/eval")).unwrap();
        problems.extend(rows.into_iter().map(|p| (b.as_str().to_owned(), p.id, p.problem)));
    }
    let hasher = d.minhash.hasher(42);
    ContaminationIndex::new(
        problems,
        d.decontaminate.ngram,
        d.minhash.ngram,
        hasher,
        d.decontaminate.minhash_threshold,
    )
}

#[test]
fn planted_duplicates_and_benchmark_copies_are_dropped_with_reasons() {
    let config = config();
    let hasher = MinHasher::new(20, 13, 42);
    let (kept, dropped) = dedup_one(&planted(), &config, &hasher, Some(&index(&config)));
    let kept_ids: Vec<&str> = kept.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(kept_ids, ["a2", "a1", "a6"], "kept, in problem order");
    let why: Vec<(&str, &str, Option<&str>)> =
        dropped.iter().map(|d| (d.id.as_str(), d.reason.as_str(), d.duplicate_of.as_deref())).collect();
    assert_eq!(
        why,
        [
            ("a3", "near", Some("a2")),
            ("a4", "contaminated", None),
            ("a5", "exact", Some("a2")),
            ("a7", "exact", Some("a2")),
        ]
    );
    let a4 = &dropped[1];
    assert!(a4.benchmark.as_deref().unwrap().starts_with("math500/"), "{a4:?}");
    assert_eq!(a4.how.as_deref(), Some("ngram"));
    assert!(dropped[0].similarity.unwrap() >= 0.8);
}

#[test]
fn switches_turn_rules_off() {
    let mut config = config();
    config.dedup.exact = false;
    config.dedup.minhash.enabled = false;
    let (kept, dropped) = dedup_one(&planted(), &config, &MinHasher::new(20, 13, 42), None);
    assert_eq!((kept.len(), dropped.len()), (7, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Any order of the same records gives the same kept and dropped sets.
    #[test]
    fn order_does_not_matter(order in Just((0..7usize).collect::<Vec<usize>>()).prop_shuffle()) {
        let config = config();
        let hasher = MinHasher::new(20, 13, 42);
        let (kept_a, dropped_a) = dedup_one(&planted(), &config, &hasher, None);
        let all = planted();
        let perm: Vec<SolvedProblem> = order.iter().map(|&i| all[i].clone()).collect();
        let (kept_b, dropped_b) = dedup_one(&perm, &config, &hasher, None);
        let ids = |v: &[SolvedProblem]| { let mut x: Vec<String> = v.iter().map(|r| r.id.clone()).collect(); x.sort(); x };
        prop_assert_eq!(ids(&kept_a), ids(&kept_b));
        prop_assert_eq!(dropped_a, dropped_b);
    }
}
