//! The detailed JSONL log (contract §1.10) written by the real binary.

use std::os::unix::fs::PermissionsExt;

use agentpod_test_support::llm::{Script, ScriptedLlm, Turn};
use serde_json::{Value, json};

mod common;

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn logs_agent_and_llm_events_and_continues_seq() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::tool_call(
                "c1",
                "list_directory",
                json!({"path": "."}),
            ))
            .turn(Turn::text("listed"))
            .cycle(),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let logs = dir.path().join("logs");
    let mut v = common::vars(dir.path(), &ipc, &llm, "List.");
    for (k, val) in [
        ("API_KEY", "sk-secret-key"),
        ("TOOLS_ENABLED", "true"),
        ("AGENT_RUN_ID", "run-7"),
        ("DETAILED_LOG_MAX_SIZE", "1m"),
    ] {
        v.push((k.to_owned(), val.to_owned()));
    }
    v.push(("DETAILED_LOG_PATH".into(), logs.display().to_string()));
    for _ in 0..2 {
        let (_, out) = common::run(&v, &ipc).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let run_dir = logs.join("run-7");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&run_dir), 0o700);
    let agent = lines(&run_dir.join("agent.jsonl"));
    let llm_lines = lines(&run_dir.join("llm.jsonl"));
    assert_eq!(mode(&run_dir.join("agent.jsonl")), 0o600);
    assert_eq!(mode(&run_dir.join("llm.jsonl")), 0o600);

    let events: Vec<&str> = agent.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["config", "span_start", "tool_call", "tool_result"].repeat(2),
        "two runs appended"
    );
    let llm_events: Vec<&str> = llm_lines
        .iter()
        .map(|l| l["event"].as_str().unwrap())
        .collect();
    assert_eq!(llm_events, ["request", "response"].repeat(4));
    for l in agent.iter().chain(&llm_lines) {
        assert_eq!(l["run_id"], "run-7");
        assert!(l["ts"].as_str().unwrap().contains('T'));
    }
    let mut seqs: Vec<u64> = agent
        .iter()
        .chain(&llm_lines)
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=16).collect::<Vec<_>>(),
        "one counter, continued by the second run"
    );
    assert_eq!(agent[2]["tool"], "list_directory");
    assert_eq!(agent[3]["call_id"], "c1");
    let all = std::fs::read_to_string(run_dir.join("agent.jsonl")).unwrap()
        + &std::fs::read_to_string(run_dir.join("llm.jsonl")).unwrap();
    assert!(!all.contains("sk-secret-key"), "no secrets in the log");
}

#[tokio::test]
async fn logs_exec_request_and_edit_file_events() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::default()
                    .with_tool_call(
                        "c1",
                        "execute_command",
                        json!({"command": "echo hi", "target": "K8s-Ops"}),
                    )
                    .with_tool_call(
                        "c2",
                        "edit_file",
                        json!({"path": "/workspace/notes.txt",
                               "edits": [{"old_string": "draft", "new_string": "final"}]}),
                    ),
            )
            .turn(Turn::text("done")),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(workspace.join("notes.txt"), "status: draft\n").unwrap();
    let logs = dir.path().join("logs");

    // Answers the one exec request, like a skill sidecar.
    let tools = ipc.tools();
    let responder = tokio::task::spawn_blocking(move || {
        let (id, _) = common::wait_exec_request(&tools, std::time::Duration::from_secs(20));
        common::answer_exec(
            &tools,
            &id,
            json!({"exitCode": 0, "stdout": "hi\n", "stderr": "", "timedOut": false}),
        );
        id
    });
    let mut v = common::vars(dir.path(), &ipc, &llm, "Run and edit.");
    for (k, val) in [("TOOLS_ENABLED", "true"), ("AGENT_RUN_ID", "run-8")] {
        v.push((k.to_owned(), val.to_owned()));
    }
    v.push(("DETAILED_LOG_PATH".into(), logs.display().to_string()));
    let (_, out) = common::run(&v, &ipc).await;
    let exec_id = responder.await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("notes.txt")).unwrap(),
        "status: final\n"
    );
    let agent = lines(&logs.join("run-8").join("agent.jsonl"));
    let event = |name: &str| {
        agent
            .iter()
            .find(|l| l["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in {agent:#?}"))
            .clone()
    };
    let exec = event("exec_request");
    assert_eq!(exec["run_id"], "run-8");
    assert_eq!(exec["tool"], "execute_command");
    assert_eq!(exec["call_id"], "c1");
    assert_eq!(exec["id"], exec_id.as_str());
    assert_eq!(exec["command"], "echo hi");
    assert_eq!(exec["target"], "k8s-ops");
    assert_eq!(exec["work_dir"], "/workspace");
    assert_eq!(exec["timeout"], 30);
    assert_eq!(exec["status"], "answered");
    assert_eq!(exec["exit_code"], 0);
    assert_eq!(exec["timed_out"], false);
    assert!(exec["duration_ms"].is_u64());

    let edit = event("edit_file");
    assert_eq!(edit["call_id"], "c2");
    assert_eq!(edit["path"], "/workspace/notes.txt");
    assert_eq!(edit["edits"], 1);
    assert_eq!(edit["changes"], 1);
    assert_eq!(edit["success"], true);
    assert_eq!(edit["error"], "");
}
