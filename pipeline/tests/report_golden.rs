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
    for (label, math, minerva) in
        [("baseline", 8, 3), ("direct/curated/seed-7", 7, 2), ("vs_multi/curated/seed-7", 11, 5)]
    {
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
    let div = |semantic: f64, rouge: f64, n: u64| {
        let m = |v: f64| json!({"value": v, "ci": [v - 2.0, v + 2.0], "n": n});
        json!({"semantic": m(semantic), "rouge_l": m(rouge), "distinct_1": m(50.0), "distinct_2": m(80.0)})
    };
    write(manifest(
        StageName::Dedup,
        json!({"direct": {"input": 10, "kept": 7, "dropped": {"degenerate": 1, "exact": 1, "near": 0, "contaminated": 1},
                          "degenerate": {"total": 1, "by_kind": {"placeholder": 1}, "share": 0.1}},
               "vs_multi": {"input": 10, "kept": 9, "dropped": {"exact": 0, "near": 1},
                            "degenerate": {"total": 0, "by_kind": {}, "share": 0.0}}}),
        json!({"diversity/direct": {"all": div(20.0, 40.0, 10), "kept": div(24.0, 35.0, 7), "semantic_source": "local m", "pairwise_over_first": 400},
               "diversity/vs_multi": {"all": div(35.0, 25.0, 10), "kept": div(36.0, 24.0, 9), "semantic_source": "local m", "pairwise_over_first": 400},
               "diversity_vs_direct/vs_multi": {
                   "all": {"semantic": {"value": 15.0, "ci": [9.0, 21.0], "n": 10}, "rouge_l": {"value": -15.0, "ci": [-19.0, 1.0], "n": 10}},
                   "kept": {"semantic": {"value": 12.0, "ci": [5.0, 19.0], "n": 9}}}}),
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
        json!({"budget": {"examples_per_arm": 5, "rule": "min", "available": {"direct/curated": 5, "vs_multi/curated": 8}}}),
        json!({}),
        300.0,
    ));
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
    let rows = report["students"]["tiny"].as_array().unwrap();
    assert_eq!(rows[2]["data"], "vs_multi/curated");
    assert_eq!(rows[2]["benchmarks"]["math500"]["accuracy"], 0.55);
    let vs_baseline = &rows[2]["vs_baseline"];
    assert!((vs_baseline["average"]["difference"].as_f64().unwrap() - 0.125).abs() < 1e-12);
    // math500: 11 vs 8 right, nested, so 3 discordant pairs all one way: p = 2/8.
    assert_eq!(vs_baseline["math500"]["only_this_right"], 3);
    assert!((vs_baseline["math500"]["mcnemar_p"].as_f64().unwrap() - 0.25).abs() < 1e-12);
    assert!((rows[2]["vs_direct"]["average"]["difference"].as_f64().unwrap() - 0.175).abs() < 1e-12);
    assert_eq!(report["data"]["direct"]["after_dedup"], 8);
    assert_eq!(report["data"]["direct"]["after_decontamination"], 7);
    assert_eq!(report["data"]["direct"]["trained_per_arm"], 5);
    assert_eq!(report["data"]["vs_multi"]["calls"], 25);
    let md = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    assert!(md.contains("| vs_multi/curated | 55.0 ["), "{md}");
    // The headline comes first: diversity (resolved) and accuracy (not, at n = 20).
    assert!(md.find("## `vs_multi` vs `direct`").unwrap() < md.find("## Accuracy").unwrap(), "{md}");
    assert!(md.contains("| semantic diversity, all generated items (n=10/10) | 35.0 [33.0, 37.0] | 20.0 [18.0, 22.0] | +15.0 [+9.0, +21.0] | resolved |"), "{md}");
    assert!(
        md.contains("pairwise ROUGE-L (%, lower = more diverse), all generated items (n=10/10)")
            && md.contains("| -15.0 [-19.0, +1.0] | not resolved |"),
        "{md}"
    );
    assert_eq!(
        report["headline"][0]["resolved"][0],
        "semantic diversity, all generated items (+15.0 [+9.0, +21.0])"
    );
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
    assert!(
        svg.contains("vs_multi/curated") && svg.contains("semantic diversity of all generated items"),
        "the SVG lacks its labels"
    );
    let png = std::fs::read(root.join("report/accuracy_tiny.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}
