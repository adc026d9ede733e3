//! Inference servers a stage starts for an `[llm.<name>.serve]` section: vLLM, SGLang,
//! llama.cpp's `llama-server`, this binary's `pipeline serve`, or any command. The server runs
//! in its own process group with its output appended to a log file in the stage folder (a
//! header line per attempt); the stage waits until `/v1/models` lists the model (or `/health`
//! answers, for servers that list nothing) *from a socket of the server's own process group*,
//! and the server is stopped (SIGTERM to the group, SIGKILL after a grace period) when the
//! stage is done with it: on success, on failure, and when the pipeline itself gets Ctrl-C or
//! SIGTERM (Slurm's pre-emption signal). Should the pipeline be killed outright, the server
//! gets a parent-death signal ([`spawner`]), and the next run that starts a server reaps what
//! is left, from the pid file in the run folder ([`pidfile`]). A server that exits or never
//! comes up fails the stage with the tail of its log.

mod command;
mod error;
mod pidfile;
mod procs;
mod signals;
mod spawner;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::params::ServeConfig;

pub use command::check_template;
pub use error::ServerError;
pub use pidfile::reap_orphans;
pub use signals::interrupted;

use procs::PortHolder;

/// A running server; dropping it stops it.
pub struct RunningServer {
    child: Child,
    base_url: String,
    /// Where this attempt's output starts in the log (earlier attempts' output stays above).
    log_from: u64,
    /// Its pid file, removed when it is stopped (none where /proc cannot describe it).
    pid_file: Option<PathBuf>,
}

/// Why a started server is not usable; `port_taken`: another process holds its port.
struct Unready {
    message: String,
    port_taken: bool,
}

/// Tries for a server on a port of its own (`port = 0`): a port picked free can be taken by
/// another process before the server binds it.
const PORT_ATTEMPTS: u32 = 3;

