//! What the report compares: the ids of accuracy comparisons, the primary ones of each
//! student, and the diversity measures of the headline.

use crate::config::{Config, PrimaryComparison};
use crate::stages::arms::{Source, sources};

/// Diversity measures compared in the headline, with their labels.
pub const MEASURES: [(&str, &str); 3] = [
    ("semantic", "semantic diversity"),
    ("rouge_l", "pairwise ROUGE-L (%, lower = more diverse)"),
    ("distinct_2", "distinct-2 (%)"),
];

pub fn accuracy_id(student: &str, arm: &str, against: &str, benchmark: &str) -> String {
    format!("{student}: {arm} - {against}, {benchmark}")
}

/// The primary comparisons of one student as `(arm, against, benchmark)`: the config's, or the
/// default (each arm against Direct of its curation on the average; against the baseline when
/// the run has no Direct).
pub fn primary_keys(config: &Config, student: &str) -> Vec<(String, String, String)> {
    let average = PrimaryComparison::AVERAGE.to_owned();
    let r = &config.report;
    if !r.primary.is_empty() {
        return r
            .primary
            .iter()
            .filter(|p| p.student.as_deref().is_none_or(|s| s == student))
            // Validation made sure every entry has something to compare with.
            .filter_map(|p| Some((p.arm.clone(), p.against_or_direct()?, p.benchmark.clone())))
            .collect();
    }
    let sources = sources(config);
    let has_direct = sources.iter().any(|s| matches!(s, Source::Arm(a) if a.origin.is_direct()));
    sources
        .iter()
        .filter_map(|s| match s {
            Source::Arm(a) if has_direct && !a.origin.is_direct() => {
                Some((a.label(), format!("direct/{}", a.curation.as_str()), average.clone()))
            }
            Source::Arm(a) if !has_direct && config.evaluate.baseline => {
                Some((a.label(), "baseline".to_owned(), average.clone()))
            }
            Source::Custom(_) if config.evaluate.baseline => {
                Some((s.label(), "baseline".to_owned(), average.clone()))
            }
            _ => None,
        })
        .collect()
}
