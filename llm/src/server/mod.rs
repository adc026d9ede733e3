//! Inference servers a stage starts for an `[llm.<name>.serve]` section: vLLM, SGLang,
//! llama.cpp's `llama-server`, this binary's `pipeline serve`, or any command. The server runs
//! in its own process group with its output in a log file in the stage folder; the stage waits
//! until `/v1/models` lists the model (or `/health` answers, for servers that list nothing),
//! and the server is stopped (SIGTERM to the group, SIGKILL after a grace period) when the
//! stage is done with it: on success, on failure, and when the pipeline itself gets Ctrl-C or
//! SIGTERM (Slurm's pre-emption signal). A server that exits or never comes up fails the stage
//! with the tail of its log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::params::{ServeConfig, ServeEngine};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{key}: cannot start `{program}`: {source} (is it installed on this node?)")]
    Spawn { key: String, program: String, source: std::io::Error },
    #[error("{key}: {message}; the server's log ({log}) ends with:\n{tail}")]
    Failed { key: String, message: String, log: PathBuf, tail: String },
    #[error("{1}: {0}")]
    Io(std::io::Error, String),
}

/// Process groups of the servers running now, for the signal handler.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();
/// Set when Ctrl-C or SIGTERM arrived while servers ran: the handler is stopping them and
/// will exit the process itself.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether an interrupt is being handled (the process is about to exit with the signal's
/// code): the main thread must not exit on its own first, with its servers half stopped.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A running server; dropping it stops it.
pub struct RunningServer {
    child: Child,
    base_url: String,
    log: PathBuf,
}

impl RunningServer {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Starts the server configured at `key` (`llm.solver.serve`, `evaluate.serve`: what errors
    /// name), serving `served` (the name requests ask for), its
    /// output in `log`, and waits until it lists the model.
    pub async fn start(key: &str, served: &str, spec: &ServeConfig, log: &Path) -> Result<Self, ServerError> {
        let io = |e: std::io::Error| ServerError::Io(e, key.to_owned());
        let host = "127.0.0.1";
        let port = match spec.port {
            0 => free_port().map_err(io)?,
            p => p,
        };
        let weights = spec.model.clone().unwrap_or_else(|| served.to_owned());
        let argv = command_line(spec, &weights, served, host, port);
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let out = std::fs::File::create(log).map_err(io)?;
        let err = out.try_clone().map_err(io)?;
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).envs(&spec.env).stdin(Stdio::null()).stdout(out).stderr(err);
        // Its own group: a signal meant for it reaches its workers too (vLLM forks them), and
        // the terminal's Ctrl-C reaches it only through us.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        install_signal_handler();
        let child = command.spawn().map_err(|source| ServerError::Spawn {
            key: key.to_owned(),
            program: argv[0].clone(),
            source,
        })?;
        GROUPS.lock().expect("the group list").push(child.id() as i32);
        let mut server = Self { child, base_url: format!("http://{host}:{port}/v1"), log: log.to_owned() };
        tracing::info!("{key}: started {} (log: {})", argv.join(" "), log.display());
        let timeout = Duration::from_secs_f64(spec.startup_timeout_s);
        server.wait_ready(key, served, timeout).await?;
        tracing::info!("{key}: {} serves `{served}`", server.base_url);
        Ok(server)
    }

