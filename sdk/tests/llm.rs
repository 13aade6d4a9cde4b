//! The provider clients against the scripted LLM server: real HTTP, real
//! SSE, both dialects, streaming and not.
//!
//! No test installs a process-wide TLS provider: the clients pass theirs
//! explicitly, and these tests prove that building one does not panic.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentpod_sdk::llm::{
    Backoff, ChatRequest, ChatResponse, ErrorKind, Message, Provider, ProviderConfig,
    ProviderError, StreamEvent, ToolCall, ToolResult, ToolSpec, Usage, build, parse_headers_json,
};
use agentpod_test_support::llm::{ErrorReply, Expect, RetryAfter, Script, ScriptedLlm, Turn};
use serde_json::{Value, json};

const KEY: &str = "sk-test-secret-key";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dialect {
    OpenAi,
    Anthropic,
}

/// Every dialect, streaming and not.
const ALL: [(Dialect, bool); 4] = [
    (Dialect::OpenAi, true),
    (Dialect::OpenAi, false),
    (Dialect::Anthropic, true),
    (Dialect::Anthropic, false),
];

/// A config for `dialect` pointed at `llm`, with quick backoff.
fn config(dialect: Dialect, stream: bool, llm: &ScriptedLlm) -> ProviderConfig {
    let mut c = match dialect {
        Dialect::OpenAi => ProviderConfig::new("openai").with_base_url(llm.base_url()),
        Dialect::Anthropic => ProviderConfig::new("anthropic").with_base_url(llm.origin()),
    }
    .with_model("test-model")
    .with_api_key(KEY);
    c.stream = stream;
    c.max_retries = 2;
    c.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(60),
    };
    c
}

fn provider(c: &ProviderConfig) -> Arc<dyn Provider> {
    build(c).expect("provider builds")
}

fn user(text: &str) -> Vec<Message> {
    vec![Message::User {
        content: text.to_owned(),
    }]
}

fn read_file_tool() -> ToolSpec {
    ToolSpec {
        name: "read_file".into(),
        description: "Read a file".into(),
        parameters: json!({
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        }),
    }
}

/// Runs one turn, collecting the streamed events.
async fn chat(
    p: &dyn Provider,
    messages: &[Message],
    tools: &[ToolSpec],
) -> (Result<ChatResponse, ProviderError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let mut sink = |e: StreamEvent| events.push(e);
    let req = ChatRequest {
        system: "You are a test.",
        messages,
        tools,
        response_format: None,
    };
    let r = p.chat(&req, &mut sink).await;
    (r, events)
}

fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn thinking_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Thinking(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn calls_of(events: &[StreamEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCall { id, name } => Some((id.clone(), name.clone())),
            _ => None,
        })
        .collect()
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

#[tokio::test]
async fn text_turn() {
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(Script::new().turn(
            Turn::text("Hello there, this is a streamed answer.").expect(Expect {
                model: Some("test-model".into()),
                stream: Some(stream),
                system_contains: Some("You are a test.".into()),
                last_user_contains: Some("hi".into()),
                ..Expect::default()
            }),
        ))
        .await;
        let p = provider(&config(d, stream, &llm));
        let (r, events) = chat(&*p, &user("hi"), &[]).await;
        let r = r.unwrap_or_else(|e| panic!("{d:?} stream={stream}: {e}"));
        assert_eq!(r.content, "Hello there, this is a streamed answer.");
        assert!(r.tool_calls.is_empty());
        assert_eq!(text_of(&events), r.content, "{d:?} stream={stream}");
        let text_events = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Text(_)))
            .count();
        assert_eq!(text_events > 1, stream, "{d:?}: {events:?}");
        let want_reason = if d == Dialect::OpenAi {
            "stop"
        } else {
            "end_turn"
        };
        assert_eq!(r.finish_reason.as_deref(), Some(want_reason));
        llm.assert_finished();
        assert_eq!(llm.requests()[0].stream(), stream);
    }
}

