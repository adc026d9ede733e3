//! The report stage on fixed inputs (evaluation records and upstream manifests written here)
//! against `golden/report.json`, plus the plots it draws from the same numbers. A change to
//! any number, interval or funnel count shows up as a diff of the golden file; rewrite it
//! with `UPDATE_GOLDEN=1 cargo test -p pipeline --test report_golden` after checking the diff.

use std::collections::BTreeMap;
use std::path::Path;

use pipeline::config::Config;
use pipeline::manifest::Manifest;
use pipeline::progress::Silent;
use pipeline::run_dir::RunDir;
use pipeline::stages::report::Report;
use pipeline::stages::{Stage, StageContext, StageName};
use serde_json::{Value, json};

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

/// `n` records of which the first `correct` are right.
fn records(dir: &Path, benchmark: &str, n: usize, correct: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let lines: String = (0..n)
        .map(|i| {
            json!({"id": format!("{benchmark}-{i}"), "response": "\\boxed{1}", "extracted": "1",
                   "gold": if i < correct { "1" } else { "2" }, "correct": i < correct,
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
    for (label, math, minerva) in [("baseline", 8, 3), ("direct", 7, 2), ("vs_multi", 11, 5)] {
        records(&eval.join(label), "math500", 20, math);
        records(&eval.join(label), "minerva_math", 20, minerva);
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
    write(manifest(
        StageName::Dedup,
        json!({"direct": {"input": 10, "kept": 7, "dropped": {"exact": 2, "near": 0, "contaminated": 1}},
               "vs_multi": {"input": 10, "kept": 9, "dropped": {"exact": 0, "near": 1}}}),
        json!({"diversity/direct": {"distinct_1": 0.5, "pairwise_rouge_l": 0.4, "semantic": null},
               "diversity/vs_multi": {"distinct_1": 0.7, "pairwise_rouge_l": 0.25, "semantic": null}}),
        3.0,
    ));
    write(manifest(
        StageName::Verify,
        json!({"direct": {"kept": 5, "distinct_answers": 3}, "vs_multi": {"kept": 8, "distinct_answers": 7}}),
        json!({}),
        1.0,
    ));
    write(manifest(StageName::Train, json!({}), json!({}), 300.0));
    write(manifest(StageName::Evaluate, json!({}), json!({}), 400.0));

    let ctx = StageContext {
        config: &config,
        run_dir: &run_dir,
        dir: root.join("report"),
        force: false,
        reporter: &Silent,
        shard: None,
        refresh_cache: false,
        digests: &pipeline::identity::DigestCache::in_memory(),
    };
    let output = Report.run(&ctx).unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("report/report.json")).unwrap()).unwrap();
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
    assert_eq!(report, golden, "report.json differs from {}", golden_path.display());

    // Spot checks that do not depend on the golden file being right.
    let rows = report["students"]["tiny"].as_array().unwrap();
    assert_eq!(rows[2]["benchmarks"]["math500"]["accuracy"], 0.55);
    assert!((rows[2]["gain_over_baseline"].as_f64().unwrap() - 0.125).abs() < 1e-12);
    assert_eq!(report["data"]["direct"]["after_dedup"], 8);
    assert_eq!(report["data"]["direct"]["after_decontamination"], 7);
    assert_eq!(report["data"]["vs_multi"]["calls"], 25);
    let md = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    assert!(md.contains("| vs_multi | 55.0 ["), "{md}");
    assert!(md.contains("![accuracy_tiny.png](accuracy_tiny.png)"), "{md}");

    // Both figures, in both formats, are among the stage's outputs.
    let names: Vec<String> =
        output.outputs.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for f in ["accuracy_tiny", "diversity_vs_accuracy_tiny"] {
        for ext in ["png", "svg"] {
            assert!(names.contains(&format!("{f}.{ext}")), "{names:?}");
        }
    }
    let svg = std::fs::read_to_string(root.join("report/diversity_vs_accuracy_tiny.svg")).unwrap();
    assert!(svg.contains("vs_multi") && svg.contains("100 - pairwise ROUGE-L"), "the SVG lacks its labels");
    let png = std::fs::read(root.join("report/accuracy_tiny.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}
