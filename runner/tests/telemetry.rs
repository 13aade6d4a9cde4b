//! Telemetry end to end: the real `agent-runner` exports OTLP/HTTP protobuf
//! spans to a collector stand-in in this test, and the exec request carries
//! the trace context in `_meta`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentpod_test_support::llm::{Script, ScriptedLlm, Turn};
use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

mod common;
const PARENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

/// A collector stand-in: records the spans of every `/v1/traces` export.
async fn collector() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let sink = sink.clone();
                async move {
                    let req = ExportTraceServiceRequest::decode(body).unwrap();
                    let mut s = sink.lock().unwrap();
                    for rs in req.resource_spans {
                        for ss in rs.scope_spans {
                            s.extend(ss.spans);
                        }
                    }
                    ""
                }
            }),
        )
        .route("/v1/metrics", axum::routing::post(|| async { "" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), spans)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            AnyValue::BoolValue(b) => Some(b.to_string()),
            AnyValue::DoubleValue(d) => Some(d.to_string()),
            _ => None,
        })
}

#[tokio::test]
async fn spans_form_the_run_tree_and_reach_the_exec_meta() {
    let (endpoint, spans) = collector().await;
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::tool_call("c1", "execute_command", json!({"command": "echo hi"}))
                    .with_usage(11, 3, 0),
            )
            .turn(Turn::text("done").with_usage(20, 2, 0)),
    )
    .await;
    let (dir, ipc) = common::pod_dir();
    let workspace = dir.path().join("workspace");
    let mut v = common::vars(dir.path(), &ipc, &llm, "Say hi.");
    for (k, val) in [
        ("TOOLS_ENABLED", "true".to_owned()),
        ("MODEL_NAME", "test-model".to_owned()),
        ("INSTANCE_NAME", "bob".to_owned()),
        ("AGENT_NAMESPACE", "team-a".to_owned()),
        ("AGENT_RUN_ID", "run-1".to_owned()),
        ("SYMPOZIUM_OTEL_ENABLED", "true".to_owned()),
        ("SYMPOZIUM_OTEL_OTLP_ENDPOINT", endpoint.clone()),
        ("TRACEPARENT", format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01")),
        ("RUST_LOG", "info".to_owned()),
    ] {
        v.push((k.to_owned(), val));
    }

    // The skill sidecar: answer the one exec request, keep its `_meta`.
    let tools = ipc.tools();
    let responder = tokio::task::spawn_blocking(move || {
        let (id, req) = common::wait_exec_request(&tools, Duration::from_secs(30));
        common::answer_exec(
            &tools,
            &id,
            json!({"exitCode": 0, "stdout": "hi", "stderr": "", "timedOut": false}),
        );
        req["_meta"].clone()
    });

    let (_, out) = common::run(&v, &ipc).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let meta = responder.await.unwrap();

    // The exporter flushed before exit, so every span is here now.
    let spans = spans.lock().unwrap().clone();
    let by_name = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    let runs = by_name("sympozium.agent.run");
    assert_eq!(
        runs.len(),
        1,
        "spans: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let run = runs[0];
    assert_eq!(
        hex(&run.trace_id),
        PARENT_TRACE,
        "TRACEPARENT is the parent"
    );
    assert_eq!(hex(&run.parent_span_id), PARENT_SPAN);
    assert_eq!(attr(run, "instance").as_deref(), Some("bob"));
    assert_eq!(attr(run, "tenant.namespace").as_deref(), Some("team-a"));
    assert_eq!(attr(run, "model").as_deref(), Some("test-model"));
    assert_eq!(attr(run, "task.summary").as_deref(), Some("Say hi."));
    assert_eq!(
        attr(run, "gen_ai.usage.input_tokens").as_deref(),
        Some("31")
    );
    assert_eq!(attr(run, "gen_ai.tool.call.count").as_deref(), Some("1"));

    let chats = by_name("gen_ai.chat");
    assert_eq!(chats.len(), 2, "one chat span per round");
    for c in &chats {
        assert_eq!(c.parent_span_id, run.span_id);
        assert_eq!(c.trace_id, run.trace_id);
        assert_eq!(attr(c, "gen_ai.system").as_deref(), Some("openai"));
        assert_eq!(
            attr(c, "gen_ai.request.model").as_deref(),
            Some("test-model")
        );
        assert!(attr(c, "gen_ai.usage.output_tokens").is_some());
        assert!(attr(c, "gen_ai.response.finish_reasons").is_some());
    }

    let tools = by_name("gen_ai.execute_tool");
    assert_eq!(tools.len(), 1);
    let tool = tools[0];
    assert_eq!(tool.parent_span_id, run.span_id);
    assert_eq!(
        attr(tool, "gen_ai.tool.name").as_deref(),
        Some("execute_command")
    );
    assert_eq!(attr(tool, "gen_ai.tool.call.id").as_deref(), Some("c1"));
    assert!(attr(tool, "duration_ms").is_some());
    // The tool ran between the two rounds.
    assert!(tool.start_time_unix_nano >= chats.iter().map(|c| c.end_time_unix_nano).min().unwrap());
    let exec = by_name("sympozium.skill.exec");
    assert_eq!(exec.len(), 1);
    assert_eq!(exec[0].parent_span_id, tool.span_id);

    // The sidecar got the trace context of the call.
    assert_eq!(meta["trace_id"], PARENT_TRACE, "{meta}");
    assert_eq!(meta["span_id"], hex(&exec[0].span_id));
    assert_eq!(
        meta["traceparent"],
        format!("00-{PARENT_TRACE}-{}-01", hex(&exec[0].span_id))
    );

    // And tools in the workspace can join the trace.
    let file: HashMap<String, String> = serde_json::from_slice(
        &std::fs::read(workspace.join(".sympozium/trace-context.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["trace_id"], PARENT_TRACE);
    assert_eq!(file["span_id"], hex(&run.span_id));
    assert_eq!(file["agent_run_id"], "run-1");
    assert_eq!(file["model"], "test-model");
}

#[tokio::test]
async fn disabled_telemetry_sends_nothing_and_adds_no_meta() {
    let (endpoint, spans) = collector().await;
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("ok"))).await;
    let (dir, ipc) = common::pod_dir();
    let mut v = common::vars(dir.path(), &ipc, &llm, "Say ok.");
    // An endpoint without the switch: off.
    v.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint));
    let (_, out) = common::run(&v, &ipc).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(spans.lock().unwrap().is_empty());
    assert!(
        !dir.path()
            .join("workspace/.sympozium/trace-context.json")
            .exists()
    );
}
