//! HF math-verify itself, as a grading reference: a long-lived Python server
//! (`tools/grader/math_verify_server.py`, embedded here and run as `python -c <script>`, so a
//! binary needs no checkout) that grades exactly as the paper's harness does, driven over
//! JSON lines. The interpreter is normally `.venv-grader/bin/python` (`just grader-venv`).
//!
//! [`MathVerify::grade_all`] keeps up to [`WINDOW`] requests in flight, so pipe round trips
//! cost next to nothing, yet bounds every case: math-verify parses without a timeout of its
//! own, and a case the server has not answered within the per-case timeout is marked
//! [`Outcome::Timeout`], the server killed and restarted, and the rest sent again. A server
//! that dies marks the case it was on [`Outcome::Crashed`] the same way. Nothing here panics
//! on what the server says or does.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The server, compiled in.
const SERVER_SCRIPT: &str = include_str!("../../../tools/grader/math_verify_server.py");

/// Requests written ahead of the replies. The server grades one at a time, so more buys
/// nothing once the pipe never runs dry; the writer thread keeps a full pipe from blocking us.
pub const WINDOW: usize = 64;

/// A per-case timeout that leaves math-verify room for its own limits: `verify` gives each
/// gold/prediction comparison 5 s, and a case can make several comparisons after an unbounded
/// parse.
pub const DEFAULT_CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a server may take to import sympy and math-verify and say it is ready: well under
/// a second when warm, but a cold disk cache on a busy node can take tens of seconds.
/// Where `tools/grader/venv.sh` puts the interpreter, relative to the repository root.
pub const VENV_PYTHON: &str = ".venv-grader/bin/python";

/// The interpreter tests grade with: `MATH_VERIFY_PYTHON`, else `root`'s [`VENV_PYTHON`];
/// `None` when it does not exist (the tests that need it then say they did not run).
pub fn test_python(root: &Path) -> Option<PathBuf> {
    let python =
        std::env::var_os("MATH_VERIFY_PYTHON").map(PathBuf::from).unwrap_or_else(|| root.join(VENV_PYTHON));
    python.exists().then_some(python)
}

pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Consecutive restarts that may fail before the remaining cases are abandoned.
pub const MAX_FAILED_STARTS: u32 = 3;

/// Cases in a row that may time out or crash, with no reply between them, before the
/// remaining cases are abandoned: a server that hangs on everything must not cost a timeout per
/// case (6,000 cases x 30 s).
pub const MAX_FAILED_CASES: u32 = 5;

/// The end of the server's stderr that is kept for error messages.
const STDERR_TAIL_BYTES: usize = 4096;

/// How a crashed server waits for its exit status before it is killed: stdout can close a
/// moment before the process is gone, and killing it then would hide the real status.
const EXIT_GRACE: Duration = Duration::from_secs(2);

const HOW_TO_MAKE: &str = "make the grader venv with `just grader-venv` (or `tools/setup/setup.sh --grader`), \
     or point at a python that has math-verify 0.9.0";

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("cannot run the math-verify reference with {}: {source}; {HOW_TO_MAKE}", python.display())]
    Spawn { python: PathBuf, source: io::Error },
    #[error(
        "the math-verify reference ({}) exited ({status}) before saying it was ready; {HOW_TO_MAKE}. \
         Its stderr ends with:\n{stderr_tail}",
        python.display()
    )]
    Exited { python: PathBuf, status: String, stderr_tail: String },
    #[error(
        "the math-verify reference ({}) did not say it was ready within {waited:?} (importing sympy \
         and math-verify); {HOW_TO_MAKE}. Its stderr ends with:\n{stderr_tail}",
        python.display()
    )]
    StartTimeout { python: PathBuf, waited: Duration, stderr_tail: String },
    #[error(
        "the math-verify reference ({}) started with {line:?} instead of its handshake \
         ({{\"ready\": true, ...}}): is it the server of this build? Its stderr ends with:\n{stderr_tail}",
        python.display()
    )]
    Handshake { python: PathBuf, line: String, stderr_tail: String },
    #[error("the math-verify reference ({}): {context}: {source}", python.display())]
    Io { python: PathBuf, context: &'static str, source: io::Error },
}

