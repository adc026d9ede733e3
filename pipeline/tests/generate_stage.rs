//! The generate stage end to end through the `pipeline` binary, against an in-process mock
//! OpenAI server that answers like a generator would and fails 20% of requests transiently:
//! exactly N problems per strategy, a rerun sends nothing, and a run killed mid-stage
//! (SIGKILL) resumes without re-sending completed calls or duplicating problems.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::{MockServer, Reply, Request};

/// How the mock generator answers.
#[derive(Default, Clone, Copy)]
struct Mock {
    latency_ms: u64,
    /// Extra latency of (seed % 7) x this, so replies finish out of order.
    jitter_ms: u64,
    fail_every: usize,
    /// Answer every request with text no strategy can parse.
    garbage: bool,
    /// Cut every list reply in its last item, with this `finish_reason`.
    cut: Option<&'static str>,
}

fn requested(body: &Value) -> usize {
    let messages = body["messages"].as_array().unwrap();
    let last = messages.last().unwrap()["content"].as_str().unwrap();
    let system = messages[0]["content"].as_str().unwrap();
    let number = |text: &str, prefix: &str| {
        text.split(prefix).nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok())
    };
    number(last, "Randomly sample ")
        .or_else(|| number(system, "First, sample "))
        .or_else(|| number(system, "Generate "))
        .unwrap_or(1)
}

fn reply(mock: Mock, request: &Request) -> Reply {
    let (n, body) = (request.index, &request.body);
    let jitter = body["seed"].as_u64().unwrap_or(0) % 7 * mock.jitter_ms;
    let delay = Duration::from_millis(mock.latency_ms + jitter);
    if mock.fail_every > 0 && n % mock.fail_every == mock.fail_every - 1 {
        return Reply::text(503, "busy").after(delay);
    }
    if mock.garbage {
        return Reply::json(
            json!({"choices": [{"message": {"role": "assistant", "content": "Mario Mario A: A:"}}]}),
        )
        .after(delay);
    }
    let seed = body["seed"].as_u64().unwrap();
    let system = body["messages"][0]["content"].as_str().unwrap();
    let content = if system.contains("\"responses\" (list of dicts)") {
        let items: Vec<Value> = (0..requested(body))
            .map(|i| json!({"text": format!("Question: Q-{seed}-{i}?\nDifficulty: AMC"), "confidence": 0.2}))
            .collect();
        let whole = json!({ "responses": items }).to_string();
        match mock.cut {
            Some(_) => whole[..whole.rfind("{\"").unwrap() + 12].to_owned(),
            None => whole,
        }
    } else {
        format!("Question: Q-{seed}?\nDifficulty: AIME")
    };
    let reply = Reply::chat(content).usage(50, 20).after(delay);
    match mock.cut {
        Some(reason) => reply.finish_reason(reason),
        None => reply,
    }
}

async fn serve(latency_ms: u64, fail_every: usize) -> (MockServer, String) {
    serve_mock(Mock { latency_ms, fail_every, ..Mock::default() }).await
}

async fn serve_mock(mock: Mock) -> (MockServer, String) {
    let server = MockServer::chat(move |request| reply(mock, request)).await;
    let url = server.url().to_owned();
    (server, url)
}

/// The seeds of the answered generation requests (a failed one is not answered).
fn seeds(mock: &MockServer) -> Vec<u64> {
    mock.answered_bodies().iter().map(|b| b["seed"].as_u64().unwrap()).collect()
}

