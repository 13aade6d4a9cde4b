//! `agentpod run` (engine `process`) end to end: the demo AgentRun against
//! the scripted model, real binaries, a real nats-server, memory server and
//! Python MCP server; and Ctrl-C in the middle of a run.

mod common;

use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use agentpod_operator::run::procs::descendants;
use agentpod_test_support::llm::{Script, ScriptedLlm};
use common::{
    all_events, assert_demo_outcome, assert_stopped_on_sigint, ensure_binaries,
    events_until_agent_started, live_cmdlines, root, sigint, start_run, wait_exit,
};
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
        let events = all_events(&rx, Duration::from_secs(90), |ev| {
            if ev["event"] == "tool_call" {
                seen.extend(descendants(agentpod_pid));
            }
        });
        (wait_exit(&mut child, Duration::from_secs(10)), events, seen)
    })
    .await
    .unwrap();
    llm.assert_finished();
    assert_eq!(status.code(), Some(0), "events: {events:#?}");

    assert_demo_outcome(&events, &run_dir);
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
        // Wait until the agent container runs, then look at the tree.
        let mut events = events_until_agent_started(&rx, Duration::from_secs(60));
        let seen = descendants(pid);
        sigint(pid);
        while let Ok(ev) = rx.recv_timeout(Duration::from_secs(30)) {
            events.push(ev);
        }
        (wait_exit(&mut child, Duration::from_secs(10)), events, seen)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130), "events: {events:#?}");
    assert_stopped_on_sigint(&events);
    // nats-server, memory-server, the sidecars, the agent, the MCP server.
    assert!(seen.len() >= 6, "descendants mid-run: {seen:?}");
    assert_nothing_left(&run_dir, &seen);
}
