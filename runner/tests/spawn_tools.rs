//! `delegate_to_persona` and `spawn_subagents` end to end: the real
//! `agent-runner` and the scripted LLM, with a test responder in place of
//! the ipc-bridge and the controller (out of scope here).

use std::time::Duration;

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::wire::{ResultStatus, SpawnRequest, SubagentSpawnRequest};
use agentpod_test_support::eventually;
use agentpod_test_support::llm::{Expect, Script, ScriptedLlm, Turn};
use serde_json::json;

mod common;

fn vars(dir: &std::path::Path, ipc: &IpcRoot, llm: &ScriptedLlm) -> Vec<(String, String)> {
    let mut v = common::vars(dir, ipc, llm, "Get help.");
    v.push(("TOOLS_ENABLED".into(), "true".into()));
    v
}

fn spawn_files(ipc: &IpcRoot) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(ipc.spawn())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// The first `/ipc/spawn/<prefix><id>.json` not `answered` yet, as the
/// bridge would read it: its id and its parsed body (waits up to 60 s).
async fn next_request<T: serde::de::DeserializeOwned>(
    ipc: &IpcRoot,
    prefix: &str,
    answered: impl Fn(&str) -> bool,
) -> (String, T) {
    let answered = &answered;
    eventually(Duration::from_secs(60), prefix, || async move {
        std::fs::read_dir(ipc.spawn())
            .ok()?
            .filter_map(Result::ok)
            .find_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let id = n.strip_prefix(prefix)?.strip_suffix(".json")?.to_owned();
                if answered(&id) {
                    return None;
                }
                Some((
                    id,
                    serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?,
                ))
            })
    })
    .await
}

/// Answers every delegation request with `answer(request)` as the bridge
/// would, until the test ends.
fn delegation_responder(ipc: IpcRoot, answer: fn(&SpawnRequest) -> serde_json::Value) {
    tokio::spawn(async move {
        loop {
            let req: (String, SpawnRequest) =
                next_request(&ipc, "request-", |id| ipc.spawn_result(id).exists()).await;
            let body = answer(&req.1).to_string();
            ipc.write_atomic(&ipc.spawn_result(&req.0), body.as_bytes())
                .unwrap();
        }
    });
}