/// What the reference said about one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Correct,
    Wrong,
    /// math-verify raised (`"<ExceptionType>: message"`), or its reply could not be read.
    Error(String),
    /// No reply within the per-case timeout; the server was restarted.
    Timeout,
    /// The server died on this case: why, with its stderr's end.
    Crashed(String),
    /// Not graded: the server could not be restarted, or failed this many cases in a row
    /// without answering one ([`MAX_FAILED_STARTS`], [`MAX_FAILED_CASES`]). No verdict at all:
    /// a caller must not store it as one.
    Abandoned(String),
}

impl Outcome {
    pub fn is_correct(&self) -> bool {
        matches!(self, Outcome::Correct)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceVerdict {
    pub outcome: Outcome,
    /// The text math-verify extracted from the response; `None` when it found nothing (or
    /// gave no reply).
    pub extracted: Option<String>,
    /// The same for the gold answer (as `$gold$`): `None` means math-verify could not read the
    /// gold itself, which makes every response wrong.
    pub gold_extracted: Option<String>,
}

/// A verdict without a reply to take the extractions from.
impl From<Outcome> for ReferenceVerdict {
    fn from(outcome: Outcome) -> Self {
        Self { outcome, extracted: None, gold_extracted: None }
    }
}

/// A math-verify server and what it takes to restart it. Dropping it kills the server.
pub struct MathVerify {
    python: PathBuf,
    script: String,
    case_timeout: Duration,
    start_timeout: Duration,
    /// `None` after a kill until the next start; `grade_all` starts it again.
    server: Option<Server>,
    versions: serde_json::Value,
    version: String,
    /// Ids are unique over this value's life, so no reply can be taken for another call's case.
    next_id: u64,
}

impl MathVerify {
    /// Starts the server with `python` (e.g. `.venv-grader/bin/python`) and waits up to
    /// [`START_TIMEOUT`] for its handshake. `per_case_timeout`: see [`DEFAULT_CASE_TIMEOUT`].
    pub fn start(python: &Path, per_case_timeout: Duration) -> Result<Self, ReferenceError> {
        Self::start_with_script(python, SERVER_SCRIPT, per_case_timeout, START_TIMEOUT)
    }

    /// [`MathVerify::start`] with another server script and start timeout: the tests' fake
    /// servers go through the same code as the real one.
    pub(crate) fn start_with_script(
        python: &Path,
        script: &str,
        per_case_timeout: Duration,
        start_timeout: Duration,
    ) -> Result<Self, ReferenceError> {
        let (server, versions) = Server::start(python, script, start_timeout)?;
        let version = match versions.get("math_verify").and_then(|v| v.as_str()) {
            Some(v) => format!("math-verify {v}"),
            None => "math-verify (version unknown)".to_owned(),
        };
        Ok(Self {
            python: python.to_owned(),
            script: script.to_owned(),
            case_timeout: per_case_timeout,
            start_timeout,
            server: Some(server),
            versions,
            version,
            next_id: 0,
        })
    }

    /// `"math-verify 0.9.0"`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's handshake: the versions of math-verify, latex2sympy2_extended, sympy and
    /// Python it runs.
    pub fn versions(&self) -> &serde_json::Value {
        &self.versions
    }

    /// Grades each `(gold, response)` pair, in order. `progress` is called with the number of
    /// cases finished so far, after each one. Every pair gets a verdict: cases the server could
    /// not finish are [`Outcome::Timeout`] or [`Outcome::Crashed`].
    pub fn grade_all(
        &mut self,
        pairs: &[(&str, &str)],
        progress: &mut dyn FnMut(usize),
    ) -> Vec<ReferenceVerdict> {
        let n = pairs.len();
        let base = self.next_id;
        self.next_id += n as u64;
        let mut cases = Cases { verdicts: vec![None; n], done: 0, progress };
        // Sent and not yet answered, oldest first: the server works on the front one.
        let mut in_flight: VecDeque<usize> = VecDeque::new();
        let mut next = 0;
        // When the front case became the one the server is on.
        let mut front_since = Instant::now();
        // Whether the server running now has answered anything in this call.
        let mut answered = false;
        let mut failed_starts = 0;
        let mut last_failure = String::new();
        // Cases timed out or crashed on since the last reply: a server that hangs or dies on
        // every case must not cost a timeout per case.
        let mut failed_cases = 0;

        while cases.done < n && failed_starts < MAX_FAILED_STARTS && failed_cases < MAX_FAILED_CASES {
            if self.server.is_none() {
                match Server::start(&self.python, &self.script, self.start_timeout) {
                    Ok((server, _)) => self.server = Some(server),
                    Err(e) => {
                        failed_starts += 1;
                        last_failure = e.to_string();
                        continue;
                    }
                }
                // A new server has seen none of the cases.
                answered = false;
                in_flight.clear();
                next = cases.verdicts.iter().position(Option::is_none).unwrap_or(n);
            }
            let Some(server) = self.server.as_mut() else { continue };

            while in_flight.len() < WINDOW && next < n {
                if cases.verdicts[next].is_none() {
                    let (gold, response) = pairs[next];
                    match request_line(base + next as u64, gold, response) {
                        Ok(line) => {
                            if in_flight.is_empty() {
                                front_since = Instant::now();
                            }
                            server.send(line);
                            in_flight.push_back(next);
                        }
                        Err(e) => {
                            cases.finish(next, Outcome::Error(format!("cannot encode the case: {e}")).into())
                        }
                    }
                }
                next += 1;
            }
            if in_flight.is_empty() {
                continue;
            }

            // A timeout too long for an Instant (Duration::MAX) waits without end, as asked.
            let wait = front_since
                .checked_add(self.case_timeout)
                .map_or(Duration::MAX, |deadline| deadline.saturating_duration_since(Instant::now()));
            match server.replies.recv_timeout(wait) {
                Ok(line) => {
                    let Some((id, verdict)) = read_reply(&line) else { continue };
                    let Some(pos) = id
                        .checked_sub(base)
                        .and_then(|i| usize::try_from(i).ok())
                        .and_then(|i| in_flight.iter().position(|&j| j == i))
                    else {
                        continue;
                    };
                    let Some(i) = in_flight.remove(pos) else { continue };
                    if pos == 0 {
                        front_since = Instant::now();
                    }
                    answered = true;
                    failed_starts = 0;
                    failed_cases = 0;
                    cases.finish(i, verdict);
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.stop(Duration::ZERO);
                    if let Some(i) = in_flight.pop_front() {
                        cases.finish(i, Outcome::Timeout.into());
                    }
                    failed_cases += 1;
                    last_failure =
                        format!("{failed_cases} cases in a row timed out or crashed, the last by a timeout");
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let (status, tail) = self.stop(EXIT_GRACE);
                    let why =
                        format!("the math-verify server exited ({status}); its stderr ends with:\n{tail}");
                    // The case it was on is the likely cause, but a server that dies before
                    // answering anything also counts as a failed start: one that cannot grade
                    // at all must not be restarted once for every case.
                    if !answered {
                        failed_starts += 1;
                        last_failure = why.clone();
                    }
                    failed_cases += 1;
                    if answered {
                        last_failure =
                            format!("{failed_cases} cases in a row timed out or crashed, the last: {why}");
                    }
                    if let Some(i) = in_flight.pop_front() {
                        cases.finish(i, Outcome::Crashed(why).into());
                    }
                }
            }
        }

        let gave_up = if failed_starts >= MAX_FAILED_STARTS {
            format!(
                "the math-verify server could not be restarted ({MAX_FAILED_STARTS} tries in a row failed); \
                 the last: {last_failure}"
            )
        } else {
            format!("math-verify was given up on: {last_failure}")
        };
        for i in 0..n {
            if cases.verdicts[i].is_none() {
                cases.finish(i, Outcome::Abandoned(gave_up.clone()).into());
            }
        }
        cases.verdicts.into_iter().flatten().collect()
    }

    /// Stops the server (if one runs), waiting up to `grace` for it to exit on its own first:
    /// its exit status and the end of its stderr.
    fn stop(&mut self, grace: Duration) -> (String, String) {
        match self.server.take() {
            Some(mut server) => server.stop(grace),
            None => ("not running".to_owned(), String::new()),
        }
    }

    #[cfg(test)]
    fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(|s| s.child.id())
    }
}

/// The verdicts of one `grade_all` call so far, and its progress callback.
struct Cases<'a> {
    verdicts: Vec<Option<ReferenceVerdict>>,
    done: usize,
    progress: &'a mut dyn FnMut(usize),
}

