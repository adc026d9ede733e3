//! The train stage from config on a given JSONL of pairs: a tiny student (random weights,
//! SmolLM2's tokenizer and chat template) learns, writes metrics, a checkpoint and an HF export
//! that loads back; a rerun is skipped; a bad line is an error naming file and line.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::root;
use trainer::model::config::Family;
use trainer::{DeviceSpec, Pretrained};

/// A 2-layer Qwen3-shaped student with SmolLM2's vocabulary, exported as an HF folder.
fn tiny_student(dir: &Path) {
    common::tiny_student(dir, Family::Qwen3, 1);
}

fn pipeline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .output()
        .expect("the pipeline binary runs")
}

fn run_train(tmp: &Path, data: &Path) -> Output {
    run_train_with(tmp, data, &[])
}

fn run_train_with(tmp: &Path, data: &Path, extra: &[&str]) -> Output {
    let sets = [
        format!("run.out_dir={}", tmp.join("runs").display()),
        format!("train.data={}", data.display()),
        format!("train.students={{tiny={{model_path=\"{}\"}}}}", tmp.join("student").display()),
        "train.epochs=8".into(),
        "train.batch_size=2".into(),
        "train.learning_rate=0.01".into(),
        "train.warmup_ratio=0.1".into(),
        "train.max_seq_len=96".into(),
        "train.log_every=2".into(),
        "train.checkpoint_every=4".into(),
        "evaluate.benchmarks=[\"math500\", \"minerva_math\"]".into(),
        "evaluate.subset=3".into(),
        "evaluate.max_new_tokens=4".into(),
        "evaluate.batch_size=2".into(),
    ];
    let mut args = vec!["run", "--config", "configs/default.toml", "--stages", "train,evaluate,report"];
    for s in sets.iter().map(String::as_str).chain(extra.iter().copied()) {
        args.extend(["--set", s]);
    }
    pipeline(&args)
}

