//! Prompt-server mode (contract §1.8) with the real binary: an orchestrator
//! sidecar stand-in writes requests atomically and not, leaves a `.tmp`
//! name behind, clears the context, and ends the run with `/ipc/done`.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::wire::marker::{LogOutcome, parse_result_from_logs};
use agentpod_sdk::wire::{AgentResult, PromptResult, PromptStatus, ResultStatus};
use agentpod_test_support::llm::{Expect, Script, ScriptedLlm, Turn};
use agentpod_test_support::wait_for_file;
use serde_json::json;
use tempfile::TempDir;

mod common;
use common::BIN;

struct Pod {
    _dir: TempDir,
    ipc: IpcRoot,
}

impl Pod {
    fn new() -> Self {
        let (dir, ipc) = common::pod_dir();
        Self { _dir: dir, ipc }
    }

    fn spawn(&self, llm: &ScriptedLlm, vars: &[(&str, &str)]) -> tokio::process::Child {
        tokio::process::Command::new(BIN)
            .env_clear()
            .env("AGENTPOD_IPC_ROOT", self.ipc.path())
            .env("AGENTPOD_WORKSPACE_ROOT", self.ipc.path())
            .env("AGENTPOD_SETTLE", "0s")
            .env("AGENTPOD_MCP_MANIFEST_WAIT", "0s")
            .env("LLM_API_KEY", "k")
            .env("MODEL_BASE_URL", llm.base_url())
            .env("RUST_LOG", "info")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    async fn result_of(&self, id: &str) -> PromptResult {
        let path = wait_for_file(self.ipc.prompt_result(id), Duration::from_secs(20)).await;
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn done(&self) {
        std::fs::write(self.ipc.done(), "sidecar done").unwrap();
    }
}

async fn finish(child: tokio::process::Child) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("runner did not exit after /ipc/done")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn answers_requests_with_context_structure_and_clear() {
    let schema = json!({"type": "json_schema", "name": "verdict",
        "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}});
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::text("first answer")
                    .with_usage(5, 2, 0)
                    .expect(Expect {
                        last_user_contains: Some("first?".into()),
                        ..Expect::default()
                    }),
            )
            .turn(
                Turn::text("{\"ok\":true}").expect(Expect {
                    body: [(
                        "/response_format/json_schema/name".to_owned(),
                        json!("verdict"),
                    )]
                    .into(),
                    ..Expect::default()
                }),
            )
            .turn(Turn::text("after clear")),
    )
    .await;
    let pod = Pod::new();
    let child = pod.spawn(
        &llm,
        &[
            ("AGENT_MODE", "prompt-server"),
            ("SYSTEM_PROMPT", "Be brief."),
        ],
    );
    let prompts = pod.ipc.prompts();

    // A temp name that is never renamed: never answered.
    std::fs::write(
        prompts.join("request-tmp.json.tmp"),
        json!({"requestId": "tmp", "prompt": "ignored"}).to_string(),
    )
    .unwrap();
    // Atomic: temp name, then rename.
    std::fs::write(
        prompts.join("request-a.json.tmp"),
        json!({"requestId": "a", "prompt": "first?"}).to_string(),
    )
    .unwrap();
    std::fs::rename(
        prompts.join("request-a.json.tmp"),
        prompts.join("request-a.json"),
    )
    .unwrap();
    let a = pod.result_of("a").await;
    assert_eq!(a.status, PromptStatus::Success, "{a:?}");
    assert_eq!(a.content, "first answer");
    assert_eq!((a.metrics.input_tokens, a.metrics.output_tokens), (5, 2));

    // Not atomic: the file is written in two pieces under its final name.
    let body = json!({"requestId": "b", "prompt": "second?", "schema": schema}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut f = std::fs::File::create(prompts.join("request-b.json")).unwrap();
    f.write_all(head.as_bytes()).unwrap();
    f.flush().unwrap();
    f.write_all(tail.as_bytes()).unwrap();
    drop(f);
    let b = pod.result_of("b").await;
    assert_eq!(b.status, PromptStatus::Success, "{b:?}");
    assert_eq!(b.parsed, Some(json!({"ok": true})));

    // Clear, then a third prompt sees only [system, prompt].
    std::fs::write(
        pod.ipc.context().join("clear-1.json"),
        json!({"requestId": "1"}).to_string(),
    )
    .unwrap();
    // The clear and the request are handled in arrival order; make sure
    // the clear has arrived by writing the request after it.
    std::fs::write(
        prompts.join("request-c.json"),
        json!({"requestId": "c", "prompt": "third?"}).to_string(),
    )
    .unwrap();
    let c = pod.result_of("c").await;
    assert_eq!(c.content, "after clear");

    std::fs::write(
        pod.ipc.run_result(),
        json!({"status": "success", "response": "orchestrated", "metrics": {"toolCalls": 2}})
            .to_string(),
    )
    .unwrap();
    pod.done();
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stderr}");

    let reqs = llm.requests();
    assert_eq!(reqs.len(), 3, "the .tmp request is never answered");
    let messages = |i: usize| reqs[i].body["messages"].as_array().unwrap().len();
    assert_eq!(messages(0), 2, "system + prompt");
    assert_eq!(messages(1), 4, "context kept: system, a, answer, b");
    assert_eq!(messages(2), 2, "context cleared");
    assert!(llm.failures().is_empty(), "{:?}", llm.failures());
    assert!(!pod.ipc.prompt_result("tmp").exists());

    let result: AgentResult =
        serde_json::from_slice(&std::fs::read(pod.ipc.result()).unwrap()).unwrap();
    assert_eq!(result.response, "orchestrated");
    assert_eq!(result.metrics.tool_calls, 2);
    assert!(result.metrics.duration_ms > 0, "durationMs filled");
    match parse_result_from_logs(&stdout) {
        LogOutcome::Succeeded { response, .. } => assert_eq!(response, "orchestrated"),
        other => panic!("no marker: {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(pod.ipc.done()).unwrap(),
        "sidecar done",
        "the sidecar owns /ipc/done"
    );
}

#[tokio::test]
async fn use_context_false_and_missing_run_result() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("x")).cycle()).await;
    let pod = Pod::new();
    let child = pod.spawn(
        &llm,
        &[("AGENT_MODE", "prompt-server"), ("USE_CONTEXT", "false")],
    );
    for id in ["a", "b"] {
        std::fs::write(
            pod.ipc.prompts().join(format!("request-{id}.json")),
            json!({"requestId": id, "prompt": id}).to_string(),
        )
        .unwrap();
        pod.result_of(id).await;
    }
    pod.done();
    let (code, _, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stderr}");
    for r in llm.requests() {
        assert_eq!(r.body["messages"].as_array().unwrap().len(), 2);
    }
    let result: AgentResult =
        serde_json::from_slice(&std::fs::read(pod.ipc.result()).unwrap()).unwrap();
    assert_eq!(result.status, ResultStatus::Success);
    assert_eq!(
        result.response,
        "sidecar finished but did not write /ipc/run-result.json"
    );
}

#[tokio::test]
async fn prompt_service_runs_beside_a_task() {
    let llm = ScriptedLlm::start(
        Script::new()
            // The task's turn waits so the prompt arrives while it runs.
            .turn(Turn::text("task answer").with_delay_ms(3000))
            .turn(Turn::text("prompt answer")),
    )
    .await;
    let pod = Pod::new();
    let child = pod.spawn(
        &llm,
        &[("TASK", "the task"), ("ENABLE_PROMPT_SERVICE", "true")],
    );
    agentpod_test_support::eventually(Duration::from_secs(20), "task request", || async {
        (llm.request_count() >= 1).then_some(())
    })
    .await;
    std::fs::write(
        pod.ipc.prompts().join("request-p.json"),
        json!({"requestId": "p", "prompt": "side question"}).to_string(),
    )
    .unwrap();
    let p = pod.result_of("p").await;
    assert_eq!(p.content, "prompt answer");
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("task answer"));
    assert!(pod.ipc.done().exists(), "the task path writes /ipc/done");
    // With context, the prompt follows the initial task.
    let second = &llm.requests()[1];
    assert_eq!(second.body["messages"].as_array().unwrap().len(), 3);
}
