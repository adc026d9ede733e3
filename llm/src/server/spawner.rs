//! Starting a server so that it dies with the pipeline: on Linux the child asks for a
//! parent-death signal (`PR_SET_PDEATHSIG`: SIGTERM, so that it can stop its own workers) before
//! it runs the server, which covers a pipeline killed with SIGKILL (no handler runs then).
//!
//! Linux sends that signal when the *thread* that forked the child exits, not the process. A
//! stage may start its server from a thread that ends before the server is done with (a
//! runtime's worker, a scoped thread), so every server is forked by one thread that lives as
//! long as the process: [`spawn`] hands the command to it and waits for the child.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

type Job = (Command, Sender<io::Result<Child>>);

/// The forking thread's inbox; `None` when that thread could not be started.
static SPAWNER: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();

/// Spawns `command` with a parent-death signal, from the long-lived forking thread.
pub fn spawn(mut command: Command) -> io::Result<Child> {
    ask_for_parent_death_signal(&mut command);
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let started = std::thread::Builder::new().name("server-spawner".into()).spawn(move || {
            // Ends never: the sender lives in a static.
            for (mut command, reply) in rx {
                let _ = reply.send(command.spawn());
            }
        });
        match started {
            Ok(_) => Some(Mutex::new(tx)),
            Err(e) => {
                tracing::warn!(
                    "cannot start the server-spawning thread ({e}): servers are forked by the \
                     stage's thread and get SIGTERM if it ends first"
                );
                None
            }
        }
    });
    let Some(inbox) = spawner else { return command.spawn() };
    let (reply, answer) = channel();
    inbox.lock().expect("the spawner's inbox").send((command, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

fn gone() -> io::Error {
    io::Error::other("the server-spawning thread is gone")
}

#[cfg(target_os = "linux")]
fn ask_for_parent_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the hook runs in the forked child before exec and only makes two system calls
    // (async-signal-safe, no allocation).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The pipeline died between fork and prctl: nobody would send the signal now.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn ask_for_parent_death_signal(_: &mut Command) {}