    async fn wait_ready(&mut self, key: &str, served: &str, timeout: Duration) -> Result<(), ServerError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("a client");
        let start = Instant::now();
        let fail = |server: &Self, message: String| ServerError::Failed {
            key: key.to_owned(),
            message,
            log: server.log.clone(),
            tail: tail(&server.log, 20),
        };
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| ServerError::Io(e, key.to_owned()))? {
                return Err(fail(self, format!("the server exited ({status}) before it was ready")));
            }
            if let Ok(resp) = http.get(format!("{}/models", self.base_url)).send().await
                && resp.status().is_success()
            {
                let listed: Vec<String> = resp
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["data"].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_owned))
                    .collect();
                if listed.iter().any(|m| m == served) {
                    return Ok(());
                }
                if !listed.is_empty() {
                    return Err(fail(
                        self,
                        format!("the server lists {listed:?}, not `{served}` (the name requests ask for)"),
                    ));
                }
            }
            if let Ok(resp) = http.get(self.base_url.replace("/v1", "/health")).send().await
                && resp.status().is_success()
                && start.elapsed() > Duration::from_secs(2)
            {
                // Up, and lists no models at all: some servers only answer /health.
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(fail(
                    self,
                    format!(
                        "not ready after {:.0} s (serve.startup_timeout_s): {}/models never listed `{served}`",
                        timeout.as_secs_f64(),
                        self.base_url
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        stop_group(group, &mut self.child);
        GROUPS.lock().expect("the group list").retain(|&g| g != group);
    }
}

/// Sends `sig` to process group `group`; true when the group still exists (0 probes).
fn signal_group(group: i32, sig: i32) -> bool {
    // SAFETY: kill(2) on a process group we created; no memory is involved.
    unsafe { libc::kill(-group, sig) == 0 }
}

/// SIGTERM to the group, then SIGKILL if it has not exited within 15 s.
fn stop_group(group: i32, child: &mut Child) {
    signal_group(group, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // Workers of the group may outlive the leader: make sure they go too.
            signal_group(group, libc::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal_group(group, libc::SIGKILL);
    let _ = child.wait();
}

/// On Ctrl-C or SIGTERM while servers run: stop them, then exit as the signal would have.
fn install_signal_handler() {
    HANDLER.call_once(|| {
        let spawned = std::thread::Builder::new().name("server-signals".into()).spawn(|| {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (mut term, mut int) = (
                    signal(SignalKind::terminate()).expect("SIGTERM"),
                    signal(SignalKind::interrupt()).expect("SIGINT"),
                );
                let code = tokio::select! {
                    _ = term.recv() => 143,
                    _ = int.recv() => 130,
                };
                INTERRUPTED.store(true, Ordering::SeqCst);
                let groups = GROUPS.lock().expect("the group list").clone();
                tracing::warn!("interrupted: stopping {} inference server(s)", groups.len());
                for g in &groups {
                    signal_group(*g, libc::SIGTERM);
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && groups.iter().any(|&g| signal_group(g, 0)) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                for g in &groups {
                    signal_group(*g, libc::SIGKILL);
                }
                std::process::exit(code);
            });
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot watch for signals ({e}): an interrupted run may leave its server running");
        }
    });
}

/// The engine's command line.
fn command_line(spec: &ServeConfig, weights: &str, served: &str, host: &str, port: u16) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let (port_s, tp) = (port.to_string(), spec.tensor_parallel.to_string());
    // vLLM and SGLang take the same listening and naming flags.
    let listen = s(&["--host", host, "--port", &port_s, "--served-model-name", served]);
    let mut argv = match spec.engine {
        ServeEngine::Vllm => {
            [s(&["vllm", "serve", weights]), listen, s(&["--tensor-parallel-size", &tp])].concat()
        }
        ServeEngine::Sglang => {
            let launch = s(&["python3", "-m", "sglang.launch_server", "--model-path", weights]);
            [launch, listen, s(&["--tp", &tp])].concat()
        }
        ServeEngine::LlamaCpp => {
            let mut v =
                s(&["llama-server", "-m", weights, "--host", host, "--port", &port_s, "--alias", served]);
            if spec.gpus() > 0 {
                v.extend(s(&["-ngl", "999"]));
            }
            v
        }
        ServeEngine::Pipeline => {
            let me =
                std::env::current_exe().map_or_else(|_| "pipeline".to_owned(), |p| p.display().to_string());
            s(&[
                &me,
                "serve",
                "--model",
                weights,
                "--host",
                host,
                "--port",
                &port_s,
                "--served-model-name",
                served,
            ])
        }
        ServeEngine::Command => {
            let template = spec.command.as_deref().unwrap_or_default();
            let line = template
                .replace("{model}", weights)
                .replace("{served}", served)
                .replace("{port}", &port_s)
                .replace("{host}", host)
                .replace("{gpus}", &spec.gpus().to_string());
            // `exec`: the shell becomes the server, so the group leader is the server itself.
            s(&["sh", "-c", &format!("exec {line}")])
        }
    };
    if spec.engine != ServeEngine::Command {
        argv.extend(spec.args.iter().cloned());
    }
    argv
}

/// A port nobody listens on now (the OS's pick; released for the server to take).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last `n` lines of `path`.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let shown = lines[lines.len().saturating_sub(n)..].join("\n");
    if shown.is_empty() { "(empty)".to_owned() } else { shown }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_follow_each_engine() {
        let spec = |engine| ServeConfig {
            engine,
            tensor_parallel: 4,
            args: vec!["--x".into()],
            ..ServeConfig::default()
        };
        let v = command_line(&spec(ServeEngine::Vllm), "/m/q", "q", "127.0.0.1", 8001).join(" ");
        assert_eq!(
            v,
            "vllm serve /m/q --host 127.0.0.1 --port 8001 --served-model-name q --tensor-parallel-size 4 --x"
        );
        let v = command_line(&spec(ServeEngine::Sglang), "/m/q", "q", "127.0.0.1", 8001).join(" ");
        assert!(
            v.contains("sglang.launch_server --model-path /m/q")
                && v.contains("--tp 4")
                && v.ends_with("--x"),
            "{v}"
        );
        let v = command_line(&spec(ServeEngine::LlamaCpp), "m.gguf", "q", "127.0.0.1", 8001).join(" ");
        assert!(v.starts_with("llama-server -m m.gguf") && v.contains("-ngl 999"), "{v}");
        let command = ServeConfig {
            engine: ServeEngine::Command,
            command: Some("srv --weights {model} --name {served} --port {port} --gpus {gpus}".into()),
            ..spec(ServeEngine::Command)
        };
        let v = command_line(&command, "w", "q", "127.0.0.1", 9).join(" ");
        assert_eq!(v, "sh -c exec srv --weights w --name q --port 9 --gpus 4");
    }
}
