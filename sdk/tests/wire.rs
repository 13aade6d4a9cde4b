//! The wire contract, pinned: golden JSON for every document, JSON Schemas
//! that must match the code, and upstream-shaped documents that must parse.
//!
//! `UPDATE_SCHEMA=1 cargo test -p agentpod-sdk --test wire` rewrites the
//! golden files under `sdk/tests/golden/` and the schemas under
//! `docs/schemas/` instead of failing; review the diff before committing.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use agentpod_sdk::wire::event::{BridgeMetadata, Event};
use agentpod_sdk::wire::marker::{self, LogOutcome};
use agentpod_sdk::wire::subjects::Topic;
use agentpod_sdk::wire::*;
use serde_json::json;

fn updating() -> bool {
    std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas")
}

/// Compares `actual` with the file at `path`, or rewrites it when updating.
fn check_file(path: &Path, actual: &str) {
    if updating() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_SCHEMA=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the code (run with UPDATE_SCHEMA=1 to rewrite it)\n--- file\n{expected}\n--- code\n{actual}",
        path.display()
    );
}

/// Serialises `value` as pretty JSON, compares it byte for byte with
/// `golden/<file>.json`, and checks the file parses back to `value`.
fn golden<T: WireDocument + PartialEq + Debug>(file: &str, value: &T) {
    let path = golden_dir().join(format!("{file}.json"));
    let text = format!("{}\n", value.to_pretty_json());
    check_file(&path, &text);
    let bytes = std::fs::read(&path).unwrap();
    let back = T::from_json(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(&back, value, "{file} does not round-trip");
    // Every field in the golden file is declared by the schema.
    let schema = serde_json::to_value(schema::schema_for::<T>()).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    for key in doc.as_object().unwrap().keys() {
        assert!(
            schema["properties"].get(key).is_some(),
            "{file}: field {key} missing from the schema"
        );
    }
}

fn meta() -> Meta {
    Meta::new("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true)
}

#[test]
fn golden_task_input() {
    golden(
        "task-input",
        &TaskInput {
            task: "Summarise the open incidents".into(),
            system_prompt: "You are an SRE.".into(),
            agent_id: "default".into(),
            session_key: "sess-1".into(),
            model: TaskModel {
                provider: "anthropic".into(),
                model: "claude-sonnet-4".into(),
                thinking: "low".into(),
            },
            tools: Some(json!(["read_file", "execute_command"])),
            context: Some(json!({"channel": "slack"})),
        },
    );
    golden("task-input.minimal", &TaskInput::new("hello"));
}

#[test]
fn golden_exec() {
    golden(
        "exec-request",
        &ExecRequest {
            id: "1700000000000000001".into(),
            command: "kubectl get pods".into(),
            args: vec!["-n".into(), "default".into()],
            work_dir: "/workspace".into(),
            timeout: 30,
            target: "k8s-ops".into(),
            argv: vec![],
            stdin: String::new(),
            meta: Some(meta()),
        },
    );
    golden(
        "exec-request.argv",
        &ExecRequest {
            timeout: 120,
            target: "llmfit".into(),
            stdin: "{\"top\":3}".into(),
            ..ExecRequest::argv(
                "1700000000000000002",
                vec![
                    "llmfit".into(),
                    "rank".into(),
                    "--".into(),
                    "line one\nline two".into(),
                ],
            )
        },
    );
    golden(
        "exec-request.minimal",
        &ExecRequest {
            id: "3".into(),
            command: "true".into(),
            ..ExecRequest::default()
        },
    );
    golden(
        "exec-result",
        &ExecResult {
            id: "1700000000000000001".into(),
            exit_code: 1,
            stdout: "NAME   READY".into(),
            stderr: "warning: deprecated".into(),
            timed_out: false,
        },
    );
    golden("exec-result.minimal", &ExecResult::ok("3", ""));
    golden("exec-result.timed-out", &ExecResult::timed_out("4"));
}

#[test]
fn golden_sidecar_tools_manifest() {
    golden(
        "sidecar-tools-manifest",
        &SidecarToolsManifest {
            tools: vec![
                SidecarTool {
                    name: "rank_nodes".into(),
                    description: "Rank nodes by model fit".into(),
                    target: "llmfit".into(),
                    exec: vec!["llmfit".into()],
                    subcommand: "rank".into(),
                    input_mode: InputMode::Stdin,
                    positional_args: vec!["model".into()],
                    parameters: Some(json!({
                        "type": "object",
                        "properties": {"model": {"type": "string"}, "top": {"type": "integer"}},
                        "required": ["model"]
                    })),
                },
                SidecarTool {
                    name: "ping".into(),
                    description: "Ping".into(),
                    target: "echotool".into(),
                    exec: vec!["/bin/echo".into(), "pong".into()],
                    ..SidecarTool::default()
                },
            ],
        },
    );
    golden(
        "sidecar-tools-manifest.minimal",
        &SidecarToolsManifest::default(),
    );
}

#[test]
fn golden_mcp() {
    golden(
        "mcp-tools-manifest",
        &McpManifest {
            tools: vec![McpToolEntry {
                name: "gh_list_issues".into(),
                description: "List issues".into(),
                server: "github".into(),
                timeout: 30,
                input_schema: json!({"type": "object", "properties": {"repo": {"type": "string"}}}),
            }],
        },
    );
    golden("mcp-tools-manifest.minimal", &McpManifest::default());
    golden(
        "mcp-request",
        &McpRequest {
            id: "1".into(),
            server: "github".into(),
            tool: "gh_list_issues".into(),
            arguments: json!({"repo": "sympozium-ai/sympozium", "state": "open"}),
            meta: Some(meta()),
        },
    );
    golden(
        "mcp-request.minimal",
        &McpRequest {
            id: "2".into(),
            tool: "echo_echo".into(),
            arguments: json!({}),
            ..McpRequest::default()
        },
    );
    golden(
        "mcp-result",
        &McpResult::tool_error(
            "1",
            vec![
                McpContent::text("not found"),
                McpContent {
                    kind: "image".into(),
                    text: String::new(),
                },
            ],
        ),
    );
    golden(
        "mcp-result.minimal",
        &McpResult::text("2", "hello from mcp"),
    );
    golden(
        "mcp-result.failure",
        &McpResult::failure("3", "server unavailable"),
    );
}

#[test]
fn golden_spawn() {
    golden(
        "spawn-request",
        &SpawnRequest {
            system_prompt: "Be brief.".into(),
            skills: vec!["k8s-ops".into()],
            ..SpawnRequest::delegate(
                "1700000000000000003",
                "reviewer",
                "Review the plan",
                "team-a",
            )
        },
    );
    golden(
        "spawn-request.minimal",
        &SpawnRequest {
            task: "t".into(),
            ..SpawnRequest::default()
        },
    );
    golden(
        "delegate-result",
        &DelegateResult::success("1700000000000000003", "Looks good."),
    );
    golden(
        "delegate-result.error",
        &DelegateResult::error("1700000000000000004", "persona not found"),
    );
    golden(
        "subagent-spawn-request",
        &SubagentSpawnRequest {
            batch_id: "batch-1".into(),
            strategy: Strategy::Sequential,
            failure_policy: FailurePolicy::FailFast,
            tasks: vec![
                SubagentTask {
                    id: "a".into(),
                    task: "Collect logs".into(),
                    system_prompt: "You collect logs.".into(),
                    timeout: "5m".into(),
                },
                SubagentTask::new("b", "Summarise"),
            ],
        },
    );
    golden(
        "subagent-spawn-request.minimal",
        &SubagentSpawnRequest {
            batch_id: "batch-2".into(),
            tasks: vec![SubagentTask::new("a", "x")],
            ..SubagentSpawnRequest::default()
        },
    );
    golden(
        "subagent-batch-result",
        &SubagentBatchResult {
            batch_id: "batch-1".into(),
            status: BatchStatus::Partial,
            results: vec![
                SubagentTaskResult {
                    id: "a".into(),
                    run_name: "run-1-sub-a".into(),
                    status: "success".into(),
                    response: "3 errors found".into(),
                    error: String::new(),
                },
                SubagentTaskResult {
                    id: "b".into(),
                    run_name: "run-1-sub-b".into(),
                    status: "error".into(),
                    response: String::new(),
                    error: "timeout".into(),
                },
            ],
        },
    );
    golden(
        "subagent-batch-result.rejected",
        &SubagentBatchResult::rejected("batch-3", "too many children"),
    );
}

#[test]
fn golden_outbound_message() {
    let mut metadata = serde_json::Map::new();
    metadata.insert("blocks".into(), json!([{"type": "divider"}]));
    golden(
        "outbound-message",
        &OutboundMessage {
            chat_id: "C123".into(),
            thread_id: "1700000000.000100".into(),
            format: "markdown".into(),
            metadata,
            ..OutboundMessage::new("slack", "Deploy finished")
        },
    );
    golden(
        "outbound-message.minimal",
        &OutboundMessage::new("telegram", "hi"),
    );
}

#[test]
fn golden_schedule() {
    golden(
        "schedule-request",
        &ScheduleRequest {
            schedule: "0 9 * * 1-5".into(),
            task: "Post the standup summary".into(),
            ..ScheduleRequest::new("standup", ScheduleAction::Create)
        },
    );
    golden(
        "schedule-request.minimal",
        &ScheduleRequest::new("standup", ScheduleAction::Delete),
    );
}

#[test]
fn golden_prompt_and_context() {
    golden(
        "prompt-request",
        &PromptRequest {
            request_id: "p1".into(),
            prompt: "Classify this ticket".into(),
            schema: Some(json!({
                "type": "json_schema",
                "name": "label",
                "schema": {"type": "object", "properties": {"label": {"type": "string"}}},
                "strict": true
            })),
        },
    );
    golden(
        "prompt-request.minimal",
        &PromptRequest {
            request_id: "p2".into(),
            prompt: "hi".into(),
            schema: None,
        },
    );
    golden(
        "prompt-result",
        &PromptResult {
            parsed: Some(json!({"label": "bug"})),
            ..PromptResult::success(
                "p1",
                "{\"label\":\"bug\"}",
                PromptMetrics {
                    input_tokens: 120,
                    output_tokens: 8,
                },
            )
        },
    );
    golden(
        "prompt-result.error",
        &PromptResult::error("p2", "model unavailable", PromptMetrics::default()),
    );
    golden(
        "context-clear",
        &ContextClear {
            request_id: "c1".into(),
            reason: "new phase".into(),
        },
    );
    golden(
        "context-clear.minimal",
        &ContextClear {
            request_id: "c2".into(),
            reason: String::new(),
        },
    );
}

#[test]
fn golden_output_documents() {
    golden("stream-chunk", &StreamChunk::text("Hello", 0));
    golden(
        "stream-chunk.tool-use",
        &StreamChunk {
            kind: ChunkType::ToolUse,
            content: "read_file {\"path\":\"/workspace/a\"}".into(),
            tool_id: "call_1".into(),
            index: 3,
        },
    );
    golden(
        "status-update",
        &StatusUpdate {
            phase: StatusPhase::ToolUse,
            message: "running execute_command".into(),
            tool_id: "call_1".into(),
        },
    );
    golden(
        "status-update.minimal",
        &StatusUpdate::new(StatusPhase::Thinking),
    );
    golden(
        "agent-result",
        &AgentResult::success(
            "All pods are healthy.",
            Metrics {
                duration_ms: 5321,
                input_tokens: 1200,
                output_tokens: 340,
                tool_calls: 2,
            },
        ),
    );
    golden(
        "agent-result.error",
        &AgentResult::error("LLM request failed", Metrics::default()),
    );
    golden("agent-result.skipped", &AgentResult::skipped(""));
    golden(
        "trace-context",
        &TraceContextFile {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            traceparent: meta().traceparent,
            agent_run_id: "run-1".into(),
            instance_name: "helper".into(),
            namespace: "team-a".into(),
            model: "gpt-4o-mini".into(),
        },
    );
}

#[test]
fn golden_event_envelope() {
    let at = UNIX_EPOCH + Duration::new(1_767_323_045, 123_456_789);
    let bridge = BridgeMetadata {
        agent_run_id: "run-1".into(),
        instance_name: "helper".into(),
        namespace: "team-a".into(),
    };
    let result = AgentResult::success("done", Metrics::default());
    let file = serde_json::to_vec_pretty(&result).unwrap();
    let cases = [
        (
            "event.run-completed",
            Event::from_raw(&Topic::RunCompleted, bridge.to_map(), &file).unwrap(),
        ),
        (
            "event.delegate-result",
            Event::from_value(
                &Topic::DelegateResult("run-1"),
                BTreeMap::from([
                    ("agentRunID".to_owned(), "run-1".to_owned()),
                    ("requestId".to_owned(), "r1".to_owned()),
                ]),
                &DelegateResult::success("r1", "ok"),
            )
            .unwrap(),
        ),
        (
            "event.minimal",
            Event::from_raw(
                &Topic::PromptRequest("run-1"),
                BridgeMetadata::default().to_map(),
                b"{}",
            )
            .unwrap(),
        ),
    ];
    for (file, event) in cases {
        let event = event.with_timestamp(at);
        // The golden file is the NATS message body itself: compact JSON.
        let text = format!("{}\n", String::from_utf8(event.to_bytes()).unwrap());
        let path = golden_dir().join(format!("{file}.json"));
        check_file(&path, &text);
        let back = Event::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back.to_bytes(), event.to_bytes(), "{file}");
    }
}

#[test]
fn schemas_match_code() {
    let dir = schema_dir();
    let schemas = schema::ipc_schemas();
    for (name, schema) in &schemas {
        let text = format!("{}\n", serde_json::to_string_pretty(schema).unwrap());
        check_file(&dir.join(name), &text);
    }
    // No schema file may outlive its document.
    let names: Vec<&str> = schemas.iter().map(|(n, _)| n.as_str()).collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file.ends_with(".schema.json") && !names.contains(&file.as_str()) {
            if updating() {
                std::fs::remove_file(&path).unwrap();
            } else {
                panic!("{file} has no document in the code (run with UPDATE_SCHEMA=1)");
            }
        }
    }
}

