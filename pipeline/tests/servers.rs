//! Inference servers started by the stages that need them (`[llm.<name>.serve]`): stand-in
//! commands that never come up, die at once or come up late; and the real thing, `pipeline
//! serve` on the tiny test model, started, used and stopped by a solve stage, and stopped too
//! when the stage is killed with SIGTERM.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use llm::server::RunningServer;
use pipeline::config::{ServeConfig, ServeEngine};
use trainer::model::config::Family;

fn command(line: &str, timeout_s: f64) -> ServeConfig {
    ServeConfig {
        engine: ServeEngine::Command,
        command: Some(line.to_owned()),
        startup_timeout_s: timeout_s,
        ..ServeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_in_servers_that_never_come_up_or_die_fail_with_their_log() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("server.log");

    let started = Instant::now();
    let never = command("sh -c 'echo loading weights; sleep 60' # {port}", 2.0);
    let err = RunningServer::start("llm.solver.serve", "q", &never, &log)
        .await
        .err()
        .expect("never ready")
        .to_string();
    assert!(err.starts_with("llm.solver.serve: not ready after 2 s (serve.startup_timeout_s)"), "{err}");
    assert!(err.contains("loading weights"), "the log tail is shown: {err}");
    assert!(started.elapsed() < Duration::from_secs(20), "the server was not stopped promptly");

    let dies = command("sh -c 'echo CUDA out of memory on port {port} >&2; exit 3'", 30.0);
    let err =
        RunningServer::start("llm.solver.serve", "q", &dies, &log).await.err().expect("it died").to_string();
    assert!(err.contains("exited") && err.contains("CUDA out of memory on port"), "{err}");

    let missing = ServeConfig { engine: ServeEngine::Vllm, ..ServeConfig::default() };
    let err =
        RunningServer::start("llm.solver.serve", "q", &missing, &log).await.err().map(|e| e.to_string());
    // vLLM is not on CI machines: the error says which program could not start.
    if let Some(err) = err {
        assert!(err.contains("cannot start `vllm`") || err.contains("exited"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stand_in_that_comes_up_late_is_waited_for_and_stopped_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    // A static "server": /v1/models is a file listing the model, served after a delay.
    std::fs::create_dir_all(tmp.path().join("www/v1")).unwrap();
    std::fs::write(tmp.path().join("www/v1/models"), r#"{"object": "list", "data": [{"id": "q"}]}"#).unwrap();
    let late = command(
        &format!(
            "sh -c 'sleep 1.5; exec python3 -m http.server {{port}} --bind 127.0.0.1 --directory {}'",
            tmp.path().join("www").display()
        ),
        30.0,
    );
    let started = Instant::now();
    let server =
        RunningServer::start("llm.solver.serve", "q", &late, &tmp.path().join("server.log")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let addr = server.base_url().trim_start_matches("http://").trim_end_matches("/v1").to_owned();
    drop(server);
    std::net::TcpListener::bind(&addr).expect("the port is free once the server is dropped");
}

fn config(tmp: &Path, mock_url: &str) -> std::path::PathBuf {
    let path = tmp.join("served.toml");
    let text = format!(
        r#"[run]
name = "served"
out_dir = "{runs}"
[llm.gen]
provider = "openai"
base_url = "{mock_url}"
model = "m"
[llm.solver]
provider = "openai"
model = "tiny"
max_concurrency = 8
max_tokens = 6
[llm.solver.serve]
engine = "pipeline"
model = "{model}"
startup_timeout_s = 120
[generate]
llm = "gen"
strategies = ["direct"]
num_problems = {n}
[solve]
llm = "solver"
num_solutions = 2
"#,
        runs = tmp.join("runs").display(),
        model = tmp.join("tiny").display(),
        n = "@N@",
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path, n: usize, stages: &str) -> Command {
    let text = std::fs::read_to_string(config).unwrap().replace("@N@", &n.to_string());
    let path = config.with_file_name(format!("served-{n}.toml"));
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.args(["run", "--config", path.to_str().unwrap(), "--stages", stages]).current_dir(common::root());
    cmd
}

/// Processes whose command line names `needle` (our server children), from /proc.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) && cmdline.contains(" serve ") {
                found.push(cmdline);
            }
        }
    }
    found
}

fn port_of(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap();
    let url = text.lines().find_map(|l| l.split(" on ").nth(1).filter(|_| l.starts_with("serving"))).unwrap();
    url.trim().trim_start_matches("http://").trim_end_matches("/v1").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_serves_its_model_with_pipeline_serve_and_stops_it_even_when_killed() {
    let (_mock, url) = common::mock::serve().await;
    let tmp = tempfile::tempdir().unwrap();
    common::tiny_student(&tmp.path().join("tiny"), Family::Llama, 2);
    let cfg = config(tmp.path(), &url);
    let model_dir = tmp.path().join("tiny").display().to_string();

    let out = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || run(&cfg, 6, "generate,solve").output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let solve = tmp.path().join("runs/served/solve");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(solve.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["counts"]["direct"]["solutions"], 12, "{manifest}");
    let log = solve.join("server-solver.log");
    let addr = port_of(&log);
    assert!(processes_with(&model_dir).is_empty(), "the server outlived its stage");
    std::net::TcpListener::bind(&addr).expect("its port is free again");

    // Killed mid-stage (SIGTERM, as Slurm pre-empts): the server goes with it.
    std::fs::remove_file(&log).unwrap();
    let mut child = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || run(&cfg, 60, "generate,solve").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("serving")
        || processes_with(&model_dir).is_empty()
    {
        assert!(Instant::now() < deadline, "the server never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(143), "{status}");
    assert!(processes_with(&model_dir).is_empty(), "a server survived: {:?}", processes_with(&model_dir));
}

/// `evaluate.serve`: each target (the baseline, then the fine-tuned export) is served in turn
/// by `pipeline serve` and evaluated through it, with the very replies the in-process engine
/// gives (greedy, f32).
#[test]
fn evaluation_serves_each_target_in_turn_with_the_local_engines_replies() {
    let tmp = tempfile::tempdir().unwrap();
    common::tiny_student(&tmp.path().join("tiny"), Family::Qwen3, 4);
    let data = tmp.path().join("pairs.jsonl");
    std::fs::write(&data, "{\"prompt\": \"What is 1 + 1?\", \"completion\": \"\\\\boxed{2}\"}\n").unwrap();
    let sets = [
        format!("run.out_dir={}", tmp.path().join("runs").display()),
        format!("train.data={}", data.display()),
        format!("train.students={{tiny={{model_path=\"{}\"}}}}", tmp.path().join("tiny").display()),
        "train.epochs=1".into(),
        "evaluate.benchmarks=[\"math500\"]".into(),
        "evaluate.subset=3".into(),
        "evaluate.max_new_tokens=5".into(),
        "evaluate.dtype=\"f32\"".into(),
    ];
    let run = |extra: &[&str], stages: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
        cmd.args(["run", "--config", "configs/default.toml", "--stages", stages]).current_dir(common::root());
        for s in sets.iter().map(String::as_str).chain(extra.iter().copied()) {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let evaluate = tmp.path().join("runs/default/evaluate");
    let responses = |label: &str| -> Vec<String> {
        std::fs::read_to_string(evaluate.join(format!("tiny/{label}/math500.jsonl")))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["response"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    run(&[], "train,evaluate");
    let local = (responses("baseline"), responses("custom/seed-42"));
    run(&["evaluate.serve={engine=\"pipeline\"}"], "evaluate");
    for log in ["server-evaluate-tiny-baseline.log", "server-evaluate-tiny-custom-seed-42.log"] {
        let text = std::fs::read_to_string(evaluate.join(log)).unwrap();
        assert!(text.contains("serving") && text.contains("stopped"), "{log}: {text}");
    }
    assert_eq!(local.0.len(), 3);
    assert_eq!((responses("baseline"), responses("custom/seed-42")), local);
}
