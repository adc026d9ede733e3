//! Runs of the `pipeline` binary that go wrong, against the mock server: killed (SIGKILL) at a
//! point inside each of generate, solve, train and evaluate, then rerun, ending with artifacts
//! identical to an uninterrupted run's; and an outage (every key refused) that stops at once
//! with a non-zero exit naming the key's variable (never the key), remembers nothing as done,
//! and is followed by a complete run once the endpoint is healthy; and failed calls past
//! `run.max_failed_fraction`, which fail the stage with a summary and are asked again next time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::mock;

const KEY_VAR: &str = "VSDATA_TEST_INTERRUPT_KEY";
const KEY: &str = "sk-test-NEVER-PRINTED-4242";

fn write_config(tmp: &Path, name: &str, url: &str) -> PathBuf {
    let path = common::config_with_student(tmp, name, 5);
    std::fs::write(
        &path,
        format!(
            r#"run = {{ name = "{name}", out_dir = "{runs}" }}
[llm.gen]
provider = "openai"
base_url = "{url}"
model = "gen"
api_key_env = "{KEY_VAR}"
max_concurrency = 2
[llm.judge]
provider = "openai"
base_url = "{url}"
model = "judge"
api_key_env = "{KEY_VAR}"
max_concurrency = 2
[generate]
llm = "gen"
strategies = ["direct", "multi_turn"]
num_problems = 6
k = 3
[solve]
num_solutions = 2
[dedup]
decontaminate = {{ enabled = false }}
embeddings = {{ provider = "none" }}
[train]
students = {{ tiny = {{ model_path = "{student}" }} }}
epochs = 1
max_steps = 6
batch_size = 1
checkpoint_every = 1
learning_rate = 0.01
max_seq_len = 96
[evaluate]
llm = "judge"
endpoint_model = "configured"
benchmarks = ["math500", "minerva_math"]
subset = 4
batch_size = 2
max_new_tokens = 4
[report]
bootstrap_samples = 50
plots = false
"#,
            runs = tmp.join("runs").display(),
            student = tmp.join("student").display(),
        ),
    )
    .unwrap();
    path
}

fn command(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    c.args(["run", "--config", &config.display().to_string()])
        .current_dir(common::root())
        .env(KEY_VAR, KEY)
        .env("RUST_LOG", "info");
    c
}

fn run(config: &Path) -> Output {
    command(config).output().unwrap()
}