#[tokio::test]
async fn several_tool_calls_in_one_turn() {
    let args = [
        json!({"path": "/workspace/a b.txt"}),
        json!({"command": "echo \"héllo\" | wc -c", "timeout": 30, "env": {"A": [1, 2, {"b": null}]}}),
        json!({}),
    ];
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(
            Script::new().chunk_chars(3).turn(
                Turn::tool_call("call_a", "read_file", args[0].clone())
                    .with_tool_call("call_b", "execute_command", args[1].clone())
                    .with_tool_call("call_c", "list_directory", args[2].clone()),
            ),
        )
        .await;
        let p = provider(&config(d, stream, &llm));
        let (r, events) = chat(&*p, &user("go"), &[read_file_tool()]).await;
        let r = r.unwrap_or_else(|e| panic!("{d:?} stream={stream}: {e}"));
        let names: Vec<_> = r
            .tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("call_a", "read_file"),
                ("call_b", "execute_command"),
                ("call_c", "list_directory")
            ]
        );
        for (call, want) in r.tool_calls.iter().zip(&args) {
            let got: Value = serde_json::from_str(&call.arguments).expect("arguments are JSON");
            assert_eq!(&got, want, "{d:?} stream={stream}");
            if d == Dialect::OpenAi || stream {
                // The bytes the server sent, reassembled exactly.
                assert_eq!(call.arguments, want.to_string(), "{d:?} stream={stream}");
            }
        }
        assert_eq!(
            calls_of(&events),
            r.tool_calls
                .iter()
                .map(|c| (c.id.clone(), c.name.clone()))
                .collect::<Vec<_>>()
        );
        llm.assert_finished();
    }
}

#[tokio::test]
async fn tool_results_round_trip_in_order() {
    let history = vec![
        Message::User {
            content: "read two files".into(),
        },
        Message::Assistant {
            content: "Reading.".into(),
            tool_calls: vec![
                ToolCall {
                    id: "c1".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path":"/a"}"#.into(),
                },
                ToolCall {
                    id: "c2".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path":"/b"}"#.into(),
                },
            ],
        },
        Message::ToolResults {
            results: vec![
                ToolResult {
                    call_id: "c1".into(),
                    name: "read_file".into(),
                    content: "alpha".into(),
                    is_error: false,
                },
                ToolResult {
                    call_id: "c2".into(),
                    name: "read_file".into(),
                    content: "Error: no such file".into(),
                    is_error: true,
                },
            ],
        },
    ];
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(Script::new().turn(Turn::text("done").expect(Expect {
            tool_results: vec![("c1", "alpha").into(), ("c2", "Error: no such").into()],
            tools_include: vec!["read_file".into()],
            ..Expect::default()
        })))
        .await;
        let p = provider(&config(d, stream, &llm));
        let (r, _) = chat(&*p, &history, &[read_file_tool()]).await;
        assert_eq!(r.expect("answer").content, "done");
        llm.assert_finished();
        let body = &llm.requests()[0].body;
        let messages = body["messages"].as_array().expect("messages");
        match d {
            Dialect::OpenAi => {
                assert_eq!(messages.len(), 5, "{messages:?}");
                assert_eq!(
                    messages[0],
                    json!({"role": "system", "content": "You are a test."})
                );
                assert_eq!(
                    messages[2],
                    json!({"role": "assistant", "content": "Reading.", "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"/a\"}"}},
                        {"id": "c2", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"/b\"}"}},
                    ]})
                );
                assert_eq!(
                    messages[3],
                    json!({"role": "tool", "tool_call_id": "c1", "content": "alpha"})
                );
                assert_eq!(
                    messages[4],
                    json!({"role": "tool", "tool_call_id": "c2", "content": "Error: no such file"})
                );
            }
            Dialect::Anthropic => {
                assert_eq!(messages.len(), 3, "{messages:?}");
                assert_eq!(
                    body["system"],
                    json!([{"type": "text", "text": "You are a test."}])
                );
                assert_eq!(body["max_tokens"], json!(8192));
                assert_eq!(
                    messages[1],
                    json!({"role": "assistant", "content": [
                        {"type": "text", "text": "Reading."},
                        {"type": "tool_use", "id": "c1", "name": "read_file", "input": {"path": "/a"}},
                        {"type": "tool_use", "id": "c2", "name": "read_file", "input": {"path": "/b"}},
                    ]})
                );
                assert_eq!(
                    messages[2],
                    json!({"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "c1", "content": "alpha", "is_error": false},
                        {"type": "tool_result", "tool_use_id": "c2", "content": "Error: no such file", "is_error": true},
                    ]})
                );
            }
        }
    }
}

