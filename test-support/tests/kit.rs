//! The test kit against real parts: a real nats-server, a real temp dir,
//! and the scripted LLM over real HTTP.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use agentpod_test_support::llm::{
    Dialect, ErrorReply, Expect, ExpectToolResult, Script, ScriptedLlm, Turn,
};
use agentpod_test_support::{NatsServer, TempIpc};
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use serde_json::{Value, json};

// ---------------------------------------------------------------- helpers

/// One parsed server-sent event: its `event:` name, if any, and its data.
#[derive(Debug)]
struct Sse {
    event: Option<String>,
    data: String,
}

/// Splits an SSE body into events (blank-line separated `event:`/`data:`).
fn parse_sse(body: &str) -> Vec<Sse> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut ev = Sse {
                event: None,
                data: String::new(),
            };
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    ev.event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    ev.data.push_str(v);
                }
            }
            ev
        })
        .collect()
}

/// The JSON data of every event except OpenAI's `[DONE]`.
fn sse_json(events: &[Sse]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("{err}: {}", e.data)))
        .collect()
}

fn client() -> reqwest::Client {
    agentpod_test_support::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(url: &str, body: Value) -> reqwest::Response {
    client().post(url).json(&body).send().await.unwrap()
}

fn openai_url(llm: &ScriptedLlm) -> String {
    format!("{}/chat/completions", llm.base_url())
}

fn anthropic_url(llm: &ScriptedLlm) -> String {
    format!("{}/messages", llm.base_url())
}

fn openai_req(stream: bool) -> Value {
    json!({
        "model": "gpt-test",
        "stream": stream,
        "messages": [
            { "role": "system", "content": "You are a careful agent." },
            { "role": "user", "content": "list the files" },
        ],
        "tools": [
            { "type": "function", "function": { "name": "read_file", "parameters": {} } },
            { "type": "function", "function": { "name": "execute_command", "parameters": {} } },
        ],
    })
}

fn anthropic_req(stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 1024,
        "stream": stream,
        "system": "You are a careful agent.",
        "messages": [ { "role": "user", "content": "list the files" } ],
        "tools": [
            { "name": "read_file", "input_schema": {} },
            { "name": "execute_command", "input_schema": {} },
        ],
    })
}

/// Two tool calls whose arguments are longer than a streamed piece.
fn two_tool_calls() -> Turn {
    Turn::tool_call(
        "call_a",
        "read_file",
        json!({ "path": "/workspace/README.md", "limit": 200 }),
    )
    .with_tool_call(
        "call_b",
        "execute_command",
        json!({ "command": "ls -la /workspace && echo \"done\"" }),
    )
    .with_usage(120, 30, 100)
}

fn assert_panics(f: impl FnOnce(), needle: &str) {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.contains(needle),
        "panic message {msg:?} lacks {needle:?}"
    );
}

// ---------------------------------------------------------------- NATS

