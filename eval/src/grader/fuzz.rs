//! A differential fuzzer's generator: realistic (gold, response) pairs built from the three
//! benchmarks' own golds, each with the verdict a careful human gives. A gold is rewritten the
//! way people and models write the same answer (thousands separators, decimal commas, units,
//! percent words, `\dfrac`, `\left(`, inequalities for intervals, matrix sums, ...) or changed
//! so that it is no longer the answer (a digit, the sign, x2, a swapped tuple, a flipped
//! interval end), then set in a response (a box, `$..$`, Minerva's closing line, a plain last
//! line, several boxes, a whole solution as the gold). A rewrite is emitted only where its label
//! is certain, so a disagreement with `expected` is a grader's mistake, never the fuzzer's.
//!
//! Seeded and deterministic (splitmix64, no dependency): the same seed gives the same pairs
//! on every machine, so a measurement can be repeated and a regression pinned.

mod gold;
mod rewrite;
mod rng;
mod shape;
mod wrap;

use std::sync::LazyLock;

use serde::Serialize;

use gold::{Gold, load_pool};
use rng::Rng;
use shape::Shape;

/// One generated pair: `expected` is the verdict a careful human gives `response` against
/// `gold`; `rewrite` names what was done to the gold (and how the response wraps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FuzzPair {
    pub gold: String,
    pub response: String,
    pub expected: bool,
    pub rewrite: &'static str,
    pub benchmark: &'static str,
}

/// `n` pairs from `seed`; the same arguments always give the same pairs.
pub fn pairs(seed: u64, n: usize) -> Vec<FuzzPair> {
    let pool = &*POOL;
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    if pool.golds.is_empty() {
        return out;
    }
    while out.len() < n {
        // Half the golds as the benchmarks have them (mostly integers), half by shape, so that
        // the rarer shapes (intervals, matrices, choices, lists) are measured too.
        let index = if rng.chance(0.5) {
            rng.below(pool.golds.len())
        } else {
            let bucket = &pool.by_shape[rng.below(pool.by_shape.len())];
            bucket[rng.below(bucket.len())]
        };
        if let Some(p) = pair(&mut rng, &pool.golds[index]) {
            out.push(p);
        }
    }
    out
}

struct Pool {
    golds: Vec<Gold>,
    /// Indices into `golds`, one non-empty bucket per shape kind.
    by_shape: Vec<Vec<usize>>,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let golds = load_pool();
    // Integers with thousands to separate are a bucket of their own.
    type Key = (std::mem::Discriminant<Shape>, bool);
    let mut by_shape: Vec<(Key, Vec<usize>)> = Vec::new();
    for (i, g) in golds.iter().enumerate() {
        let big = matches!(&g.shape, Shape::Integer { digits, .. } if digits.len() >= 4);
        let d = (std::mem::discriminant(&g.shape), big);
        match by_shape.iter_mut().find(|(k, _)| *k == d) {
            Some((_, v)) => v.push(i),
            None => by_shape.push((d, vec![i])),
        }
    }
    Pool { golds, by_shape: by_shape.into_iter().map(|(_, v)| v).collect() }
});

/// One pair from `gold`: a rewrite of its answer, set in a response.
fn pair(rng: &mut Rng, gold: &Gold) -> Option<FuzzPair> {
    // About 40% breaking rewrites, so that both kinds of mistake are measured.
    let breaking = rng.chance(0.4);
    let variant = rewrite::variant(rng, gold, breaking)?;
    let (response, wrapper) = wrap::response(rng, &variant);
    // Sometimes the gold is the benchmark's whole solution, as math-verify parses golds too.
    let whole_solution = gold.solution.is_some() && rng.chance(0.06);
    let gold_text = match (&gold.solution, whole_solution) {
        (Some(s), true) => s.clone(),
        _ => gold.text.clone(),
    };
    let rewrite = if whole_solution { "gold-solution" } else { variant.name };
    Some(FuzzPair {
        gold: gold_text,
        response,
        expected: variant.expected,
        rewrite: names::join(rewrite, wrapper),
        benchmark: gold.benchmark,
    })
}

mod names {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    static INTERNED: LazyLock<Mutex<HashMap<(&'static str, &'static str), &'static str>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));

    /// `rewrite/wrapper` as one static name (a few dozen combinations, leaked once each).
    pub(super) fn join(rewrite: &'static str, wrapper: &'static str) -> &'static str {
        let mut map = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((rewrite, wrapper))
            .or_insert_with(|| Box::leak(format!("{rewrite}/{wrapper}").into_boxed_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Benchmark;

    #[test]
    fn deterministic_balanced_and_cheap() {
        let t = std::time::Instant::now();
        let a = pairs(7, 5000);
        let elapsed = t.elapsed();
        assert_eq!(a, pairs(7, 5000));
        assert_ne!(a, pairs(8, 5000));
        let breaking = a.iter().filter(|p| !p.expected).count();
        assert!((1000..3000).contains(&breaking), "{breaking} breaking of 5000");
        for b in Benchmark::ALL {
            assert!(a.iter().any(|p| p.benchmark == b.as_str()), "{b}");
        }
        // Debug builds are slow; the release bound (< 1 s) is far below this.
        assert!(elapsed.as_secs() < 20, "{elapsed:?}");
    }
}
