//! The whole pipeline on one config: generate and solve through a mock OpenAI server, then
//! dedup, verify, fine-tune a tiny student (random weights, SmolLM2's tokenizer and template),
//! evaluate it before and after, and report. Every stage's manifest is written and the report
//! holds the table, the data funnel and the wall times.

mod common;

use std::process::Command;

use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::root;
use serde_json::{Value, json};
use trainer::model::config::Family;

async fn handler(body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap();
    let last = body["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
    let seed = body["seed"].as_u64().unwrap();
    let content = if last.contains("Please reason step by step") {
        // Solvers agree on problems with an even seed-derived tag, split on the others.
        let q: u64 =
            last.split("Q-").nth(1).and_then(|r| r.split('?').next()).and_then(|n| n.parse().ok()).unwrap();
        let answer = if q.is_multiple_of(2) { 7 } else { seed % 5 };
        format!("Adding the parts gives the total. The answer is \\boxed{{{answer}}}.")
    } else if body["messages"][0]["content"].as_str().unwrap().contains("\"responses\" (list of dicts)") {
        // VS: as many items as asked for ("sample N" / "Generate N"), with probabilities.
        let all = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        let n = ["Randomly sample ", "First, sample ", "Generate "]
            .iter()
            .find_map(|p| {
                all.rsplit(p)
                    .next()
                    .filter(|_| all.contains(p))
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(1);
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"text": format!("Question: Q-{}?\nDifficulty: AMC", (seed + i * 7) % 1000), "probability": 0.2}))
            .collect();
        json!({ "responses": items }).to_string()
    } else {
        format!("Question: Q-{}?\nDifficulty: AMC", seed % 1000)
    };
    axum::Json(json!({
        "choices": [{"message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 15}
    }))
    .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_from_one_config() {
    let app = axum::Router::new().route("/v1/chat/completions", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tmp = tempfile::tempdir().unwrap();
    common::tiny_student(&tmp.path().join("student"), Family::Llama, 3);
    let config = tmp.path().join("e2e.toml");
    std::fs::write(
        &config,
        format!(
            r#"[run]
name = "e2e"
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
[dedup.decontaminate]
enabled = false
[train.students.tiny]
model_path = "{student}"
[train]
epochs = 2
batch_size = 4
learning_rate = 0.01
max_seq_len = 128
[evaluate]
benchmarks = ["math500", "olympiadbench"]
subset = 2
max_new_tokens = 4
batch_size = 4
[report]
bootstrap_samples = 200
"#,
            runs = tmp.path().join("runs").display(),
            student = tmp.path().join("student").display(),
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(["run", "--config", config.to_str().unwrap()])
            .current_dir(root())
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let run = tmp.path().join("runs/e2e");
    for stage in ["generate", "solve", "dedup", "verify", "train", "evaluate", "report"] {
        assert!(run.join(stage).join("manifest.json").exists(), "{stage} has no manifest");
    }
    // Verified pairs reached training: about half the problems have agreeing solvers.
    let verify: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("verify/manifest.json")).unwrap()).unwrap();
    for s in ["direct", "vs_multi"] {
        let kept = verify["counts"][s]["kept"].as_u64().unwrap();
        assert!(kept >= 2, "{s}: {kept} verified");
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report/report.json")).unwrap()).unwrap();
    let rows = report["students"]["tiny"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["data"].as_str().unwrap()).collect();
    assert_eq!(labels, ["baseline", "direct", "vs_multi"]);
    assert_eq!(rows[0]["benchmarks"]["math500"]["n"], 2);
    assert!(report["data"]["vs_multi"]["verified"].as_u64().unwrap() >= 2);
    assert!(report["wall_seconds"]["train"].is_number());
    // The table is printed at the end.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| vs_multi |") && stdout.contains("## Data per strategy"), "{stdout}");
}
