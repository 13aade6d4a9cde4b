//! Local processes, each in its own process group, so stopping one stops
//! everything it started; and a sweep of whatever is left at the end.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::plan::ProcSpec;

/// A started process.
#[derive(Debug)]
pub struct Proc {
    /// Container (or service) name.
    pub name: String,
    /// Its pid, which is also its process group id.
    pub pid: i32,
    /// When it started.
    pub started: Instant,
    /// The child.
    pub child: Child,
    /// The container it runs (engine `podman`: the child is `podman run`).
    pub container: Option<String>,
    /// A service the Pod depends on (bus, memory server, MCP adapter), not
    /// one of its containers: it runs until the end.
    pub service: bool,
}

/// Starts `spec` in a new process group with only its own environment;
/// stdout and stderr go to `<logs>/<name>.stdout|stderr`.
pub fn spawn(spec: &ProcSpec, logs: &Path) -> io::Result<Proc> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd);
    spawn_cmd(&spec.name, cmd, logs)
}

/// Starts `cmd` as [`spawn`] does.
pub fn spawn_cmd(name: &str, mut cmd: Command, logs: &Path) -> io::Result<Proc> {
    let out = File::create(logs.join(format!("{name}.stdout")))?;
    let err = File::create(logs.join(format!("{name}.stderr")))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false);
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| io::Error::other("spawned child has no pid"))?;
    Ok(Proc {
        name: name.to_owned(),
        pid,
        started: Instant::now(),
        child,
        container: None,
        service: false,
    })
}

/// The last `n` non-empty lines of `<logs>/<name>.stderr` (read from its
/// last 16 KiB, log lines made short, each cut to 300 characters): what a
/// failed container said last.
pub fn stderr_tail(logs: &Path, name: &str, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 16 * 1024;
    let Ok(mut f) = File::open(logs.join(format!("{name}.stderr"))) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(len.saturating_sub(WINDOW))).is_err()
        || f.take(WINDOW).read_to_end(&mut buf).is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .map(super::watch::compact)
        .map(|l| {
            if l.chars().count() > 300 {
                format!("{}…", l.chars().take(300).collect::<String>())
            } else {
                l.to_owned()
            }
        })
        .collect();
    let skip = lines.len().saturating_sub(n);
    lines.drain(..skip);
    lines
}

/// Sends `sig` to process group `pgid`; a group already gone is fine.
#[allow(unsafe_code)]
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // a negative pid addresses the group we created with process_group(0).
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// Sends `sig` to one process.
#[allow(unsafe_code)]
pub fn signal_pid(pid: i32, sig: i32) {
    if pid <= 1 {
        return;
    }
    // SAFETY: as in `signal_group`, plain integers only.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Makes this process adopt orphaned descendants (Linux), so a grandchild
/// whose parent died is still ours to find and stop.
#[allow(unsafe_code)]
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag on this
    // process; the remaining arguments are ignored.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Stops a process: SIGTERM to its group, SIGKILL after `grace`. Returns
/// its exit status when known.
pub async fn stop(p: &mut Proc, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Some(st)) = p.child.try_wait() {
        signal_group(p.pid, libc::SIGKILL);
        return Some(st);
    }
    signal_group(p.pid, libc::SIGTERM);
    let st = match tokio::time::timeout(grace, p.child.wait()).await {
        Ok(st) => st.ok(),
        Err(_) => {
            signal_group(p.pid, libc::SIGKILL);
            p.child.wait().await.ok()
        }
    };
    // Anything the process left in its group goes too.
    signal_group(p.pid, libc::SIGKILL);
    st
}

/// Pids of every live descendant of `root` (from `/proc`).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and parens.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let state = f.next().unwrap_or_default();
            let Some(ppid) = f.next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if state != "Z" {
                parent.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parent {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// Kills every remaining descendant of this process (SIGKILL) and reaps
/// them; returns how many there were.
pub fn sweep() -> usize {
    let left = descendants(std::process::id());
    for &pid in &left {
        signal_pid(pid as i32, libc::SIGKILL);
    }
    left.len()
}