impl Cases<'_> {
    fn finish(&mut self, i: usize, verdict: ReferenceVerdict) {
        self.verdicts[i] = Some(verdict);
        self.done += 1;
        (self.progress)(self.done);
    }
}

impl Drop for MathVerify {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    gold: &'a str,
    response: &'a str,
}

fn request_line(id: u64, gold: &str, response: &str) -> serde_json::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(&Request { id, gold, response })?;
    line.push(b'\n');
    Ok(line)
}

#[derive(Deserialize)]
struct Reply {
    correct: bool,
    extracted: Option<String>,
    gold_extracted: Option<String>,
    error: Option<String>,
}

/// The id a reply answers and its verdict; `None` for a line that names no id (nothing to
/// match it to: the case it was meant for times out instead).
fn read_reply(line: &str) -> Option<(u64, ReferenceVerdict)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let id = value.get("id")?.as_u64()?;
    let verdict = match Reply::deserialize(&value) {
        Ok(Reply { error: Some(error), extracted, gold_extracted, .. }) => {
            ReferenceVerdict { outcome: Outcome::Error(error), extracted, gold_extracted }
        }
        Ok(Reply { correct, extracted, gold_extracted, error: None }) => ReferenceVerdict {
            outcome: if correct { Outcome::Correct } else { Outcome::Wrong },
            extracted,
            gold_extracted,
        },
        Err(e) => Outcome::Error(format!("unreadable reply ({e}): {line}")).into(),
    };
    Some((id, verdict))
}

