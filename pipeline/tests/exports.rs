//! `pipeline export-data` never destroys what it reads or what others wrote (issue 28, items
//! 12 and 13): a read-only run exports without a write to it; an output inside the run's
//! inputs is refused; `dataset_info.json` is merged, not replaced; an export that fails writes
//! nothing; another run's files are not overwritten. And an export reads back as
//! `datasets` and LLaMA-Factory read it (the recorded fixture).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use pipeline::config::Config;
use pipeline::exports::{Alpaca, DatasetRow, Sharegpt, export_run};
use pipeline::stages::verify::VerifiedPair;
use serde_json::{Value, json};

/// The pairs the read-back fixture was recorded from (`tools/compat/read_exports.py`).
const FIXED_PAIRS: [(&str, &str, &str, &str, f64); 2] = [
    (
        "direct-abcd1234-c0-t0-i0",
        "What is $1 + 1$?",
        "Adding, $1 + 1 = 2$. The answer is \\boxed{2}.",
        "2",
        1.0,
    ),
    (
        "direct-abcd1234-c1-t0-i0",
        "Find the least prime above 20.",
        "21 = 3 * 7 and 22 = 2 * 11, so \\boxed{23}.",
        "23",
        0.5,
    ),
];

/// A run folder holding only what exporting reads: a verify manifest and two arms' pairs,
/// each arm's ids prefixed by its origin (`direct-...` in `pairs` becomes `vs_multi-...`).
fn run_with(root: &Path, name: &str, pairs: &[(&str, &str, &str, &str, f64)]) -> Config {
    let text = include_str!("../../configs/default.toml");
    let config =
        pipeline::config::load_str(text, Path::new("default.toml"), &[format!("run.name=\"{name}\"")])
            .unwrap()
            .config;
    let origins = ["direct", "vs_multi"];
    for origin in origins {
        let dir = root.join("verify").join(origin).join("paper");
        std::fs::create_dir_all(&dir).unwrap();
        let rows: Vec<VerifiedPair> = pairs
            .iter()
            .map(|&(id, p, c, a, agreement)| VerifiedPair {
                id: id.replace("direct", origin),
                prompt: p.into(),
                completion: c.into(),
                answer: a.into(),
                agreement,
            })
            .collect();
        vs_core::jsonl::write_all(&dir.join("train.jsonl"), &rows).unwrap();
    }
    let outputs: Vec<Value> = origins
        .iter()
        .map(|origin| {
            let label = format!("verify/{origin}/paper/train.jsonl");
            let (sha256, bytes) = vs_core::digest::sha256_file(&root.join(&label)).unwrap();
            json!({"path": label, "sha256": sha256, "bytes": bytes})
        })
        .collect();
    let manifest = json!({"stage": "verify", "stage_version": 3, "pipeline_version": "t", "config": {},
        "config_sha256": "", "inputs": [], "outputs": outputs, "started_at": "", "finished_at": "", "wall_seconds": 0.0,
        "counts": {"direct/paper": {"kept": pairs.len()}, "vs_multi/paper": {"kept": pairs.len()}}, "metrics": {}});
    std::fs::write(root.join("verify/manifest.json"), manifest.to_string()).unwrap();
    config
}