#[tokio::test]
async fn thinking_and_cached_usage() {
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(
            Script::new().turn(
                Turn::text("The answer is 4.")
                    .with_thinking("2 plus 2 is 4, obviously.")
                    .with_usage(120, 30, 100),
            ),
        )
        .await;
        let p = provider(&config(d, stream, &llm));
        let (r, events) = chat(&*p, &user("2+2?"), &[]).await;
        let r = r.unwrap_or_else(|e| panic!("{d:?} stream={stream}: {e}"));
        assert_eq!(r.thinking, "2 plus 2 is 4, obviously.");
        assert_eq!(r.content, "The answer is 4.");
        assert_eq!(thinking_of(&events), r.thinking);
        let first_text = events
            .iter()
            .position(|e| matches!(e, StreamEvent::Text(_)));
        let last_thinking = events
            .iter()
            .rposition(|e| matches!(e, StreamEvent::Thinking(_)));
        assert!(last_thinking < first_text, "{events:?}");
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 120,
                output_tokens: 30,
                cached_input_tokens: 100
            },
            "{d:?} stream={stream}"
        );
        llm.assert_finished();
    }
}

#[tokio::test]
async fn tool_calls_are_kept_whatever_the_finish_reason() {
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(
            Script::new().turn(
                Turn::tool_call("c9", "read_file", json!({"path": "/x"}))
                    .with_finish_reason("stop")
                    .with_stop_reason("end_turn"),
            ),
        )
        .await;
        let p = provider(&config(d, stream, &llm));
        let (r, _) = chat(&*p, &user("go"), &[read_file_tool()]).await;
        let r = r.unwrap_or_else(|e| panic!("{d:?} stream={stream}: {e}"));
        assert_eq!(r.tool_calls.len(), 1, "{d:?} stream={stream}");
        assert_eq!(r.tool_calls[0].id, "c9");
        let want = if d == Dialect::OpenAi {
            "stop"
        } else {
            "end_turn"
        };
        assert_eq!(r.finish_reason.as_deref(), Some(want));
    }
}

#[tokio::test]
async fn qwen_tool_calls_are_recovered_from_reasoning() {
    let reasoning = "I need the file.\n<tool_call>\n<function=read_file>\n<parameter=path>\n/etc/hosts\n</parameter>\n<parameter=limit>\n20\n</parameter>\n</function>\n</tool_call>";
    for stream in [true, false] {
        let llm = ScriptedLlm::start(Script::new().turn(Turn {
            content: Some(json!("")),
            thinking: Some(reasoning.into()),
            ..Turn::default()
        }))
        .await;
        let p = provider(&config(Dialect::OpenAi, stream, &llm));
        let (r, events) = chat(&*p, &user("hosts?"), &[read_file_tool()]).await;
        let r = r.unwrap_or_else(|e| panic!("stream={stream}: {e}"));
        assert_eq!(
            r.tool_calls,
            vec![ToolCall {
                id: "qwen-recovered-0".into(),
                name: "read_file".into(),
                arguments: r#"{"limit":20,"path":"/etc/hosts"}"#.into(),
            }]
        );
        assert_eq!(r.content, "I need the file.");
        assert_eq!(r.thinking, reasoning);
        assert_eq!(
            calls_of(&events),
            [("qwen-recovered-0".to_owned(), "read_file".to_owned())]
        );
        llm.assert_finished();
    }
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(
            Script::new()
                .turn(Turn::error(429).with_retry_after(1))
                .turn(Turn::text("finally")),
        )
        .await;
        let p = provider(&config(d, stream, &llm));
        let started = Instant::now();
        let (r, _) = chat(&*p, &user("hi"), &[]).await;
        assert_eq!(r.expect("second attempt succeeds").content, "finally");
        let reqs = llm.requests();
        assert_eq!(reqs.len(), 2, "{d:?} stream={stream}");
        let gap = reqs[1].at - reqs[0].at;
        assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        llm.assert_finished();
    }
}