async fn sympozium_stream(js: &jetstream::Context) -> stream::Stream {
    js.get_or_create_stream(stream::Config {
        name: "sympozium".into(),
        subjects: vec!["sympozium.>".into()],
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn pull_all(stream: &stream::Stream, durable: &str, n: usize) -> Vec<jetstream::Message> {
    let consumer = stream
        .get_or_create_consumer(
            durable,
            pull::Config {
                durable_name: Some(durable.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(n + 1)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.unwrap();
        m.ack().await.unwrap();
        out.push(m);
    }
    out
}

#[tokio::test]
async fn nats_jetstream_publish_dedupe_and_pull() {
    let nats = NatsServer::start();
    assert!(nats.url().ends_with(&format!(":{}", nats.port())));
    let js = nats.jetstream().await;
    let mut stream = sympozium_stream(&js).await;

    let publish = |id: &'static str, payload: &'static str| {
        let js = js.clone();
        async move {
            let msg = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(id)
                .header(
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                );
            js.send_publish("sympozium.agent.run-1.completed", msg)
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };
    let first = publish("evt-1", r#"{"n":1}"#).await;
    let again = publish("evt-1", r#"{"n":1}"#).await;
    let second = publish("evt-2", r#"{"n":2}"#).await;
    assert!(!first.duplicate);
    assert!(again.duplicate, "same Nats-Msg-Id must be deduplicated");
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(second.sequence, first.sequence + 1);
    assert_eq!(stream.info().await.unwrap().state.messages, 2);

    let got = pull_all(&stream, "kit", 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(&got[0].payload[..], br#"{"n":1}"#);
    assert_eq!(&got[1].payload[..], br#"{"n":2}"#);
    assert_eq!(got[0].subject.as_str(), "sympozium.agent.run-1.completed");
    let headers = got[0].headers.as_ref().expect("headers kept");
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some("evt-1")
    );
    assert!(headers.get("traceparent").is_some());
}

#[tokio::test]
async fn nats_restart_keeps_stream_and_messages() {
    let mut nats = NatsServer::start();
    let port = nats.port();
    {
        let js = nats.jetstream().await;
        sympozium_stream(&js).await;
        for i in 0..3 {
            js.publish(format!("sympozium.event.{i}"), format!("m{i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }
    nats.stop();
    assert!(!nats.is_running());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    nats.restart();
    assert!(nats.is_running());
    assert_eq!(nats.port(), port);

    let js = nats.jetstream().await;
    let mut stream = js.get_stream("sympozium").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 3);
    let got = pull_all(&stream, "after-restart", 3).await;
    let payloads: Vec<_> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    assert_eq!(payloads, ["m0", "m1", "m2"]);
    assert!(
        nats.log().contains("Server is ready"),
        "log:\n{}",
        nats.log()
    );
}

#[test]
fn nats_server_dir_removed_on_drop() {
    let nats = NatsServer::start();
    let store = nats.store_dir();
    assert!(store.exists());
    drop(nats);
    assert!(!store.exists());
}

// ---------------------------------------------------------------- /ipc

#[test]
fn temp_ipc_has_every_subdir_and_is_removed() {
    let ipc = TempIpc::new();
    for sub in agentpod_sdk::ipc::SUBDIRS {
        assert!(ipc.dir(sub).is_dir(), "{sub} missing");
    }
    ipc.write_json(ipc.task_input(), &json!({ "task": "hi" }));
    assert_eq!(ipc.read_json(ipc.task_input())["task"], "hi");
    let root = ipc.path().to_path_buf();
    drop(ipc);
    assert!(!root.exists());
}

// ---------------------------------------------------------------- LLM: OpenAI

#[tokio::test]
async fn openai_text_plain_and_streamed() {
    let script = Script::new()
        .turn(Turn::text("Hello from the script, in several pieces.").with_usage(10, 7, 0))
        .turn(Turn::text("Hello from the script, in several pieces.").with_usage(10, 7, 4));
    let llm = ScriptedLlm::start(script).await;

    let plain: Value = post(&openai_url(&llm), openai_req(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["object"], "chat.completion");
    assert_eq!(plain["model"], "gpt-test");
    assert_eq!(
        plain["choices"][0]["message"]["content"],
        "Hello from the script, in several pieces."
    );
    assert_eq!(plain["choices"][0]["finish_reason"], "stop");
    assert_eq!(plain["usage"]["prompt_tokens"], 10);
    assert_eq!(plain["usage"]["total_tokens"], 17);

    let resp = post(&openai_url(&llm), openai_req(true)).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks = sse_json(&events);
    let text: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(text, "Hello from the script, in several pieces.");
    let content_deltas = chunks
        .iter()
        .filter(|c| c.pointer("/choices/0/delta/content").is_some())
        .count();
    assert!(content_deltas > 3, "text should arrive in several deltas");
    let finish: Vec<_> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("stop")]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    assert_eq!(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    llm.assert_finished();
}

/// Reassembles streamed OpenAI tool calls by index: (id, name, arguments).
fn openai_tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for c in chunks {
        let Some(deltas) = c
            .pointer("/choices/0/delta/tool_calls")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for d in deltas {
            let i = d["index"].as_u64().unwrap() as usize;
            if i == calls.len() {
                // First delta of a call: id and name come here, and only here.
                calls.push((
                    d["id"].as_str().expect("id in first delta").into(),
                    d["function"]["name"]
                        .as_str()
                        .expect("name in first delta")
                        .into(),
                    String::new(),
                ));
            } else {
                assert!(d.get("id").is_none() && d["function"].get("name").is_none());
            }
            calls[i]
                .2
                .push_str(d["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    calls
}

#[tokio::test]
async fn openai_multi_tool_calls_streamed_reassemble_exactly() {
    let turn = two_tool_calls();
    let want: Vec<String> = turn.tool_calls.iter().map(|c| c.arguments_text()).collect();
    let llm = ScriptedLlm::start(Script::new().turn(turn.clone()).turn(turn)).await;

    let events = parse_sse(
        &post(&openai_url(&llm), openai_req(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let chunks = sse_json(&events);
    let calls = openai_tool_calls(&chunks);
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].0.as_str(), calls[0].1.as_str()),
        ("call_a", "read_file")
    );
    assert_eq!(
        (calls[1].0.as_str(), calls[1].1.as_str()),
        ("call_b", "execute_command")
    );
    assert_eq!(calls[0].2, want[0]);
    assert_eq!(calls[1].2, want[1]);
    let arg_deltas = chunks
        .iter()
        .filter(|c| {
            c.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
        .count();
    assert!(arg_deltas >= 4, "arguments should be split across deltas");
    assert!(
        chunks
            .iter()
            .any(|c| c.pointer("/choices/0/finish_reason") == Some(&json!("tool_calls")))
    );
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 120);

    let plain: Value = post(&openai_url(&llm), openai_req(false))
        .await
        .json()
        .await
        .unwrap();
    let msg = &plain["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(
        msg["tool_calls"][1]["function"]["arguments"],
        want[1].as_str()
    );
    assert_eq!(plain["choices"][0]["finish_reason"], "tool_calls");
    llm.assert_finished();
}

#[tokio::test]
async fn openai_reasoning_finish_override_and_raw_content() {
    let qwen = "<tool_call>{\"name\":\"read_file\",\"arguments\":{\"path\":\"a\"}}</tool_call>";
    let script = Script::new()
        .turn(Turn::tool_call("c1", "read_file", json!({"path": "a"})).with_finish_reason("stop"))
        .turn(Turn {
            thinking: Some(qwen.into()),
            content: Some(json!("")),
            ..Turn::default()
        });
    let llm = ScriptedLlm::start(script).await;

    let chunks = sse_json(&parse_sse(
        &post(&openai_url(&llm), openai_req(true))
            .await
            .text()
            .await
            .unwrap(),
    ));
    assert_eq!(openai_tool_calls(&chunks).len(), 1);
    assert!(
        chunks
            .iter()
            .any(|c| c.pointer("/choices/0/finish_reason") == Some(&json!("stop")))
    );

    let chunks = sse_json(&parse_sse(
        &post(&openai_url(&llm), openai_req(true))
            .await
            .text()
            .await
            .unwrap(),
    ));
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/reasoning_content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(reasoning, qwen);
    let content: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(content, "");
    llm.assert_finished();
}

#[tokio::test]
async fn openai_azure_and_bare_paths_are_served_and_recorded() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("a").repeat(2))).await;
    let azure = format!(
        "{}/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21",
        llm.origin()
    );
    let resp = client()
        .post(&azure)
        .header("api-key", "azure-key")
        .json(&openai_req(false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bare = format!("{}/chat/completions", llm.origin());
    assert_eq!(post(&bare, openai_req(false)).await.status(), 200);

    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/openai/deployments/gpt4o/chat/completions");
    assert_eq!(reqs[0].query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(reqs[0].header("API-Key"), Some("azure-key"));
    assert_eq!(reqs[0].dialect, Some(Dialect::OpenAi));
    assert_eq!(reqs[0].body["messages"][1]["content"], "list the files");
    assert_eq!(reqs[1].turn, Some(0));
    assert!(reqs[1].at >= reqs[0].at);
    llm.assert_finished();
}

// ---------------------------------------------------------------- LLM: Anthropic

#[tokio::test]
async fn anthropic_text_thinking_and_tools_plain() {
    let llm = ScriptedLlm::start(
        Script::new().turn(two_tool_calls().with_thinking("Let me look first.")),
    )
    .await;
    let body: Value = post(&anthropic_url(&llm), anthropic_req(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["stop_reason"], "tool_use");
    let content = body["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"], "Let me look first.");
    assert_eq!(content[1]["type"], "tool_use");
    assert_eq!(content[1]["id"], "call_a");
    assert_eq!(
        content[1]["input"],
        json!({ "path": "/workspace/README.md", "limit": 200 })
    );
    assert_eq!(content[2]["name"], "execute_command");
    // input 120 includes 100 cached: Anthropic counts them apart.
    assert_eq!(body["usage"]["input_tokens"], 20);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 100);
    llm.assert_finished();
}

#[tokio::test]
async fn anthropic_streamed_events_reassemble() {
    let turn = two_tool_calls().with_thinking("Thinking about which files to read.");
    let want: Vec<String> = turn.tool_calls.iter().map(|c| c.arguments_text()).collect();
    let mut text_turn = Turn::text("All done, here is the summary.");
    text_turn.usage = turn.usage;
    let llm = ScriptedLlm::start(Script::new().turn(turn).turn(text_turn)).await;

    let resp = post(&anthropic_url(&llm), anthropic_req(true)).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&resp.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "content_block_start")
            .count(),
        3
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "content_block_stop").count(),
        3
    );
    let data = sse_json(&events);
    for (e, d) in events.iter().zip(&data) {
        assert_eq!(
            e.event.as_deref(),
            d["type"].as_str(),
            "event name matches data type"
        );
    }
    // Reassemble blocks by index.
    let mut blocks: Vec<Value> = Vec::new();
    for d in &data {
        match d["type"].as_str().unwrap() {
            "content_block_start" => blocks.push(d["content_block"].clone()),
            "content_block_delta" => {
                let b = &mut blocks[d["index"].as_u64().unwrap() as usize];
                let delta = &d["delta"];
                match delta["type"].as_str().unwrap() {
                    "thinking_delta" => {
                        let t = format!(
                            "{}{}",
                            b["thinking"].as_str().unwrap(),
                            delta["thinking"].as_str().unwrap()
                        );
                        b["thinking"] = json!(t);
                    }
                    "signature_delta" => b["signature"] = delta["signature"].clone(),
                    "input_json_delta" => {
                        let s = format!(
                            "{}{}",
                            b["partial"].as_str().unwrap_or(""),
                            delta["partial_json"].as_str().unwrap()
                        );
                        b["partial"] = json!(s);
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            _ => {}
        }
    }
    assert_eq!(blocks[0]["thinking"], "Thinking about which files to read.");
    assert!(
        blocks[0]["signature"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(
        (blocks[1]["id"].as_str(), blocks[1]["name"].as_str()),
        (Some("call_a"), Some("read_file"))
    );
    assert_eq!(blocks[1]["partial"], want[0].as_str());
    assert_eq!(blocks[2]["partial"], want[1].as_str());
    let json_pieces = data
        .iter()
        .filter(|d| d["delta"]["type"] == "input_json_delta")
        .count();
    assert!(json_pieces >= 4, "input JSON should arrive in pieces");
    let delta = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 30);
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 20);

    let data = sse_json(&parse_sse(
        &post(&anthropic_url(&llm), anthropic_req(true))
            .await
            .text()
            .await
            .unwrap(),
    ));
    let text: String = data
        .iter()
        .filter(|d| d["delta"]["type"] == "text_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "All done, here is the summary.");
    let delta = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    llm.assert_finished();
}

// ---------------------------------------------------------------- errors, delay, quirks

#[tokio::test]
async fn errors_with_retry_after_in_both_dialects() {
    let script = Script::new()
        .turn(Turn::error(429).with_retry_after(2).repeat(2))
        .turn(Turn::error(400).with_error_code("context_length_exceeded", "too long"))
        .turn(Turn {
            error: Some(ErrorReply {
                status: 401,
                body: Some(json!("nope")),
                ..ErrorReply::default()
            }),
            ..Turn::default()
        });
    let llm = ScriptedLlm::start(script).await;

    let r = post(&openai_url(&llm), openai_req(true)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["type"], "rate_limit_exceeded");

    let r = post(&anthropic_url(&llm), anthropic_req(false)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error");
    assert_eq!(b["error"]["type"], "rate_limit_error");

    let r = post(&openai_url(&llm), openai_req(false)).await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "context_length_exceeded");
    assert_eq!(b["error"]["message"], "too long");

    let r = post(&openai_url(&llm), openai_req(false)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), "nope");
    llm.assert_finished();
}

#[tokio::test]
async fn delay_makes_a_client_time_out_and_non_streaming_ignores_stream() {
    let script = Script::new()
        .turn(Turn::text("late").with_delay_ms(2_000))
        .turn(
            Turn::text("quick but slow-ish")
                .with_delay_ms(50)
                .non_streaming(),
        );
    let llm = ScriptedLlm::start(script).await;

    agentpod_test_support::install_crypto_provider();
    let slow = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let err = slow
        .post(openai_url(&llm))
        .json(&openai_req(false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");

    let started = Instant::now();
    let r = post(&openai_url(&llm), openai_req(true)).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["choices"][0]["message"]["content"], "quick but slow-ish");
    llm.assert_finished();
}

// ---------------------------------------------------------------- checks

#[tokio::test]
async fn passing_checks_in_both_dialects() {
    let expect = Expect {
        tools: Some(vec!["execute_command".into(), "read_file".into()]),
        tools_include: vec!["read_file".into()],
        tool_results: vec![ExpectToolResult {
            id: "call_a".into(),
            contains: Some("README".into()),
        }],
        system_contains: Some("careful".into()),
        last_user_contains: Some("list the".into()),
        stream: Some(false),
        headers: [("x-test".to_string(), "".to_string())].into(),
        ..Expect::default()
    };
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text("ok").expect(Expect {
                dialect: Some(Dialect::OpenAi),
                model: Some("gpt-test".into()),
                ..expect.clone()
            }))
            .turn(Turn::text("ok").expect(Expect {
                dialect: Some(Dialect::Anthropic),
                body: [("/max_tokens".to_string(), json!(1024))].into(),
                ..expect
            })),
    )
    .await;

    let mut o = openai_req(false);
    let msgs = o["messages"].as_array_mut().unwrap();
    msgs.insert(1, json!({ "role": "user", "content": "first" }));
    msgs.insert(2, json!({ "role": "assistant", "content": null, "tool_calls": [{ "id": "call_a", "type": "function", "function": { "name": "read_file", "arguments": "{}" } }] }));
    msgs.insert(
        3,
        json!({ "role": "tool", "tool_call_id": "call_a", "content": "README.md  src/" }),
    );
    let r = client()
        .post(openai_url(&llm))
        .header("x-test", "1")
        .json(&o)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let mut a = anthropic_req(false);
    a["messages"] = json!([
        { "role": "user", "content": [{ "type": "text", "text": "list the files" }] },
        { "role": "assistant", "content": [{ "type": "tool_use", "id": "call_a", "name": "read_file", "input": {} }] },
        { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "call_a", "content": [{ "type": "text", "text": "README.md" }] }] },
    ]);
    let r = client()
        .post(anthropic_url(&llm))
        .header("x-test", "1")
        .json(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    llm.assert_finished();
}

#[tokio::test]
async fn failed_checks_answer_500_and_fail_assert_finished() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text("x").expect(Expect {
                model: Some("other-model".into()),
                stream: Some(true),
                ..Expect::default()
            }))
            .turn(Turn::text("never served")),
    )
    .await;
    let r = post(&openai_url(&llm), openai_req(false)).await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.headers()["x-should-retry"],
        "false",
        "a mismatch cannot heal: clients must not retry it"
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains("other-model") && text.contains("stream"),
        "{text}"
    );

    assert_panics(|| llm.assert_finished(), "other-model");
    assert_panics(|| llm.assert_finished(), "turn 1 onwards unconsumed");
}

#[tokio::test]
async fn scripted_errors_are_final_only_when_marked() {
    let llm = ScriptedLlm::start(
        Script::from_yaml_str(
            "turns:\n  - error: {status: 500, message: flaky}\n  - error: {status: 503, message: gone, final: true}\n",
        )
        .unwrap(),
    )
    .await;
    let r = post(&openai_url(&llm), openai_req(false)).await;
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("x-should-retry").is_none());
    let r = post(&openai_url(&llm), openai_req(false)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-should-retry"], "false");
    assert!(r.text().await.unwrap().contains("gone"));
    llm.assert_finished();
}

#[tokio::test]
async fn requests_after_the_end_or_elsewhere_fail() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("only"))).await;
    assert_eq!(
        post(&openai_url(&llm), openai_req(false)).await.status(),
        200
    );
    llm.assert_finished();

    let r = post(&anthropic_url(&llm), anthropic_req(false)).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["x-should-retry"], "false");
    assert!(r.text().await.unwrap().contains("after the script ended"));
    let r = post(&format!("{}/v1/embeddings", llm.origin()), json!({})).await;
    assert_eq!(r.status(), 404);
    assert_eq!(llm.failures().len(), 2);
    assert_panics(|| llm.assert_finished(), "no scripted endpoint");
}

#[test]
#[should_panic(expected = "script not finished")]
fn unconsumed_turns_fail_assert_finished() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let llm = ScriptedLlm::start(Script::new().turn(Turn::text("unused"))).await;
        llm.assert_finished();
    });
}

// ---------------------------------------------------------------- script files, repeat, binary

const YAML: &str = r#"
chunk_chars: 4
turns:
  - expect:
      tools_include: [read_file]
      last_user_contains: files
    thinking: "Plan: read it."
    tool_calls:
      - id: call_1
        name: read_file
        arguments: { path: /workspace/a.txt }
    usage: { input: 50, output: 9, cached: 10 }
  - expect:
      tool_results: [{ id: call_1, contains: hello }]
    text: "The file says hello."
    repeat: 2
"#;

#[tokio::test]
async fn yaml_script_file_served_as_either_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.yaml");
    std::fs::write(&path, YAML).unwrap();
    let script = Script::from_file(&path).unwrap();
    assert_eq!(script.total_requests(), 3);

    let llm = ScriptedLlm::start(script).await;
    let body: Value = post(&openai_url(&llm), openai_req(false))
        .await
        .json()
        .await
        .unwrap();
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_1");
    assert_eq!(
        call["function"]["arguments"],
        r#"{"path":"/workspace/a.txt"}"#
    );
    assert_eq!(
        body["choices"][0]["message"]["reasoning_content"],
        "Plan: read it."
    );

    let mut o = openai_req(true);
    o["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "role": "tool", "tool_call_id": "call_1", "content": "hello world" }));
    let chunks = sse_json(&parse_sse(
        &post(&openai_url(&llm), o).await.text().await.unwrap(),
    ));
    assert!(
        chunks
            .iter()
            .any(|c| c.pointer("/choices/0/delta/content") == Some(&json!("The ")))
    );

    let mut a = anthropic_req(false);
    a["messages"].as_array_mut().unwrap().push(json!({ "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "call_1", "content": "hello" }] }));
    let b: Value = post(&anthropic_url(&llm), a).await.json().await.unwrap();
    assert_eq!(b["content"][0]["text"], "The file says hello.");
    llm.assert_finished();

    let json_path = dir.path().join("script.json");
    std::fs::write(
        &json_path,
        serde_json::to_string(&Script::from_yaml_str(YAML).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        Script::from_file(&json_path).unwrap(),
        Script::from_yaml_str(YAML).unwrap()
    );
    assert!(Script::from_yaml_str("turns:\n  - text: a\n    error: { status: 500 }\n").is_err());
}

#[tokio::test]
async fn cycle_serves_forever() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("again")).cycle()).await;
    for _ in 0..5 {
        assert_eq!(
            post(&openai_url(&llm), openai_req(false)).await.status(),
            200
        );
    }
    assert_eq!(llm.request_count(), 5);
    llm.assert_finished();
}

#[tokio::test]
async fn binary_serves_a_script_file() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.yaml");
    std::fs::write(&path, "turns:\n  - text: from the binary\n").unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_scripted-llm"))
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("base URL printed")
        .unwrap()
        .unwrap();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/v1"),
        "{base}"
    );
    let b: Value = post(&format!("{base}/chat/completions"), openai_req(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["choices"][0]["message"]["content"], "from the binary");
    child.kill().await.unwrap();
}

/// A script the binary cannot read: it exits at once, non-zero, with the
/// problem (file, place, the unknown field) on stderr in one line and no
/// backtrace even when `RUST_BACKTRACE` is set.
#[test]
fn binary_refuses_a_broken_script_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "turns:\n  - txt: hello\n").unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scripted-llm"))
        .arg(&path)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no base URL");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("scripted-llm: ")
            && err.contains("broken.yaml")
            && err.contains("unknown field `txt`")
            && err.contains("text"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        !err.contains("backtrace") && !err.contains("Caused by"),
        "{err}"
    );
}

#[test]
fn readme_script_example_parses() {
    let readme = include_str!("../README.md");
    let start = readme.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let len = readme[start..].find("```").unwrap();
    let script = Script::from_yaml_str(&readme[start..start + len]).unwrap();
    assert_eq!(script.turns[1].repeat, Some(3));
    assert_eq!(
        script.turns[1].expect.tool_results,
        vec![("call_1", "hello").into()]
    );
}

#[test]
#[should_panic(expected = "nats-server exited")]
fn nats_start_failure_panics_with_the_log() {
    NatsServer::start_with_args(&["--no-such-flag"]);
}