/// A run named `name` whose pairs say its name (two runs' exports tell apart).
fn run_with_verified(root: &Path, name: &str) -> Config {
    let pairs: Vec<(String, String, String, String)> = (0..2)
        .map(|i| {
            (
                format!("direct-{i}"),
                format!("{name}: problem {i}"),
                format!("so \\boxed{{{i}}}."),
                i.to_string(),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str, &str, &str, f64)> =
        pairs.iter().map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), 1.0)).collect();
    run_with(root, name, &borrowed)
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                out.push((path.clone(), std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    out.sort();
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Item 12: a run folder made read-only exports, and nothing in it changes (bytes and mtimes:
/// as root, permissions alone would not stop a write).
#[test]
fn a_read_only_run_exports_without_a_write_to_it() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let config = run_with_verified(&run, "ro");
    let before = snapshot(&run);
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    for (path, ..) in &before {
        mode(path, 0o444);
    }
    let dirs = [
        run.join("verify/direct/paper"),
        run.join("verify/vs_multi/paper"),
        run.join("verify/direct"),
        run.join("verify/vs_multi"),
        run.join("verify"),
        run.clone(),
    ];
    for dir in &dirs {
        mode(dir, 0o555);
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let written = export_run(&config, &run, &tmp.path().join("out"));
    for dir in &dirs {
        mode(dir, 0o755);
    }
    assert_eq!(written.unwrap().rows.values().sum::<usize>(), 4);
    assert_eq!(snapshot(&run), before, "an export changes nothing in the run it reads");
}

/// Item 13: an output that is, holds or lies inside what the export reads is refused before
/// anything is written.
#[test]
fn an_output_over_the_inputs_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let config = run_with_verified(&run, "a");
    let before = snapshot(&run);
    for out in
        [run.join("verify"), run.join("verify/direct/paper"), run.clone(), run.join("verify/../verify/x")]
    {
        let err = export_run(&config, &run, &out).unwrap_err().to_string();
        assert!(err.contains("which the export reads") && err.contains("verify"), "{}: {err}", out.display());
        assert_eq!(snapshot(&run), before, "{}", out.display());
    }
    // Next to the inputs is fine: the default `<run>/exports`.
    export_run(&config, &run, &run.join("exports")).unwrap();
}

/// Item 13: a user's own entries of dataset_info.json stay (they were replaced wholesale), and
/// two runs exported to one folder keep both runs' entries.
#[test]
fn dataset_info_is_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("llamafactory")).unwrap();
    let mine = json!({"file_name": "my_data.json", "formatting": "alpaca"});
    std::fs::write(
        out.join("llamafactory/dataset_info.json"),
        serde_json::to_string(
            &json!({"my_data": mine, "a_direct-paper_alpaca": {"file_name": "stale.json"}}),
        )
        .unwrap(),
    )
    .unwrap();
    let run = tmp.path().join("run");
    let config = run_with_verified(&run, "a");
    export_run(&config, &run, &out).unwrap();
    let info = read_json(&out.join("llamafactory/dataset_info.json"));
    assert_eq!(info["my_data"], mine, "the user's entry stays");
    assert_eq!(
        info["a_direct-paper_alpaca"],
        json!({"file_name": "direct-paper.alpaca.json"}),
        "ours is updated"
    );
    assert_eq!(info.as_object().unwrap().len(), 5);
    // Exporting again (the same run) replaces its own files and entries.
    export_run(&config, &run, &out).unwrap();
    assert_eq!(read_json(&out.join("llamafactory/dataset_info.json")), info);
}

/// Item 13: another run's export in the same folder is not overwritten in place: its cards and
/// entries claim the same files, so the second export is refused and the first stays whole.
#[test]
fn another_runs_export_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (run_a, run_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (a, b) = (run_with_verified(&run_a, "a"), run_with_verified(&run_b, "b"));
    export_run(&a, &run_a, &out).unwrap();
    let before = snapshot(&out);
    let err = export_run(&b, &run_b, &out).unwrap_err().to_string();
    // The first claim met: run a's dataset card (or its dataset_info entries).
    assert!(
        err.contains("is the card of `a / direct/paper`") || err.contains("entry `a_direct-paper_"),
        "{err}"
    );
    assert_eq!(snapshot(&out), before, "run a's export is untouched");
}

/// Item 13: an export that fails half way (the second arm changed since verify) writes nothing:
/// it used to leave the first arm's files new and the rest old.
#[test]
fn a_failed_export_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let config = run_with_verified(&run, "a");
    let out = tmp.path().join("out");
    export_run(&config, &run, &out).unwrap();
    let before = snapshot(&out);
    // New data for the first arm (vouched for), a changed file for the second.
    let first = run.join("verify/direct/paper/train.jsonl");
    let text = std::fs::read_to_string(&first).unwrap().replace("problem 0", "problem zero");
    std::fs::write(&first, &text).unwrap();
    let mut manifest = read_json(&run.join("verify/manifest.json"));
    manifest["outputs"][0]["sha256"] = json!(vs_core::digest::sha256_file(&first).unwrap().0);
    std::fs::write(run.join("verify/manifest.json"), manifest.to_string()).unwrap();
    let second = run.join("verify/vs_multi/paper/train.jsonl");
    let text = std::fs::read_to_string(&second).unwrap().replace("problem 1", "problem one");
    std::fs::write(&second, text).unwrap();
    let err = export_run(&config, &run, &out).unwrap_err().to_string();
    assert!(err.contains("verify/vs_multi/paper/train.jsonl: changed since verify wrote it"), "{err}");
    assert_eq!(snapshot(&out), before, "nothing was written");
}