/// One server process and the three threads on its pipes: a writer (so a full stdin pipe
/// blocks it, never the caller's timeout), a stdout reader feeding `replies`, and a stderr
/// drain keeping the tail (so a chatty server never blocks on a full stderr pipe). All three
/// end when the process is gone: the pipes close.
struct Server {
    child: Child,
    /// To the writer; `None` once stopped, which ends the writer (and the server's input).
    requests: Option<Sender<Vec<u8>>>,
    replies: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    fn start(
        python: &Path,
        script: &str,
        timeout: Duration,
    ) -> Result<(Self, serde_json::Value), ReferenceError> {
        let mut child = Command::new(python)
            .arg("-I") // isolated: no PYTHONPATH or user site-packages in place of the pinned ones
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ReferenceError::Spawn { python: python.to_owned(), source })?;
        let io_error = |context, source| ReferenceError::Io { python: python.to_owned(), context, source };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io_error("its pipes", io::Error::other("not captured")));
        };

        let (requests, to_write) = mpsc::channel();
        let (replied, replies) = mpsc::channel();
        let tail = Arc::new(Mutex::new(Vec::new()));
        let mut server = Server {
            child,
            requests: Some(requests),
            replies,
            stderr: Arc::clone(&tail),
            threads: Vec::new(),
        };
        let spawned = [
            spawn_named("math-verify stdin", move || write_requests(stdin, to_write)),
            spawn_named("math-verify stdout", move || read_lines(stdout, replied)),
            spawn_named("math-verify stderr", move || keep_tail(stderr, tail)),
        ];
        for thread in spawned {
            match thread {
                Ok(handle) => server.threads.push(handle),
                Err(e) => {
                    server.stop(Duration::ZERO);
                    return Err(io_error("a thread for its pipes", e));
                }
            }
        }

        match server.replies.recv_timeout(timeout) {
            Ok(line) => match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(hello) if hello.get("ready") == Some(&serde_json::Value::Bool(true)) => {
                    Ok((server, hello))
                }
                _ => {
                    let (_, stderr_tail) = server.stop(Duration::ZERO);
                    Err(ReferenceError::Handshake { python: python.to_owned(), line, stderr_tail })
                }
            },
            Err(RecvTimeoutError::Timeout) => {
                let (_, stderr_tail) = server.stop(Duration::ZERO);
                Err(ReferenceError::StartTimeout { python: python.to_owned(), waited: timeout, stderr_tail })
            }
            Err(RecvTimeoutError::Disconnected) => {
                let (status, stderr_tail) = server.stop(EXIT_GRACE);
                Err(ReferenceError::Exited { python: python.to_owned(), status, stderr_tail })
            }
        }
    }

    /// Queues a request line for the writer. A writer that has ended (the server closed its
    /// input or died) loses it; that shows as a dead or silent server, which is handled there.
    fn send(&self, line: Vec<u8>) {
        if let Some(requests) = &self.requests {
            let _ = requests.send(line);
        }
    }

    /// Ends the process (after up to `grace` for it to exit by itself) and joins the threads:
    /// the exit status and the end of stderr, complete since the drain ran to the pipe's end.
    fn stop(&mut self, grace: Duration) -> (String, String) {
        self.requests = None;
        let started = Instant::now();
        let mut status = self.child.try_wait();
        while matches!(status, Ok(None)) && started.elapsed() < grace {
            thread::sleep(Duration::from_millis(10));
            status = self.child.try_wait();
        }
        let status: io::Result<ExitStatus> = match status {
            Ok(Some(s)) => Ok(s),
            _ => {
                // Fails only when it has exited already; wait() below reports how.
                let _ = self.child.kill();
                self.child.wait()
            }
        };
        for thread in self.threads.drain(..) {
            // A thread that panicked has nothing to report beyond the stderr we have.
            let _ = thread.join();
        }
        let status = match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("status unknown: {e}"),
        };
        let tail = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        (status, stderr_text(&tail))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Idempotent: after an earlier stop there is nothing left to kill or join.
        self.stop(Duration::ZERO);
    }
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name(name.to_owned()).spawn(f)
}

