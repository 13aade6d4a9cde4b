//! A measured child process: spawned at a known instant, reaped with
//! `wait4(2)` so its peak RSS and CPU time come from the kernel's own
//! accounting (`ru_maxrss`, `ru_utime`, `ru_stime`) rather than from polling
//! `/proc`, which can miss the last peak before exit.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What one child run cost.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Just before `spawn` (fork and exec are on the clock).
    pub started: Instant,
    /// When `wait4` returned.
    pub exited: Instant,
    /// Peak resident set size, in KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
    /// User plus system CPU time of the child.
    pub cpu: Duration,
    /// Whether it exited with status 0.
    pub success: bool,
}

/// Spawns `cmd`, waits at most `limit` for it (killing it after that), and
/// reports its resource use.
pub async fn run(mut cmd: Command, limit: Duration) -> Result<Exit> {
    let started = Instant::now();
    let mut child: Child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let mut reaper = tokio::task::spawn_blocking(move || wait4(pid));
    let waited = match tokio::time::timeout(limit, &mut reaper).await {
        Ok(joined) => joined,
        Err(_) => {
            // `wait4` has not returned, so the child is not reaped yet and
            // its pid cannot have been reused: the kill reaches the child.
            let _ = child.kill();
            let _ = reaper.await;
            bail!("{cmd:?} did not finish within {limit:?}; killed");
        }
    };
    let exited = Instant::now();
    let (status, usage) = waited.context("wait4 task")??;
    Ok(Exit {
        started,
        exited,
        max_rss_kib: usage.max_rss_kib,
        cpu: usage.cpu,
        success: status == 0,
    })
}

/// The part of `struct rusage` we report.
struct Usage {
    max_rss_kib: u64,
    cpu: Duration,
}

/// Blocks until `pid` exits; returns its raw wait status and usage.
#[allow(unsafe_code)]
fn wait4(pid: i32) -> Result<(i32, Usage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data, so all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers point at live, writable locals of the types
        // wait4 expects; `pid` is our own unreaped child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok((
        status,
        Usage {
            max_rss_kib: ru.ru_maxrss as u64,
            cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        },
    ))
}