impl RunningServer {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Starts the server configured at `key` (`llm.solver.serve`, `evaluate.serve`: what errors
    /// name), serving `served` (the name requests ask for), its output appended to `log`, and
    /// waits until it lists the model. Its pid file is `pid_file`; first, the servers that
    /// killed runs left behind in that folder are reaped.
    pub async fn start(
        key: &str,
        served: &str,
        spec: &ServeConfig,
        log: &Path,
        pid_file: &Path,
    ) -> Result<Self, ServerError> {
        let io = |e: std::io::Error| ServerError::Io(e, key.to_owned());
        if let Some(dir) = pid_file.parent() {
            reap_orphans(dir);
        }
        let host = "127.0.0.1";
        let weights = spec.model.clone().unwrap_or_else(|| served.to_owned());
        let attempts = if spec.port == 0 { PORT_ATTEMPTS } else { 1 };
        let mut attempt = 1;
        loop {
            let port = match spec.port {
                0 => free_port().map_err(io)?,
                p => {
                    ensure_free(key, host, p)?;
                    p
                }
            };
            let argv = command::command_line(spec, &weights, served, host, port)
                .map_err(|message| ServerError::Command { key: key.to_owned(), message })?;
            let (out, log_from) = open_log(log, key, attempt, &argv).map_err(io)?;
            let err = out.try_clone().map_err(io)?;
            let mut command = Command::new(&argv[0]);
            command.args(&argv[1..]).envs(&spec.env).stdin(Stdio::null()).stdout(out).stderr(err);
            // Its own group: a signal meant for it reaches its workers too (vLLM forks them), and
            // the terminal's Ctrl-C reaches it only through us.
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            signals::install_handler();
            let child = spawner::spawn(command).map_err(|source| ServerError::Spawn {
                key: key.to_owned(),
                program: argv[0].clone(),
                source,
            })?;
            signals::track(child.id() as i32);
            let mut server =
                Self { child, base_url: format!("http://{host}:{port}/v1"), log_from, pid_file: None };
            if let Some(record) = pidfile::PidRecord::of(key, server.group(), &argv) {
                if let Some(dir) = pid_file.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                record.write(pid_file).map_err(|e| ServerError::Io(e, pid_file.display().to_string()))?;
                server.pid_file = Some(pid_file.to_owned());
            }
            tracing::info!("{key}: started {} (log: {})", argv.join(" "), log.display());
            let timeout = Duration::from_secs_f64(spec.startup_timeout_s);
            match server.wait_ready(served, port, timeout).await {
                Ok(()) => {
                    tracing::info!("{key}: {} serves `{served}`", server.base_url);
                    return Ok(server);
                }
                Err(u) if u.port_taken && attempt < attempts => {
                    tracing::warn!("{key}: {}; trying another port", u.message);
                    attempt += 1;
                }
                Err(u) => {
                    let message = match attempts {
                        1 => u.message,
                        n => format!("{} (tried {n} ports)", u.message),
                    };
                    return Err(ServerError::Failed {
                        key: key.to_owned(),
                        message,
                        log: log.to_owned(),
                        tail: tail(log, server.log_from, 20),
                    });
                }
            }
        }
    }

    fn group(&self) -> i32 {
        self.child.id() as i32
    }

    async fn wait_ready(&mut self, served: &str, port: u16, timeout: Duration) -> Result<(), Unready> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("a client");
        let start = Instant::now();
        let fail = |message: String| Unready { message, port_taken: false };
        let taken = |message: String| Unready { message, port_taken: true };
        loop {
            let exited = self.child.try_wait().map_err(|e| fail(format!("cannot watch the server: {e}")))?;
            // Whose socket answers on the port: answers from another process (a stale server,
            // another user's) must never be taken, and cached, as this server's.
            let holder = procs::port_holder(port, self.group());
            if let Some(status) = exited {
                return Err(match holder {
                    PortHolder::Other => taken(format!(
                        "the server exited ({status}) before it was ready: 127.0.0.1:{port} is taken by \
                         another process, so it could not listen there"
                    )),
                    _ => fail(format!("the server exited ({status}) before it was ready")),
                });
            }
            if holder == PortHolder::Other {
                return Err(taken(format!(
                    "127.0.0.1:{port} is held by another process, not by this server (process group {}): \
                     its answers would not be this server's",
                    self.group()
                )));
            }
            if holder != PortHolder::Nobody
                && let Ok(resp) = http.get(format!("{}/models", self.base_url)).send().await
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
                    return Err(fail(format!(
                        "the server lists {listed:?}, not `{served}` (the name requests ask for)"
                    )));
                }
            }
            if holder != PortHolder::Nobody
                && let Ok(resp) = http.get(self.base_url.replace("/v1", "/health")).send().await
                && resp.status().is_success()
                && start.elapsed() > Duration::from_secs(2)
            {
                // Up, and lists no models at all: some servers only answer /health.
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(fail(format!(
                    "not ready after {:.0} s (serve.startup_timeout_s): {}/models never listed `{served}`",
                    timeout.as_secs_f64(),
                    self.base_url
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let group = self.group();
        signals::stop_group(group, &mut self.child);
        signals::untrack(group);
        if let Some(p) = &self.pid_file {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A port nobody listens on now (the OS's pick; released for the server to take).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A configured port must be free before the server starts: whatever answers there otherwise
/// is not ours.
fn ensure_free(key: &str, host: &str, port: u16) -> Result<(), ServerError> {
    match std::net::TcpListener::bind((host, port)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(ServerError::PortInUse { key: key.to_owned(), port })
        }
        _ => Ok(()),
    }
}

/// `log` opened for appending, after a header line for this attempt (the time, the key, the
/// attempt and the command: never the environment, which may hold keys), and where this
/// attempt's output starts.
fn open_log(log: &Path, key: &str, attempt: u32, argv: &[String]) -> std::io::Result<(std::fs::File, u64)> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let gap = if file.metadata()?.len() > 0 { "\n" } else { "" };
    let line = shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "));
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    writeln!(file, "{gap}===== {now} {key}: attempt {attempt}: {line}")?;
    let from = file.metadata()?.len();
    Ok((file, from))
}

/// The last `n` lines of `path` from byte `from` on.
fn tail(path: &Path, from: u64, n: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(bytes.get(from as usize..).unwrap_or_default());
    let lines: Vec<&str> = text.lines().collect();
    let shown = lines[lines.len().saturating_sub(n)..].join("\n");
    if shown.is_empty() { "(empty)".to_owned() } else { shown }
}