fn write_config(dir: &Path, url: &str, strategies: &str, n: usize, concurrency: usize) -> std::path::PathBuf {
    let path = dir.join("gen.toml");
    let text = format!(
        "[run]\nname = \"t\"\nout_dir = \"{}\"\n[llm.x]\nprovider = \"openai\"\nbase_url = \"{url}\"\nmodel = \"m\"\nmax_concurrency = {concurrency}\nmax_retries = 8\n[generate]\nllm = \"x\"\nstrategies = {strategies}\nnum_problems = {n}\nk = 5\n",
        dir.join("runs").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn pipeline(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.args(["run", "--config", config.to_str().unwrap(), "--stages", "generate"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("RUST_LOG", "info");
    cmd
}

fn problems(dir: &Path, strategy: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(dir.join(format!("runs/t/generate/{strategy}/problems.jsonl"))).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_exactly_n_problems_despite_failures_and_a_rerun_sends_nothing() {
    let (mock, url) = serve(0, 5).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &url, "[\"direct\", \"vs_multi\"]", 12, 4);
    let out = tokio::task::spawn_blocking({
        let config = config.clone();
        move || pipeline(&config).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for strategy in ["direct", "vs_multi"] {
        let rows = problems(tmp.path(), strategy);
        let ids: BTreeSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!((rows.len(), ids.len()), (12, 12), "{strategy}");
        assert!(rows.iter().all(|r| r["question"].as_str().unwrap().starts_with("Q-")), "{strategy}");
        assert!(rows.iter().all(|r| r["strategy"] == strategy));
    }
    let vs = problems(tmp.path(), "vs_multi");
    assert!(vs.iter().all(|r| r["probability"] == 0.2 && r["difficulty"] == "AMC"));
    // Turns of 3 then 2 items: ids carry conversation, turn and item.
    assert!(vs.iter().any(|r| r["id"].as_str().unwrap().ends_with("-t1-i1")), "{vs:?}");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/t/generate/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["counts"]["direct"]["kept"], 12);
    assert_eq!(manifest["counts"]["vs_multi"]["kept"], 12);

    // VS-Multi's second turn carries the first turn as history, as the reference does.
    let second_turn = mock
        .answered_bodies()
        .iter()
        .find(|b| b["messages"].as_array().unwrap().len() == 4)
        .cloned()
        .expect("a second VS-Multi turn was sent");
    let roles: Vec<&str> =
        second_turn["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(
        second_turn["messages"][3]["content"],
        "Randomly sample 2 alternative data instances based on the original input prompt."
    );
    let history = second_turn["messages"][2]["content"].as_str().unwrap();
    assert!(
        history.starts_with("[{'text': 'Question: Q-") && history.contains("'probability': 0.2}"),
        "{history}"
    );
    assert!(
        second_turn["messages"][1]["content"]
            .as_str()
            .unwrap()
            .starts_with("Generate a math competition problem")
    );

    let sent = mock.requests();
    let again = tokio::task::spawn_blocking({
        let config = config.clone();
        move || pipeline(&config).output().unwrap()
    })
    .await
    .unwrap();
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("up to date"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(mock.requests(), sent, "a rerun sends nothing");

    // Asking for fewer problems keeps the first ones and still sends nothing.
    let smaller = config.with_file_name("smaller.toml");
    std::fs::write(
        &smaller,
        std::fs::read_to_string(&config).unwrap().replace("num_problems = 12", "num_problems = 7"),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking({
        let smaller = smaller.clone();
        move || pipeline(&smaller).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = problems(tmp.path(), "vs_multi");
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[..], vs[..7]);
    assert_eq!(mock.requests(), sent);

    // Asking for the 12 again gives back the very same 12 (same ids: the same identity), from
    // the cache.
    let out = tokio::task::spawn_blocking(move || pipeline(&config).output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(problems(tmp.path(), "vs_multi"), vs);
    assert_eq!(mock.requests(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_without_resending_completed_calls() {
    let (mock, url) = serve(60, 0).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &url, "[\"direct\"]", 30, 2);
    let mut child = pipeline(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    while mock.requests() < 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let before = mock.requests();
    assert!(before < 30, "the run finished before it was killed");

    let out = tokio::task::spawn_blocking(move || pipeline(&config).output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = problems(tmp.path(), "direct");
    let ids: BTreeSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!((rows.len(), ids.len()), (30, 30));
    let seeds = seeds(&mock);
    let distinct: BTreeSet<u64> = seeds.iter().copied().collect();
    assert_eq!(distinct.len(), 30, "one call per problem");
    // Only calls in flight at the kill may have been sent twice: those holding one of the
    // max_concurrency = 2 slots, and those answered whose cache write (two fsyncs, done after
    // the slot is released so it never holds one) had not finished: at most one per slot while
    // the slot's next call waits its 60 ms (seen once in CI: 3 re-sent).
    assert!(seeds.len() - distinct.len() <= 2 * 2, "{} calls re-sent", seeds.len() - distinct.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generator_that_never_follows_the_format_fails_fast_and_says_so() {
    let (mock, url) = serve_mock(Mock { garbage: true, ..Mock::default() }).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &url, "[\"vs_multi\"]", 40, 4);
    let out = tokio::task::spawn_blocking(move || pipeline(&config).output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no usable problem in") && err.contains("does not follow"), "{err}");
    // 8 conversations (40 problems / 5 per conversation) of 3 attempts, not the whole budget.
    let sent = mock.requests();
    assert!(sent <= 8 * 3, "{sent} requests");
}

/// Replies that finish out of order (latency varies by request) and transient failures change
/// nothing: the kept problems and the conversation log are the same at concurrency 1 and 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_kept_does_not_depend_on_concurrency_or_reply_order() {
    // One server (its URL is part of the generator's identity), a fresh run folder each time.
    let (_mock, url) = serve_mock(Mock { jitter_ms: 3, fail_every: 6, ..Mock::default() }).await;
    let mut outputs = Vec::new();
    for concurrency in [1, 8] {
        let tmp = tempfile::tempdir().unwrap();
        let config = write_config(tmp.path(), &url, "[\"direct\", \"vs_multi\"]", 17, concurrency);
        let out = tokio::task::spawn_blocking(move || pipeline(&config).output().unwrap()).await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let read = |f: &str| std::fs::read_to_string(tmp.path().join("runs/t/generate").join(f)).unwrap();
        outputs.push(
            [
                "direct/problems.jsonl",
                "vs_multi/problems.jsonl",
                "direct/conversations.jsonl",
                "vs_multi/conversations.jsonl",
            ]
            .map(read),
        );
    }
    assert_eq!(outputs[0][0].lines().count(), 17);
    for (a, b) in outputs[0].iter().zip(&outputs[1]) {
        assert!(a == b, "concurrency 1:\n{a}\nconcurrency 8:\n{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_from_any_directory_and_reads_its_own_task_file_next_to_the_config() {
    let (mock, url) = serve(0, 0).await;
    let tmp = tempfile::tempdir().unwrap();
    let (conf, elsewhere) = (tmp.path().join("conf"), tmp.path().join("elsewhere"));
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let config = write_config(&conf, &url, "[\"direct\"]", 3, 2);
    let with_task = |task: &str| {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("[generate]\n", &format!("[generate]\ntask = \"{task}\"\n")))
            .unwrap();
    };
    let run = {
        let config = config.clone();
        move |cwd: &Path| {
            let mut cmd = pipeline(&config);
            cmd.current_dir(cwd);
            cmd.output().unwrap()
        }
    };
    // From another directory, off the async workers (the mock answers on them).
    let run_elsewhere = || {
        let (elsewhere, run) = (elsewhere.clone(), run.clone());
        tokio::task::spawn_blocking(move || run(&elsewhere))
    };
    // The built-in task and the benchmarks are in the binary: no data/ folder needed here.
    let out = run_elsewhere().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let builtin = pipeline::strategy::task_prompt("competition_math").unwrap();
    assert_eq!(mock.answered_bodies()[0]["messages"][1]["content"], builtin.as_str());

    // A task of one's own, named relative to the config file, not to where the run starts.
    std::fs::write(conf.join("my_task.txt"), "Write one hard geometry problem.\n").unwrap();
    with_task("my_task.txt");
    mock.clear();
    let out = run_elsewhere().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bodies = mock.answered_bodies();
    assert_eq!(bodies.len(), 3, "a new task is a new identity: every problem asked again");
    assert!(bodies.iter().all(|b| b["messages"][1]["content"] == "Write one hard geometry problem."));

    // A task that is neither built in nor a file is a config error naming the key.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("my_task.txt", "missing.txt")).unwrap();
    let out = run(&elsewhere);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("generate.task")
            && stderr.contains("missing.txt")
            && stderr.contains("competition_math"),
        "{stderr}"
    );
}

/// The strategies run at once (issue 29: one strategy's conversations alone made small engine
/// batches): with one problem each, a direct and a VS-Multi call are in flight together; the
/// manifest records the calls and each strategy's wall time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strategies_run_at_once() {
    let (mock, url) = serve(300, 0).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &url, "[\"direct\", \"vs_multi\"]", 1, 8);
    let out = tokio::task::spawn_blocking(move || pipeline(&config).output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mock.max_in_flight(), 2, "the strategies ran one after the other");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/t/generate/manifest.json")).unwrap(),
    )
    .unwrap();
    // One direct call; VS-Multi's conversation asks in turns, one at a time (the mock records an
    // exchange after replying, so the manifest, not the mock, counts them).
    let llm = &manifest["metrics"]["llm"];
    let calls = llm["calls_sent"].as_u64().unwrap();
    assert!(calls >= 2, "{llm}");
    assert_eq!((&llm["calls_cached"], &llm["completion_tokens"]), (&0.into(), &(20 * calls).into()));
    assert!(llm.get("engine").is_none(), "a remote server's batches are its own: {llm}");
    for strategy in ["direct", "vs_multi"] {
        assert!(manifest["metrics"]["wall_s"][strategy].as_f64().unwrap() >= 0.3, "{manifest}");
    }
}

/// A reply cut by its token budget (`finish_reason: length`) keeps the items it completed and
/// is not asked again; the same text ending on its own is the model's error, asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_by_its_token_budget_keeps_its_complete_items() {
    let (mock, url) = serve_mock(Mock { cut: Some("length"), ..Mock::default() }).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &url, "[\"vs_standard\"]", 8, 4);
    let out = tokio::task::spawn_blocking(move || pipeline(&config).output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/t/generate/manifest.json")).unwrap(),
    )
    .unwrap();
    let counts = &manifest["counts"]["vs_standard"];
    // Each reply holds 4 of the 5 items asked for, every one kept, none asked again.
    assert_eq!(problems(tmp.path(), "vs_standard").len(), 8);
    let calls = counts["calls_sent"].as_u64().unwrap();
    assert!(calls >= 2, "{counts}");
    assert_eq!(counts["salvaged_replies"], calls, "{counts}");
    assert_eq!((&counts["items"], &counts["parse_failures"]), (&(4 * calls).into(), &json!({})), "{counts}");
    assert!(
        problems(tmp.path(), "vs_standard").iter().all(|p| p["question"].as_str().unwrap().starts_with("Q-"))
    );
    drop(mock);

    let (mock, url) = serve_mock(Mock { cut: Some("stop"), ..Mock::default() }).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &url, "[\"vs_standard\"]", 8, 4);
    let out = tokio::task::spawn_blocking(move || pipeline(&config).output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "no reply parses");
    assert!(mock.requests() >= 3, "an unparseable reply is asked again");
}