/// Writes each request as it comes, flushing whenever none is waiting; ends when the channel
/// closes (the server is being stopped) or a write fails (the server is gone).
fn write_requests(stdin: ChildStdin, lines: Receiver<Vec<u8>>) {
    let mut out = BufWriter::new(stdin);
    while let Ok(line) = lines.recv() {
        if out.write_all(&line).is_err() {
            return;
        }
        while let Ok(line) = lines.try_recv() {
            if out.write_all(&line).is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}

/// Sends each stdout line (without its newline) until end of file.
fn read_lines(stdout: impl Read, lines: Sender<String>) {
    let mut input = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_owned();
                // The receiver is gone only while the server is being stopped; reading on to
                // the end keeps the server from blocking on a full pipe until it is killed.
                let _ = lines.send(text);
            }
        }
    }
}

/// Keeps the last [`STDERR_TAIL_BYTES`] of stderr until end of file.
fn keep_tail(mut stderr: impl Read, tail: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 4096];
    loop {
        match stderr.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => {
                let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                tail.extend_from_slice(&chunk[..k]);
                let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
                tail.drain(..excess);
            }
        }
    }
}

/// The kept stderr as text, starting at a whole line when the start was cut off.
fn stderr_text(tail: &[u8]) -> String {
    let text = String::from_utf8_lossy(tail);
    let text = if tail.len() >= STDERR_TAIL_BYTES {
        text.split_once('\n').map_or(&*text, |(_, rest)| rest)
    } else {
        &text
    };
    match text.trim() {
        "" => "(nothing)".to_owned(),
        t => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for math-verify that needs only python3: "correct" is string equality, and
    /// marked responses misbehave (ERROR raises, GARBLED answers in the wrong shape, SLEEP
    /// hangs, EXIT kills the server). `{prelude}` runs first.
    const FAKE: &str = r#"
import json, os, sys, time
{prelude}
print(json.dumps({"ready": True, "math_verify": "0.0-fake", "sympy": "0", "python": "3"}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    r, g = req["response"], req["gold"]
    if r == "SLEEP":
        time.sleep(1000)
    if r == "EXIT":
        sys.stderr.write("fake server: exiting on purpose\n")
        sys.stderr.flush()
        os._exit(3)
    if r == "GARBLED":
        print(json.dumps({"id": req["id"], "correct": "maybe"}), flush=True)
        continue
    error = "ValueError: asked to fail" if r == "ERROR" else None
    print(json.dumps({"id": req["id"], "correct": r == g, "extracted": r, "gold_extracted": g,
                      "error": error}), flush=True)
"#;

    fn fake(prelude: &str) -> String {
        FAKE.replace("{prelude}", prelude)
    }

    fn python() -> &'static Path {
        Path::new("python3")
    }

    /// Generous against a loaded CI machine; the fake answers in microseconds.
    const CASE: Duration = Duration::from_secs(3);

    fn start(script: &str) -> MathVerify {
        match MathVerify::start_with_script(python(), script, CASE, Duration::from_secs(30)) {
            Ok(server) => server,
            Err(e) => panic!("the fake server did not start: {e}"),
        }
    }

    fn outcomes(verdicts: &[ReferenceVerdict]) -> Vec<Outcome> {
        verdicts.iter().map(|v| v.outcome.clone()).collect()
    }

    #[test]
    fn grades_many_cases_in_order_with_progress() {
        let mut server = start(&fake(""));
        assert_eq!(server.version(), "math-verify 0.0-fake");
        assert_eq!(server.versions()["sympy"], "0");
        // More than a window, so requests are written ahead and the window refills.
        let owned: Vec<(String, String)> = (0..3 * WINDOW + 5)
            .map(|i| (i.to_string(), if i % 3 == 0 { format!("{i}") } else { format!("{i}\n\"é\"") }))
            .collect();
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(g, r)| (g.as_str(), r.as_str())).collect();
        let mut seen = Vec::new();
        let verdicts = server.grade_all(&pairs, &mut |done| seen.push(done));
        assert_eq!(seen, (1..=pairs.len()).collect::<Vec<_>>());
        for (i, v) in verdicts.iter().enumerate() {
            let want = if i % 3 == 0 { Outcome::Correct } else { Outcome::Wrong };
            assert_eq!(v.outcome, want, "case {i}");
            assert_eq!(v.extracted.as_deref(), Some(pairs[i].1), "the response made the round trip intact");
            assert_eq!(v.gold_extracted.as_deref(), Some(pairs[i].0));
        }
        // The same server serves a second call, and odd replies are reported, not fatal.
        let verdicts = server.grade_all(&[("1", "ERROR"), ("1", "GARBLED"), ("1", "1")], &mut |_| {});
        assert_eq!(verdicts[0].outcome, Outcome::Error("ValueError: asked to fail".into()));
        assert!(matches!(&verdicts[1].outcome, Outcome::Error(e) if e.starts_with("unreadable reply")));
        assert_eq!(verdicts[2].outcome, Outcome::Correct);
        assert!(server.grade_all(&[], &mut |_| {}).is_empty());
    }

    #[test]
    fn a_hanging_case_times_out_and_the_rest_are_graded_after_a_restart() {
        let mut server = start(&fake(""));
        let first = server.pid();
        let pairs = [("1", "1"), ("2", "3"), ("1", "SLEEP"), ("4", "4"), ("5", "5")];
        let started = Instant::now();
        let verdicts = server.grade_all(&pairs, &mut |_| {});
        let took = started.elapsed();
        assert_eq!(
            outcomes(&verdicts),
            [Outcome::Correct, Outcome::Wrong, Outcome::Timeout, Outcome::Correct, Outcome::Correct]
        );
        assert_eq!(verdicts[2].extracted, None);
        assert!(took >= CASE && took < CASE * 5, "one timeout's wait, then on: {took:?}");
        assert_ne!(server.pid(), first, "the hung server was replaced");
    }

    #[test]
    fn a_crash_marks_its_case_with_the_stderr_and_the_rest_are_graded() {
        let mut server = start(&fake(""));
        let verdicts = server.grade_all(&[("1", "1"), ("1", "EXIT"), ("2", "2"), ("3", "4")], &mut |_| {});
        assert_eq!(verdicts[0].outcome, Outcome::Correct);
        match &verdicts[1].outcome {
            Outcome::Crashed(why) => {
                assert!(why.contains("exit status: 3"), "{why}");
                assert!(why.contains("fake server: exiting on purpose"), "{why}");
            }
            other => panic!("expected Crashed, got {other:?}"),
        }
        assert_eq!(outcomes(&verdicts[2..]), [Outcome::Correct, Outcome::Wrong]);
    }

    #[test]
    fn a_server_that_cannot_restart_gives_up_on_the_remaining_cases() {
        // Starts once; every later start fails before the handshake.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("started");
        let prelude = format!(
            "m = {:?}\nif os.path.exists(m):\n    sys.exit('fake server: broken on restart')\nopen(m, 'w').close()",
            marker.display().to_string()
        );
        let mut server = start(&fake(&prelude));
        let started = Instant::now();
        let verdicts = server.grade_all(&[("1", "1"), ("1", "EXIT"), ("2", "2"), ("3", "3")], &mut |_| {});
        assert!(started.elapsed() < Duration::from_secs(30), "gave up promptly: {:?}", started.elapsed());
        assert_eq!(verdicts[0].outcome, Outcome::Correct);
        assert!(matches!(&verdicts[1].outcome, Outcome::Crashed(why) if why.contains("exiting on purpose")));
        for v in &verdicts[2..] {
            match &v.outcome {
                Outcome::Abandoned(why) => {
                    assert!(why.contains("could not be restarted"), "{why}");
                    assert!(why.contains("broken on restart"), "{why}");
                }
                other => panic!("expected Abandoned, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_server_that_hangs_on_every_case_is_given_up_after_a_few() {
        let mut server = MathVerify::start_with_script(
            python(),
            &fake(""),
            Duration::from_millis(300),
            Duration::from_secs(30),
        )
        .unwrap();
        let pairs = vec![("1", "SLEEP"); 20];
        let started = Instant::now();
        let verdicts = server.grade_all(&pairs, &mut |_| {});
        let timed_out = verdicts.iter().filter(|v| v.outcome == Outcome::Timeout).count();
        assert_eq!(timed_out, MAX_FAILED_CASES as usize);
        for v in &verdicts[timed_out..] {
            assert!(matches!(&v.outcome, Outcome::Abandoned(why) if why.contains("in a row")), "{v:?}");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    }

    #[test]
    fn a_server_that_never_handshakes_fails_to_start_within_the_start_timeout() {
        let script = "import sys, time\nsys.stderr.write('fake server: importing forever\\n')\nsys.stderr.flush()\ntime.sleep(1000)";
        let started = Instant::now();
        let error = MathVerify::start_with_script(python(), script, CASE, Duration::from_secs(1)).err();
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        let Some(error @ ReferenceError::StartTimeout { .. }) = error else {
            panic!("expected StartTimeout: {error:?}")
        };
        let message = error.to_string();
        for needle in ["python3", "did not say it was ready", "just grader-venv", "importing forever"] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
    }

    #[test]
    fn start_errors_name_the_interpreter_and_the_cause() {
        let missing = Path::new("/nonexistent/.venv-grader/bin/python");
        let error = MathVerify::start(missing, CASE).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains("/nonexistent/.venv-grader/bin/python") && error.contains("grader-venv"),
            "{error}"
        );

        let script = "import sys\nsys.exit('No module named math_verify')";
        let error = MathVerify::start_with_script(python(), script, CASE, Duration::from_secs(30)).err();
        let Some(error @ ReferenceError::Exited { .. }) = error else { panic!("expected Exited: {error:?}") };
        assert!(error.to_string().contains("No module named math_verify"), "{error}");

        let error =
            MathVerify::start_with_script(python(), "print('hello')", CASE, Duration::from_secs(30)).err();
        assert!(
            matches!(error, Some(ReferenceError::Handshake { ref line, .. }) if line == "hello"),
            "{error:?}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn dropping_the_client_ends_the_server() {
        let server = start(&fake(""));
        let Some(pid) = server.pid() else { panic!("no server running") };
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(server);
        // Killed and reaped: no process, not even a zombie, is left.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
