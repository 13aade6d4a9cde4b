//! Starting, signalling and stopping the processes of a scenario: binaries
//! as children in their own process group, images through podman.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::impls::{Impl, Implementations};
use crate::scenario::{ProcessSpec, StdinMode};
use crate::world::{POD_DIRS, World};

/// How a process ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Exit code; killed by signal N → 128 + N.
    pub code: i32,
    /// Time from start to exit.
    pub after: Duration,
}

/// A started process.
pub struct Proc {
    /// Scenario id.
    pub id: String,
    pid: u32,
    container: Option<String>,
    podman: PathBuf,
    /// When it started.
    pub started: Instant,
    /// Set once it exits.
    pub exit: Arc<Mutex<Option<Exit>>>,
    /// Its stdout, captured to a file.
    pub stdout: PathBuf,
    /// Its stderr, captured to a file.
    pub stderr: PathBuf,
    // Held open (never written) for `stdin: open`.
    _stdin: Option<tokio::process::ChildStdin>,
    // Set by `kill`, so dropping does not kill (and call podman) twice.
    killed: std::sync::atomic::AtomicBool,
}

/// A scenario that is dropped half-way (the suite interrupted, a task
/// aborted) still leaves nothing running.
impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Proc {
    /// Starts `spec` as process `id`.
    pub fn start(
        id: &str,
        spec: &ProcessSpec,
        impls: &Implementations,
        world: &World,
        seq: usize,
    ) -> Result<Self, String> {
        let imp = impls
            .get(spec.component)
            .ok_or_else(|| format!("no implementation of {}", spec.component))?;
        let logs = world.root().join("logs");
        let stdout = logs.join(format!("{id}.{seq}.stdout"));
        let stderr = logs.join(format!("{id}.{seq}.stderr"));
        let out = std::fs::File::create(&stdout).map_err(|e| e.to_string())?;
        let err = std::fs::File::create(&stderr).map_err(|e| e.to_string())?;
        let env: Vec<(String, String)> = spec
            .env
            .iter()
            .map(|(k, v)| Ok((k.clone(), world.expand(v)?)))
            .collect::<Result<_, String>>()?;
        let args: Vec<String> = spec
            .args
            .iter()
            .map(|a| world.expand(a))
            .collect::<Result<_, String>>()?;
        let mut container = None;
        let mut cmd = match imp {
            Impl::Binary {
                path,
                args: extra_args,
                env: extra_env,
            } => {
                let mut c = tokio::process::Command::new(path);
                c.env_clear();
                if let Some(p) = std::env::var_os("PATH") {
                    c.env("PATH", p);
                }
                c.env("HOME", world.root().join("home"));
                // agentpod's path variables: where the Pod volumes are.
                for (var, pod) in [
                    ("AGENTPOD_IPC_ROOT", "/ipc"),
                    ("AGENTPOD_WORKSPACE_ROOT", "/workspace"),
                    ("AGENTPOD_SKILLS_ROOT", "/skills"),
                    ("AGENTPOD_TMP_ROOT", "/tmp"),
                    ("AGENTPOD_MEMORY_ROOT", "/memory"),
                ] {
                    c.env(var, world.host_path(pod)?);
                }
                for (k, v) in extra_env {
                    c.env(k, world.expand(v)?);
                }
                c.envs(env);
                for a in extra_args {
                    c.arg(world.expand(a)?);
                }
                c.args(&args);
                c.current_dir(world.host_path("/workspace")?);
                // Its own group: signals and the final kill reach its children.
                c.process_group(0);
                c
            }
            Impl::Image {
                reference,
                env: extra_env,
            } => {
                let name = format!(
                    "agentpod-conformance-{}-{id}-{seq}",
                    world
                        .root()
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_lowercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
                );
                let mut c = tokio::process::Command::new(&impls.podman);
                c.args(["run", "--rm", "--pull=never", "--name", &name])
                    .args(["--network", "host", "--user", "1000:1000", "--read-only"])
                    .args(["-w", "/workspace"]);
                for (pod, dir) in POD_DIRS {
                    let ro = matches!(pod, "/skills" | "/config" | "/memory");
                    c.arg("-v").arg(format!(
                        "{}:{pod}{}",
                        world.root().join(dir).display(),
                        if ro { ":ro" } else { "" }
                    ));
                }
                if spec.stdin == StdinMode::Open {
                    c.arg("-i");
                }
                for (k, v) in extra_env {
                    c.arg("-e").arg(format!("{k}={}", world.expand(v)?));
                }
                for (k, v) in &env {
                    c.arg("-e").arg(format!("{k}={v}"));
                }
                c.arg(reference).args(&args);
                c.current_dir(world.root());
                c.process_group(0);
                container = Some(name);
                c
            }
        };
        cmd.stdin(match spec.stdin {
            StdinMode::Null => Stdio::null(),
            StdinMode::Open => Stdio::piped(),
        })
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("start {id} ({}): {e}", imp.describe()))?;
        let started = Instant::now();
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        let exit: Arc<Mutex<Option<Exit>>> = Arc::default();
        let slot = exit.clone();
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                use std::os::unix::process::ExitStatusExt;
                let code = status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(-1);
                if let Ok(mut e) = slot.lock() {
                    *e = Some(Exit {
                        code,
                        after: started.elapsed(),
                    });
                }
            }
        });
        Ok(Self {
            id: id.to_owned(),
            pid,
            container,
            podman: impls.podman.clone(),
            started,
            exit,
            stdout,
            stderr,
            _stdin: stdin,
            killed: Default::default(),
        })
    }

    /// How it ended, if it did.
    pub fn exited(&self) -> Option<Exit> {
        *self.exit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`...) to the process (through
    /// podman's signal proxy for images).
    pub fn signal(&self, sig: &str) -> Result<(), String> {
        let sig = sig.trim_start_matches("SIG");
        if !sig.chars().all(|c| c.is_ascii_uppercase()) || sig.is_empty() {
            return Err(format!("bad signal name {sig:?}"));
        }
        if let Some(name) = &self.container {
            let ok = std::process::Command::new(&self.podman)
                .args(["kill", "--signal", sig, name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
        }
        kill(&format!("-{sig}"), &self.pid.to_string())
    }

    /// Kills it and everything in its process group (once).
    pub fn kill(&self) {
        if self.killed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Some(name) = &self.container {
            let _ = std::process::Command::new(&self.podman)
                .args(["rm", "-f", "-t", "0", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // The group outlives its leader when it left children behind.
        let _ = kill("-KILL", &format!("-{}", self.pid));
    }

    /// The last `n` lines of stdout and stderr, for a failure report.
    pub fn tail(&self, n: usize) -> String {
        let mut s = match self.exited() {
            Some(e) => format!(
                "--- {} exited with code {} after {:?}\n",
                self.id, e.code, e.after
            ),
            None => format!(
                "--- {} still running after {:?}\n",
                self.id,
                self.started.elapsed()
            ),
        };
        for (label, p) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            s.push_str(&format!(
                "--- {} {label} (last {} lines)\n",
                self.id,
                lines.len() - from
            ));
            for l in &lines[from..] {
                let cut = (0..=l.len().min(400))
                    .rev()
                    .find(|i| l.is_char_boundary(*i))
                    .unwrap_or(0);
                s.push_str(&l[..cut]);
                s.push('\n');
            }
        }
        s
    }
}

/// `kill <sig> <target>` (no unsafe code for a signal).
fn kill(sig: &str, target: &str) -> Result<(), String> {
    let status = std::process::Command::new("kill")
        .args([sig, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("run kill: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill {sig} {target} failed"))
    }
}
