//! The dedup stage's cleaning, on any list of problems: what was dropped and why.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dedup::{
    Contamination, ContaminationIndex, MinHasher, exact_key, near_duplicates, semantic_duplicates,
};
use crate::params::DedupConfig;

/// A line of `dropped.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    pub id: String,
    /// `degenerate`, `exact`, `near`, `contaminated` or `semantic`.
    pub reason: String,
    /// The kept problem it duplicates (exact, near).
    pub duplicate_of: Option<String>,
    /// `benchmark/id` it overlaps (contaminated).
    pub benchmark: Option<String>,
    /// `ngram` or `minhash` (contaminated); the kind (degenerate): `too_short`, `markup`,
    /// `placeholder`, `repetition`.
    pub how: Option<String>,
    /// Character n-gram Jaccard similarity to what it duplicates.
    pub similarity: Option<f64>,
}

impl Dropped {
    /// `id` dropped for duplicating `of` (a kept record) with this similarity.
    pub fn duplicate(id: &str, reason: &str, of: &str, similarity: f64) -> Self {
        Dropped {
            id: id.to_owned(),
            reason: reason.to_owned(),
            duplicate_of: Some(of.to_owned()),
            benchmark: None,
            how: None,
            similarity: Some(similarity),
        }
    }
}

/// Semantic duplicates among kept items (`ids`, their unit `vectors`): each is added to
/// `dropped` (kept sorted by id); the mask says which items stay.
pub fn drop_semantic(
    ids: &[&str],
    vectors: &[Vec<f32>],
    threshold: f64,
    dropped: &mut Vec<Dropped>,
) -> Vec<bool> {
    let dups = semantic_duplicates(ids, vectors, threshold);
    let mut keep = vec![true; ids.len()];
    for x in &dups {
        dropped.push(Dropped::duplicate(ids[x.dropped], "semantic", ids[x.kept], x.similarity));
        keep[x.dropped] = false;
    }
    dropped.sort_by(|a, b| a.id.cmp(&b.id));
    keep
}

/// Dropped records by reason, and contaminated ones by benchmark.
pub fn tally(dropped: &[Dropped]) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_benchmark: BTreeMap<String, usize> = BTreeMap::new();
    for x in dropped {
        *by_reason.entry(x.reason.clone()).or_default() += 1;
        if let Some(b) = &x.benchmark {
            *by_benchmark.entry(b.split('/').next().unwrap_or(b).to_owned()).or_default() += 1;
        }
    }
    (by_reason, by_benchmark)
}

/// The benchmarks' problems indexed for contamination checks under `[dedup]`'s settings.
pub fn benchmark_index(
    d: &DedupConfig,
    benchmarks: &[eval::Benchmark],
    seed: u64,
) -> Result<ContaminationIndex, eval::BenchmarkError> {
    let mut problems = Vec::new();
    for b in benchmarks {
        let rows = b.load_embedded()?;
        problems.extend(rows.into_iter().map(|p| (b.as_str().to_owned(), p.id, p.problem)));
    }
    Ok(ContaminationIndex::new(
        problems,
        d.decontaminate.ngram,
        d.minhash.ngram,
        d.minhash.hasher(seed),
        d.decontaminate.minhash_threshold,
    ))
}

/// The dedup stage's cleaning over `(id, question)` pairs (its per-strategy step, and `pipeline
/// curate`'s): degenerate items, then exact, then near duplicates, then contamination, each over
/// what the previous step kept. The indices of the kept ones in input order, and the dropped ones
/// by id, each with its reason.
pub fn dedup_texts(
    items: &[(&str, &str)],
    d: &DedupConfig,
    hasher: &MinHasher,
    index: Option<&ContaminationIndex>,
) -> (Vec<usize>, Vec<Dropped>) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[a].0.cmp(items[b].0));
    let mut dropped = Vec::new();
    let drop =
        |i: usize, reason: &str, of: Option<&str>, benchmark: Option<String>, similarity: Option<f64>| {
            Dropped {
                id: items[i].0.to_owned(),
                reason: reason.to_owned(),
                duplicate_of: of.map(str::to_owned),
                benchmark,
                how: None,
                similarity,
            }
        };
    if d.well_formed {
        order.retain(|&i| match crate::dedup::well_formed::degenerate(items[i].1) {
            Some(kind) => {
                let mut x = drop(i, "degenerate", None, None, None);
                x.how = Some(kind.to_owned());
                dropped.push(x);
                false
            }
            None => true,
        });
    }
    let mut alive: Vec<usize> = Vec::new();
    if d.exact {
        let keys: Vec<String> = order.par_iter().map(|&i| exact_key(items[i].1)).collect();
        let mut first: HashMap<String, usize> = HashMap::new();
        for (&i, key) in order.iter().zip(keys) {
            match first.entry(key) {
                std::collections::hash_map::Entry::Occupied(kept) => {
                    dropped.push(drop(i, "exact", Some(items[*kept.get()].0), None, Some(1.0)))
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                    alive.push(i);
                }
            }
        }
    } else {
        alive = order;
    }
    if d.minhash.enabled {
        let ids: Vec<&str> = alive.iter().map(|&i| items[i].0).collect();
        let texts: Vec<&str> = alive.iter().map(|&i| items[i].1).collect();
        let dups = near_duplicates(&ids, &texts, d.minhash.ngram, hasher, d.minhash.threshold);
        let gone: std::collections::HashSet<usize> = dups.iter().map(|x| x.dropped).collect();
        for x in &dups {
            dropped.push(drop(
                alive[x.dropped],
                "near",
                Some(items[alive[x.kept]].0),
                None,
                Some(x.similarity),
            ));
        }
        alive = alive.into_iter().enumerate().filter(|(i, _)| !gone.contains(i)).map(|(_, r)| r).collect();
    }
    let verdicts: Vec<Option<Contamination>> =
        alive.par_iter().map(|&i| index.and_then(|ix| ix.check(items[i].1))).collect();
    let mut kept = Vec::new();
    for (i, verdict) in alive.into_iter().zip(verdicts) {
        match verdict {
            Some(c) => {
                let mut x = drop(
                    i,
                    "contaminated",
                    None,
                    Some(format!("{}/{}", c.benchmark, c.benchmark_id)),
                    Some(c.similarity),
                );
                x.how = Some(c.how.to_owned());
                dropped.push(x);
            }
            None => kept.push(i),
        }
    }
    // Kept records in their original (problem) order.
    kept.sort_unstable();
    dropped.sort_by(|a, b| a.id.cmp(&b.id));
    (kept, dropped)
}