// Documents written by hand from the upstream contract, in the shapes
// upstream writers produce them.

#[test]
fn parses_upstream_exec_request_example() {
    let r: ExecRequest = serde_json::from_str(
        r#"{"id":"1754550000000000000","command":"kubectl get pods","workDir":"/workspace","timeout":30,
            "target":"k8s-ops","argv":["kubectl","get","pods"],"stdin":"x","_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}"#,
    )
    .unwrap();
    assert_eq!(r.id, "1754550000000000000");
    assert!(r.is_argv_mode());
    assert_eq!(r.effective_timeout_secs(), 30);
    let m = r.meta.unwrap();
    assert!(m.trace_id.is_empty());
    assert_eq!(m.parsed().unwrap().span_id, "00f067aa0ba902b7");
}

#[test]
fn parses_jq_written_exec_result() {
    // `jq -n --arg ... '{id:$id, exitCode:($code|tonumber), ...}'` output.
    let text = "{\n  \"id\": \"1754550000000000000\",\n  \"exitCode\": 124,\n  \"stdout\": \"\",\n  \"stderr\": \"Terminated\",\n  \"timedOut\": true\n}\n";
    let r: ExecResult = serde_json::from_str(text).unwrap();
    assert_eq!(
        r,
        ExecResult {
            stderr: "Terminated".into(),
            ..ExecResult::timed_out("1754550000000000000")
        }
    );
    assert_eq!(r.exit_code, exit::COMMAND_TIMED_OUT);
}

