//! The whole pipeline on one config: generate and solve through a mock OpenAI server, then
//! dedup, verify under both curations, fine-tune a tiny student (random weights, SmolLM2's
//! tokenizer and template) on every budget-matched arm with two seeds, evaluate it before and
//! after, and report. Every stage's manifest is written and the report holds every arm's
//! paired differences, the headline comparison, the data funnel and the wall times.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::root;
use serde_json::Value;

async fn mock_server() -> String {
    common::mock::serve().await.1
}

/// The e2e config for run `name` under `tmp` (one tiny student, written once per `tmp`); with
/// `both`, both curations and two training seeds, else the defaults (curated, one seed).
fn write_config(tmp: &Path, name: &str, url: &str, both: bool) -> PathBuf {
    let config = common::config_with_student(tmp, name, 3);
    std::fs::write(
        &config,
        format!(
            r#"[run]
name = "{name}"
out_dir = "{runs}"
[llm.x]
provider = "openai"
base_url = "{url}"
model = "m"
max_concurrency = 8
[generate]
llm = "x"
strategies = ["direct", "vs_multi"]
num_problems = 10
k = 5
[solve]
num_solutions = 3
[verify]
curation = {curation}
[dedup.decontaminate]
enabled = false
[train.students.tiny]
model_path = "{student}"
[train]
epochs = 2
batch_size = 4
learning_rate = 0.01
max_seq_len = 128
seeds = {seeds}
[evaluate]
benchmarks = ["math500", "olympiadbench"]
subset = 2
max_new_tokens = 4
batch_size = 4
[report]
bootstrap_samples = 200
"#,
            runs = tmp.join("runs").display(),
            curation = if both { r#"["paper", "curated"]"# } else { r#"["curated"]"# },
            seeds = if both { "[1, 2]" } else { "[1]" },
            student = tmp.join("student").display(),
        ),
    )
    .unwrap();
    config
}

async fn pipeline(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(&args)
            .current_dir(root())
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn run_args(config: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["run".to_owned(), "--config".to_owned(), config.display().to_string()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_from_one_config() {
    let url = mock_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "e2e", &url, true);
    // With the baseline on a sample of each arm's training problems.
    let out = pipeline(run_args(&config, &["--set", "evaluate.training_probe=2"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let run = tmp.path().join("runs/e2e");
    for stage in ["generate", "solve", "dedup", "verify", "train", "evaluate", "report"] {
        assert!(run.join(stage).join("manifest.json").exists(), "{stage} has no manifest");
    }
    // Verified pairs reached training: about half the problems have agreeing solvers; the
    // paper arm keeps every answered problem, so at least as many.
    let verify: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("verify/manifest.json")).unwrap()).unwrap();
    for s in ["direct", "vs_multi"] {
        let kept = verify["counts"][format!("{s}/curated")]["kept"].as_u64().unwrap();
        let paper = verify["counts"][format!("{s}/paper")]["kept"].as_u64().unwrap();
        assert!(kept >= 2 && paper >= kept, "{s}: {kept} verified, {paper} in the paper arm");
    }
    // Budget matching within each curation: every arm of a curation trains on as many examples
    // as its smallest arm (hence as many steps), a subsample drawn per seed.
    let train: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("train/manifest.json")).unwrap()).unwrap();
    let budget = &train["counts"]["budget"];
    assert_eq!(
        (budget["unit"].as_str(), budget["matched_within"].as_str()),
        (Some("examples"), Some("curation"))
    );
    let tiny = &budget["students"]["tiny"];
    for curation in ["paper", "curated"] {
        let target = tiny["targets"][curation].as_u64().unwrap();
        let arms = [format!("direct/{curation}"), format!("vs_multi/{curation}")];
        let smallest = arms.iter().map(|a| tiny["arms"][a]["available"]["examples"].as_u64().unwrap()).min();
        assert_eq!(Some(target), smallest, "{curation}");
        let mut steps = Vec::new();
        let mut subsamples = Vec::new();
        for arm in &arms {
            for seed in [1, 2] {
                let run_key = format!("tiny/{arm}/seed-{seed}");
                assert_eq!(train["counts"][&run_key]["examples"].as_u64(), Some(target), "{run_key}");
                assert!(
                    tiny["arms"][arm]["seeds"][seed.to_string()]["supervised_tokens"].as_u64().unwrap() > 0
                );
                steps.push(train["counts"][&run_key]["steps"].as_u64().unwrap());
                subsamples.push(
                    std::fs::read_to_string(run.join(format!("train/budget/tiny/{arm}/seed-{seed}.jsonl")))
                        .unwrap(),
                );
            }
        }
        assert!(steps.iter().all(|&s| s == steps[0] && s > 0), "{steps:?}");
        // Each seed's subsample: `target` of the arm's verified pairs (which ones is seeded by
        // the training seed; the unit test of `nested` shows seeds choose differently).
        for (k, text) in subsamples.iter().enumerate() {
            let verified =
                std::fs::read_to_string(run.join(format!("verify/{}/train.jsonl", arms[k / 2]))).unwrap();
            assert_eq!(text.lines().count() as u64, target);
            assert!(text.lines().all(|l| verified.lines().any(|v| v == l)), "{}", arms[k / 2]);
        }
    }

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report/report.json")).unwrap()).unwrap();
    let rows = report["students"]["tiny"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["data"].as_str().unwrap()).collect();
    assert_eq!(labels, ["baseline", "direct/paper", "direct/curated", "vs_multi/paper", "vs_multi/curated"]);
    assert_eq!(rows[0]["benchmarks"]["math500"]["n"], 2);
    common::assert_one_rule(&report);
    let comparisons = report["comparisons"].as_array().unwrap();
    let find = |id: &str| comparisons.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("{id}"));
    for row in &rows[1..] {
        // Every arm: paired differences to the baseline (and VS to Direct of its curation),
        // per benchmark and on average, each with its interval, p and adjusted p.
        assert_eq!(row["seeds"], serde_json::json!([1, 2]), "{row}");
        let arm = row["data"].as_str().unwrap();
        for b in ["math500", "olympiadbench", "average"] {
            let d = find(&format!("tiny: {arm} - baseline, {b}"));
            assert_eq!(d["family"], "exploratory");
            assert_eq!(d["training_variance"], "included", "two seeds per arm: {d}");
            let (lo, hi, x) = (d["interval"][0].as_f64(), d["interval"][1].as_f64(), d["estimate"].as_f64());
            assert!(lo <= x && x <= hi && d["p_adjusted"].is_f64(), "{d}");
        }
        let direct = row["strategy"] == "direct";
        assert_eq!(row["vs_direct"].is_null(), direct, "{row}");
        if !direct {
            assert_eq!(find(row["vs_direct"].as_str().unwrap())["family"], "primary");
        }
    }
    let headline = &report["headline"][0];
    assert_eq!(headline["strategy"], "vs_multi");
    assert!(headline["diversity"].as_array().unwrap().iter().any(|id| {
        let d = find(id.as_str().unwrap());
        d["items"] == "all" && d["measure"] == "rouge_l"
    }));
    assert_eq!(
        headline["accuracy"].as_array().unwrap().len(),
        2 * 3,
        "two curations x (2 benchmarks + average)"
    );
    // Every arm: what it trained on, and the baseline on two of its training problems.
    let training = report["training_data"].as_array().unwrap();
    assert_eq!(training.len(), 4, "{training:?}");
    for t in training {
        assert!(t["supervised_tokens"].as_f64().unwrap() > 0.0 && t["mean_agreement"].is_f64(), "{t}");
        assert_eq!(t["baseline_accuracy"]["n"], 2, "{t}");
    }
    let evaluate: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("evaluate/manifest.json")).unwrap()).unwrap();
    assert_eq!(evaluate["counts"]["tiny/baseline/training_probe/vs_multi/curated"]["problems"], 2);
    assert!(evaluate["counts"].get("tiny/direct/curated/seed-1/training_probe/direct/curated").is_none());
    assert!(report["data"]["vs_multi"]["verified"]["curated"].as_u64().unwrap() >= 2);
    assert!(report["data"]["vs_multi"]["degenerate"]["share"].is_f64());
    assert!(report["wall_seconds"]["train"].is_number());
    // The table is printed at the end.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| vs_multi/curated |") && stdout.contains("## Data per strategy"), "{stdout}");
    // The first table is the paired comparison with Direct.
    let first_table = stdout.find("## `vs_multi` vs `direct`").expect("the headline");
    assert!(first_table < stdout.find("## Accuracy").unwrap(), "{stdout}");
    for plot in ["accuracy_tiny", "diversity_vs_accuracy_tiny"] {
        for ext in ["png", "svg"] {
            let bytes = std::fs::read(run.join("report").join(format!("{plot}.{ext}"))).unwrap();
            let magic: &[u8] = if ext == "png" { b"\x89PNG" } else { b"<svg" };
            assert!(bytes.windows(magic.len()).take(200).any(|w| w == magic), "{plot}.{ext}");
        }
    }

    // The same students through an OpenAI-compatible endpoint: each target is asked for by
    // its path (what `vllm serve <path>` serves it as); the old local records are replaced.
    let out =
        pipeline(run_args(&config, &["--stages", "evaluate,report", "--set", "evaluate.llm=\"x\""])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (label, path) in [
        ("baseline", tmp.path().join("student")),
        ("vs_multi/curated/seed-1", run.join("train/tiny/vs_multi/curated/seed-1/model")),
    ] {
        let text = std::fs::read_to_string(run.join(format!("evaluate/tiny/{label}/math500.jsonl"))).unwrap();
        let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(records.len(), 2, "{text}");
        for r in &records {
            assert_eq!(r["response"], format!("I am {}. The answer is \\boxed{{1}}.", path.display()), "{r}");
            assert_eq!(r["extracted"], "1");
            assert_eq!(r["correct"], r["gold"] == "1");
            assert_eq!(r["completion_tokens"], 15);
        }
    }
}

