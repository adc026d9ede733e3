//! The `pipeline` binary as a user runs it: exit codes and what it prints.

use std::path::Path;
use std::process::{Command, Output};

fn pipeline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env_remove("RUST_LOG")
        .output()
        .expect("the pipeline binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_subcommands_and_every_stage_in_flow_order() {
    let out = pipeline(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["run", "validate"] {
        assert!(text.contains(word), "{text}");
    }
    let positions: Vec<usize> = ["generate", "solve", "dedup", "verify", "train", "evaluate", "report"]
        .iter()
        .map(|s| {
            text.find(&format!("  {s} ")).unwrap_or_else(|| panic!("stage {s} missing from help:\n{text}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn validate_accepts_the_default_config() {
    let out = pipeline(&["validate", "--config", "configs/default.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("configs/default.toml: valid"), "{text}");
    assert!(text.contains("direct, vs_multi"), "{text}");
}

/// The paper's settings get a memory plan from the students' published configs: Qwen3-1.7B at
/// 16k tokens fits one 80 GB GPU, 4B one 141 GB GPU, and 7B (full fine-tuning, unsharded) is
/// refused with the reason.
#[test]
fn validate_prints_the_memory_plan_of_the_papers_students() {
    let plan_gb = |text: &str| -> f64 {
        let line = text.lines().find(|l| l.contains("GB to train on")).unwrap_or_else(|| panic!("{text}"));
        line.split("student: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()
    };
    let out = pipeline(&["validate", "--config", "configs/paper.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("planned from data/model_configs/Qwen3-1.7B-Base.json"), "{text}");
    assert!(text.contains("bf16, batch 1 x 16384 tokens, activation checkpointing on"), "{text}");
    let small = plan_gb(&text);
    assert!(small > 30.0 && small < 80.0, "{text}");
    for part in ["| parameters |", "| optimizer state |", "| activations |", "| loss buffers |"] {
        assert!(text.contains(part), "{text}");
    }

    let out = pipeline(&["validate", "--config", "configs/paper/gpt41-qwen3_4b_base.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let medium = plan_gb(&String::from_utf8_lossy(&out.stdout));
    assert!(medium > 80.0 && medium < 141.0, "{medium}");

    // Without checkpointing the 1.7B plan no longer fits, and the keys to change are named.
    let out = pipeline(&[
        "validate",
        "--config",
        "configs/paper.toml",
        "--set",
        "train.checkpoint_activations=false",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("more than train.memory_limit_gb (80.0 GB)"), "{err}");
    assert!(err.contains("train.checkpoint_activations = true"), "{err}");

    let out = pipeline(&["validate", "--config", "configs/paper/gpt41-qwen25_7b.toml"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("AdamW state alone take"), "{err}");
    assert!(err.contains("ZeRO-3"), "{err}");
}

/// Our parameter count from each published config matches its model card.
#[test]
fn published_student_configs_have_the_model_cards_sizes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/model_configs");
    for (file, card) in
        [("Qwen3-1.7B-Base.json", 1.72e9), ("Qwen3-4B-Base.json", 4.02e9), ("Qwen2.5-7B.json", 7.61e9)]
    {
        let config = trainer::pretrained::model_config(&root.join(file)).unwrap();
        let n = config.num_parameters() as f64;
        assert!((n / card - 1.0).abs() < 0.01, "{file}: {n} parameters, the card says {card}");
    }
}

#[test]
fn validate_names_a_typod_key_and_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("typo.toml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml"))
        .unwrap();
    std::fs::write(&path, text.replacen("num_problems =", "num_problem =", 1)).unwrap();
    let out = pipeline(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:", path.display())), "{err}");
    assert!(err.contains("generate.num_problem: unknown key"), "{err}");
    assert!(err.contains("did you mean `num_problems`?"), "{err}");
}

#[test]
fn set_overrides_reach_validation() {
    let out = pipeline(&["validate", "--config", "configs/default.toml", "--set", "generate.k=0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--set generate.k: generate.k: must be >= 1"), "{}", stderr(&out));
}

#[test]
fn chat_answers_with_the_offline_model() {
    let out = pipeline(&[
        "chat",
        "--model",
        "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "--max-new-tokens",
        "24",
        "What is the capital of France?",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(reply.contains("Paris"), "{reply}");
    assert!(stderr(&out).contains("generated tokens"), "{}", stderr(&out));
}

#[test]
fn chat_names_a_missing_model() {
    let out = pipeline(&["chat", "--model", "models/none.gguf", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("models/none.gguf"), "{}", stderr(&out));
}

#[test]
fn unknown_stage_names_are_usage_errors() {
    let out = pipeline(&["run", "--config", "configs/default.toml", "--stages", "generate,sovle"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown stage `sovle`"), "{}", stderr(&out));
    let out = pipeline(&["run", "--config", "configs/default.toml", "--force", "all,bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown stage `bogus`"), "{}", stderr(&out));
}

#[test]
fn grade_pairs_and_files() {
    let out = pipeline(&["grade", "--gold", "\\frac{1}{2}", "--pred", "so the answer is $\\boxed{0.5}$"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["equal"].as_bool(), v["extracted"].as_str()), (Some(true), Some("0.5")));
    assert_eq!(v["extraction"], "math_verify");
    // The evaluate stage's extraction options: strict reads only committed answers.
    let out = pipeline(&["grade", "--gold", "12", "--pred", "so it is 12", "--extraction", "strict"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["equal"].as_bool(), v["extraction"].as_str()), (Some(false), Some("strict")));
    let out = pipeline(&["grade", "--gold", "12", "--pred", "so it is 12", "--extraction", "loose"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected `math_verify` or `strict`"), "{}", stderr(&out));

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &input,
        "{\"gold\": \"3\", \"pred\": \"3.0\", \"k\": 1}\n{\"gold\": \"3\", \"pred\": \"4\"}\n",
    )
    .unwrap();
    let out = pipeline(&["grade", "--input", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        concat!(
            "{\"gold\":\"3\",\"pred\":\"3.0\",\"k\":1,\"equal\":true,\"extracted\":\"3.0\",\"extraction\":\"math_verify\"}\n",
            "{\"gold\":\"3\",\"pred\":\"4\",\"equal\":false,\"extracted\":\"4\",\"extraction\":\"math_verify\"}\n"
        )
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["grade", "--input", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"{\"gold\": \"x=2\", \"pred\": \"2\"}\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"gold\":\"x=2\",\"pred\":\"2\",\"equal\":true,\"extracted\":\"2\",\"extraction\":\"math_verify\"}\n"
    );

    std::fs::write(&input, "{\"gold\": \"3\"}\n").unwrap();
    let out = pipeline(&["grade", "--input", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pairs.jsonl:1: missing string field `pred`"), "{}", stderr(&out));
}

#[test]
fn shards_are_checked_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = format!("run.out_dir=\"{}\"", tmp.path().display());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--config", "configs/default.toml", "--set", &out_dir];
        args.extend_from_slice(extra);
        pipeline(&args)
    };
    // Malformed or out-of-range shards are usage errors naming the form.
    for bad in ["2/2", "1-4", "0/0"] {
        let out = run(&["--stages", "generate", "--shard", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("INDEX/COUNT"), "{}", stderr(&out));
    }
    // A shard needs one stage, and one that can be sharded.
    let out = run(&["--stages", "dedup", "--shard", "0/2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`dedup` cannot be sharded"), "{}", stderr(&out));
    let out = run(&["--stages", "generate,solve", "--shard", "0/2"]);
    assert!(stderr(&out).contains("exactly one stage (got 2)"), "{}", stderr(&out));
    let out = run(&["--shard", "0/2"]);
    assert_eq!(out.status.code(), Some(2), "--shard without --stages: {}", stderr(&out));
}

#[test]
fn curate_cleans_a_file_without_a_config_and_says_why_for_each_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mine.jsonl");
    let math500 = eval::Benchmark::Math500.load_embedded().unwrap();
    let rows = [
        serde_json::json!({"uid": "a", "problem": "A bag holds 5 red and 7 blue marbles. Two are drawn without replacement. What is the probability that both are red?", "answer": "5/33"}),
        serde_json::json!({"uid": "b", "problem": "A bag holds 5 red and 7 blue marbles.  Two are drawn without replacement. What is the probability that both are red?"}),
        serde_json::json!({"uid": "c", "problem": "A bag holds 5 red and 7 blue marbles. Two are drawn without replacement. What is the probability that both are blue?"}),
        serde_json::json!({"uid": "d", "problem": math500[3].problem}),
        serde_json::json!({"uid": "e", "problem": "Find the number of positive divisors of 2024 that are perfect squares."}),
        serde_json::json!({"uid": "f"}),
    ];
    let text: String = rows.iter().map(|r| r.to_string() + "\n").collect();
    std::fs::write(&input, text).unwrap();
    let input_arg = input.to_str().unwrap().to_owned();
    let curate = |more: &[&str]| {
        pipeline(&[&["curate", "--input", input_arg.as_str(), "--question", "problem"][..], more].concat())
    };
    let out = curate(&["--answer", "answer", "--id", "uid"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| exact | 5 | 1 |") && stdout.contains("| **kept** | **2** | |"), "{stdout}");
    let folder = dir.path().join("mine-curated");
    let read = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(folder.join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let kept = read("kept.jsonl");
    assert_eq!(kept.iter().map(|r| r["id"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "e"]);
    assert_eq!(kept[0]["answer"], "5/33");
    let dropped = read("dropped.jsonl");
    let why: Vec<(&str, &str)> =
        dropped.iter().map(|d| (d["id"].as_str().unwrap(), d["reason"].as_str().unwrap())).collect();
    assert_eq!(why, [("b", "exact"), ("c", "near"), ("d", "contaminated")]);
    assert_eq!(dropped[1]["duplicate_of"], "a");
    assert!(dropped[2]["benchmark"].as_str().unwrap().starts_with("math500/"));
    let malformed = read("malformed.jsonl");
    assert!(malformed[0]["at"].as_str().unwrap().ends_with("mine.jsonl:6"));
    assert_eq!(malformed[0]["reason"], "no `problem` field");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["summary"]["kept"], 2);
    assert_eq!(summary["summary"]["malformed"], 1);

    // Without decontamination the benchmark problem stays; a repeated id is refused.
    let out = curate(&["--benchmarks", "none", "--out", dir.path().join("o2").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| **kept** | **3** | |"));
    std::fs::write(&input, rows[0].to_string() + "\n" + &rows[0].to_string() + "\n").unwrap();
    let out = curate(&["--id", "uid"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("id `a` appears more than once"), "{}", stderr(&out));
}