#[test]
fn parses_upstream_mcp_documents() {
    let manifest: McpManifest = serde_json::from_str(
        r#"{
  "tools": [
    {
      "name": "echo_echo",
      "description": "Echo a message",
      "server": "echo",
      "timeout": 30,
      "inputSchema": {"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}
    }
  ]
}"#,
    )
    .unwrap();
    assert_eq!(manifest.tools[0].input_schema["required"][0], "message");
    let result: McpResult = serde_json::from_str(
        r#"{"id":"1","success":false,"content":[{"type":"text","text":"bad repo"}],"error":"bad repo","isError":true}"#,
    )
    .unwrap();
    assert!(result.is_error);
    let nil: McpResult = serde_json::from_str(r#"{"id":"2","success":false,"content":null,"error":"tool \"x\" is not available (filtered)"}"#).unwrap();
    assert!(nil.content.is_empty() && !nil.is_error);
}

#[test]
fn parses_upstream_manifest_and_spawn_documents() {
    let m: SidecarToolsManifest = serde_json::from_str(
        r#"{"tools":[{"name":"cluster_fit","description":"Fit","target":"llmfit","exec":["llmfit","fit"],"inputMode":"args","positionalArgs":["model"],"parameters":{"type":"object"}},
                     {"name":"legacy","description":"","target":"x","exec":["x"],"inputMode":""}]}"#,
    )
    .unwrap();
    assert_eq!(m.tools[1].input_mode, InputMode::Args);
    assert_eq!(m.tools[0].positional_args, ["model"]);

    let batch: SubagentBatchResult = serde_json::from_str(
        r#"{"batchId":"b1","status":"error","results":[{"id":"_batch","runName":"","status":"error","error":"subagents not allowed"}]}"#,
    )
    .unwrap();
    assert_eq!(batch.results[0].id, spawn::REJECTED_BATCH_TASK_ID);

    let req: SubagentSpawnRequest = serde_json::from_str(
        r#"{"batchId":"b2","strategy":"parallel","failurePolicy":"","tasks":[{"id":"a","task":"x","timeout":"2m"}]}"#,
    )
    .unwrap();
    assert_eq!(req.failure_policy, FailurePolicy::Unset);

    let spawn: SpawnRequest = serde_json::from_str(
        r#"{"requestId":"1754","task":"Review","agentId":"default","targetPersona":"reviewer","packName":"team-a"}"#,
    )
    .unwrap();
    assert_eq!(
        spawn,
        SpawnRequest::delegate("1754", "reviewer", "Review", "team-a")
    );
}