#[test]
fn trains_a_student_on_given_pairs_and_exports_it() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_student(&tmp.path().join("student"));
    let data = tmp.path().join("pairs.jsonl");
    let pairs: String = (0..4)
        .map(|i| {
            serde_json::json!({"prompt": format!("What is {i} + {i}?"), "completion": format!("{i} + {i} = \\boxed{{{}}}", 2 * i)})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&data, pairs).unwrap();

    let out = run_train(tmp.path(), &data);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let run = tmp.path().join("runs/default/train");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    let counts = &manifest["counts"]["tiny/custom/seed-42"];
    assert_eq!(counts["examples"], 4);
    assert_eq!(counts["steps"], 16);
    // The default config asks for `auto`: bf16 exactly where this CPU has native bf16, recorded
    // with the memory plan the run was checked against.
    let expected = if trainer::precision::cpu_has_native_bf16() { "bf16" } else { "f32" };
    assert_eq!(counts["dtype"], expected);
    assert_eq!(counts["checkpoint_activations"], true);
    assert_eq!(counts["devices"], serde_json::json!(["cpu"]));
    assert!(counts["memory_plan"]["total"].as_u64().unwrap() > 0, "{counts}");
    let (first, last) = (counts["first_loss"].as_f64().unwrap(), counts["last_loss"].as_f64().unwrap());
    assert!(last < 0.7 * first, "loss {first} -> {last}");
    let dir = run.join("tiny/custom/seed-42");
    assert_eq!(std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap().lines().count(), 8);
    assert!(dir.join("checkpoints/step-0000016/model.safetensors").exists());
    let outputs = manifest["outputs"].to_string();
    assert!(outputs.contains("step-0000016/optimizer.safetensors"), "{outputs}");
    let cached = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("tokenized-"));
    assert!(cached, "tokenized data is cached");
    let back = Pretrained::load(&dir.join("model"), &DeviceSpec::Cpu.device()).unwrap();
    assert_eq!(back.model.config.vocab_size, 49152);

    // Evaluated before and after fine-tuning on the same seeded subsets, every record graded.
    let eval_manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/default/evaluate/manifest.json")).unwrap(),
    )
    .unwrap();
    for key in [
        "tiny/baseline/math500",
        "tiny/custom/seed-42/math500",
        "tiny/baseline/minerva_math",
        "tiny/custom/seed-42/minerva_math",
    ] {
        assert_eq!(eval_manifest["counts"][key]["problems"], 3, "{key}");
    }
    // In-process decoding is metered per target: its six rows ran at most
    // `evaluate.batch_size` = 2 at a time, a row joining as another finished.
    for target in ["tiny/baseline", "tiny/custom/seed-42"] {
        let d = &eval_manifest["metrics"]["decoding"][target];
        assert_eq!(d["rows"], 6, "{target}: {d}");
        let mean = d["mean_batch"].as_f64().unwrap();
        assert!(mean > 1.0 && mean <= 2.0, "{target}: {d}");
    }
    let records = |label: &str| -> Vec<serde_json::Value> {
        let path = tmp.path().join(format!("runs/default/evaluate/tiny/{label}/math500.jsonl"));
        std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let (base, tuned) = (records("baseline"), records("custom/seed-42"));
    let ids = |r: &[serde_json::Value]| {
        r.iter().map(|x| x["id"].as_str().unwrap().to_owned()).collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(ids(&base), ids(&tuned), "the same subset for every model");
    assert!(base.iter().all(|r| r["gold"].is_string()
        && r["correct"].is_boolean()
        && r["completion_tokens"].as_u64().unwrap() <= 4));

    // The report: the table with both rows, intervals and the n they rest on.
    let report = std::fs::read_to_string(tmp.path().join("runs/default/report/report.md")).unwrap();
    assert!(report.contains("| baseline |") && report.contains("| custom |"), "{report}");
    assert!(report.contains("(n=3)") && report.contains("Wilson"), "{report}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/default/report/report.json")).unwrap(),
    )
    .unwrap();
    let rows = json["students"]["tiny"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    // Custom data against the baseline on the average: the default primary comparison; one
    // training run, so no training variance in it (and the report says so).
    let id = rows[1]["vs_baseline"].as_str().unwrap();
    let c = json["comparisons"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap();
    assert!(c["estimate"].is_number() && c["family"] == "primary", "{c}");
    assert_eq!(c["training_variance"], "not_estimable");
    assert!(report.contains("¹ One training run per arm"), "{report}");

    // Up to date: skipped.
    let again = run_train(tmp.path(), &data);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("up to date"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Two data parallel workers (sharing this CPU) take the same steps: the loss curve of one
    // worker with the same micro-batches, recorded with the devices that made it.
    let losses = |dir: &Path| -> Vec<f64> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
            .collect()
    };
    // In f32: with bf16 matmuls (dtype "auto" on a CPU with AVX512-BF16) the two ways of
    // summing the micro-batches' gradients round differently, ~2e-5 apart by step 5.
    let accum = ["train.grad_accum_steps=2", "train.batch_size=1", "train.dtype=\"f32\""];
    let one = run_train_with(tmp.path(), &data, &accum);
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    let single = losses(&dir);
    let two =
        run_train_with(tmp.path(), &data, &[&accum[..], &["train.devices=[\"cpu\", \"cpu\"]"]].concat());
    assert!(two.status.success(), "{}", String::from_utf8_lossy(&two.stderr));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["counts"]["tiny/custom/seed-42"]["devices"], serde_json::json!(["cpu", "cpu"]));
    let parallel = losses(&dir);
    assert_eq!(single.len(), parallel.len());
    for (a, b) in single.iter().zip(&parallel) {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "one worker {single:?}, two {parallel:?}");
    }

    // A broken line names the file and line.
    std::fs::write(&data, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": 3}\n").unwrap();
    let bad = run_train(tmp.path(), &data);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains(&format!("{}:2:", data.display())), "{err}");
}
