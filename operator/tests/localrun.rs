//! `agentpod run` (engine `process`) end to end: the demo AgentRun against
//! the scripted model, real binaries, a real nats-server, memory server and
//! Python MCP server; and Ctrl-C in the middle of a run.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentpod_operator::run::procs::descendants;
use agentpod_test_support::llm::{Script, ScriptedLlm};
use common::{ensure_binaries, live_cmdlines, root, start_run, wait_exit};
use serde_json::Value;

/// The Pod's binaries of the process engine.
const POD_BINARIES: [&str; 5] = [
    "agent-runner",
    "ipc-bridge",
    "mcp-bridge",
    "tool-executor",
    "memory-server",
];

/// Neither the given processes nor any naming the run folder still run.
fn assert_nothing_left(run_dir: &Path, pids: &[u32]) {
    let live = live_cmdlines();
    for &pid in pids {
        assert!(
            !live.iter().any(|(p, _)| *p == pid),
            "pid {pid} outlived the run"
        );
    }
    let needle = run_dir.display().to_string();
    for (pid, cmd) in &live {
        assert!(
            !cmd.contains(&needle),
            "process {pid} ({cmd}) outlived the run"
        );
    }
}

/// The demo through the process engine, its binaries built if missing.
fn start_local_run(run_dir: &Path, model_url: &str) -> (Child, mpsc::Receiver<Value>) {
    ensure_binaries(&POD_BINARIES);
    start_run(run_dir, model_url, "process")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_run_plays_the_whole_pod_locally() {
    let llm = ScriptedLlm::start(
        Script::from_file(root().join("examples/demo/conversation.yaml")).unwrap(),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let (mut child, rx) = start_local_run(&run_dir, &llm.base_url());
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
    common::assert_ready_before_agent(&events, "ipc-bridge");
    common::assert_ready_before_agent(&events, "mcp-bridge");
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
    let (mut child, rx) = start_local_run(&run_dir, &llm.base_url());
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
