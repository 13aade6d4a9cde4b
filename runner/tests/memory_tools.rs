//! Memory end to end: the real `agent-runner`, the real `memory-server` and
//! the scripted LLM: tools, auto-context, synchronous auto-store, the
//! legacy marker, and an unreachable server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::memory::{ListQuery, MemoryClient, StoreRequest};
use agentpod_sdk::wire::ResultStatus;
use agentpod_test_support::llm::{Expect, Script, ScriptedLlm, Turn};
use serde_json::json;

mod common;

/// A running memory-server on a free port.
struct MemoryServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl MemoryServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(common::sidecar("memory-server"))
            .env_clear()
            .env("MEMORY_DB_PATH", dir.path().join("memory.db"))
            .env("MEMORY_BIND", "127.0.0.1")
            .env("MEMORY_PORT", "0")
            .env("LOG_FORMAT", "json")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("memory-server exited").unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            // JSON log lines carry their fields flat (agentpod_sdk::logging).
            if v["message"] == "listening" {
                break v["addr"].as_str().unwrap().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("http://{addr}"),
            _dir: dir,
        }
    }
}

impl Drop for MemoryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vars(dir: &std::path::Path, ipc: &IpcRoot, llm: &ScriptedLlm) -> Vec<(String, String)> {
    common::vars(dir, ipc, llm, "Deploy the payments service")
}

#[tokio::test]
async fn memory_tools_context_and_auto_store() {
    let server = MemoryServer::start();
    let client = MemoryClient::new(&server.url).unwrap();
    client
        .store(&StoreRequest::new(
            "to deploy the payments service, set the canary flag",
            &["ops"],
        ))
        .await
        .unwrap();
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::text("")
                    .with_tool_call("s", "memory_search", json!({"query": "canary"}))
                    .with_tool_call(
                        "w",
                        "memory_store",
                        json!({"content": "deployed v2", "tags": ["deploy"]}),
                    )
                    .with_tool_call("e", "memory_search", json!({}))
                    .expect(Expect {
                        tools_include: vec![
                            "memory_search".into(),
                            "memory_store".into(),
                            "memory_list".into(),
                        ],
                        system_contains: Some(
                            "## Relevant Past Context (auto-retrieved)\n\n**Memory #1**".into(),
                        ),
                        ..Expect::default()
                    }),
            )
            // Calls of one turn run concurrently, so the list comes a turn
            // after the store it should see.
            .turn(
                Turn::tool_call("l", "memory_list", json!({"tags": "deploy"})).expect(Expect {
                    tool_results: vec![
                        ("s", "to deploy the payments service, set the canary flag").into(),
                        ("s", "[ops]").into(),
                        ("w", "\"id\":2").into(),
                        ("e", "Error: query is required").into(),
                    ],
                    ..Expect::default()
                }),
            )
            .turn(Turn::text("Deployed.").expect(Expect {
                tool_results: vec![("l", "**Memory #2**").into()],
                ..Expect::default()
            })),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let mut v = vars(dir.path(), &ipc, &llm);
    // Memory tools exist even without TOOLS_ENABLED, as upstream.
    v.push(("MEMORY_SERVER_URL".into(), server.url.clone()));
    let (r, _) = common::run(&v, &ipc).await;
    assert_eq!(r.status, ResultStatus::Success, "{:?}", llm.failures());
    // The auto-store ran before the runner exited.
    let auto = client
        .list(&ListQuery {
            tags: "auto".into(),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(auto.len(), 1);
    assert_eq!(auto[0].tags, ["auto", "agent-run"]);
    assert_eq!(
        auto[0].content,
        "Task: Deploy the payments service\n\nResponse: Deployed."
    );

    // MEMORY_AUTO_STORE=off: nothing more is stored.
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("again"))).await;
    let (dir, ipc) = common::pod_dir();
    let mut v = vars(dir.path(), &ipc, &llm);
    v.push(("MEMORY_SERVER_URL".into(), server.url.clone()));
    v.push(("MEMORY_AUTO_STORE".into(), "off".into()));
    let (r, _) = common::run(&v, &ipc).await;
    assert_eq!(r.status, ResultStatus::Success);
    let all = client.list(&ListQuery::default()).await.unwrap();
    assert_eq!(all.len(), 3);
}