/// [`run`] off the async runtime that serves the mock.
async fn run_async(config: &Path) -> Output {
    let config = config.to_owned();
    tokio::task::spawn_blocking(move || run(&config)).await.unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// Starts a run and kills it (SIGKILL) `delay` after `started` says the stage is under way;
/// returns whether it was still running then.
fn kill_during(config: &Path, started: &dyn Fn() -> bool, delay: Duration) -> bool {
    let mut child = command(config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !started() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "the stage never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

fn read(run: &Path, file: &str) -> String {
    std::fs::read_to_string(run.join(file)).unwrap_or_else(|e| panic!("{}: {e}", run.join(file).display()))
}

fn sorted_lines(run: &Path, file: &str) -> Vec<String> {
    let mut v: Vec<String> = read(run, file).lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_inside_each_stage_ends_identical_to_an_uninterrupted_one() {
    let (mock, url) = mock::serve().await;
    // Slow enough that a kill lands inside a stage, not between stages.
    mock.server.set_delay(Duration::from_millis(15));
    let tmp = tempfile::tempdir().unwrap();
    let whole = write_config(tmp.path(), "whole", &url);
    let killed = write_config(tmp.path(), "killed", &url);
    let (whole_run, killed_run) = (tmp.path().join("runs/whole"), tmp.path().join("runs/killed"));

    let out = run_async(&whole).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // What shows each stage under way: its first record, or (train) its first checkpoint.
    let evidence = [
        ("generate", "generate/direct/problems.jsonl"),
        ("solve", "solve/direct/solutions.jsonl"),
        ("train", "train/tiny/direct/curated/seed-42/checkpoints"),
        ("evaluate", "evaluate/tiny/baseline/math500.jsonl"),
    ];
    // "Random" points, fixed so a failure reproduces.
    let delays = [7u64, 23, 3, 11];
    let mut interrupted = Vec::new();
    for ((stage, path), ms) in evidence.into_iter().zip(delays) {
        let (killed, path) = (killed.clone(), killed_run.join(path));
        let started = move || path.is_dir() || lines(&path) > 0;
        let was_running =
            tokio::task::spawn_blocking(move || kill_during(&killed, &started, Duration::from_millis(ms)))
                .await
                .unwrap();
        interrupted.push((stage, was_running));
    }
    assert!(interrupted.iter().filter(|(_, r)| *r).count() >= 3, "kills that landed: {interrupted:?}");
    let out = run_async(&killed).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    for file in [
        "generate/direct/problems.jsonl",
        "generate/multi_turn/problems.jsonl",
        "solve/direct/solutions.jsonl",
        "solve/multi_turn/solutions.jsonl",
        "dedup/multi_turn/kept.jsonl",
        "verify/direct/curated/train.jsonl",
        "verify/multi_turn/curated/train.jsonl",
    ] {
        assert_eq!(read(&whole_run, file), read(&killed_run, file), "{file} after kills {interrupted:?}");
    }
    for label in ["direct", "multi_turn"] {
        let weights = format!("train/tiny/{label}/curated/seed-42/model/model.safetensors");
        assert!(
            std::fs::read(whole_run.join(&weights)).unwrap()
                == std::fs::read(killed_run.join(&weights)).unwrap(),
            "{weights} differs after kills {interrupted:?}"
        );
    }
    for label in ["baseline", "direct/curated/seed-42", "multi_turn/curated/seed-42"] {
        for b in ["math500", "minerva_math"] {
            let file = format!("evaluate/tiny/{label}/{b}.jsonl");
            assert_eq!(sorted_lines(&whole_run, &file), sorted_lines(&killed_run, &file), "{file}");
            assert_eq!(sorted_lines(&killed_run, &file).len(), 4, "{file}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_stops_at_once_names_the_key_variable_and_the_next_run_completes() {
    let (mock, url) = mock::serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "outage", &url);
    let run_dir = tmp.path().join("runs/outage");

    mock.refuse.store(true, Ordering::SeqCst);
    let out = run_async(&config).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 401") && stderr.contains(&format!("${KEY_VAR}")), "{stderr}");
    assert!(stderr.contains("[llm.gen] api_key_env"), "{stderr}");
    assert!(
        !stderr.contains(KEY) && !stderr.contains("sk-te"),
        "the key (or the server's echo of it) was printed: {stderr}"
    );
    // At once: one wave of Direct's conversations, not every retry of every call.
    let refused = mock.refused.load(Ordering::SeqCst);
    assert!(refused <= 6, "{refused} calls sent into a refused key");
    // Nothing is remembered as done.
    assert!(!run_dir.join("generate/manifest.json").exists());
    assert_eq!(lines(&run_dir.join("generate/direct/conversations.jsonl")), 0);

    mock.refuse.store(false, Ordering::SeqCst);
    let out = run_async(&config).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for stage in ["generate", "solve", "dedup", "verify", "train", "evaluate", "report"] {
        assert!(run_dir.join(stage).join("manifest.json").exists(), "{stage}");
    }
    assert_eq!(lines(&run_dir.join("generate/direct/problems.jsonl")), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_past_the_tolerance_fail_the_stage_and_are_asked_again_next_run() {
    let (mock, url) = mock::serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "flaky", &url);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max_concurrency = 2\n", "max_concurrency = 2\nmax_retries = 0\n");
    std::fs::write(&config, text).unwrap();
    let run_dir = tmp.path().join("runs/flaky");

    mock.fail_solve.store(true, Ordering::SeqCst);
    let out = run_async(&config).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("solve direct: calls") && stderr.contains("http_status: "), "{stderr}");
    assert!(stderr.contains("run.max_failed_fraction = 0.02"), "{stderr}");
    assert!(run_dir.join("generate/manifest.json").exists() && !run_dir.join("solve/manifest.json").exists());

    mock.fail_solve.store(false, Ordering::SeqCst);
    let out = run_async(&config).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(run_dir.join("solve/direct/solutions.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 6);
    for r in &records {
        assert_eq!(r["failed_calls"].as_array().unwrap().len(), 0, "{r}");
        assert_eq!(r["solutions"].as_array().unwrap().len(), 2, "{r}");
    }
}
