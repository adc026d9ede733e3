//! The readers' fuzz targets (issue 28): every reader of a file a user or a download hands us
//! returns an error on bad input: it never panics, never hangs, never holds unbounded memory.
//! Stable Rust: seeded mutations ([`mutate`]) of a committed corpus (`corpus/<target>/`), each
//! input run on a worker thread with a timeout and an allocation bound ([`alloc`]).
//! `cargo run -p fuzz --release -- <target|all> --seconds N` fuzzes longer; the test
//! `tests/targets.rs` runs every target for a fixed number of seeded iterations in `just test`.

pub mod alloc;
pub mod mutate;
pub mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use targets::{TARGETS, Target};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

thread_local! {
    /// A panic on this thread since the input started, caught or not: a reader's own
    /// `catch_unwind` is its last line of defence, and the fuzzer still wants to see it.
    static PANICKED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Records every panic of a fuzz worker (its message), and keeps the default report for
/// every other thread.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let worker = std::thread::current().name().is_some_and(|n| n.starts_with("fuzz-"));
            if worker {
                let at =
                    info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                let what = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                PANICKED.with(|p| *p.borrow_mut() = Some(format!("{what}{at}")));
            } else {
                default(info);
            }
        }));
    });
}

/// The most one input may make a reader hold (inputs are at most 64 KiB).
pub const ALLOC_BOUND: usize = 256 << 20;
/// Past this, allocations fail and the process aborts: far past the bound, before the machine
/// runs out of memory.
pub const HARD_LIMIT: usize = 2 << 30;
/// The most one input may take (an unoptimised build on a busy two-core machine included).
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// What went wrong on one input.
#[derive(Debug)]
pub struct Failure {
    pub target: &'static str,
    /// Where the input was saved (add it to the corpus once fixed).
    pub saved: PathBuf,
    pub why: String,
}

/// How long to fuzz.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Iterations(usize),
    Time(Duration),
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Stats {
    pub inputs: usize,
    pub seconds: f64,
    pub max_peak: usize,
    pub failures: Vec<Failure>,
}

/// The committed corpus of `target`, file name order.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files.into_iter().filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b))).collect()
}

/// Runs `target` on every corpus input, then on seeded mutations of them until `budget` is
/// spent. Stops at the first failure that leaves a worker behind (a hang).
pub fn fuzz(target: &Target, budget: Budget, seed: u64) -> Stats {
    install_panic_hook();
    let started = Instant::now();
    let seeds = corpus(target.name);
    let mut rng = mutate::Rng::new(seed);
    let mut stats = Stats::default();
    let mut i = 0usize;
    loop {
        let done = match budget {
            Budget::Iterations(n) => i >= seeds.len() + n,
            Budget::Time(t) => i >= seeds.len() && started.elapsed() >= t,
        };
        if done {
            break;
        }
        let input = match seeds.get(i) {
            Some((_, bytes)) => bytes.clone(),
            None if seeds.is_empty() => mutate::mutate(&mut rng, &[], &[]),
            None => {
                let a = &seeds[rng.below(seeds.len())].1;
                let b = &seeds[rng.below(seeds.len())].1;
                mutate::mutate(&mut rng, a, b)
            }
        };
        i += 1;
        stats.inputs += 1;
        match run_one(target, input) {
            Ok(peak) => stats.max_peak = stats.max_peak.max(peak),
            Err((why, input, hung)) => {
                let saved = save(target.name, &input);
                stats.failures.push(Failure { target: target.name, saved, why });
                if hung {
                    break;
                }
            }
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    stats
}

/// One input on a worker thread: its peak allocation, or why it failed (and whether the
/// worker is still running).
fn run_one(target: &Target, input: Vec<u8>) -> Result<usize, (String, Vec<u8>, bool)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let run = target.run;
    let keep = input.clone();
    let worker = std::thread::Builder::new().name(format!("fuzz-{}", target.name)).spawn(move || {
        alloc::start(HARD_LIMIT);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&input)));
        let peak = alloc::peak();
        alloc::start(0);
        let panicked = PANICKED.with(|p| p.borrow_mut().take());
        let _ = tx.send(match (outcome, panicked) {
            (Ok(()), None) => Ok(peak),
            (Ok(()), Some(why)) => Err(format!("{why} (caught by the reader)")),
            (Err(_), why) => Err(why.unwrap_or_else(|| "a panic".into())),
        });
    });
    let worker = worker.map_err(|e| (format!("no worker thread: {e}"), keep.clone(), false))?;
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(peak)) if peak > ALLOC_BOUND => {
            let _ = worker.join();
            Err((format!("held {peak} bytes, more than the bound of {ALLOC_BOUND}"), keep, false))
        }
        Ok(Ok(peak)) => {
            let _ = worker.join();
            Ok(peak)
        }
        Ok(Err(panic)) => {
            let _ = worker.join();
            Err((format!("panicked: {panic}"), keep, false))
        }
        Err(_) => Err((format!("still running after {TIMEOUT:?}"), keep, true)),
    }
}

/// Saves a failing input under `target/fuzz-failures/<target>/<sha256 prefix>`.
fn save(target: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures").join(target);
    let name = vs_core::digest::sha256_hex(input)[..16].to_owned();
    let path = dir.join(name);
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    path
}