/// Generate, solve and evaluate run as job-array shards, each merged by the stage's ordinary
/// run, give the very records of an unsharded run, and the shards plus merges send exactly
/// the calls the unsharded run sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_stages_merge_into_the_unsharded_result() {
    let url = mock_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let whole = write_config(tmp.path(), "whole", &url, false);
    let sharded = write_config(tmp.path(), "sharded", &url, false);
    let ok = |out: &Output| assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    ok(&pipeline(run_args(&whole, &[])).await);
    for (stage, shards) in [
        ("generate", 3),
        ("solve", 2),
        ("dedup", 0),
        ("verify", 0),
        ("train", 0),
        ("evaluate", 2),
        ("report", 0),
    ] {
        for i in 0..shards {
            ok(&pipeline(run_args(&sharded, &["--stages", stage, "--shard", &format!("{i}/{shards}")]))
                .await);
        }
        let merged = pipeline(run_args(&sharded, &["--stages", stage])).await;
        ok(&merged);
    }

    let runs = tmp.path().join("runs");
    let read = |run: &str, file: &str| std::fs::read_to_string(runs.join(run).join(file)).unwrap();
    for file in [
        "generate/direct/problems.jsonl",
        "generate/vs_multi/problems.jsonl",
        "solve/direct/solutions.jsonl",
        "solve/vs_multi/solutions.jsonl",
        "verify/vs_multi/curated/train.jsonl",
    ] {
        assert_eq!(read("whole", file), read("sharded", file), "{file}");
    }
    // Evaluation records: the same set (shards append in their own order).
    for label in ["baseline", "direct/curated/seed-1", "vs_multi/curated/seed-1"] {
        for b in ["math500", "olympiadbench"] {
            let file = format!("evaluate/tiny/{label}/{b}.jsonl");
            let sorted = |run: &str| {
                let mut lines: Vec<String> = read(run, &file).lines().map(str::to_owned).collect();
                lines.sort();
                lines
            };
            assert_eq!(sorted("whole"), sorted("sharded"), "{file}");
            assert_eq!(sorted("sharded").len(), 2, "{file}");
        }
    }
    // Every call the merges made was answered by the shards (from the call cache).
    let manifest = |run: &str, stage: &str| -> Value {
        serde_json::from_str(&read(run, &format!("{stage}/manifest.json"))).unwrap()
    };
    for stage in ["generate", "solve"] {
        for s in ["direct", "vs_multi"] {
            let m = manifest("sharded", stage);
            assert_eq!(m["counts"][s]["calls_sent"], 0, "{stage}/{s} merge sent calls: {}", m["counts"][s]);
            let whole_calls = manifest("whole", stage)["counts"][s]["calls_sent"].as_u64().unwrap();
            assert_eq!(m["counts"][s]["calls_cached"].as_u64().unwrap(), whole_calls, "{stage}/{s}");
        }
    }
    assert!(runs.join("sharded/report/report.json").exists());
}

