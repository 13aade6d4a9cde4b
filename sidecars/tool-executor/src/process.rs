//! [`ProcessRunner`]: one exec request as one process group.
//!
//! Upstream runs `timeout N bash -c "<command> <args>"` (shell mode) or
//! `timeout N "${argv[@]}"` (argv mode) with stdout and stderr in temp
//! files. Here:
//!
//! - the child is started in a new process group, and a timeout signals
//!   the whole group (SIGTERM, then SIGKILL after a grace), so a command
//!   that started children of its own leaves nothing behind (GNU `timeout`
//!   signals its group too, but only with SIGTERM);
//! - output goes through pipes into bounded [`Capture`]s, so a read-only
//!   root filesystem needs no temp dir and a flood of output costs no
//!   memory;
//! - when the child exits, its pipes are read to their end; but if it left
//!   a background process running (which may hold them open for ever) only
//!   for a short moment, since upstream does not wait for those either.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentpod_sdk::skill::ExecHandler;
use agentpod_sdk::wire::exit::COMMAND_TIMED_OUT;
use agentpod_sdk::wire::{ExecRequest, ExecResult};
use async_trait::async_trait;
use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::output::Capture;
use crate::reaper::Reaper;

/// How long the pipes are read after the child has exited.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);
/// Longest wait for the pipes' end after the child has exited.
const MAX_DRAIN: Duration = Duration::from_secs(5);

/// Runs exec requests as processes. See the module docs.
#[derive(Debug, Clone)]
pub struct ProcessRunner {
    shell: Option<PathBuf>,
    kill_grace: Duration,
    reaper: Option<Arc<Reaper>>,
}

impl ProcessRunner {
    /// A runner using `shell` for shell mode (none: shell mode answers with
    /// an error), waiting `kill_grace` between SIGTERM and SIGKILL.
    pub fn new(shell: Option<PathBuf>, kill_grace: Duration, reaper: Option<Arc<Reaper>>) -> Self {
        Self {
            shell,
            kill_grace,
            reaper,
        }
    }

    fn command(&self, req: &ExecRequest) -> Result<Command, ExecResult> {
        let mut cmd = if req.is_argv_mode() {
            let mut c = Command::new(&req.argv[0]);
            c.args(&req.argv[1..]);
            c
        } else {
            let Some(shell) = &self.shell else {
                return Err(failure(
                    127,
                    "tool-executor: shell mode needs bash, and this image has none; \
                     this sidecar runs argv-mode requests (native tools) only"
                        .into(),
                ));
            };
            let mut c = Command::new(shell);
            c.arg("-c").arg(req.shell_line());
            c
        };
        cmd.current_dir(work_dir(&req.work_dir))
            .process_group(0)
            .stdin(if req.is_argv_mode() && !req.stdin.is_empty() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Ok(cmd)
    }
}

/// `cd workDir || cd /`: the request's directory (default `/workspace`) if
/// it is one we can enter, else `/`.
fn work_dir(requested: &str) -> &Path {
    let dir = if requested.is_empty() {
        agentpod_sdk::wire::exec::DEFAULT_WORK_DIR
    } else {
        requested
    };
    // Opening the directory is the closest cheap check to `cd` succeeding.
    if std::fs::read_dir(dir).is_ok() {
        Path::new(dir)
    } else {
        Path::new("/")
    }
}

fn failure(code: i32, stderr: String) -> ExecResult {
    ExecResult {
        exit_code: code,
        stderr,
        ..ExecResult::default()
    }
}

/// Exit code as the shell reports it: the code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Signals the process group when dropped unless disarmed: a request task
/// that is abandoned (the server saw `/ipc/done`) takes its processes down.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (the group is gone) is the expected outcome; nothing to do.
            let _ = kill_process_group(pgid, sig);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}

async fn pump(mut r: impl AsyncRead + Unpin, into: Arc<Mutex<Capture>>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => into
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&buf[..n]),
        }
    }
}

