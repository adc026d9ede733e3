//! The process groups of the servers running now, stopped on Ctrl-C or SIGTERM before the
//! pipeline exits as the signal would have it.

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use super::procs::signal_group;

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

pub fn track(group: i32) {
    GROUPS.lock().expect("the group list").push(group);
}

pub fn untrack(group: i32) {
    GROUPS.lock().expect("the group list").retain(|&g| g != group);
}

/// SIGTERM to the group, then SIGKILL if it has not exited within 15 s.
pub fn stop_group(group: i32, child: &mut Child) {
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
pub fn install_handler() {
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
