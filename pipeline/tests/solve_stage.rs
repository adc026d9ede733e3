//! The solve stage through the `pipeline` binary against a mock OpenAI server that answers as
//! generator and as solver (failing some requests transiently): m solutions per problem with
//! the paper's prompt and sampling, answers extracted, dedup over them, and a rerun sends nothing.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use testkit::{MockServer, Reply, Request};

fn reply(request: &Request) -> Reply {
    if request.index % 7 == 6 {
        return Reply::text(503, "busy");
    }
    let body = &request.body;
    let messages = body["messages"].as_array().unwrap();
    let last = messages.last().unwrap()["content"].as_str().unwrap().to_owned();
    let seed = body["seed"].as_u64().unwrap();
    let content = if last.contains("Please reason step by step") {
        // Two answers in rotation, and sometimes none at all.
        match seed % 4 {
            0 => "I am not sure.".to_owned(),
            1 => "So x = 2. The final answer is \\boxed{2}.".to_owned(),
            _ => "Adding up gives \\boxed{\\frac{1}{2}}.".to_owned(),
        }
    } else {
        format!("Question: {}\nDifficulty: AIME", common::question(seed))
    };
    Reply::chat(content).usage(40, 12)
}

/// Embeddings that depend on the text: its byte histogram over 8 buckets.
fn embeddings(request: &Request) -> Reply {
    Reply::embeddings(request.body["input"].as_array().unwrap().iter().map(|t| {
        let mut v = vec![0f64; 8];
        t.as_str().unwrap().bytes().for_each(|b| v[usize::from(b) % 8] += 1.0);
        v
    }))
}

async fn serve() -> (MockServer, String) {
    let mock = MockServer::builder().chat(reply).embeddings(embeddings).start().await;
    let url = mock.url().to_owned();
    (mock, url)
}

/// The bodies of the solver calls answered (not those failed with 503).
fn solver_bodies(mock: &MockServer) -> Vec<Value> {
    let solver = |b: &Value| {
        b["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .contains("Please reason step by step")
    };
    mock.answered_bodies().into_iter().filter(solver).collect()
}

fn run(dir: &Path, url: &str) -> std::process::Output {
    let config = dir.join("solve.toml");
    let text = format!(
        "[run]\nname = \"t\"\nout_dir = \"{}\"\n[llm.x]\nprovider = \"openai\"\nbase_url = \"{url}\"\nmodel = \"m\"\nmax_concurrency = 4\nmax_retries = 6\n[generate]\nllm = \"x\"\nstrategies = [\"direct\"]\nnum_problems = 6\n[solve]\nnum_solutions = 3\nmax_tokens = 256\n[dedup.embeddings]\nprovider = \"openai\"\nllm = \"x\"\n",
        dir.join("runs").display()
    );
    std::fs::write(&config, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["run", "--config", config.to_str().unwrap(), "--stages", "generate,solve,dedup,verify"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solves_every_problem_m_times_and_reruns_send_nothing() {
    let (mock, url) = serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let (dir, url) = (tmp.path().to_owned(), url.clone());
        move || run(&dir, &url)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let text = std::fs::read_to_string(tmp.path().join("runs/t/solve/direct/solutions.jsonl")).unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 6);
    let problems = std::fs::read_to_string(tmp.path().join("runs/t/generate/direct/problems.jsonl")).unwrap();
    let ids: Vec<String> = problems
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    let solved: Vec<String> = rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(solved, ids, "one record per problem, in problem order");
    let mut answers = std::collections::BTreeSet::new();
    for r in &rows {
        assert_eq!(r["solutions"].as_array().unwrap().len(), 3, "{r}");
        assert!(r["failed_calls"].as_array().unwrap().is_empty());
        for s in r["solutions"].as_array().unwrap() {
            let text = s["text"].as_str().unwrap();
            match &s["answer"] {
                Value::Null => assert!(!text.contains("boxed")),
                a => {
                    answers.insert(a.as_str().unwrap().to_owned());
                }
            }
        }
    }
    assert_eq!(answers, ["2".to_owned(), "\\frac{1}{2}".to_owned()].into_iter().collect());

    // The paper's prompt and sampling, one call per (problem, solution) with its own seed.
    let bodies = solver_bodies(&mock);
    assert!(bodies.len() >= 18);
    let first = &bodies[0];
    let prompt = first["messages"][0]["content"].as_str().unwrap();
    assert!(
        prompt.starts_with("Question: Q-")
            && prompt.ends_with("\nPlease reason step by step, and put your final answer within \\boxed{}."),
        "{prompt}"
    );
    assert_eq!(
        (first["temperature"].as_f64(), first["top_p"].as_f64(), first["max_tokens"].as_u64()),
        (Some(0.6), Some(0.95), Some(256))
    );
    let seeds: std::collections::BTreeSet<u64> = bodies.iter().map(|b| b["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds.len(), 18);

    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/t/solve/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["counts"]["direct"]["solutions"], 18);

    // Dedup ran on the solved problems: the counts add up and the files exist.
    let dedup: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/t/dedup/manifest.json")).unwrap(),
    )
    .unwrap();
    let c = &dedup["counts"]["direct"];
    assert_eq!(c["input"], 6);
    let dropped: u64 = c["dropped"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(c["kept"].as_u64().unwrap() + dropped, 6);
    assert!(tmp.path().join("runs/t/dedup/direct/kept.jsonl").exists());
    let div = &dedup["metrics"]["diversity/direct"];
    // Measured on all generated items (the paper's) and on the kept ones, with intervals.
    assert_eq!(div["all"]["distinct_1"]["n"], 6, "{div}");
    assert!(
        div["all"]["distinct_1"]["value"].as_f64().unwrap() > 0.0 && div["kept"]["rouge_l"]["value"].is_f64(),
        "{div}"
    );
    let semantic = &div["all"]["semantic"];
    let (v, lo, hi) = (
        semantic["value"].as_f64().unwrap(),
        semantic["ci"][0].as_f64().unwrap(),
        semantic["ci"][1].as_f64().unwrap(),
    );
    assert!(v > 0.0 && v < 100.0 && lo <= v && v <= hi, "{div}");
    assert!(div["semantic_source"].as_str().unwrap().contains("/embeddings"), "{div}");

    // Verify voted on them: kept pairs carry the paper's prompt and a solution with the
    // winning answer.
    let verify: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/t/verify/manifest.json")).unwrap(),
    )
    .unwrap();
    let v = &verify["counts"]["direct/curated"];
    let rejected: u64 = v["rejected"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
    assert_eq!(v["kept"].as_u64().unwrap() + rejected, c["kept"].as_u64().unwrap());
    let pairs = std::fs::read_to_string(tmp.path().join("runs/t/verify/direct/curated/train.jsonl")).unwrap();
    for line in pairs.lines() {
        let pair: Value = serde_json::from_str(line).unwrap();
        assert!(pair["prompt"].as_str().unwrap().starts_with("Question: Q-"));
        assert!(pair["completion"].as_str().unwrap().contains(pair["answer"].as_str().unwrap()));
        assert!(pair["agreement"].as_f64().unwrap() > 0.5);
    }

    // A rerun is up to date and sends nothing.
    let before = mock.requests();
    let again = tokio::task::spawn_blocking({
        let (dir, url) = (tmp.path().to_owned(), url.clone());
        move || run(&dir, &url)
    })
    .await
    .unwrap();
    assert!(again.status.success());
    assert_eq!(mock.requests(), before);
}
