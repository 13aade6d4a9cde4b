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

/// The `--json` events of one kind.
pub fn of<'a>(events: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    events.iter().filter(move |e| e["event"] == kind)
}

/// What the demo run shows with either engine: its result, the Pod's
/// containers in order with the bridges ready before the agent, every
/// container but the services (nats-server, memory-server, podman's stdio
/// MCP adapters) exiting 0, the tool results, the NATS events, and the
/// files the containers wrote into the run folder.
pub fn assert_demo_outcome(events: &[Value], run_dir: &Path) {
    let result = of(events, "result").next().expect("a result event");
    assert_eq!(result["status"], "success");
    assert!(
        result["response"]
            .as_str()
            .unwrap()
            .contains("20 + 22 = 42")
    );
    assert_eq!(result["tool_calls"], 7);
    assert_eq!(result["input_tokens"], 3700);

    let started: Vec<&str> = of(events, "container_started")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for c in [
        "mcp-discover",
        "ipc-bridge",
        "mcp-bridge",
        "skill-demo-shell",
        "agent",
    ] {
        assert!(started.contains(&c), "{c} not started: {started:?}");
    }
    assert_eq!(started.first(), Some(&"mcp-discover"), "init first");
    assert_eq!(started.last(), Some(&"agent"), "agent last");
    assert_ready_before_agent(events, "ipc-bridge");
    assert_ready_before_agent(events, "mcp-bridge");
    for e in of(events, "container_exited") {
        let name = e["name"].as_str().unwrap();
        if !["nats-server", "memory-server"].contains(&name) && !name.starts_with("mcp-adapter-") {
            assert_eq!(e["code"], 0, "{e}");
        }
    }

    let tools: Vec<(&str, &str)> = of(events, "tool_result")
        .map(|e| (e["name"].as_str().unwrap(), e["preview"].as_str().unwrap()))
        .collect();
    assert!(tools.contains(&("execute_command", "HELLO FROM THE SIDECAR")));
    assert!(tools.contains(&("demo_add", "42")));
    assert!(
        tools
            .iter()
            .any(|(n, p)| *n == "memory_search" && p.contains("20 + 22 = 42"))
    );

    let subjects: Vec<&str> = of(events, "nats")
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    for s in [
        "sympozium.agent.stream.chunk",
        "sympozium.tool.exec.request",
        "sympozium.channel.message.send",
        "sympozium.agent.run.completed",
    ] {
        assert!(subjects.contains(&s), "{s} not seen: {subjects:?}");
    }
    let completed = of(events, "nats")
        .find(|e| e["subject"] == "sympozium.agent.run.completed")
        .unwrap();
    assert_eq!(completed["data"]["metadata"]["agentRunID"], "demo-run");

    let notes = std::fs::read_to_string(run_dir.join("workspace/notes.md")).unwrap();
    assert!(notes.contains("agentpod ran this Pod"));
    let result_file: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("ipc/output/result.json")).unwrap())
            .unwrap();
    assert_eq!(result_file["status"], "success");
    let messages: Vec<_> = std::fs::read_dir(run_dir.join("ipc/messages"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(messages.len(), 1);
    assert!(run_dir.join("memory/memory.db").exists());

    let finished = of(events, "run_finished").next().unwrap();
    assert_eq!(finished["exit_code"], 0);
}

/// The events until the agent container started (panics if it does not
/// within `within`).
pub fn events_until_agent_started(rx: &mpsc::Receiver<Value>, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut events = Vec::new();
    loop {
        let ev = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the agent container starts");
        let is_agent = ev["event"] == "container_started" && ev["name"] == "agent";
        events.push(ev);
        if is_agent {
            return events;
        }
    }
}

/// Sends SIGINT to `pid`, as Ctrl-C would.
pub fn sigint(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Asserts the run said it was interrupted by SIGINT and stopped the
/// agent, the bridge and the services; returns its `stopped` event.
pub fn assert_stopped_on_sigint(events: &[Value]) -> &Value {
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "interrupted" && e["signal"] == "SIGINT")
    );
    let stopped = of(events, "stopped").next().expect("a stopped event");
    let names: Vec<&str> = stopped["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for n in ["agent", "ipc-bridge", "nats-server", "memory-server"] {
        assert!(names.contains(&n), "{n} not stopped: {names:?}");
    }
    stopped
}

/// Every event until `agentpod run` closes its output (or `within` passes),
/// each shown to `each` as it arrives.
pub fn all_events(
    rx: &mpsc::Receiver<Value>,
    within: Duration,
    mut each: impl FnMut(&Value),
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut events = Vec::new();
    while let Ok(ev) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        each(&ev);
        events.push(ev);
    }
    events
}