#[async_trait]
impl ExecHandler for ProcessRunner {
    async fn handle(&self, req: ExecRequest, timeout: Duration) -> ExecResult {
        let mut cmd = match self.command(&req) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let spawned = match &self.reaper {
            Some(r) => r.spawn(&mut cmd),
            None => cmd.spawn(),
        };
        let program = if req.is_argv_mode() {
            req.argv[0].as_str()
        } else {
            "bash"
        };
        let mut child: Child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let code = if e.kind() == io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                return failure(code, format!("tool-executor: cannot run {program:?}: {e}"));
            }
        };
        let pid = child.id();
        let mut guard = GroupGuard {
            pgid: pid.and_then(|p| Pid::from_raw(i32::try_from(p).ok()?)),
        };
        let _forget = ForgetOnDrop {
            reaper: self.reaper.as_deref(),
            pid,
        };

        if let Some(mut stdin) = child.stdin.take() {
            let bytes = req.stdin.into_bytes();
            tokio::spawn(async move {
                // A program that does not read its stdin closes the pipe
                // (EPIPE): that is its business, not an error.
                let _ = stdin.write_all(&bytes).await;
            });
        }
        let out = Arc::new(Mutex::new(Capture::default()));
        let err = Arc::new(Mutex::new(Capture::default()));
        let mut readers = tokio::task::JoinSet::new();
        if let Some(s) = child.stdout.take() {
            readers.spawn(pump(s, out.clone()));
        }
        if let Some(s) = child.stderr.take() {
            readers.spawn(pump(s, err.clone()));
        }

        let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => (status, false),
            Err(_) => {
                tracing::info!(id = %req.id, ?timeout, "command timed out; stopping its process group");
                guard.signal(Signal::TERM);
                let status = match tokio::time::timeout(self.kill_grace, child.wait()).await {
                    Ok(s) => s,
                    Err(_) => {
                        guard.signal(Signal::KILL);
                        child.wait().await
                    }
                };
                // Children that ignored SIGTERM, or outlived their parent.
                guard.signal(Signal::KILL);
                (status, true)
            }
        };
        let group = guard.pgid;
        if !timed_out {
            // A normal exit: whatever it left in the background keeps
            // running, as with upstream.
            guard.pgid = None;
        }
        drain(&mut readers, group).await;
        let stdout = out.lock().unwrap_or_else(|e| e.into_inner()).finish();
        let stderr = err.lock().unwrap_or_else(|e| e.into_inner()).finish();
        let exit_code = match (&status, timed_out) {
            (_, true) => COMMAND_TIMED_OUT,
            (Ok(s), false) => exit_code(*s),
            (Err(e), false) => {
                tracing::warn!(id = %req.id, error = %e, "cannot wait for the command");
                1
            }
        };
        ExecResult {
            id: String::new(),
            exit_code,
            stdout,
            stderr,
            timed_out,
        }
    }
}

/// Reads the pipes to their end. The end comes as soon as every process
/// holding them has exited, so it is waited for as long as the group is
/// empty (a busy machine may just be slow to schedule the readers). While
/// processes of the group still run (a background job holding stdout), it
/// is waited for only [`DRAIN_AFTER_EXIT`], and what was read so far is
/// the output. [`MAX_DRAIN`] bounds the wait for processes that left the
/// group and kept the pipes.
async fn drain(readers: &mut tokio::task::JoinSet<()>, group: Option<Pid>) {
    let started = tokio::time::Instant::now();
    loop {
        let all_read = tokio::time::timeout(Duration::from_millis(50), async {
            while readers.join_next().await.is_some() {}
        })
        .await;
        if all_read.is_ok() {
            return;
        }
        let waited = started.elapsed();
        let group_alive = group.is_some_and(|g| test_kill_process_group(g).is_ok());
        if (group_alive && waited >= DRAIN_AFTER_EXIT) || waited >= MAX_DRAIN {
            readers.abort_all();
            return;
        }
    }
}

/// Tells the reaper a child is no longer ours once its task is done.
struct ForgetOnDrop<'a> {
    reaper: Option<&'a Reaper>,
    pid: Option<u32>,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if let (Some(r), Some(pid)) = (self.reaper, self.pid) {
            r.forget(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_dir_falls_back_to_root() {
        assert_eq!(work_dir("/definitely/not/here"), Path::new("/"));
        assert_eq!(work_dir("/tmp"), Path::new("/tmp"));
    }

    #[test]
    fn exit_codes_like_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
