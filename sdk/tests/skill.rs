//! The skill kit end to end: a [`Toolkit`] served by the SDK's exec server
//! in a temp `/ipc`, called through the runner's [`ExecClient`] with argv
//! built the way the runner builds it for native tools.

use std::sync::Arc;
use std::time::Duration;

use agentpod_sdk::exec::ExecClient;
use agentpod_sdk::skill::{
    ExecHandler, ExecServer, NativeTool, ServerOptions, ToolError, Toolkit, validate_tools,
};
use agentpod_sdk::wire::{ExecRequest, InputMode, SidecarTool};
use agentpod_test_support::TempIpc;
use serde::Deserialize;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Deserialize)]
struct Repeat {
    word: String,
    times: u32,
}

#[derive(Deserialize)]
struct Sum {
    label: String,
    numbers: Vec<f64>,
}

fn kit() -> Toolkit {
    Toolkit::new("Demo Pack", ["/opt/demo/bin/demo", "--quiet"])
        .tool(
            NativeTool::new("repeat_word", "Repeat a word.")
                .positional(["word", "times"])
                .parameters(json!({"type": "object",
                    "properties": {"word": {"type": "string"}, "times": {"type": "integer"}},
                    "required": ["word", "times"]})),
            |a: Repeat| async move {
                if a.times > 5 {
                    return Err(ToolError::new("at most 5 times"));
                }
                Ok(vec![a.word; a.times as usize].join(" "))
            },
        )
        .tool(
            NativeTool::new("sum", "Sum numbers.")
                .positional(["label"])
                .stdin()
                .parameters(json!({"type": "object",
                    "properties": {"label": {"type": "string"}, "numbers": {"type": "array"}},
                    "required": ["label", "numbers"]})),
            |a: Sum| async move { Ok(format!("{}={}", a.label, a.numbers.iter().sum::<f64>())) },
        )
        .tool(
            NativeTool::new("nap", "Sleeps.").subcommand("zzz"),
            |_: Value| async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(String::new())
            },
        )
}

