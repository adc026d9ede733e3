//! The report stage on fixed inputs (evaluation records and upstream manifests written here)
//! against `golden/report.json`, plus the plots it draws from the same numbers. A change to
//! any number, interval or funnel count shows up as a diff of the golden file; rewrite it
//! with `UPDATE_GOLDEN=1 cargo test -p pipeline --test report_golden` after checking the diff.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use pipeline::config::Config;
use pipeline::manifest::Manifest;
use pipeline::progress::Silent;
use pipeline::run_dir::RunDir;
use pipeline::stages::report::Report;
use pipeline::stages::{Stage, StageContext};
use serde_json::{Value, json};
use vs_core::StageName;

const CONFIG: &str = r#"
[run]
name = "golden"
seed = 7
[llm.x]
provider = "openai"
base_url = "http://localhost:1/v1"
model = "m"
[generate]
llm = "x"
strategies = ["direct", "vs_multi"]
num_problems = 10
[train.students.tiny]
model_path = "unused"
[evaluate]
benchmarks = ["math500", "minerva_math"]
[train]
seeds = [7, 8, 9]
[report]
bootstrap_samples = 500
"#;

fn manifest(stage: StageName, counts: Value, metrics: Value, wall: f64) -> Manifest {
    let map = |v: Value| -> BTreeMap<String, Value> { serde_json::from_value(v).unwrap() };
    Manifest {
        stage,
        stage_version: 1,
        pipeline_version: "test".into(),
        config: json!({}),
        config_sha256: String::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        counts: map(counts),
        metrics: map(metrics),
        started_at: String::new(),
        finished_at: String::new(),
        wall_seconds: wall,
    }
}

