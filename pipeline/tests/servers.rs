//! Inference servers started by the stages that need them (`[llm.<name>.serve]`): stand-in
//! commands that never come up, die at once or come up late; a fake server (a Python script)
//! that shows which arguments it got, whose port is taken by another process, and that is left
//! behind by a pipeline killed with SIGKILL; and the real thing, `pipeline serve` on the tiny
//! test model, started, used and stopped by a solve stage, and stopped too when the stage is
//! killed with SIGTERM.

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

/// Starts `spec` as the solver's server serving `q`, its log and pid file where a run keeps them
/// (`dir/server.log`, `dir/servers/solve-solver.pid`); a failure as its message.
async fn start(dir: &Path, spec: &ServeConfig) -> Result<RunningServer, String> {
    let pid = dir.join("servers/solve-solver.pid");
    RunningServer::start("llm.solver.serve", "q", spec, &dir.join("server.log"), &pid)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_in_servers_that_never_come_up_or_die_fail_with_their_log() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("server.log");

    let pid = tmp.path().join("servers/solve-solver.pid");

    let started = Instant::now();
    let never = command("sh -c 'echo loading weights; sleep 60' # {port}", 2.0);
    let err = start(tmp.path(), &never).await.err().expect("never ready");
    assert!(err.starts_with("llm.solver.serve: not ready after 2 s (serve.startup_timeout_s)"), "{err}");
    assert!(err.contains("loading weights"), "the log tail is shown: {err}");
    assert!(started.elapsed() < Duration::from_secs(20), "the server was not stopped promptly");

    let dies = command("sh -c 'echo CUDA out of memory on port {port} >&2; exit 3'", 30.0);
    let err = start(tmp.path(), &dies).await.err().expect("it died");
    assert!(err.contains("exited") && err.contains("CUDA out of memory on port"), "{err}");
    assert!(!err.contains("loading weights"), "the tail is this attempt's: {err}");

    let missing = ServeConfig { engine: ServeEngine::Vllm, ..ServeConfig::default() };
    let err = start(tmp.path(), &missing).await.err();
    // vLLM is not on CI machines: the error says which program could not start.
    if let Some(err) = err {
        assert!(err.contains("cannot start `vllm`") || err.contains("exited"), "{err}");
    }
    // Each attempt is appended under its own header: a failed run's log is never lost.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("loading weights") && text.contains("CUDA out of memory"), "{text}");
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("===== ")).collect();
    assert_eq!(headers.len(), 3, "{text}");
    assert!(
        headers[1].contains("llm.solver.serve: attempt 1: sh -c 'echo CUDA out of memory on port"),
        "{text}"
    );
    assert!(!pid.exists(), "a stopped server's pid file is removed");
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
    let server = start(tmp.path(), &late).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let addr = server.base_url().trim_start_matches("http://").trim_end_matches("/v1").to_owned();
    drop(server);
    std::net::TcpListener::bind(&addr).expect("the port is free once the server is dropped");
}

