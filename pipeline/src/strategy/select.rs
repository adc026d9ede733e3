//! Post-hoc selection over one call's verbalized distribution (`generate.selection`):
//! keep everything (the paper's synthetic-data setting), keep items with score >= tau (the
//! reference library's `tau`, the head of the distribution), or items with score < tau (the
//! paper's "sample from the tails"); renormalise; optionally draw one item (seeded).

use super::reply::Item;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMode {
    /// Every item of every call (the paper's synthetic-data setting).
    #[default]
    All,
    /// Items with verbalized probability >= tau (the reference library's `tau`).
    KeepAtLeast,
    /// Items with verbalized probability < tau (the paper's "sample from the tails").
    KeepBelow,
}

/// Post-hoc selection over each call's verbalized distribution.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionConfig {
    pub mode: SelectionMode,
    /// Threshold for `keep_at_least` / `keep_below`.
    pub tau: Option<f64>,
    /// Draw one item per call from the renormalised distribution (seeded by `run.seed`).
    pub sample_one: bool,
}

/// Indices of the kept items with their renormalised weights. Items without a score are kept
/// by `all` and dropped by the filtering modes (they cannot be placed in the distribution).
pub fn select(items: &[Item], selection: &SelectionConfig, seed: u64) -> Vec<(usize, f64)> {
    let tau = selection.tau.unwrap_or(0.0);
    let kept: Vec<usize> = (0..items.len())
        .filter(|&i| match (selection.mode, items[i].score) {
            (SelectionMode::All, _) => true,
            (SelectionMode::KeepAtLeast, Some(p)) => p >= tau,
            (SelectionMode::KeepBelow, Some(p)) => p < tau,
            (_, None) => false,
        })
        .collect();
    let total: f64 = kept.iter().filter_map(|&i| items[i].score).sum();
    let all_scored = kept.iter().all(|&i| items[i].score.is_some());
    let weighted: Vec<(usize, f64)> = kept
        .iter()
        .map(|&i| {
            let w = match items[i].score {
                Some(p) if all_scored && total > 0.0 => p / total,
                _ => 1.0 / kept.len() as f64,
            };
            (i, w)
        })
        .collect();
    if !selection.sample_one || weighted.is_empty() {
        return weighted;
    }
    let u = vs_core::seeds::unit(vs_core::seeds::mix(seed, 0));
    let mut acc = 0.0;
    for &(i, w) in &weighted {
        acc += w;
        if u < acc {
            return vec![(i, 1.0)];
        }
    }
    vec![(weighted[weighted.len() - 1].0, 1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(scores: &[Option<f64>]) -> Vec<Item> {
        scores
            .iter()
            .enumerate()
            .map(|(i, &score)| Item { text: format!("item {i}"), score, repair: None })
            .collect()
    }

    fn sel(mode: SelectionMode, tau: Option<f64>, sample_one: bool) -> SelectionConfig {
        SelectionConfig { mode, tau, sample_one }
    }

    #[test]
    fn all_keeps_everything_with_renormalised_weights() {
        let got = select(&items(&[Some(0.25), Some(0.75)]), &sel(SelectionMode::All, None, false), 1);
        assert_eq!(got, vec![(0, 0.25), (1, 0.75)]);
        let got = select(&items(&[Some(0.2), Some(0.6)]), &sel(SelectionMode::All, None, false), 1);
        assert!((got[0].1 - 0.25).abs() < 1e-12 && (got[1].1 - 0.75).abs() < 1e-12, "{got:?}");
        let unscored = select(&items(&[None, None]), &SelectionConfig::default(), 1);
        assert_eq!(unscored, vec![(0, 0.5), (1, 0.5)]);
    }

    #[test]
    fn thresholds_have_named_directions() {
        let xs = items(&[Some(0.05), Some(0.12), Some(0.5), None]);
        let head = select(&xs, &sel(SelectionMode::KeepAtLeast, Some(0.12), false), 1);
        assert_eq!(head.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
        let tail = select(&xs, &sel(SelectionMode::KeepBelow, Some(0.12), false), 1);
        assert_eq!(tail, vec![(0, 1.0)]);
        // Zero total weight: uniform.
        let zeros =
            select(&items(&[Some(0.0), Some(0.0)]), &sel(SelectionMode::KeepBelow, Some(0.5), false), 1);
        assert_eq!(zeros, vec![(0, 0.5), (1, 0.5)]);
    }

    #[test]
    fn sampling_one_is_seeded_and_follows_the_weights() {
        let xs = items(&[Some(0.1), Some(0.9)]);
        let cfg = sel(SelectionMode::All, None, true);
        let first = select(&xs, &cfg, 7);
        assert_eq!(first.len(), 1);
        assert_eq!(select(&xs, &cfg, 7), first, "same seed, same draw");
        let picks_of_1 = (0..2000u64).filter(|&s| select(&xs, &cfg, s)[0].0 == 1).count();
        assert!((1700..1900).contains(&picks_of_1), "{picks_of_1} of 2000 draws picked the 0.9 item");
        assert!(select(&[], &cfg, 1).is_empty());
    }
}