/// argv and stdin as the runner builds them for a native tool call.
fn runner_request(t: &SidecarTool, args: Value) -> ExecRequest {
    let mut argv = t.exec.clone();
    if !t.subcommand.is_empty() {
        argv.push(t.subcommand.clone());
    }
    if !t.positional_args.is_empty() {
        argv.push("--".into());
    }
    let mut rest = args.as_object().cloned().unwrap_or_default();
    for k in &t.positional_args {
        if let Some(v) = rest.remove(k) {
            argv.push(match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        }
    }
    let mut req = ExecRequest::argv("", argv);
    if t.input_mode == InputMode::Stdin {
        req.stdin = Value::Object(rest).to_string();
    }
    req.timeout = 120;
    req.target = t.target.clone();
    req
}

#[tokio::test]
async fn a_toolkit_serves_typed_tools_over_the_exec_protocol() {
    let ipc = TempIpc::new();
    let k = kit();
    k.validate().unwrap();
    let manifest = k.manifest();
    let tool = |n: &str| manifest.tools.iter().find(|t| t.name == n).unwrap().clone();
    assert_eq!(tool("sum").target, "demopack");

    let mut opts = ServerOptions::new(ipc.root().clone()).pack("demo pack");
    opts.max_timeout_secs = 1;
    let server = tokio::spawn(k.serve(opts));
    let c = ExecClient::new(ipc.root().clone());

    let r = c
        .run(
            runner_request(
                &tool("repeat_word"),
                json!({"word": "two\nlines", "times": 2}),
            ),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.stdout.as_str()),
        (0, "two\nlines two\nlines")
    );

    let r = c
        .run(
            runner_request(&tool("repeat_word"), json!({"word": "x", "times": 9})),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.stderr.as_str()), (1, "at most 5 times"));

    let r = c
        .run(
            runner_request(&tool("repeat_word"), json!({"word": "x", "times": "many"})),
            WAIT,
        )
        .await
        .unwrap();
    assert!(r.stderr.contains("invalid arguments"), "{r:?}");

    let r = c
        .run(
            runner_request(&tool("sum"), json!({"label": "total", "numbers": [1, 2.5]})),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "total=3.5");

    // The request's timeout is clamped to this server's max (1 s).
    let r = c
        .run(runner_request(&tool("nap"), json!({})), WAIT)
        .await
        .unwrap();
    assert!(r.timed_out && r.exit_code == 124, "{r:?}");

    // No shell, and no other programs.
    let mut shell = ExecRequest::shell("", "ls");
    shell.target = tool("sum").target;
    let r = c.run(shell, WAIT).await.unwrap();
    assert_eq!(r.exit_code, 127);
    assert!(r.stderr.contains("no shell"), "{}", r.stderr);
    let mut other = ExecRequest::argv("", vec!["/bin/ls".into()]);
    other.target = tool("sum").target;
    assert_eq!(c.run(other, WAIT).await.unwrap().exit_code, 127);

    // argv[0] may be the program's file name; an unknown subcommand is an error.
    let by_name = ExecRequest::argv("", vec!["demo".into(), "--quiet".into(), "nope".into()]);
    let r = c.run(by_name, WAIT).await.unwrap();
    assert!(r.stderr.contains("unknown tool \"nope\""), "{}", r.stderr);

    std::fs::write(ipc.done(), "done").unwrap();
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn declarations_are_the_manifest_format() {
    let k = kit();
    let tools = k.tools();
    assert_eq!(
        tools[0],
        json!({
            "name": "repeat_word",
            "description": "Repeat a word.",
            "exec": ["/opt/demo/bin/demo", "--quiet"],
            "subcommand": "repeat-word",
            "inputMode": "args",
            "positionalArgs": ["word", "times"],
            "parameters": {"type": "object",
                "properties": {"word": {"type": "string"}, "times": {"type": "integer"}},
                "required": ["word", "times"]}
        })
    );
    assert_eq!(tools[1]["inputMode"], "stdin");
    assert!(k.manifest().tools.iter().all(|t| t.target == "demopack"));
    let entries: Vec<SidecarTool> = k.manifest().tools;
    assert!(validate_tools(&[("demo", &entries)]).is_empty());
}

#[test]
fn a_toolkit_that_breaks_the_rules_does_not_validate() {
    let bad = Toolkit::new("p", ["/bin/p"])
        .tool(
            NativeTool::new("read_file", "shadows a built-in"),
            |_: Value| async { Ok(String::new()) },
        )
        .tool(
            NativeTool::new("x", "reserved word").subcommand("serve"),
            |_: Value| async { Ok(String::new()) },
        )
        .tool(
            NativeTool::new("loose", "non-positional in args mode")
                .parameters(json!({"type": "object", "properties": {"a": {}}})),
            |_: Value| async { Ok(String::new()) },
        );
    let err = bad.validate().unwrap_err().to_string();
    for want in ["collides", "reserved", "not positional"] {
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[tokio::test]
async fn the_server_takes_any_handler() {
    struct Echo;
    #[async_trait::async_trait]
    impl ExecHandler for Echo {
        async fn handle(&self, r: ExecRequest, _: Duration) -> agentpod_sdk::wire::ExecResult {
            agentpod_sdk::wire::ExecResult::ok("", r.command)
        }
    }
    let ipc = TempIpc::new();
    let server = ExecServer::new(ServerOptions::new(ipc.root().clone()));
    let run = tokio::spawn(async move { server.run(Arc::new(Echo)).await });
    let r = ExecClient::new(ipc.root().clone())
        .run(ExecRequest::shell("", "hello"), WAIT)
        .await
        .unwrap();
    assert_eq!(r.stdout, "hello");
    std::fs::write(ipc.done(), "done").unwrap();
    tokio::time::timeout(WAIT, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
