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

mod rewrite;
mod shape;
mod wrap;

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::Benchmark;
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

/// A benchmark gold as the fuzzer uses it.
struct Gold {
    benchmark: &'static str,
    /// The gold as the benchmark gives it (what the harness grades against).
    text: String,
    /// The gold without surrounding `$`: what rewrites start from.
    core: String,
    shape: Shape,
    /// The problem mentions percent: only then are percent words a certain rewrite.
    percent_problem: bool,
    /// The benchmark's whole solution, when it boxes this gold (MATH500, Minerva).
    solution: Option<String>,
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

#[derive(Deserialize)]
struct SolutionRow {
    solution: Option<serde_json::Value>,
}

fn load_pool() -> Vec<Gold> {
    let mut out = Vec::new();
    for b in Benchmark::ALL {
        // The embedded copies are checked at build; a failure leaves the benchmark out.
        let Ok(problems) = b.load_embedded() else { continue };
        let solutions: Vec<Option<String>> = b
            .embedded()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let row: Option<SolutionRow> = serde_json::from_str(l).ok();
                row.and_then(|r| r.solution).and_then(|v| v.as_str().map(str::to_owned))
            })
            .collect();
        for (i, p) in problems.into_iter().enumerate() {
            let core = strip_dollars(&p.gold);
            // A gold written across several math spans (`$221,$8$`) has no single text to rewrite.
            // Nor does code (`np.arcsin(10/13)`), which no rewrite of LaTeX fits.
            if core.contains('$') || core.is_empty() || core.contains("np.") {
                continue;
            }
            // Only a solution that boxes exactly this gold can stand for it.
            let solution =
                solutions.get(i).cloned().flatten().filter(|s| {
                    crate::grader::extract::last_boxed(s).is_some_and(|a| a.trim() == p.gold.trim())
                });
            let lower = p.problem.to_lowercase();
            out.push(Gold {
                benchmark: b.as_str(),
                shape: shape::classify(&core),
                percent_problem: lower.contains("percent") || p.problem.contains("\\%"),
                text: p.gold,
                core,
                solution,
            });
        }
    }
    out
}

fn strip_dollars(s: &str) -> String {
    let t = s.trim();
    let t = t.strip_prefix('$').and_then(|r| r.strip_suffix('$')).unwrap_or(t);
    t.trim().trim_end_matches('.').trim_end_matches('$').trim().to_owned()
}

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

/// splitmix64: tiny, fast, and the same on every platform.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; 0 for `n == 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() { None } else { items.get(self.below(items.len())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