#[tokio::test]
async fn delegation_success_error_and_missing_ensemble() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::text("")
                    .with_tool_call(
                        "ok",
                        "delegate_to_persona",
                        json!({"targetPersona":"reviewer","task":"review"}),
                    )
                    .with_tool_call(
                        "bad",
                        "delegate_to_persona",
                        json!({"targetPersona":"ghost","task":"boo"}),
                    ),
            )
            .turn(Turn::text("done").expect(Expect {
                tool_results: vec![
                    ("ok", "Result from reviewer:\n\nlooks good (pack team, agent default)").into(),
                    ("bad", "Delegation to 'ghost' failed: no such persona").into(),
                ],
                ..Expect::default()
            })),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let mut v = vars(dir.path(), &ipc, &llm);
    v.push(("ENSEMBLE_NAME".into(), "team".into()));
    let logs = dir.path().join("logs");
    v.push(("DETAILED_LOG_PATH".into(), logs.display().to_string()));
    v.push(("AGENT_RUN_ID".into(), "run-d".into()));
    delegation_responder(ipc.clone(), |r| {
        if r.target_persona == "reviewer" {
            json!({"requestId": r.request_id, "status": "success",
                   "response": format!("looks good (pack {}, agent {})", r.pack_name, r.agent_id)})
        } else {
            json!({"requestId": r.request_id, "status": "error", "error": "no such persona"})
        }
    });
    let (r, _) = common::run(&v, &ipc).await;
    assert_eq!(r.status, ResultStatus::Success, "{:?}", llm.failures());
    assert!(spawn_files(&ipc).is_empty(), "{:?}", spawn_files(&ipc));
    // Each delegation is a `delegate` event in the detailed log.
    let log = std::fs::read_to_string(logs.join("run-d").join("agent.jsonl")).unwrap();
    let mut delegations: Vec<(String, String)> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "delegate")
        .map(|e| {
            (
                e["target_persona"].as_str().unwrap_or_default().to_owned(),
                e["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    delegations.sort();
    assert_eq!(
        delegations,
        [
            ("ghost".to_owned(), "error".to_owned()),
            ("reviewer".to_owned(), "success".to_owned())
        ],
        "{log}"
    );

    // Without ENSEMBLE_NAME nothing is written.
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text("").with_tool_call(
                "x",
                "delegate_to_persona",
                json!({"targetPersona":"r","task":"t"}),
            ))
            .turn(Turn::text("done").expect(Expect {
                tool_results: vec![("x", "Error: delegate_to_persona needs ENSEMBLE_NAME").into()],
                ..Expect::default()
            })),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let (r, _) = common::run(&vars(dir.path(), &ipc, &llm), &ipc).await;
    assert_eq!(r.status, ResultStatus::Success, "{:?}", llm.failures());
    assert!(spawn_files(&ipc).is_empty());
}

#[tokio::test]
async fn delegation_times_out_at_the_run_deadline_leaving_the_request() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("").with_tool_call(
        "x",
        "delegate_to_persona",
        json!({"targetPersona":"r","task":"t"}),
    )))
    .await;
    let (dir, ipc) = common::pod_dir();
    let mut v = vars(dir.path(), &ipc, &llm);
    v.push(("ENSEMBLE_NAME".into(), "team".into()));
    v.push(("RUN_TIMEOUT".into(), "2s".into()));
    let (r, _) = common::run(&v, &ipc).await;
    assert_eq!(r.status, ResultStatus::Error);
    assert!(r.error.contains("RUN_TIMEOUT"), "{}", r.error);
    let files = spawn_files(&ipc);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("request-"), "{files:?}");
}

#[tokio::test]
async fn subagent_batches() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::text("")
                    .with_tool_call("b", "spawn_subagents", json!({"tasks":[{"id":"a","task":"x"},{"id":"b","task":"y","timeout":"1m"}],"strategy":"sequential","failurePolicy":"continue"}))
                    .with_tool_call("big", "spawn_subagents", json!({"tasks":[{"id":"1","task":"x"},{"id":"2","task":"x"},{"id":"3","task":"x"}]}))
                    .expect(Expect {
                        tools_include: vec!["spawn_subagents".into()],
                        ..Expect::default()
                    }),
            )
            .turn(Turn::text("done").expect(Expect {
                tool_results: vec![
                    ("b", "(status: partial)\n\n### Task: a (run: run-a)\nfine\n\n### Task: b (run: run-b)\n**Error:** boom").into(),
                    ("big", "Error: at most 2 sub-agents per batch").into(),
                ],
                ..Expect::default()
            })),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let mut v = vars(dir.path(), &ipc, &llm);
    v.push(("SUBAGENTS_ENABLED".into(), "true".into()));
    v.push(("SUBAGENTS_MAX_CHILDREN".into(), "2".into()));
    let root = ipc.clone();
    tokio::spawn(async move {
        let (id, req): (String, SubagentSpawnRequest) =
            next_request(&root, "subagent-request-", |_| false).await;
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.subagent_request(&id)).unwrap()).unwrap();
        assert_eq!(raw["strategy"], "sequential");
        assert_eq!(raw["failurePolicy"], "continue");
        assert_eq!(req.tasks.len(), 2);
        std::fs::write(
            root.subagent_result(&id),
            json!({"batchId": id, "status": "partial", "results": [
                {"id":"a","runName":"run-a","status":"success","response":"fine"},
                {"id":"b","runName":"run-b","status":"error","error":"boom"}]})
            .to_string(),
        )
        .unwrap();
    });
    let (r, _) = common::run(&v, &ipc).await;
    assert_eq!(r.status, ResultStatus::Success, "{:?}", llm.failures());
    assert!(spawn_files(&ipc).is_empty(), "{:?}", spawn_files(&ipc));
}
