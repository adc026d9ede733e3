use super::*;
use vs_core::Strategy;

#[test]
fn arms_cross_strategies_and_curations_and_runs_cross_seeds() {
    let text = include_str!("../../../../configs/default.toml");
    let sets = ["verify.curation=[\"paper\", \"curated\"]".to_owned(), "train.seeds=[1, 2]".to_owned()];
    let mut c = crate::config::load_str(text, Path::new("default.toml"), &sets).unwrap().config;
    assert_eq!(c.generate.strategies, vec![Strategy::Direct, Strategy::VsMulti]);
    let labels: Vec<String> = training_runs(&c).iter().map(TrainingRun::label).collect();
    assert_eq!(labels.len(), 8);
    assert_eq!(labels[0], "direct/paper/seed-1");
    assert_eq!(labels[7], "vs_multi/curated/seed-2");
    c.train.seeds.clear();
    c.run.seed = 42;
    assert_eq!(seeds(&c), vec![42]);
}