#[test]
fn parses_upstream_runner_outputs() {
    // The runner writes result.json indented, stream-0.json with three fields.
    let r: AgentResult = serde_json::from_str(
        "{\n  \"status\": \"skipped\",\n  \"response\": \"preRun hook requested skip\",\n  \"metrics\": {\n    \"durationMs\": 0,\n    \"inputTokens\": 0,\n    \"outputTokens\": 0,\n    \"toolCalls\": 0\n  }\n}",
    )
    .unwrap();
    assert_eq!(r, AgentResult::skipped(""));
    let c: StreamChunk =
        serde_json::from_str(r#"{"type":"text","content":"hi","index":0}"#).unwrap();
    assert_eq!(c, StreamChunk::text("hi", 0));
    // Unknown fields (upstream's protocol type has subagentSpawns) are ignored.
    let r: AgentResult = serde_json::from_str(
        r#"{"status":"success","response":"x","metrics":{"durationMs":1},"subagentSpawns":[{"id":"a"}]}"#,
    )
    .unwrap();
    assert_eq!(r.metrics.duration_ms, 1);
    let p: PromptResult = serde_json::from_str(
        r#"{"requestId":"p","status":"success","content":"{\"a\":1}","parsed":{"a":1},"metrics":{"inputTokens":3,"outputTokens":4}}"#,
    )
    .unwrap();
    assert_eq!(p.parsed, Some(json!({"a": 1})));
}

#[test]
fn parses_upstream_event_envelope() {
    let ev = Event::from_slice(
        br#"{"topic":"agent.subagent.result.run-1","timestamp":"2026-08-07T10:00:00.5Z","metadata":{"agentRunID":"run-1","batchId":"b1"},"data":{"batchId":"b1","status":"success","results":[]}}"#,
    )
    .unwrap();
    assert_eq!(ev.parsed_topic(), Some(Topic::SubagentResult("run-1")));
    let batch: SubagentBatchResult = ev.data_as().unwrap();
    assert_eq!(batch.status, BatchStatus::Success);
    assert_eq!(
        timestamp::parse_rfc3339(&ev.timestamp).unwrap(),
        UNIX_EPOCH + Duration::new(1_786_096_800, 500_000_000)
    );
}

#[test]
fn marker_round_trip_through_a_log() {
    let result = AgentResult::success(
        "multi\nline \"answer\"",
        Metrics {
            duration_ms: 10,
            input_tokens: 3,
            output_tokens: 4,
            tool_calls: 1,
        },
    );
    let mut log = b"agent-runner starting\n".to_vec();
    marker::write_result_marker(&mut log, &result).unwrap();
    let LogOutcome::Succeeded {
        response,
        token_usage: Some(usage),
    } = marker::parse_result_from_logs(std::str::from_utf8(&log).unwrap())
    else {
        panic!("marker not found");
    };
    assert_eq!(response, result.response);
    assert_eq!(usage.total_tokens, 7);
}
