//! What the `agentpod run` tests share (engines `process` and `podman`):
//! the binary, the demo run with `--json`, a bounded wait, and the live
//! processes from /proc.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `agentpod` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_agentpod");

/// The workspace root (the demo's paths are relative to it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds those of `binaries` (each its package's name) that are not next
/// to `agentpod` yet.
pub fn ensure_binaries(binaries: &[&str]) {
    let dir = Path::new(BIN).parent().unwrap();
    let missing: Vec<&str> = binaries
        .iter()
        .copied()
        .filter(|b| !dir.join(b).exists())
        .collect();
    if missing.is_empty() {
        return;
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build").current_dir(root());
    for p in missing {
        cmd.args(["-p", p]);
    }
    assert!(cmd.status().unwrap().success());
}

/// `agentpod run --engine <engine> --json` of the demo against the model
/// at `model_url`; stdout lines arrive on the receiver.
pub fn start_run(run_dir: &Path, model_url: &str, engine: &str) -> (Child, mpsc::Receiver<Value>) {
    let mut child = Command::new(BIN)
        .current_dir(root())
        .args(["run", "examples/demo/agentrun.yaml", "--engine", engine])
        .args(["--json", "--run-dir"])
        .arg(run_dir)
        .args(["--env", &format!("MODEL_BASE_URL={model_url}")])
        .args(["--env", "API_KEY=test"])
        .env_remove("EVENT_BUS_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("AGENTPOD_PODMAN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits for the child's exit with a deadline (killing it past that).
pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("agentpod run did not end within {within:?}");
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Command lines of every live process (zombies excluded).
pub fn live_cmdlines() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let zombie = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|s| s == "Z");
        if zombie {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            out.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    out
}

/// Asserts that `sidecar` reported ready (`container_ready`) before the
/// agent container started: the local stand-in for its startup probe held
/// the agent back.
pub fn assert_ready_before_agent(events: &[Value], sidecar: &str) {
    let pos = |kind: &str, name: &str| {
        events
            .iter()
            .position(|e| e["event"] == kind && e["name"] == name)
    };
    let ready = pos("container_ready", sidecar);
    let agent = pos("container_started", "agent");
    assert!(
        ready.is_some() && agent.is_some() && ready < agent,
        "{sidecar} ready at {ready:?}, agent started at {agent:?}: {events:#?}"
    );
}