/// A fake OpenAI-compatible server: `python3 <script> PORT SERVED DIR [ARGS...]` lists SERVED at
/// /v1/models, answers chat completions (slowly while DIR/slow exists), ignores SIGTERM when
/// DIR/stubborn exists, and writes its pid and ARGS to DIR/PORT.json.
const FAKE_SERVER: &str = r#"
import http.server, json, os, signal, sys, time
port, served, state = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if os.path.exists(os.path.join(state, "stubborn")):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, body):
        body = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply({"object": "list", "data": [{"id": served}]})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        while os.path.exists(os.path.join(state, "slow")):
            time.sleep(0.1)
        message = {"role": "assistant", "content": "\\boxed{1}"}
        self.reply({"id": "x", "object": "chat.completion", "created": 0, "model": served,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", port), Handler)
with open(os.path.join(state, f"{port}.json"), "w") as f:
    json.dump({"pid": os.getpid(), "argv": sys.argv[4:]}, f)
server.serve_forever()
"#;

/// The fake server's script and its state folder (`dir/fake.py`, `dir/state/`); the fakes
/// still running when this is dropped are killed.
struct Fakes {
    script: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Fakes {
    fn new(dir: &Path) -> Self {
        let (script, state) = (dir.join("fake.py"), dir.join("state"));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(&script, FAKE_SERVER).unwrap();
        Self { script, state }
    }

    /// The records (`{"pid", "argv"}`) of the fakes that started, by port.
    fn records(&self) -> Vec<(u16, serde_json::Value)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.state).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(port) = name.strip_suffix(".json").and_then(|p| p.parse().ok())
                && let Ok(record) =
                    serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap_or_default())
            {
                found.push((port, record));
            }
        }
        found
    }

    fn record(&self, port: u16) -> Option<serde_json::Value> {
        self.records().into_iter().find(|(p, _)| *p == port).map(|(_, r)| r)
    }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        for (_, record) in self.records() {
            let _ = Command::new("kill")
                .args(["-KILL", &record["pid"].to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn alive(pid: &serde_json::Value) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie (Z) has exited already.
    !stat.is_empty() && !stat.rsplit(')').next().unwrap_or_default().trim_start().starts_with('Z')
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_values_reach_the_server_as_one_argument_each_and_never_run() {
    let tmp = tempfile::tempdir().unwrap();
    let fakes = Fakes::new(tmp.path());
    let ran = |name: &str| tmp.path().join(name);
    let model = format!(
        "$(touch {}) `touch {}`; touch {} && echo '{{port}}'",
        ran("a").display(),
        ran("b").display(),
        ran("c").display()
    );
    let spec = ServeConfig {
        model: Some(model.clone()),
        ..command(
            &format!(
                "python3 {} {{port}} {{served}} '{}' {{model}} # a comment",
                fakes.script.display(),
                fakes.state.display()
            ),
            30.0,
        )
    };
    let server = start(tmp.path(), &spec).await.unwrap();
    let port: u16 = server.base_url().rsplit(':').next().unwrap().trim_end_matches("/v1").parse().unwrap();
    assert_eq!(fakes.record(port).unwrap()["argv"], serde_json::json!([model]), "one argument, as written");
    drop(server);
    for name in ["a", "b", "c"] {
        assert!(!ran(name).exists(), "the model name ran a command (it created {name})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_another_process_listens_on_is_never_taken_for_our_server() {
    let tmp = tempfile::tempdir().unwrap();
    let fakes = Fakes::new(tmp.path());
    let log = tmp.path().join("server.log");

    // Another user's server, serving the very name we serve, on the port the section names.
    let port = free_port();
    let mut other = Command::new("python3")
        .args([fakes.script.to_str().unwrap(), &port.to_string(), "q", fakes.state.to_str().unwrap()])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while fakes.record(port).is_none() {
        assert!(Instant::now() < deadline, "the other server never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Our server would never come up: whatever answers is not ours.
    let ours = ServeConfig { port, ..command("sleep 30 {port}", 10.0) };
    let err = start(tmp.path(), &ours).await.err();
    let err = err.expect("another process's server was taken for ours");
    assert!(
        err.starts_with(&format!("llm.solver.serve.port = {port}: 127.0.0.1:{port} is already in use")),
        "{err}"
    );
    other.kill().unwrap();
    other.wait().unwrap();
    std::fs::remove_file(fakes.state.join(format!("{port}.json"))).unwrap();

    // A port picked free, taken by another process (not in our server's process group) before
    // our server binds it: refused, and another port tried, each time.
    let racing = command(
        &format!(
            "sh -c 'setsid -f python3 {} \"$0\" q {}; exec sleep 30' {{port}}",
            fakes.script.display(),
            fakes.state.display()
        ),
        20.0,
    );
    let err = start(tmp.path(), &racing).await.err();
    let err = err.expect("another process's server was taken for ours");
    assert!(
        err.contains("is held by another process, not by this server") && err.contains("(tried 3 ports)"),
        "{err}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("llm.solver.serve: attempt 3: sh -c"), "{text}");
    assert_eq!(fakes.records().len(), 3, "one racer per attempt");
}

#[test]
fn a_server_outlives_the_thread_that_started_it() {
    // Linux sends the parent-death signal when the thread that forked the child exits: a
    // server started from a short-lived thread must not get it then.
    let tmp = tempfile::tempdir().unwrap();
    let fakes = Fakes::new(tmp.path());
    let spec =
        command(&format!("python3 {} {{port}} q {}", fakes.script.display(), fakes.state.display()), 30.0);
    let dir = tmp.path().to_owned();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(start(&dir, &spec)).unwrap()
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (_, record) = fakes.records().pop().unwrap();
    assert!(alive(&record["pid"]), "the server died with the thread that started it");
    drop(server);
    assert!(!alive(&record["pid"]));
}

fn command_config(tmp: &Path, mock_url: &str, fakes: &Fakes, port: u16) -> std::path::PathBuf {
    let serve = format!(
        "model = \"q\"\nmax_concurrency = 2\nmax_tokens = 6\n[llm.solver.serve]\nengine = \"command\"\n\
         command = \"python3 {script} {{port}} {{served}} {state}\"\nport = {port}\nstartup_timeout_s = 30",
        script = fakes.script.display(),
        state = fakes.state.display(),
    );
    served_config(&tmp.join("served-command.toml"), tmp, mock_url, &serve, "4")
}

/// A run whose generator is the mock at `mock_url` and whose solver is served as `solver`
/// says (its model, limits and `[llm.solver.serve]` section), asking for `n` problems.
fn served_config(path: &Path, tmp: &Path, mock_url: &str, solver: &str, n: &str) -> std::path::PathBuf {
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
{solver}
[generate]
llm = "gen"
strategies = ["direct"]
num_problems = {n}
[solve]
llm = "solver"
num_solutions = 2
"#,
        runs = tmp.join("runs").display(),
    );
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dies_with_a_pipeline_killed_outright_and_the_next_run_reaps_one_that_did_not() {
    let (_mock, url) = common::mock::serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let fakes = Fakes::new(tmp.path());
    let port = free_port();
    let cfg = command_config(tmp.path(), &url, &fakes, port);
    let pid_file = tmp.path().join("runs/served/servers/solve-solver.pid");
    let pipeline = |stages: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
        cmd.args(["run", "--config", cfg.to_str().unwrap(), "--stages", stages]).current_dir(common::root());
        cmd
    };
    // Runs the stages until the server answers, then SIGKILLs the pipeline: the server's record.
    let killed_while_serving = |stages: &str| {
        let _ = std::fs::remove_file(fakes.state.join(format!("{port}.json")));
        let mut child = pipeline(stages).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let record = loop {
            if let Some(record) = fakes.record(port) {
                break record;
            }
            assert!(child.try_wait().unwrap().is_none(), "the pipeline ended before its server came up");
            assert!(Instant::now() < deadline, "the server never came up");
            std::thread::sleep(Duration::from_millis(50));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        record
    };
    let gone_within = |record: &serde_json::Value, limit: Duration| {
        let deadline = Instant::now() + limit;
        while alive(&record["pid"]) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        !alive(&record["pid"])
    };
    std::fs::write(fakes.state.join("slow"), "").unwrap();
    tokio::task::block_in_place(|| {
        // No handler runs on SIGKILL: the parent-death signal stops the server.
        let first = killed_while_serving("generate,solve");
        assert!(gone_within(&first, Duration::from_secs(10)), "the server outlived its pipeline");

        // A server that ignores SIGTERM survives it; the next run reaps it before it starts its own.
        std::fs::write(fakes.state.join("stubborn"), "").unwrap();
        let stubborn = killed_while_serving("solve");
        std::thread::sleep(Duration::from_millis(500));
        assert!(alive(&stubborn["pid"]), "a server ignoring SIGTERM was expected to survive");
        assert!(pid_file.exists(), "the killed run's record of its server");
        std::fs::remove_file(fakes.state.join("stubborn")).unwrap();
        std::fs::remove_file(fakes.state.join("slow")).unwrap();
        let out = pipeline("solve").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!alive(&stubborn["pid"]), "the left-over server was not reaped");
        assert!(
            stderr.contains(&format!(
                "reaped the llm.solver.serve server a killed run left running (pid {}",
                stubborn["pid"]
            )) && stderr.contains("SIGTERM, then SIGKILL"),
            "{stderr}"
        );
        assert!(!pid_file.exists(), "the finished run's pid file is removed");
    });
}

fn config(tmp: &Path, mock_url: &str) -> std::path::PathBuf {
    let serve = format!(
        "model = \"tiny\"\nmax_concurrency = 8\nmax_tokens = 6\n[llm.solver.serve]\nengine = \"pipeline\"\n\
         model = \"{model}\"\nstartup_timeout_s = 120",
        model = tmp.join("tiny").display(),
    );
    served_config(&tmp.join("served.toml"), tmp, mock_url, &serve, "@N@")
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
