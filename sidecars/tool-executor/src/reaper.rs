//! Reaping orphans. A sidecar is usually PID 1 of its container, so every
//! process whose parent dies (a command's background job, the children of a
//! command killed on timeout) becomes its child, and its zombie stays until
//! someone calls `wait` for it. Outside PID 1 the executor makes itself a
//! child subreaper so the same holds (and tests can see it).
//!
//! tokio reaps the children it spawned by their pids; a blanket
//! `waitpid(-1)` would steal their exit statuses. So the reaper only waits
//! for zombies whose parent is this process and that are not in the set of
//! children tokio owns. A child is added to that set under the same lock,
//! right as it is spawned, so a reaping pass never sees it unlisted.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::process::{Pid, WaitOptions, getpid, set_child_subreaper, waitpid};
use tokio::process::{Child, Command};

/// Reaps orphaned zombies. See the module docs.
#[derive(Debug, Default)]
pub struct Reaper {
    ours: Mutex<HashSet<u32>>,
}

impl Reaper {
    /// A reaper when this process will inherit orphans: it is PID 1, or it
    /// could become a child subreaper. `None` otherwise.
    pub fn install() -> Option<Arc<Self>> {
        let me = getpid();
        if !me.is_init()
            && let Err(e) = set_child_subreaper(Some(me))
        {
            tracing::warn!(error = %e, "cannot become a child subreaper; orphans go to init");
            return None;
        }
        Some(Arc::new(Self::default()))
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<u32>> {
        // A set of pids stays usable after a panic elsewhere.
        self.ours.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `cmd`, recording the child as tokio's.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        let mut ours = self.lock();
        let child = cmd.spawn()?;
        if let Some(pid) = child.id() {
            ours.insert(pid);
        }
        Ok(child)
    }

    /// Drops a child from the set once tokio has waited for it.
    pub fn forget(&self, pid: u32) {
        self.lock().remove(&pid);
    }

    /// Waits for every zombie child that is not tokio's. Returns how many.
    pub fn reap_orphans(&self) -> usize {
        let me = getpid().as_raw_nonzero().get();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0;
        };
        let ours = self.lock();
        let mut reaped = 0;
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some((state, ppid)) = state_and_parent(&stat) else {
                continue;
            };
            if ppid != me || state != 'Z' || u32::try_from(pid).is_ok_and(|p| ours.contains(&p)) {
                continue;
            }
            if let Some(p) = Pid::from_raw(pid)
                && let Ok(Some(_)) = waitpid(Some(p), WaitOptions::NOHANG)
            {
                reaped += 1;
            }
        }
        if reaped > 0 {
            tracing::debug!(reaped, "reaped orphaned processes");
        }
        reaped
    }
}

/// State letter and parent pid from `/proc/<pid>/stat`: `pid (comm) S ppid
/// ...`, where `comm` may hold spaces and parentheses (so split at the last
/// `)`).
fn state_and_parent(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat() {
        assert_eq!(state_and_parent("42 (a) b) Z 7 42 42"), Some(('Z', 7)));
        assert_eq!(state_and_parent("garbage"), None);
    }
}
