//! The pid file of a running server, in the run folder (`<run>/servers/*.pid`): which process
//! and group it is, when it started (so that a recycled pid is never taken for it), its command
//! line, and which pipeline process owns it. A server outlives its pipeline only when the
//! pipeline was killed outright and the server ignored its parent-death signal (or left workers
//! behind); the next run that starts a server reaps what such a record names.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::procs::{self, ProcStat};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PidRecord {
    /// The config key it was started for (`llm.solver.serve`).
    pub key: String,
    pub pid: i32,
    /// Its process group (its own: the pid).
    pub pgid: i32,
    pub start_ticks: u64,
    pub boot_id: Option<String>,
    pub command: Vec<String>,
    /// The pipeline process that started it: while that lives, the server is not an orphan.
    pub owner_pid: i32,
    pub owner_start_ticks: Option<u64>,
}

impl PidRecord {
    /// The record of `pid` (just started by this process for `key`), or `None` without /proc.
    pub fn of(key: &str, pid: i32, command: &[String]) -> Option<Self> {
        let owner = std::process::id() as i32;
        Some(Self {
            key: key.to_owned(),
            pid,
            pgid: pid,
            start_ticks: procs::stat(pid)?.start_ticks,
            boot_id: procs::boot_id(),
            command: command.to_vec(),
            owner_pid: owner,
            owner_start_ticks: procs::stat(owner).map(|s| s.start_ticks),
        })
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("a record serializes");
        vs_core::fs::write_atomic(path, &json)
    }

    fn alive(pid: i32, start_ticks: Option<u64>) -> Option<ProcStat> {
        procs::stat(pid).filter(|s| !s.zombie && Some(s.start_ticks) == start_ticks)
    }
}

/// How long a reaped server may take to stop on SIGTERM before it gets SIGKILL.
const REAP_GRACE: Duration = Duration::from_secs(10);

/// Stops the servers recorded in `dir` whose pipeline is gone (SIGTERM to the group, SIGKILL
/// after a grace period) and removes their records; records a live pipeline owns are left
/// alone (another shard of the run may be using its server). Says what it did in the log, and
/// returns it.
pub fn reap_orphans(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "pid")).collect();
    let mut done = Vec::new();
    for file in files {
        let record = match std::fs::read(&file).map(|b| serde_json::from_slice::<PidRecord>(&b)) {
            Ok(Ok(record)) => record,
            Ok(Err(e)) => {
                let said = format!("{}: not a server pid file ({e}); removed", file.display());
                tracing::warn!("{said}");
                let _ = std::fs::remove_file(&file);
                done.push(said);
                continue;
            }
            Err(_) => continue, // removed meanwhile
        };
        if record.boot_id.is_some() && record.boot_id == procs::boot_id() {
            if PidRecord::alive(record.owner_pid, record.owner_start_ticks).is_some() {
                continue;
            }
            if let Some(said) = reap(&record) {
                let said = format!("{}: {said}", file.display());
                tracing::warn!("{said}");
                done.push(said);
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    done
}

/// Stops what is left of the server `r` names; what was done, if anything.
fn reap(r: &PidRecord) -> Option<String> {
    let leader = procs::stat(r.pid);
    let ours = match leader {
        Some(s) => s.start_ticks == r.start_ticks,
        // The leader is gone; its workers may remain in its group. The group's number cannot be
        // given to a new process while any member lives, so they are the server's.
        None => true,
    };
    if !ours {
        return None; // the pid (and so the group's number) was recycled: not ours to signal
    }
    let members = procs::group_members(r.pgid);
    if members.is_empty() {
        return None;
    }
    let command = r.command.join(" ");
    procs::signal_group(r.pgid, libc::SIGTERM);
    let deadline = Instant::now() + REAP_GRACE;
    while Instant::now() < deadline && !procs::group_members(r.pgid).is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let how = if procs::group_members(r.pgid).is_empty() {
        "SIGTERM"
    } else {
        procs::signal_group(r.pgid, libc::SIGKILL);
        // SIGKILL is delivered asynchronously: wait until the group is gone, so its ports and
        // GPUs are free when the caller starts a server of its own.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !procs::group_members(r.pgid).is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        "SIGTERM, then SIGKILL"
    };
    Some(format!(
        "reaped the {} server a killed run left running (pid {}, group {}, {} process(es): {command}): {how}",
        r.key,
        r.pid,
        r.pgid,
        members.len()
    ))
}