#[tokio::test]
async fn retry_after_as_http_date_is_honoured() {
    // An HTTP date has one-second resolution: ask for ~2 s, expect ≥ 1 s.
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let date = http_date(at);
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn {
                error: Some(ErrorReply {
                    status: 429,
                    retry_after: Some(RetryAfter::Text(date)),
                    ..ErrorReply::default()
                }),
                ..Turn::default()
            })
            .turn(Turn::text("ok")),
    )
    .await;
    let p = provider(&config(Dialect::OpenAi, true, &llm));
    let (r, _) = chat(&*p, &user("hi"), &[]).await;
    assert_eq!(r.expect("ok").content, "ok");
    let reqs = llm.requests();
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_secs(4),
        "{gap:?}"
    );
}

/// IMF-fixdate for `t` (test helper; the client has its own parser).
fn http_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs();
    let days = (secs / 86_400) as i64;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {d:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        months[(month - 1) as usize]
    )
}

#[tokio::test]
async fn server_errors_exhaust_retries() {
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(
            Script::new().turn(
                Turn::error(500)
                    .with_error_code("server_error", "the backend fell over")
                    .repeat(3),
            ),
        )
        .await;
        let p = provider(&config(d, stream, &llm));
        let (r, events) = chat(&*p, &user("hi"), &[]).await;
        let e = r.expect_err("fails");
        assert_eq!(e.kind, ErrorKind::Server, "{e}");
        assert_eq!(e.status, Some(500));
        let text = e.to_string();
        assert!(text.starts_with("server error (HTTP 500): "), "{text}");
        assert!(text.contains("the backend fell over"), "{text}");
        assert!(text.contains("gave up after 3 attempts"), "{text}");
        assert!(events.is_empty());
        assert_eq!(llm.requests().len(), 3);
        llm.assert_finished();
    }
}

#[tokio::test]
async fn auth_failure_is_not_retried_and_hides_the_key() {
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(
            Script::new().turn(Turn::error(401).with_error_code("invalid_api_key", "bad key")),
        )
        .await;
        let p = provider(&config(d, stream, &llm));
        let (r, _) = chat(&*p, &user("hi"), &[]).await;
        let e = r.expect_err("fails");
        assert_eq!(e.kind, ErrorKind::Auth, "{e}");
        assert!(!e.to_string().contains(KEY));
        assert!(!format!("{e:?}").contains(KEY));
        assert!(!format!("{p:?}", p = config(d, stream, &llm)).contains(KEY));
        assert_eq!(llm.requests().len(), 1);
        llm.assert_finished();
    }
}

#[tokio::test]
async fn context_length_errors_are_classified() {
    for (d, stream) in ALL {
        let turn = match d {
            Dialect::OpenAi => Turn::error(400).with_error_code(
                "context_length_exceeded",
                "This model's maximum context length is 8192 tokens.",
            ),
            Dialect::Anthropic => Turn::error(400).with_error_code(
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
            ),
        };
        let llm = ScriptedLlm::start(Script::new().turn(turn)).await;
        let p = provider(&config(d, stream, &llm));
        let (r, _) = chat(&*p, &user("hi"), &[]).await;
        let e = r.expect_err("fails");
        assert_eq!(e.kind, ErrorKind::ContextTooLong, "{e}");
        assert_eq!(llm.requests().len(), 1, "not retried");
    }
}

