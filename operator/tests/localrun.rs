//! `agentpod run` (engine `process`) end to end: the demo AgentRun against
//! the scripted model, real binaries, a real nats-server, memory server and
//! Python MCP server; and Ctrl-C in the middle of a run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentpod_test_support::llm::{Script, ScriptedLlm};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_agentpod");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Pod's binaries, next to `agentpod`, built if missing.
fn ensure_binaries() {
    let dir = Path::new(BIN).parent().unwrap();
    let bins = [
        ("agent-runner", "agent-runner"),
        ("ipc-bridge", "ipc-bridge"),
        ("mcp-bridge", "mcp-bridge"),
        ("tool-executor", "tool-executor"),
        ("memory-server", "memory-server"),
    ];
    let missing: Vec<&str> = bins
        .iter()
        .filter(|(b, _)| !dir.join(b).exists())
        .map(|(_, p)| *p)
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

/// `agentpod run --json` of the demo with extra args; stdout lines arrive
/// on the receiver.
fn start_run(run_dir: &Path, model_url: &str) -> (Child, mpsc::Receiver<Value>) {
    ensure_binaries();
    let mut child = Command::new(BIN)
        .current_dir(root())
        .args(["run", "examples/demo/agentrun.yaml", "--json", "--run-dir"])
        .arg(run_dir)
        .args(["--env", &format!("MODEL_BASE_URL={model_url}")])
        .args(["--env", "API_KEY=test"])
        .env_remove("EVENT_BUS_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
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

/// Waits for the child's exit with a deadline.
fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
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

/// Live descendants of `root` (zombies excluded), from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut pairs = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or_default();
        if let Some(ppid) = f.next().and_then(|p| p.parse::<u32>().ok())
            && state != "Z"
        {
            pairs.push((pid, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &pairs {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s
                .rfind(')')
                .map(|i| {
                    s[i + 1..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
                .unwrap_or_default();
            state != "Z"
        })
        .unwrap_or(false)
}

/// No process still running has the run folder in its command line.
fn assert_nothing_left(run_dir: &Path, pids: &[u32]) {
    for &pid in pids {
        assert!(!alive(pid), "pid {pid} outlived the run");
    }
    let needle = run_dir.display().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let pid = e.file_name().to_string_lossy().into_owned();
            assert!(
                !cmd.contains(&needle) || !pid.parse().is_ok_and(alive),
                "process {pid} ({cmd}) outlived the run"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_run_plays_the_whole_pod_locally() {
    let llm = ScriptedLlm::start(
        Script::from_file(root().join("examples/demo/conversation.yaml")).unwrap(),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let (mut child, rx) = start_run(&run_dir, &llm.base_url());
    let agentpod_pid = child.id();
    let (status, events, seen) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        while let Ok(ev) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if ev["event"] == "tool_call" {
                seen.extend(descendants(agentpod_pid));
            }
            events.push(ev);
        }
        (wait_exit(&mut child, Duration::from_secs(10)), events, seen)
    })
    .await
    .unwrap();
    llm.assert_finished();
    assert_eq!(status.code(), Some(0), "events: {events:#?}");

    fn of<'a>(events: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
        events.iter().filter(move |e| e["event"] == kind)
    }
    let of = |kind: &'static str| of(&events, kind);
    let result = of("result").next().expect("a result event");
    assert_eq!(result["status"], "success");
    assert!(
        result["response"]
            .as_str()
            .unwrap()
            .contains("20 + 22 = 42")
    );
    assert_eq!(result["tool_calls"], 7);
    assert_eq!(result["input_tokens"], 3700);

    let started: Vec<&str> = of("container_started")
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
    for e in of("container_exited") {
        if e["name"] != "nats-server" && e["name"] != "memory-server" {
            assert_eq!(e["code"], 0, "{e}");
        }
    }
    let tools: Vec<(&str, &str)> = of("tool_result")
        .map(|e| (e["name"].as_str().unwrap(), e["preview"].as_str().unwrap()))
        .collect();
    assert!(tools.contains(&("execute_command", "HELLO FROM THE SIDECAR")));
    assert!(tools.contains(&("demo_add", "42")));
    assert!(
        tools
            .iter()
            .any(|(n, p)| *n == "memory_search" && p.contains("20 + 22 = 42"))
    );

    let subjects: Vec<&str> = of("nats").map(|e| e["subject"].as_str().unwrap()).collect();
    for s in [
        "sympozium.agent.stream.chunk",
        "sympozium.tool.exec.request",
        "sympozium.channel.message.send",
        "sympozium.agent.run.completed",
    ] {
        assert!(subjects.contains(&s), "{s} not seen: {subjects:?}");
    }
    let completed = of("nats")
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

    let finished = of("run_finished").next().unwrap();
    assert_eq!(finished["exit_code"], 0);
    assert!(!seen.is_empty(), "descendants were seen mid-run");
    assert_nothing_left(&run_dir, &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_every_process_the_run_started() {
    // The model never answers in time: the run is mid-flight when SIGINT comes.
    let script = Script::from_yaml_str("turns:\n  - text: late\n    delay_ms: 60000\n").unwrap();
    let llm = ScriptedLlm::start(script).await;
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let (mut child, rx) = start_run(&run_dir, &llm.base_url());
    let pid = child.id();
    let (status, events, seen) = tokio::task::spawn_blocking(move || {
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Wait until the agent container runs, then look at the tree.
        loop {
            let ev = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the agent container starts");
            let is_agent = ev["event"] == "container_started" && ev["name"] == "agent";
            events.push(ev);
            if is_agent {
                break;
            }
        }
        let seen = descendants(pid);
        let ok = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        while let Ok(ev) = rx.recv_timeout(Duration::from_secs(30)) {
            events.push(ev);
        }
        (wait_exit(&mut child, Duration::from_secs(10)), events, seen)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130), "events: {events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "interrupted" && e["signal"] == "SIGINT")
    );
    let stopped = events
        .iter()
        .find(|e| e["event"] == "stopped")
        .expect("a stopped event");
    let names: Vec<&str> = stopped["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for n in ["agent", "ipc-bridge", "nats-server", "memory-server"] {
        assert!(names.contains(&n), "{n} not stopped: {names:?}");
    }
    // nats-server, memory-server, the sidecars, the agent, the MCP server.
    assert!(seen.len() >= 6, "descendants mid-run: {seen:?}");
    assert_nothing_left(&run_dir, &seen);
}