/// A problem set made elsewhere, imported as an arm beside Direct: it is solved, deduplicated,
/// verified, trained on, evaluated and compared with Direct in the report like a strategy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_set_is_an_arm_through_every_stage() {
    let (mock, url) = common::mock::serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "imp", &url, false);
    // Even `Q-<n>` problems get agreeing answers from the mock solver, so they verify.
    let mut rows: Vec<String> = (0..12)
        .map(|i| {
            serde_json::json!({"uid": format!("u{i}"), "body": {"problem": common::question(2000 + 2 * i)}})
                .to_string()
        })
        .collect();
    rows.insert(3, r#"{"uid": "bad", "body": {}}"#.to_owned());
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    std::fs::write(tmp.path().join("data/mine.jsonl"), rows.join("\n") + "\n").unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("strategies = [\"direct\", \"vs_multi\"]\n", "strategies = [\"direct\"]\n")
        .replace(
            "[solve]\n",
            "[generate.import.mine]\npath = \"data/mine.jsonl\"\nquestion = \"body.problem\"\nid = \"uid\"\n[solve]\n",
        );
    std::fs::write(&config, text).unwrap();
    let out = pipeline(run_args(&config, &[])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let run = tmp.path().join("runs/imp");
    let manifest = |stage: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(run.join(stage).join("manifest.json")).unwrap())
            .unwrap()
    };
    let generate = manifest("generate");
    assert_eq!(generate["counts"]["mine"]["kept"], 12, "{}", generate["counts"]);
    assert_eq!(generate["counts"]["mine"]["malformed"]["no `body.problem` field"], 1);
    let problems = std::fs::read_to_string(run.join("generate/mine/problems.jsonl")).unwrap();
    let first: Value = serde_json::from_str(problems.lines().next().unwrap()).unwrap();
    assert!(
        first["id"].as_str().unwrap().starts_with("mine-") && first["id"].as_str().unwrap().ends_with("-u0")
    );
    assert_eq!(first["strategy"], "mine");
    let verify = manifest("verify");
    assert!(verify["counts"]["mine/curated"]["kept"].as_u64().unwrap() >= 10, "{}", verify["counts"]);
    let train = manifest("train");
    assert!(train["counts"]["tiny/mine/curated/seed-1"]["steps"].as_u64().unwrap() > 0);

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report/report.json")).unwrap()).unwrap();
    let rows = report["students"]["tiny"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["data"].as_str().unwrap()).collect();
    assert_eq!(labels, ["baseline", "direct/curated", "mine/curated"]);
    let vs_direct = rows[2]["vs_direct"].as_str().unwrap();
    let comparison = report["comparisons"].as_array().unwrap().iter().find(|c| c["id"] == vs_direct).unwrap();
    assert!(comparison["estimate"].is_f64() && comparison["family"] == "primary", "{comparison}");
    assert_eq!(report["headline"][0]["strategy"], "mine");
    assert_eq!(report["data"]["mine"]["generated"], 12, "{}", report["data"]["mine"]);

    // Its verified data, for other trainers.
    let out = pipeline(vec!["export-data".into(), "--config".into(), config.display().to_string()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exports = run.join("exports");
    let rows: Vec<pipeline::exports::DatasetRow> =
        std::fs::read_to_string(exports.join("hf/mine-curated/data/train.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(rows.len() as u64, verify["counts"]["mine/curated"]["kept"].as_u64().unwrap());
    assert!(rows.iter().all(|r| r.origin == "mine" && r.answer == "7"));
    let card = std::fs::read_to_string(exports.join("hf/mine-curated/README.md")).unwrap();
    assert!(
        card.contains("imported from `mine.jsonl` (field `body.problem`)")
            && card.contains("| generated / imported | 12 |"),
        "{card}"
    );
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(exports.join("llamafactory/dataset_info.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(info["imp_mine-curated_alpaca"]["file_name"], "mine-curated.alpaca.json");

    // The file is known by its content: moving it with the config asks for nothing again.
    let before = mock.calls();
    let moved = tmp.path().join("moved");
    std::fs::create_dir_all(moved.join("data")).unwrap();
    std::fs::copy(tmp.path().join("data/mine.jsonl"), moved.join("data/mine.jsonl")).unwrap();
    std::fs::copy(&config, moved.join("imp.toml")).unwrap();
    let out = pipeline(run_args(&moved.join("imp.toml"), &[])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    for stage in ["solve", "dedup", "verify", "train", "evaluate", "report"] {
        let skipped = said.lines().any(|l| l.starts_with(&format!("= {stage} ")) && l.contains("up to date"));
        assert!(skipped, "{stage}: {said}");
    }
    assert_eq!(mock.since(before).total(), 0);
}

/// `pipeline curate --solve`: a file solved and verified by the stages themselves, no config
/// arm to write; a second call replays everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curate_solves_and_verifies_a_file_through_the_stages() {
    let (mock, url) = common::mock::serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "cur", &url, false);
    // Even `Q-<n>` problems get agreeing answers; odd ones do not; one exact duplicate.
    let mut rows: Vec<String> =
        (0..8).map(|n| serde_json::json!({"problem": common::question(3000 + n)}).to_string()).collect();
    rows.push(rows[0].clone());
    let input = tmp.path().join("mine.jsonl");
    std::fs::write(&input, rows.join("\n") + "\n").unwrap();
    let args = |out: &str| -> Vec<String> {
        [
            "curate",
            "--input",
            input.to_str().unwrap(),
            "--question",
            "problem",
            "--config",
            config.to_str().unwrap(),
            "--solve",
            "x",
            "--out",
            tmp.path().join(out).to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let out = pipeline(args("cur")).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| read ") && stdout.contains("(dropped: {\"exact\":1})"), "{stdout}");
    let pairs =
        std::fs::read_to_string(tmp.path().join("cur/curate/verify/input/curated/train.jsonl")).unwrap();
    let ids: Vec<String> = pairs
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    // The even problems' solutions always agree (rows 0, 2, 4, 6); row 8 repeats row 0.
    for row in ["0", "2", "4", "6"] {
        assert!(ids.contains(&row.to_owned()), "row-{row} verified: {ids:?}");
    }
    assert!(!ids.contains(&"8".to_owned()), "the exact duplicate is dropped");
    assert!(stdout.contains(&format!("| verified | {} ", ids.len())), "{stdout}");
    let solved = mock.calls().solve;
    assert_eq!(solved, 9 * 3, "every row solved three times (the duplicate too: dedup runs after solve)");
    let out = pipeline(args("cur")).await;
    assert!(out.status.success());
    assert_eq!(mock.calls().solve, solved, "nothing asked twice");
}