#[test]
fn exports_read_back_as_trainers_read_them() {
    let tmp = tempfile::tempdir().unwrap();
    let config = run_with(tmp.path(), "fx", &FIXED_PAIRS);
    let out =
        std::env::var_os("PIPELINE_EXPORT_FIXTURE").map_or_else(|| tmp.path().join("exports"), PathBuf::from);
    let written = export_run(&config, tmp.path(), &out).unwrap();
    // Data no manifest vouches for is not exported.
    let changed = tmp.path().join("verify/direct/paper/train.jsonl");
    let text = std::fs::read_to_string(&changed).unwrap();
    std::fs::write(&changed, text.replace("least prime", "largest prime")).unwrap();
    let err = export_run(&config, tmp.path(), &tmp.path().join("again")).unwrap_err().to_string();
    assert!(err.contains("verify/direct/paper/train.jsonl: changed since verify wrote it"), "{err}");
    std::fs::write(&changed, text).unwrap();
    assert_eq!(written.rows.values().copied().collect::<Vec<_>>(), [2, 2]);

    // LLaMA-Factory: dataset_info names each file with its format's columns and tags.
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("llamafactory/dataset_info.json")).unwrap())
            .unwrap();
    assert_eq!(info["fx_vs_multi-paper_alpaca"], json!({"file_name": "vs_multi-paper.alpaca.json"}));
    assert_eq!(info["fx_direct-paper_sharegpt"]["formatting"], "sharegpt");
    let alpaca: Vec<Alpaca> = serde_json::from_str(
        &std::fs::read_to_string(out.join("llamafactory/direct-paper.alpaca.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(alpaca[1].instruction, "Find the least prime above 20.");
    assert!(alpaca[1].output.ends_with("\\boxed{23}.") && alpaca[1].input.is_empty());
    let sharegpt: Vec<Sharegpt> = serde_json::from_str(
        &std::fs::read_to_string(out.join("llamafactory/direct-paper.sharegpt.json")).unwrap(),
    )
    .unwrap();
    let roles: Vec<&str> = sharegpt[0].conversations.iter().map(|t| t.from.as_str()).collect();
    assert_eq!(roles, ["human", "gpt"]);

    // Hugging Face: what `datasets.load_dataset(<folder>)` read from this very export
    // (recorded once with datasets 5.2 and LLaMA-Factory 0.9.5: tools/compat/read_exports.py), row for row.
    let rows: Vec<DatasetRow> =
        vs_core::jsonl::read_jsonl(&out.join("hf/vs_multi-paper/data/train.jsonl")).unwrap();
    let fixture: Value = serde_json::from_str(include_str!("fixtures/exports/read_back.json")).unwrap();
    assert_eq!(serde_json::to_value(&rows).unwrap(), fixture["vs_multi-paper"]["rows"]);
    // LLaMA-Factory 0.9.5's own dataset_info parser and converters aligned every entry of
    // this export to the pairs it holds: one user turn, one assistant turn.
    let checked: Vec<&String> = fixture["llamafactory_rows"].as_object().unwrap().keys().collect();
    assert_eq!(checked, info.as_object().unwrap().keys().collect::<Vec<_>>());
    let aligned = fixture["llamafactory_aligned"].as_object().unwrap();
    assert_eq!(aligned.len(), 4);
    for (entry, rows) in aligned {
        let expect: Vec<Value> =
            alpaca.iter().map(|a| json!({"prompt": [a.instruction], "response": [a.output]})).collect();
        assert_eq!(rows.as_array().unwrap(), &expect, "{entry}");
    }
    let card = std::fs::read_to_string(out.join("hf/vs_multi-paper/README.md")).unwrap();
    assert!(card.starts_with("---\nconfigs:\n- config_name: default\n"), "{card}");
    assert!(
        card.contains("num_examples: 2") && card.contains("with the `vs_multi` prompting strategy"),
        "{card}"
    );
    let features: Vec<&str> =
        fixture["vs_multi-paper"]["features"].as_object().unwrap().keys().map(String::as_str).collect();
    for f in features {
        assert!(card.contains(&format!("- name: {f}\n")), "the card declares `{f}`");
    }
}
