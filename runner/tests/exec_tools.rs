//! `execute_command` and native sidecar tools end to end: through the
//! `Tool` trait (and the registry, so arguments start as the model's JSON
//! text), the exec protocol in a temp `/ipc`, and a stand-in sidecar that
//! answers the way upstream's `tool-executor.sh` does (claim with `mkdir`,
//! write `<result>.tmp`, `mv` it into place).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent_runner::tools::execute_command::{ExecuteCommand, TIMED_OUT};
use agent_runner::tools::native::{MANIFEST_WAIT, load_native_tools};
use agentpod_sdk::exec::ExecClient;
use agentpod_sdk::llm::ToolCall;
use agentpod_sdk::tool::{Args, Registry, Tool, ToolContext, ToolPolicy};
use agentpod_sdk::wire::Meta;
use agentpod_test_support::TempIpc;
use serde_json::{Value, json};

mod common;

/// A stand-in skill sidecar: answers every exec request with `answer`,
/// recording each request body.
struct Sidecar {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sidecar {
    fn start(tools: PathBuf, answer: fn(&Value) -> Value) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    serve_once(&tools, answer, &seen);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// The one request seen so far, with the id from its file name.
    fn only_request(&self) -> (String, Value) {
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen[0].clone()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_once(tools: &Path, answer: fn(&Value) -> Value, seen: &Mutex<Vec<(String, Value)>>) {
    for id in common::exec_request_ids(tools) {
        let result = tools.join(format!("exec-result-{id}.json"));
        if result.exists() || fs::create_dir(tools.join(format!(".claim-{id}"))).is_err() {
            continue;
        }
        let body = common::read_exec_request(tools, &id);
        seen.lock().unwrap().push((id.clone(), body.clone()));
        common::answer_exec(tools, &id, answer(&body));
    }
}

/// Echoes argv (one element per line, each quoted) and stdin.
fn echo_argv(req: &Value) -> Value {
    let argv: Vec<String> = req["argv"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| format!("[{}]", v.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "exitCode": 0,
        "stdout": argv.join(" "),
        "stderr": req["stdin"].as_str().unwrap_or(""),
        "timedOut": false
    })
}

fn visible(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

fn args(v: Value) -> Args {
    serde_json::from_value(v).unwrap()
}

fn meta() -> Meta {
    Meta::new("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true)
}

#[tokio::test]
async fn execute_command_round_trip() {
    let ipc = TempIpc::new();
    let sidecar = Sidecar::start(
        ipc.tools(),
        |_| json!({"exitCode": 2, "stdout": "pods", "stderr": "warn", "timedOut": false}),
    );
    let tool = ExecuteCommand::new(ExecClient::new(ipc.root().clone()));
    let ctx = ToolContext {
        meta: Some(meta()),
        ..ToolContext::default()
    };
    let out = tool
        .call(
            args(json!({
                "command": "kubectl get pods",
                "workdir": "/workspace/app",
                "timeout": 500,
                "target": "  K8s-Ops "
            })),
            &ctx,
        )
        .await;
    assert_eq!(out, "pods\nSTDERR: warn\n(exit code: 2)");
    let (id, body) = sidecar.only_request();
    assert_eq!(
        body,
        json!({
            "id": id,
            "command": "kubectl get pods",
            "workDir": "/workspace/app",
            "timeout": 120,
            "target": "k8s-ops",
            "_meta": {
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id": "00f067aa0ba902b7",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            }
        })
    );
    assert!(
        visible(&ipc.tools()).is_empty(),
        "request and result removed"
    );
}

#[tokio::test]
async fn execute_command_defaults_on_the_wire() {
    let ipc = TempIpc::new();
    let sidecar = Sidecar::start(
        ipc.tools(),
        |_| json!({"exitCode": 0, "stdout": "", "stderr": "", "timedOut": false}),
    );
    let tool = ExecuteCommand::new(ExecClient::new(ipc.root().clone()));
    // An empty trace context is not written as `_meta: {}`.
    let ctx = ToolContext {
        meta: Some(Meta::default()),
        ..ToolContext::default()
    };
    let out = tool.call(args(json!({"command": "true"})), &ctx).await;
    assert_eq!(out, "(no output)");
    let (id, body) = sidecar.only_request();
    assert_eq!(
        body,
        json!({"id": id, "command": "true", "workDir": "/workspace", "timeout": 30})
    );
}

#[tokio::test]
async fn execute_command_without_a_sidecar_times_out_at_the_run_deadline() {
    let ipc = TempIpc::new();
    let tool = ExecuteCommand::new(ExecClient::new(ipc.root().clone()));
    let ctx = ToolContext {
        deadline: Some(Instant::now() + Duration::from_millis(300)),
        ..ToolContext::default()
    };
    let started = Instant::now();
    let out = tool.call(args(json!({"command": "sleep 5"})), &ctx).await;
    assert_eq!(out, TIMED_OUT);
    assert_eq!(
        out,
        "Error: timed out waiting for command execution result. The skill sidecar may not be running."
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(visible(&ipc.tools()).is_empty(), "the request is removed");
}

#[tokio::test]
async fn execute_command_without_a_command_sends_nothing() {
    let ipc = TempIpc::new();
    let tool = ExecuteCommand::new(ExecClient::new(ipc.root().clone()));
    let out = tool.call(Args::new(), &ToolContext::default()).await;
    assert_eq!(out, "Error: 'command' is required");
    assert!(visible(&ipc.tools()).is_empty());
}

/// Writes `manifest` to a temp file and returns (dir guard, path).
fn manifest_file(manifest: &Value) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar-tools.json");
    fs::write(&path, serde_json::to_vec(manifest).unwrap()).unwrap();
    (dir, path)
}

fn call(name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: "call_1".into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

#[tokio::test]
async fn native_tools_build_argv_exactly() {
    let ipc = TempIpc::new();
    let sidecar = Sidecar::start(ipc.tools(), echo_argv);
    let exec = ExecClient::new(ipc.root().clone());
    let (_dir, path) = manifest_file(&json!({"tools": [{
        "name": "fit_models",
        "description": "Rank models for this hardware",
        "target": "LLMFit ",
        "exec": ["llmfit", "--json"],
        "subcommand": "rank",
        "inputMode": "args",
        "positionalArgs": ["query", "top", "ratio", "absent", "flag"]
    }]}));
    let tools = load_native_tools(&path, MANIFEST_WAIT, &exec, |_| false).await;
    assert_eq!(tools.len(), 1);
    let mut reg = Registry::new(ToolPolicy::default());
    for t in tools {
        reg.register(t).unwrap();
    }
    assert_eq!(
        reg.advertised()[0].parameters,
        json!({"type": "object", "properties": {}})
    );
    let ctx = ToolContext {
        meta: Some(meta()),
        ..ToolContext::default()
    };
    // The arguments as the model wrote them.
    let out = reg
        .dispatch(
            &call(
                "fit_models",
                r#"{"query":"-x; rm -rf /\nsecond line","top":12,"ratio":0.75,"flag":false,"extra":"dropped"}"#,
            ),
            &ctx,
        )
        .await;
    let (id, body) = sidecar.only_request();
    assert_eq!(
        body,
        json!({
            "id": id,
            "command": "",
            "workDir": "/workspace",
            "timeout": 120,
            "target": "llmfit",
            "argv": ["llmfit", "--json", "rank", "--", "-x; rm -rf /\nsecond line", "12", "0.75", "false"],
            "_meta": {
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id": "00f067aa0ba902b7",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            }
        }),
        "the newline stays inside one argument; no stdin in args mode"
    );
    assert_eq!(
        out,
        "[llmfit] [--json] [rank] [--] [-x; rm -rf /\nsecond line] [12] [0.75] [false]"
    );
    assert!(visible(&ipc.tools()).is_empty());
}

#[tokio::test]
async fn native_tools_in_stdin_mode_pipe_the_other_args() {
    let ipc = TempIpc::new();
    let sidecar = Sidecar::start(ipc.tools(), echo_argv);
    let exec = ExecClient::new(ipc.root().clone());
    let schema = json!({
        "type": "object",
        "properties": {"repo": {"type": "string"}, "labels": {"type": "array"}},
        "required": ["repo"]
    });
    let (_dir, path) = manifest_file(&json!({"tools": [{
        "name": "open_issue",
        "description": "Open an issue",
        "target": "github-gitops",
        "exec": ["gh-tool"],
        "inputMode": "stdin",
        "positionalArgs": ["repo"],
        "parameters": schema
    }]}));
    let tools = load_native_tools(&path, MANIFEST_WAIT, &exec, |_| false).await;
    assert_eq!(tools[0].spec().parameters, schema);
    let out = tools[0]
        .call(
            serde_json::from_str(
                r#"{"repo":"org/app","title":"a <b> & c","labels":["bug"],"n":3}"#,
            )
            .unwrap(),
            &ToolContext::default(),
        )
        .await;
    let (_, body) = sidecar.only_request();
    assert_eq!(body["argv"], json!(["gh-tool", "--", "org/app"]));
    let stdin = r#"{"labels":["bug"],"n":3,"title":"a \u003cb\u003e \u0026 c"}"#;
    assert_eq!(body["stdin"], json!(stdin));
    assert_eq!(body["target"], json!("github-gitops"));
    assert!(body.get("_meta").is_none());
    assert_eq!(out, format!("[gh-tool] [--] [org/app]\nSTDERR: {stdin}"));
}

#[tokio::test]
async fn colliding_native_tool_names_are_skipped() {
    let ipc = TempIpc::new();
    let exec = ExecClient::new(ipc.root().clone());
    let names = [
        "read_file",
        "edit_file",
        "execute_command",
        "memory_store",
        "workflow_memory_search",
        "mcp_github_search",
        "good_tool",
        "good_tool",
        "other_tool",
    ];
    let tools: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "target": "x", "exec": ["p"]}))
        .collect();
    let (_dir, path) = manifest_file(&json!({ "tools": tools }));
    let loaded = load_native_tools(&path, MANIFEST_WAIT, &exec, |n| n.starts_with("mcp_")).await;
    let got: Vec<String> = loaded.iter().map(|t| t.spec().name.clone()).collect();
    assert_eq!(got, ["good_tool", "other_tool"]);
}

#[tokio::test]
async fn a_missing_manifest_gives_no_tools_after_five_seconds() {
    let ipc = TempIpc::new();
    let exec = ExecClient::new(ipc.root().clone());
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let tools = load_native_tools(
        &dir.path().join("sidecar-tools.json"),
        MANIFEST_WAIT,
        &exec,
        |_| false,
    )
    .await;
    let took = started.elapsed();
    assert!(tools.is_empty());
    assert_eq!(MANIFEST_WAIT, Duration::from_secs(5));
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_millis(6500),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_manifest_that_appears_late_is_loaded() {
    let ipc = TempIpc::new();
    let exec = ExecClient::new(ipc.root().clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar-tools.json");
    let writer = {
        let path = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Written in place, empty first: the loader waits for content.
            fs::write(&path, b"").unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            fs::write(&path, br#"{"tools":[{"name":"late","exec":["p"]}]}"#).unwrap();
        })
    };
    let started = Instant::now();
    let tools = load_native_tools(&path, MANIFEST_WAIT, &exec, |_| false).await;
    writer.await.unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].spec().name, "late");
    assert!(started.elapsed() < Duration::from_secs(2));
}
