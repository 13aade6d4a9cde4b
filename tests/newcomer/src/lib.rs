//! What the newcomer tests share: a fresh copy of the repository (its
//! tracked files, as a clone has them, plus the `make setup` folders and
//! the built binaries under `target/debug`), commands run in a network
//! namespace whose only interface is loopback (so nothing can leave the
//! machine, and an attempt would show as an error), and what a command
//! left for the user to see: exit code, stdout, stderr, time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The repository the tests run from.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository")
}

/// Where cargo put the workspace's binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    // This test binary is `<target>/debug/deps/<name>`.
    let exe = std::env::current_exe().expect("the test binary");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .to_path_buf()
}

/// The packages whose binaries the README, the demo and `agentpod run`
/// use.
pub const PACKAGES: [&str; 8] = [
    "agentpod-operator",
    "agent-runner",
    "ipc-bridge",
    "mcp-bridge",
    "tool-executor",
    "memory-server",
    "agentpod-test-support",
    "text-tools",
];

/// The binaries the tests run, one per package of [`PACKAGES`].
pub const BINARIES: [&str; 8] = [
    "agentpod",
    "agent-runner",
    "ipc-bridge",
    "mcp-bridge",
    "tool-executor",
    "memory-server",
    "scripted-llm",
    "text-tools",
];

/// Builds the packages once per test binary when one of their binaries is
/// missing. `cargo test --workspace` (`make test`) builds every binary of
/// the workspace before any test runs, so there they are up to date; a
/// lone `cargo test -p agentpod-newcomer` after changing them wants a
/// `cargo build` first.
pub fn ensure_built() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if BINARIES.iter().all(|b| bin_dir().join(b).is_file()) {
            return;
        }
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-q", "--bins"]).current_dir(repo());
        for p in PACKAGES {
            cmd.args(["-p", p]);
        }
        assert!(cmd.status().expect("cargo").success(), "cargo build failed");
    });
}

/// A fresh copy of the repository: every tracked file (from the working
/// tree, so uncommitted edits are tested too), `.venv` and `node_modules`
/// as `make setup` leaves them, and `target/debug` holding the built
/// binaries, as after `make demo`. Removed on drop.
pub struct FreshClone {
    dir: tempfile::TempDir,
}

impl FreshClone {
    /// Copies the repository.
    pub fn new() -> Self {
        ensure_built();
        let repo = repo();
        let dir = tempfile::Builder::new()
            .prefix("agentpod-clone-")
            .tempdir()
            .expect("a temp dir");
        let out = Command::new("git")
            .args(["ls-files", "-z"])
            .current_dir(&repo)
            .output()
            .expect("git ls-files");
        assert!(out.status.success(), "git ls-files failed");
        for rel in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let rel = Path::new(std::str::from_utf8(rel).expect("UTF-8 path"));
            let from = repo.join(rel);
            if !from.exists() {
                continue; // deleted in the working tree
            }
            let to = dir.path().join(rel);
            std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
        for setup in [".venv", "node_modules"] {
            let target = repo.join(setup).canonicalize().expect("make setup ran");
            std::os::unix::fs::symlink(target, dir.path().join(setup)).expect("symlink");
        }
        std::fs::create_dir(dir.path().join("target")).expect("mkdir target");
        std::os::unix::fs::symlink(bin_dir(), dir.path().join("target/debug")).expect("symlink");
        Self { dir }
    }

    /// Its root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for FreshClone {
    fn default() -> Self {
        Self::new()
    }
}

/// What a command left for the user.
#[derive(Debug)]
pub struct Seen {
    /// Exit code (`None`: killed at the time limit or by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub took: Duration,
}

impl Seen {
    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Nothing tried to reach beyond loopback: in the namespace such an
    /// attempt fails with "Network is unreachable" or a DNS error, which
    /// would show in what the user sees.
    pub fn assert_stayed_local(&self) {
        let all = self.all();
        for sign in [
            "Network is unreachable",
            "os error 101",
            "dns error",
            "failed to lookup address",
            "Temporary failure in name resolution",
        ] {
            assert!(
                !all.contains(sign),
                "a connection tried to leave the machine ({sign}):\n{all}"
            );
        }
    }
}

/// A command to play as the user would type it.
pub struct Case {
    cwd: PathBuf,
    script: String,
    env: Vec<(String, String)>,
}

impl Case {
    /// `script` (a `bash -c` command line, as typed) in `cwd`.
    pub fn new(cwd: &Path, script: &str) -> Self {
        Self {
            cwd: cwd.to_path_buf(),
            script: script.to_owned(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Runs it in a fresh network namespace with only loopback, and its own
    /// PID namespace so that everything it started ends with it (root and
    /// `unshare` needed: this machine's tests run as root), killed after
    /// `limit`. The environment is the test's, less what would pick a real
    /// model or a shared bus, plus `RUST_BACKTRACE=1` (a user's setting
    /// that must not turn a user error into a backtrace).
    pub fn run(self, limit: Duration) -> Seen {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--",
            "bash",
            "-c",
        ])
        .arg(format!("ip link set lo up || exit 97\n{}", self.script))
        .current_dir(&self.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for k in [
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "API_KEY",
            "MODEL_BASE_URL",
            "MODEL_NAME",
            "MODEL_PROVIDER",
            "EVENT_BUS_URL",
            "AGENTPOD_ENGINE",
            "AGENTPOD_BIN_DIR",
            "AGENTPOD_PODMAN",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("RUST_BACKTRACE", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("unshare");
        let out_t = slurp(child.stdout.take());
        let err_t = slurp(child.stderr.take());
        let code = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st.code();
            }
            if started.elapsed() > limit {
                // unshare's child is PID 1 of the namespace and dies with
                // unshare (--kill-child): everything in it dies too.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = started.elapsed();
        let seen = Seen {
            code,
            stdout: out_t.join().unwrap_or_default(),
            stderr: err_t.join().unwrap_or_default(),
            took,
        };
        assert_ne!(
            seen.code,
            Some(97),
            "could not bring up loopback in a network namespace: {}",
            seen.stderr
        );
        seen
    }
}

fn slurp<R: std::io::Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

/// The `scripted-llm` binary.
pub fn scripted_llm() -> PathBuf {
    bin_dir().join("scripted-llm")
}