#[tokio::test]
async fn unreachable_memory_server_is_an_error_result_not_a_crash() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text("").with_tool_call("s", "memory_search", json!({"query": "x"})))
            .turn(Turn::text("ok").expect(Expect {
                tool_results: vec![("s", "Error: Memory server request failed").into()],
                ..Expect::default()
            })),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let mut v = vars(dir.path(), &ipc, &llm);
    v.push((
        "MEMORY_SERVER_URL".into(),
        format!("http://127.0.0.1:{dead}"),
    ));
    let (r, _) = common::run(&v, &ipc).await;
    assert_eq!(r.status, ResultStatus::Success, "{:?}", llm.failures());
}

#[tokio::test]
async fn legacy_memory_marker() {
    let text = "Done.\n__SYMPOZIUM_MEMORY__\n- likes tea\n__SYMPOZIUM_MEMORY_END__";
    for debug in [false, true] {
        // The mounted `<agent>-memory` ConfigMap's MEMORY.md reaches the
        // model ahead of the task (§1.9, §6.4), plus the marker instruction.
        let llm = ScriptedLlm::start(Script::new().turn(Turn::text(text).expect(Expect {
            system_contains: Some("__SYMPOZIUM_MEMORY_END__".into()),
            last_user_contains: Some(
                "## Your Memory\nThe following is your persistent memory from prior runs:\n\n\
                 - prefers blue-green deploys\n\n## Current Task\nDeploy the payments service"
                    .into(),
            ),
            ..Expect::default()
        })))
        .await;
        let (dir, ipc) = common::pod_dir();
        let memory_root = dir.path().join("memory");
        std::fs::create_dir_all(&memory_root).unwrap();
        std::fs::write(
            memory_root.join("MEMORY.md"),
            "- prefers blue-green deploys\n",
        )
        .unwrap();
        let mut v = vars(dir.path(), &ipc, &llm);
        v.push(("MEMORY_ENABLED".into(), "true".into()));
        v.push(("DEBUG".into(), debug.to_string()));
        v.push((
            "AGENTPOD_MEMORY_ROOT".into(),
            memory_root.display().to_string(),
        ));
        let (r, out) = common::run(&v, &ipc).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(r.status, ResultStatus::Success, "{:?}", llm.failures());
        llm.assert_finished();
        assert!(
            stdout.contains("\n__SYMPOZIUM_MEMORY__\n- likes tea\n__SYMPOZIUM_MEMORY_END__\n"),
            "{stdout}"
        );
        // The memory marker comes before the result marker.
        assert!(
            stdout.find("__SYMPOZIUM_MEMORY__").unwrap()
                < stdout.find("__SYMPOZIUM_RESULT__").unwrap()
        );
        if debug {
            assert_eq!(r.response, text);
        } else {
            assert!(!r.response.contains("SYMPOZIUM"), "{}", r.response);
        }
    }
}

/// A memory server that accepts connections and never answers: the tool
/// call ends at the client's deadline (after its retries) with an `Error:`
/// result the model sees, and the run still succeeds.
#[tokio::test]
async fn hanging_memory_server_times_out_as_a_tool_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Hold every connection open without a byte of answer.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::tool_call(
                "s",
                "memory_search",
                json!({"query": "anything"}),
            ))
            .turn(Turn::text("Memory was unavailable.").expect(Expect {
                tool_results: vec![("s", "Error:").into()],
                ..Expect::default()
            })),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let mut v = vars(dir.path(), &ipc, &llm);
    v.push(("MEMORY_SERVER_URL".into(), url));
    v.push(("MEMORY_AUTO_STORE".into(), "off".into()));
    let started = std::time::Instant::now();
    let (r, _) = common::run(&v, &ipc).await;
    assert_eq!(r.status, ResultStatus::Success, "{:?}", llm.failures());
    assert_eq!(r.response, "Memory was unavailable.");
    let body = llm.requests()[1].body.to_string();
    assert!(
        body.contains("Error: Memory server did not answer within 5000 ms"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
