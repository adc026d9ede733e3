//! The benchmarks' golds as the fuzzer starts from them: each gold's text, its core without
//! `$`, its shape, and the benchmark's whole solution where that boxes the gold.

use serde::Deserialize;

use super::shape::{self, Shape};
use crate::Benchmark;

/// A benchmark gold as the fuzzer uses it.
pub(super) struct Gold {
    pub(super) benchmark: &'static str,
    /// The gold as the benchmark gives it (what the harness grades against).
    pub(super) text: String,
    /// The gold without surrounding `$`: what rewrites start from.
    pub(super) core: String,
    pub(super) shape: Shape,
    /// The problem mentions percent: only then are percent words a certain rewrite.
    pub(super) percent_problem: bool,
    /// The benchmark's whole solution, when it boxes this gold (MATH500, Minerva).
    pub(super) solution: Option<String>,
}

#[derive(Deserialize)]
struct SolutionRow {
    solution: Option<serde_json::Value>,
}

pub(super) fn load_pool() -> Vec<Gold> {
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
