//! The data behind the comparison: the funnel per origin (generated, degenerate, deduplicated,
//! decontaminated, verified, trained on), its diversity, and per arm what the students trained
//! on (examples, supervised tokens, solution length, solver agreement) from the budget.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::doc::{Accuracy, TrainingData};
use crate::config::Config;
use crate::manifest::Manifest;

fn count(m: &Option<Manifest>, key: &str, what: &str) -> Value {
    m.as_ref().and_then(|m| m.counts.get(key)).and_then(|c| c.get(what)).cloned().unwrap_or(Value::Null)
}

/// Per origin: the funnel and diversity, from the stages' manifests and what each arm trained
/// on ([`training_data`]).
pub fn funnel(config: &Config, root: &Path, training: &[TrainingData]) -> BTreeMap<String, Value> {
    let (g, s, d, v) = (
        read_manifest(root, "generate"),
        read_manifest(root, "solve"),
        read_manifest(root, "dedup"),
        read_manifest(root, "verify"),
    );
    let curations: Vec<&str> = config.verify.curation.iter().map(|c| c.as_str()).collect();
    let mut out = BTreeMap::new();
    for origin in &crate::stages::arms::origins(config) {
        let label = origin.as_str();
        let generated = count(&g, label, "kept").as_u64().unwrap_or(0);
        let dropped = count(&d, label, "dropped");
        let removed =
            |keys: &[&str]| keys.iter().filter_map(|k| dropped.get(*k).and_then(Value::as_u64)).sum::<u64>();
        let input = count(&d, label, "input").as_u64().unwrap_or(0);
        let after_dedup = input.saturating_sub(removed(&["degenerate", "exact", "near"]));
        let after_decontam = count(&d, label, "kept").as_u64().unwrap_or(0);
        let verified: BTreeMap<String, u64> = curations
            .iter()
            .map(|c| ((*c).to_owned(), count(&v, &format!("{label}/{c}"), "kept").as_u64().unwrap_or(0)))
            .collect();
        // Examples per training run of the first student (the budget is the same for every
        // student unless it counts tokens).
        let trained: BTreeMap<String, f64> = curations
            .iter()
            .filter_map(|c| {
                let arm = format!("{label}/{c}");
                training.iter().find(|x| x.arm == arm).map(|x| ((*c).to_owned(), x.examples))
            })
            .collect();
        let calls = ["calls_sent", "calls_cached"]
            .iter()
            .map(|k| count(&g, label, k).as_u64().unwrap_or(0) + count(&s, label, k).as_u64().unwrap_or(0))
            .sum::<u64>();
        let tokens = count(&g, label, "completion_tokens").as_u64().unwrap_or(0)
            + count(&s, label, "completion_tokens").as_u64().unwrap_or(0);
        let diversity = d
            .as_ref()
            .and_then(|m| m.metrics.get(&format!("diversity/{label}")))
            .cloned()
            .unwrap_or(Value::Null);
        out.insert(
            label.to_owned(),
            json!({
                "generated": generated, "degenerate": count(&d, label, "degenerate"), "after_dedup": after_dedup,
                "after_decontamination": after_decontam, "verified": verified, "trained_per_run": trained,
                "diversity": diversity, "calls": calls, "completion_tokens": tokens,
            }),
        );
    }
    out
}

/// Per student and arm, means over the training seeds of what the budget chose, and the
/// baseline's accuracy on a sample of the arm's problems when the run measured it.
pub fn training_data(budget: &Value, evaluate: Option<&Manifest>, confidence: f64) -> Vec<TrainingData> {
    let mut out = Vec::new();
    for (student, s) in budget["students"].as_object().into_iter().flatten() {
        for (arm, a) in s["arms"].as_object().into_iter().flatten() {
            let runs: Vec<&Value> = a["seeds"].as_object().into_iter().flatten().map(|(_, v)| v).collect();
            let mean = |key: &str| {
                let xs: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
                (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
            };
            out.push(TrainingData {
                student: student.clone(),
                arm: arm.clone(),
                examples: mean("examples").unwrap_or(0.0),
                supervised_tokens: mean("supervised_tokens"),
                mean_solution_tokens: mean("mean_solution_tokens"),
                mean_agreement: mean("mean_agreement"),
                baseline_accuracy: evaluate
                    .and_then(|m| m.counts.get(&format!("{student}/baseline/training_probe/{arm}")))
                    .and_then(|c| Some((c["correct"].as_u64()? as usize, c["problems"].as_u64()? as usize)))
                    .filter(|&(_, n)| n > 0)
                    .map(|(hits, n)| {
                        let outcomes = vec![vec![(0..n).map(|i| i < hits).collect()]];
                        let e = super::inference::estimate(&outcomes, &[1.0], None, confidence);
                        Accuracy { accuracy: e.value, ci: e.ci, n }
                    }),
            });
        }
    }
    out
}

pub(crate) fn read_manifest(root: &Path, stage: &str) -> Option<Manifest> {
    Manifest::read(&root.join(stage).join("manifest.json")).ok().flatten()
}
