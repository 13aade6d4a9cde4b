//! The agent loop against the scripted LLM: a tool's result chunk is
//! written when that tool finishes, not when the slowest call of its turn
//! does (watchers time tools by these chunks); an error the server marks
//! final is not retried, and its own message is what the run reports.

use std::sync::Arc;
use std::time::Duration;

use agentpod_sdk::agent::{AgentLoop, LoopConfig, StreamWriter};
use agentpod_sdk::llm::{Backoff, ProviderConfig, ToolSpec, build};
use agentpod_sdk::tool::{Args, Registry, Tool, ToolContext, ToolPolicy};
use agentpod_sdk::wire::{ChunkType, StreamChunk};
use agentpod_test_support::TempIpc;
use agentpod_test_support::llm::{Expect, Script, ScriptedLlm, Turn};
use async_trait::async_trait;
use serde_json::json;

/// A tool that answers after `delay`.
struct Sleepy {
    spec: ToolSpec,
    delay: Duration,
}

impl Sleepy {
    fn new(name: &str, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            spec: ToolSpec {
                name: name.into(),
                description: "answers after a while".into(),
                parameters: json!({"type": "object", "properties": {}}),
            },
            delay,
        })
    }
}

#[async_trait]
impl Tool for Sleepy {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _args: Args, _ctx: &ToolContext) -> String {
        tokio::time::sleep(self.delay).await;
        format!("{} done", self.spec.name)
    }
}

#[tokio::test]
async fn each_tool_result_is_streamed_when_its_call_ends() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::tool_call("call_slow", "slow", json!({})).with_tool_call(
                    "call_fast",
                    "fast",
                    json!({}),
                ),
            )
            .turn(Turn::text("both done")),
    )
    .await;
    let provider = build(
        &ProviderConfig::new("openai")
            .with_base_url(llm.base_url())
            .with_api_key("k"),
    )
    .expect("provider");
    let mut tools = Registry::new(ToolPolicy::default());
    tools
        .register(Sleepy::new("slow", Duration::from_millis(800)))
        .expect("register");
    tools
        .register(Sleepy::new("fast", Duration::ZERO))
        .expect("register");
    let agent = AgentLoop::new(provider, Arc::new(tools), LoopConfig::default());
    let ipc = TempIpc::new();
    let mut stream = StreamWriter::new(ipc.root().clone());
    let out = agent
        .run("system", "go", Some(&mut stream))
        .await
        .expect("run");
    assert_eq!(out.response, "both done");
    llm.assert_finished();

    let mut results = Vec::new();
    for i in 0..stream.chunks_written() {
        let path = ipc.root().output().join(format!("stream-{i}.json"));
        let chunk: StreamChunk =
            serde_json::from_slice(&std::fs::read(&path).expect("chunk")).expect("parse");
        if chunk.kind == ChunkType::ToolResult {
            let at = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .expect("mtime");
            results.push((chunk.tool_id, at));
        }
    }
    let ids: Vec<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["call_fast", "call_slow"],
        "in the order they finished"
    );
    let gap = results[1].1.duration_since(results[0].1).expect("later");
    assert!(
        gap >= Duration::from_millis(500),
        "fast result written {gap:?} before the slow one"
    );

    // The model still gets the results in call order.
    let second = &llm.requests()[1].body["messages"];
    let order: Vec<&str> = second
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["tool_call_id"].as_str())
        .collect();
    assert_eq!(order, ["call_slow", "call_fast"]);
}

fn quick(llm: &ScriptedLlm) -> ProviderConfig {
    let mut c = ProviderConfig::new("openai")
        .with_base_url(llm.base_url())
        .with_api_key("k");
    c.max_retries = 3;
    c.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
    };
    c
}

async fn run_once(llm: &ScriptedLlm) -> String {
    let agent = AgentLoop::new(
        build(&quick(llm)).expect("provider"),
        Arc::new(Registry::new(ToolPolicy::default())),
        LoopConfig::default(),
    );
    agent
        .run("system", "go", None)
        .await
        .expect_err("the run fails")
        .to_string()
}

#[tokio::test]
async fn a_final_error_is_not_retried_and_keeps_the_servers_words() {
    // A mismatch: the scripted server answers 500, marked final.
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("x").expect(Expect {
        model: Some("the-scripted-model".into()),
        ..Expect::default()
    })))
    .await;
    let error = run_once(&llm).await;
    assert_eq!(llm.request_count(), 1, "no retry of a mismatch");
    assert!(
        error.contains("does not match turn 0") && error.contains("the-scripted-model"),
        "{error}"
    );
    assert!(!error.contains("gave up after"), "{error}");

    // A plain 500 is retried; the same error marked final is not.
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::error(500))
            .turn(Turn::text("healed")),
    )
    .await;
    let agent = AgentLoop::new(
        build(&quick(&llm)).expect("provider"),
        Arc::new(Registry::new(ToolPolicy::default())),
        LoopConfig::default(),
    );
    let out = agent.run("system", "go", None).await.expect("healed");
    assert_eq!(out.response, "healed");
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::error(500).with_final())
            .turn(Turn::text("never")),
    )
    .await;
    run_once(&llm).await;
    assert_eq!(llm.request_count(), 1);
}