#[tokio::test]
async fn request_timeout_is_classified() {
    for (d, stream) in ALL {
        let llm = ScriptedLlm::start(
            Script::new()
                .turn(Turn::text("late").with_delay_ms(3_000))
                .turn(Turn::text("late again").with_delay_ms(3_000)),
        )
        .await;
        let mut c = config(d, stream, &llm);
        c.request_timeout = Some(Duration::from_millis(300));
        c.max_retries = 1;
        let p = provider(&c);
        let started = Instant::now();
        let (r, _) = chat(&*p, &user("hi"), &[]).await;
        let e = r.expect_err("times out");
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert!(e.to_string().contains("LLM_REQUEST_TIMEOUT"), "{e}");
        assert!(e.to_string().contains("gave up after 2 attempts"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(llm.request_count(), 2);
    }
}

#[tokio::test]
async fn unreachable_endpoint_is_a_network_error() {
    for d in [Dialect::OpenAi, Dialect::Anthropic] {
        let port = closed_port();
        let base = match d {
            Dialect::OpenAi => format!("http://127.0.0.1:{port}/v1"),
            Dialect::Anthropic => format!("http://127.0.0.1:{port}"),
        };
        let provider_name = if d == Dialect::OpenAi {
            "openai"
        } else {
            "anthropic"
        };
        let mut c = ProviderConfig::new(provider_name)
            .with_base_url(base)
            .with_api_key(KEY);
        c.max_retries = 1;
        c.backoff.initial = Duration::from_millis(5);
        let p = provider(&c);
        let (r, _) = chat(&*p, &user("hi"), &[]).await;
        let e = r.expect_err("nothing listens");
        assert_eq!(e.kind, ErrorKind::Network, "{e}");
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("gave up after 2 attempts"), "{text}");
        assert!(!text.contains(KEY));
    }
}

#[tokio::test]
async fn non_streaming_server_answer_is_understood() {
    for d in [Dialect::OpenAi, Dialect::Anthropic] {
        let llm = ScriptedLlm::start(
            Script::new()
                .turn(Turn::text("plain json").non_streaming().expect(Expect {
                    stream: Some(true),
                    ..Expect::default()
                }))
                .turn(
                    Turn::tool_call("t1", "read_file", json!({"path": "/p"}))
                        .with_thinking("hm")
                        .non_streaming(),
                ),
        )
        .await;
        let p = provider(&config(d, true, &llm));
        let (r, events) = chat(&*p, &user("hi"), &[]).await;
        assert_eq!(r.expect("ok").content, "plain json");
        assert_eq!(events, [StreamEvent::Text("plain json".into())]);
        let (r, events) = chat(&*p, &user("hi"), &[]).await;
        let r = r.expect("ok");
        assert_eq!(r.tool_calls[0].arguments, r#"{"path":"/p"}"#);
        // Regular tool calls beside reasoning: the reasoning stays thinking.
        assert_eq!((r.content.as_str(), r.thinking.as_str()), ("", "hm"));
        assert_eq!(
            events,
            [
                StreamEvent::Thinking("hm".into()),
                StreamEvent::ToolCall {
                    id: "t1".into(),
                    name: "read_file".into()
                }
            ]
        );
        llm.assert_finished();
    }
}

#[tokio::test]
async fn extra_and_auth_headers_are_sent() {
    for (d, stream) in ALL {
        let mut headers: std::collections::BTreeMap<String, String> = [
            ("x-gateway-key".to_owned(), "gw-123".to_owned()),
            ("x-trace".to_owned(), "t1".to_owned()),
        ]
        .into();
        match d {
            Dialect::OpenAi => {
                headers.insert("authorization".into(), format!("Bearer {KEY}"));
            }
            Dialect::Anthropic => {
                headers.insert("x-api-key".into(), KEY.into());
                headers.insert("anthropic-version".into(), "2023-06-01".into());
            }
        }
        let llm = ScriptedLlm::start(Script::new().turn(Turn::text("ok").expect(Expect {
            headers,
            ..Expect::default()
        })))
        .await;
        let mut c = config(d, stream, &llm);
        c.headers = parse_headers_json(r#"{"X-Gateway-Key":"gw-123","X-Trace":"t1"}"#)
            .expect("valid headers");
        let p = provider(&c);
        let (r, _) = chat(&*p, &user("hi"), &[]).await;
        r.expect("ok");
        llm.assert_finished();
    }
}

#[tokio::test]
async fn azure_uses_deployment_url_api_version_and_api_key() {
    for stream in [true, false] {
        let llm = ScriptedLlm::start(Script::new().turn(Turn::text("from azure"))).await;
        let mut c = ProviderConfig::new("azure-openai")
            .with_base_url(format!("{}/", llm.origin()))
            .with_model("my-deployment")
            .with_api_key(KEY);
        c.azure_api_version = "2024-10-21".into();
        c.stream = stream;
        let p = provider(&c);
        assert_eq!(p.system(), "az.ai.openai");
        let (r, _) = chat(&*p, &user("hi"), &[]).await;
        assert_eq!(r.expect("ok").content, "from azure");
        let req = &llm.requests()[0];
        assert_eq!(
            req.path,
            "/openai/deployments/my-deployment/chat/completions"
        );
        assert_eq!(req.query.as_deref(), Some("api-version=2024-10-21"));
        assert_eq!(req.header("api-key"), Some(KEY));
        assert_eq!(req.header("authorization"), None);
        llm.assert_finished();
    }
}

#[tokio::test]
async fn anthropic_tool_schemas_keep_required() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("ok").expect(Expect {
        tools: Some(vec!["read_file".into(), "bare".into()]),
        ..Expect::default()
    })))
    .await;
    let p = provider(&config(Dialect::Anthropic, true, &llm));
    let bare = ToolSpec {
        name: "bare".into(),
        description: "No schema type".into(),
        parameters: json!({"properties": {"n": {"type": "integer"}}, "required": ["n"]}),
    };
    let (r, _) = chat(&*p, &user("hi"), &[read_file_tool(), bare]).await;
    r.expect("ok");
    let body = &llm.requests()[0].body;
    assert_eq!(
        body["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
    );
    assert_eq!(body["tools"][1]["input_schema"]["required"], json!(["n"]));
    assert_eq!(body["tools"][1]["input_schema"]["type"], json!("object"));
    llm.assert_finished();
}

#[tokio::test]
async fn openai_sends_function_tools_and_response_format() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("{\"a\":1}"))).await;
    let p = provider(&config(Dialect::OpenAi, true, &llm));
    let format = json!({"name": "answer", "schema": {"type": "object"}});
    let messages = user("json please");
    let tools = [read_file_tool()];
    let req = ChatRequest {
        system: "sys",
        messages: &messages,
        tools: &tools,
        response_format: Some(&format),
    };
    p.chat(&req, &mut |_| {}).await.expect("ok");
    let body = &llm.requests()[0].body;
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "read_file", "description": "Read a file", "parameters": tools[0].parameters}}])
    );
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert!(body.get("max_tokens").is_none());
}

#[tokio::test]
async fn error_event_before_any_output_is_retried() {
    let overloaded = r#"event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn {
                raw_sse: Some(vec![overloaded.into()]),
                ..Turn::default()
            })
            .turn(Turn::text("recovered")),
    )
    .await;
    let p = provider(&config(Dialect::Anthropic, true, &llm));
    let (r, events) = chat(&*p, &user("hi"), &[]).await;
    assert_eq!(r.expect("retried").content, "recovered");
    assert_eq!(text_of(&events), "recovered");
    assert_eq!(llm.requests().len(), 2);
}

#[tokio::test]
async fn stream_cut_after_output_is_not_retried() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn {
        raw_sse: Some(vec![
            r#"data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}"#.into(),
        ]),
        ..Turn::default()
    }))
    .await;
    let p = provider(&config(Dialect::OpenAi, true, &llm));
    let (r, events) = chat(&*p, &user("hi"), &[]).await;
    let e = r.expect_err("incomplete stream");
    assert_eq!(e.kind, ErrorKind::Network, "{e}");
    assert!(e.message.contains("not retried"), "{e}");
    assert_eq!(text_of(&events), "partial");
    assert_eq!(llm.requests().len(), 1);
}