/// `n` records of which `correct` are right: problems `(i * 7 + shift) % n < correct`, so runs
/// with different shifts get different problems right.
fn records(dir: &Path, benchmark: &str, n: usize, correct: usize, shift: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let lines: String = (0..n)
        .map(|i| {
            let right = (i * 7 + shift) % n < correct;
            json!({"id": format!("{benchmark}-{i}"), "response": "\\boxed{1}", "extracted": "1",
                   "gold": if right { "1" } else { "2" }, "correct": right,
                   "prompt_tokens": 10, "completion_tokens": 5, "finish": "stop"})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(dir.join(format!("{benchmark}.jsonl")), lines).unwrap();
}

#[test]
fn the_report_on_fixed_inputs_matches_the_golden_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config: Config = toml::from_str(CONFIG).unwrap();
    config.run.out_dir = tmp.path().join("runs");
    let run_dir = RunDir::open(&config).unwrap();
    let root = run_dir.root().to_owned();
    let eval = root.join("evaluate/tiny");
    records(&eval.join("baseline"), "math500", 20, 8, 0);
    records(&eval.join("baseline"), "minerva_math", 20, 3, 0);
    for (seed, shift) in [(7, 1), (8, 2), (9, 3)] {
        let dir = |arm: &str| eval.join(format!("{arm}/curated/seed-{seed}"));
        records(&dir("direct"), "math500", 20, 7 + shift % 2, shift);
        records(&dir("direct"), "minerva_math", 20, 2 + shift % 2, shift + 5);
        records(&dir("vs_multi"), "math500", 20, 14 + shift % 2, shift + 1);
        records(&dir("vs_multi"), "minerva_math", 20, 8 + shift, shift + 3);
    }
    let write = |m: Manifest| {
        let dir = root.join(m.stage.as_str());
        std::fs::create_dir_all(&dir).unwrap();
        m.write(&dir.join("manifest.json")).unwrap();
    };
    write(manifest(
        StageName::Generate,
        json!({"direct": {"kept": 10, "calls_sent": 12, "calls_cached": 0, "completion_tokens": 900},
               "vs_multi": {"kept": 10, "calls_sent": 4, "calls_cached": 1, "completion_tokens": 1100}}),
        json!({}),
        100.0,
    ));
    write(manifest(
        StageName::Solve,
        json!({"direct": {"calls_sent": 20, "calls_cached": 0, "completion_tokens": 4000},
               "vs_multi": {"calls_sent": 20, "calls_cached": 0, "completion_tokens": 4200}}),
        json!({}),
        200.0,
    ));
    let div = |semantic: f64, rouge: f64, n: u64, clusters: u64| {
        let m = |v: f64, se: f64| {
            if clusters < 2 {
                json!({"value": v, "ci": null, "se": null, "n": n, "clusters": clusters})
            } else {
                json!({"value": v, "ci": [v - 2.0 * se, v + 2.0 * se], "se": se, "n": n, "clusters": clusters})
            }
        };
        json!({"semantic": m(semantic, 2.0), "rouge_l": m(rouge, 4.0), "distinct_1": m(50.0, 1.0),
               "distinct_2": m(80.0, 1.0), "pairwise_items": n})
    };
    write(manifest(
        StageName::Dedup,
        json!({"direct": {"input": 10, "kept": 7, "dropped": {"degenerate": 1, "exact": 1, "near": 0, "contaminated": 1},
                          "degenerate": {"total": 1, "by_kind": {"placeholder": 1}, "share": 0.1}},
               "vs_multi": {"input": 10, "kept": 9, "dropped": {"exact": 0, "near": 1},
                            "degenerate": {"total": 0, "by_kind": {}, "share": 0.0}}}),
        json!({"diversity/direct": {"all": div(20.0, 40.0, 10, 10), "kept": div(24.0, 35.0, 7, 7), "semantic_source": "local m", "pairwise_cap": 400},
               "diversity/vs_multi": {"all": div(35.0, 25.0, 10, 2), "kept": div(36.0, 24.0, 9, 1), "semantic_source": "local m", "pairwise_cap": 400}}),
        3.0,
    ));
    write(manifest(
        StageName::Verify,
        json!({"direct/curated": {"kept": 5, "distinct_answers": 3}, "vs_multi/curated": {"kept": 8, "distinct_answers": 7}}),
        json!({}),
        1.0,
    ));
    write(manifest(
        StageName::Train,
        json!({"budget": {"unit": "examples", "rule": "min", "matched_within": "curation", "drawn_per_seed": true,
               "students": {"tiny": {"targets": {"curated": 5}, "arms": {
                   "direct/curated": {"available": {"examples": 5, "supervised_tokens": 600},
                                      "seeds": {"7": {"examples": 5, "supervised_tokens": 600, "mean_solution_tokens": 120.0, "mean_agreement": 0.75}}},
                   "vs_multi/curated": {"available": {"examples": 8, "supervised_tokens": 700},
                                        "seeds": {"7": {"examples": 5, "supervised_tokens": 450, "mean_solution_tokens": 90.0, "mean_agreement": 0.9}}}}}}}}),
        json!({}),
        300.0,
    ));
    write(manifest(
        StageName::Evaluate,
        json!({"tiny/baseline/training_probe/vs_multi/curated": {"problems": 4, "correct": 3}}),
        json!({}),
        400.0,
    ));

    let ctx = StageContext {
        config: &config,
        run_dir: &run_dir,
        dir: root.join("report"),
        force: false,
        reporter: &Silent,
        shard: None,
        refresh_cache: false,
        digests: &vs_core::DigestCache::in_memory(),
    };
    let output = Report.run(&ctx).unwrap();
    if std::env::var_os("SHOW_REPORT").is_some() {
        eprintln!("{}", std::fs::read_to_string(root.join("report/report.md")).unwrap());
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("report/report.json")).unwrap()).unwrap();
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
    assert_eq!(report, golden, "report.json differs from {}", golden_path.display());

    // Spot checks that do not depend on the golden file being right.
    common::assert_one_rule(&report);
    let md = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    // report.md is rendered from report.json alone.
    let doc: pipeline::stages::report::doc::ReportDoc = serde_json::from_value(report.clone()).unwrap();
    assert_eq!(pipeline::stages::report::markdown::render(&doc), md);
    let rows = report["students"]["tiny"].as_array().unwrap();
    assert_eq!(rows[2]["data"], "vs_multi/curated");
    // Mean over three seeds of 15, 14, 15 of 20 right.
    assert!((rows[2]["benchmarks"]["math500"]["accuracy"].as_f64().unwrap() - 44.0 / 60.0).abs() < 1e-12);
    let find =
        |id: &str| report["comparisons"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap();
    // The default primary family: vs_multi against Direct of its curation, on the average.
    let primary = find("tiny: vs_multi/curated - direct/curated, average");
    assert_eq!(primary["family"], "primary");
    assert_eq!(primary["adjustment"], "holm");
    assert_eq!(primary["training_variance"], "included");
    assert_eq!(report["method"]["primary"]["size"], 1);
    assert_eq!(primary["seeds"]["arm"], json!([7, 8, 9]));
    // The estimate is the mean of the benchmark means' differences.
    let acc = |row: usize, b: &str| rows[row]["benchmarks"][b]["accuracy"].as_f64().unwrap();
    let want =
        ((acc(2, "math500") - acc(1, "math500")) + (acc(2, "minerva_math") - acc(1, "minerva_math"))) / 2.0;
    assert!((primary["estimate"].as_f64().unwrap() - want).abs() < 1e-12);
    assert!(primary["resolved"].as_bool().unwrap(), "a 40-point gap on 3 seeds x 40 problems: {primary}");
    assert_eq!(report["summary"]["resolved"], json!(["tiny: vs_multi/curated - direct/curated, average"]));
    // Everything else is exploratory, with q-values.
    let per_benchmark = find("tiny: vs_multi/curated - baseline, math500");
    assert_eq!(
        (per_benchmark["family"].as_str(), per_benchmark["adjustment"].as_str()),
        (Some("exploratory"), Some("benjamini_hochberg"))
    );
    // Diversity: resampled conversations; one side with a single conversation cannot be tested.
    let semantic = find("diversity: semantic (all items), vs_multi - direct");
    assert!((semantic["estimate"].as_f64().unwrap() - 15.0).abs() < 1e-12);
    assert!((semantic["variance"]["problems"].as_f64().unwrap() - 8.0).abs() < 1e-12, "se^2 = 2^2 + 2^2");
    let kept = find("diversity: semantic (kept items), vs_multi - direct");
    assert!(kept["p"].is_null() && !kept["resolved"].as_bool().unwrap());
    assert!(md.contains("| vs_multi/curated | 73.3 ["), "{md}");
    assert_eq!(report["data"]["direct"]["after_dedup"], 8);
    assert_eq!(report["data"]["direct"]["after_decontamination"], 7);
    assert_eq!(report["data"]["direct"]["trained_per_run"]["curated"], 5.0);
    assert_eq!(report["data"]["vs_multi"]["calls"], 25);
    assert_eq!(report["training_data"][1]["mean_solution_tokens"], 90.0);
    // The baseline on a sample of vs_multi's training problems: 3 of 4, with a Wilson interval.
    assert_eq!(report["training_data"][1]["baseline_accuracy"]["accuracy"], 0.75);
    assert!(report["training_data"][0]["baseline_accuracy"].is_null());
    assert!(md.contains("| not measured |") && md.contains("| 75.0 ["), "{md}");
    // The order: what the run resolves, the method, the headline, then the tables.
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} missing:\n{md}"));
    assert!(at("## What this run resolves") < at("## Method"));
    assert!(at("## Method") < at("## `vs_multi` vs `direct`"));
    assert!(at("## `vs_multi` vs `direct`") < at("## Accuracy"));
    assert!(md.contains("![accuracy_tiny.png](accuracy_tiny.png)"), "{md}");

    // Counting each comparison's own arms' seeds instead: the same rule holds, with fewer
    // degrees of freedom, and the report says which way it counted.
    let mut own = config.clone();
    own.report.training_variance = pipeline::config::TrainingVarianceMode::PerComparison;
    let ctx_own = StageContext { config: &own, dir: root.join("report-own"), ..ctx };
    Report.run(&ctx_own).unwrap();
    let other: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("report-own/report.json")).unwrap()).unwrap();
    common::assert_one_rule(&other);
    let find_own =
        |id: &str| other["comparisons"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap();
    let own_primary = find_own("tiny: vs_multi/curated - direct/curated, average");
    assert_eq!(own_primary["training_variance"], "included");
    assert!(own_primary["df"].as_f64().unwrap() <= primary["df"].as_f64().unwrap() + 1e-6, "{own_primary}");
    assert!(other["method"]["text"].as_str().unwrap().contains("two compared arms' own seeds"));

    // Both figures, in both formats, are among the stage's outputs.
    let names: Vec<String> =
        output.outputs.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for f in ["accuracy_tiny", "diversity_vs_accuracy_tiny"] {
        for ext in ["png", "svg"] {
            assert!(names.contains(&format!("{f}.{ext}")), "{names:?}");
        }
    }
    let svg = std::fs::read_to_string(root.join("report/diversity_vs_accuracy_tiny.svg")).unwrap();
    assert!(
        svg.contains("vs_multi/curated") && svg.contains("semantic diversity of all generated items"),
        "the SVG lacks its labels"
    );
    let png = std::fs::read(root.join("report/accuracy_tiny.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}
