//! The real `agent-runner` binary against the scripted LLM server: both
//! dialects, streaming and not, and every way a run can end.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::wire::marker::{LogOutcome, parse_result_from_logs};
use agentpod_sdk::wire::{AgentResult, ChunkType, ResultStatus, StreamChunk};
use agentpod_test_support::llm::{Expect, Script, ScriptedLlm, Turn};
use serde_json::json;
use tempfile::TempDir;

mod common;
use common::BIN;

/// A Pod's directories on the host.
struct Pod {
    _dir: TempDir,
    ipc: IpcRoot,
    workspace: PathBuf,
    vars: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug)]
enum Dialect {
    OpenAi,
    Anthropic,
}

impl Pod {
    fn new() -> Self {
        let (dir, ipc) = common::pod_dir();
        let workspace = dir.path().join("workspace");
        for d in ["workspace", "skills", "tmp"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let vars = vec![
            ("AGENTPOD_IPC_ROOT".into(), ipc.path().display().to_string()),
            (
                "AGENTPOD_WORKSPACE_ROOT".into(),
                workspace.display().to_string(),
            ),
            (
                "AGENTPOD_SKILLS_ROOT".into(),
                dir.path().join("skills").display().to_string(),
            ),
            (
                "AGENTPOD_TMP_ROOT".into(),
                dir.path().join("tmp").display().to_string(),
            ),
            ("AGENTPOD_SETTLE".into(), "0s".into()),
            // No mcp-bridge in these Pods (as our operator renders it).
            ("AGENTPOD_MCP_MANIFEST_WAIT".into(), "0s".into()),
            ("API_KEY".into(), "test-key".into()),
            ("TASK".into(), "Do the thing.".into()),
        ];
        Self {
            _dir: dir,
            ipc,
            workspace,
            vars,
        }
    }

    fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.vars.retain(|(n, _)| n != k);
        self.vars.push((k.into(), v.into()));
        self
    }

    fn model(&mut self, llm: &ScriptedLlm, dialect: Dialect, stream: bool) -> &mut Self {
        match dialect {
            Dialect::OpenAi => self
                .set("MODEL_PROVIDER", "openai")
                .set("MODEL_BASE_URL", &llm.base_url()),
            Dialect::Anthropic => self
                .set("MODEL_PROVIDER", "anthropic")
                .set("MODEL_BASE_URL", &llm.origin()),
        };
        self.set("AGENTPOD_LLM_STREAM", if stream { "true" } else { "false" })
    }

    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(BIN);
        c.env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run(&self) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command().output())
            .await
            .expect("agent-runner did not finish within 60 s")
            .unwrap();
        Run::new(out, &self.ipc)
    }

    fn chunks(&self) -> Vec<StreamChunk> {
        (0..)
            .map(|n| self.ipc.stream_chunk(n))
            .take_while(|p| p.exists())
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

/// What a run left behind.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    result: Option<AgentResult>,
    done: bool,
}

impl Run {
    fn new(out: Output, ipc: &IpcRoot) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            result: std::fs::read(ipc.result())
                .ok()
                .map(|b| serde_json::from_slice(&b).unwrap()),
            done: std::fs::read_to_string(ipc.done()).is_ok_and(|s| s == "done"),
        }
    }

    fn outcome(&self) -> LogOutcome {
        parse_result_from_logs(&self.stdout)
    }

    fn result(&self) -> &AgentResult {
        self.result
            .as_ref()
            .unwrap_or_else(|| panic!("no result.json; stderr:\n{}", self.stderr))
    }

    #[track_caller]
    fn assert_success(&self, response: &str) {
        assert_eq!(self.code, 0, "stderr:\n{}", self.stderr);
        assert_eq!(self.result().status, ResultStatus::Success);
        assert_eq!(self.result().response, response);
        assert!(self.done);
        match self.outcome() {
            LogOutcome::Succeeded { response: r, .. } => assert_eq!(r, response),
            other => panic!("marker: {other:?}"),
        }
    }

    #[track_caller]
    fn assert_error(&self, contains: &str) -> String {
        assert_eq!(self.code, 1, "stderr:\n{}", self.stderr);
        assert_eq!(self.result().status, ResultStatus::Error);
        assert!(
            self.result().error.contains(contains),
            "error {:?} lacks {contains:?}",
            self.result().error
        );
        assert!(self.done);
        match self.outcome() {
            LogOutcome::Failed { error, .. } => assert_eq!(error, self.result().error),
            other => panic!("marker: {other:?}"),
        }
        self.result().error.clone()
    }
}

const DIALECTS: [(Dialect, bool); 4] = [
    (Dialect::OpenAi, true),
    (Dialect::OpenAi, false),
    (Dialect::Anthropic, true),
    (Dialect::Anthropic, false),
];

#[tokio::test]
async fn multi_turn_tool_use_in_every_dialect() {
    for (dialect, stream) in DIALECTS {
        let mut pod = Pod::new();
        std::fs::write(pod.workspace.join("a.txt"), "alpha").unwrap();
        std::fs::write(pod.workspace.join("b.txt"), "beta").unwrap();
        let llm = ScriptedLlm::start(
            Script::new()
                .turn(
                    Turn::text("Reading both.")
                        .with_tool_call("c1", "read_file", json!({"path": "/workspace/a.txt"}))
                        .with_tool_call("c2", "read_file", json!({"path": "/workspace/b.txt"}))
                        .with_usage(100, 20, 0)
                        .expect(Expect {
                            tools_include: vec!["read_file".into(), "edit_file".into()],
                            system_contains: Some("## Tool Usage".into()),
                            last_user_contains: Some("Do the thing.".into()),
                            stream: Some(stream),
                            ..Expect::default()
                        }),
                )
                .turn(
                    Turn::text("a says alpha, b says beta")
                        .with_usage(150, 10, 0)
                        .expect(Expect {
                            tool_results: vec![("c1", "alpha").into(), ("c2", "beta").into()],
                            ..Expect::default()
                        }),
                ),
        )
        .await;
        pod.model(&llm, dialect, stream)
            .set("TOOLS_ENABLED", "true");
        let run = pod.run().await;
        run.assert_success("a says alpha, b says beta");
        llm.assert_finished();
        let m = run.result().metrics;
        assert_eq!(
            (m.input_tokens, m.output_tokens, m.tool_calls),
            (250, 30, 2),
            "{dialect:?} {stream}"
        );
        match run.outcome() {
            LogOutcome::Succeeded {
                token_usage: Some(u),
                ..
            } => assert_eq!(u.total_tokens, 280),
            other => panic!("{other:?}"),
        }
        // Results went back in call order.
        let body = &llm.requests()[1].body;
        let text = body.to_string();
        assert!(
            text.find("alpha").unwrap() < text.find("beta").unwrap(),
            "{dialect:?}"
        );
        // The answer was streamed to /ipc/output as it came.
        let chunks = pod.chunks();
        let text: String = chunks
            .iter()
            .filter(|c| c.kind == ChunkType::Text)
            .map(|c| c.content.as_str())
            .collect();
        assert_eq!(
            text, "Reading both.a says alpha, b says beta",
            "{dialect:?} {stream}"
        );
        assert!(
            chunks
                .iter()
                .any(|c| c.kind == ChunkType::ToolUse && c.tool_id == "c1")
        );
        assert!(
            chunks
                .iter()
                .any(|c| c.kind == ChunkType::ToolResult && c.content == "alpha")
        );
        assert!(chunks.windows(2).all(|w| w[1].index == w[0].index + 1));
    }
}

#[tokio::test]
async fn iteration_limit_is_an_error() {
    let mut pod = Pod::new();
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::tool_call("c", "list_directory", json!({"path": "/workspace"})).repeat(2)),
    )
    .await;
    pod.model(&llm, Dialect::OpenAi, true)
        .set("TOOLS_ENABLED", "true")
        .set("MAX_TOOL_ITERATIONS", "2");
    let run = pod.run().await;
    run.assert_error("exceeded maximum tool-call iterations (2)");
    assert_eq!(run.result().metrics.tool_calls, 2);
    llm.assert_finished();
}

#[tokio::test]
async fn token_budget_halts_with_what_was_said() {
    let mut pod = Pod::new();
    let llm = ScriptedLlm::start(
        Script::new().turn(
            Turn::text("Partial findings.")
                .with_tool_call("c", "list_directory", json!({"path": "/workspace"}))
                .with_usage(900, 200, 0),
        ),
    )
    .await;
    pod.model(&llm, Dialect::Anthropic, true)
        .set("TOOLS_ENABLED", "true")
        .set("WORKFLOW_MEMBRANE_MAX_TOKENS_PER_RUN", "1000");
    pod.run().await.assert_success("Partial findings.");
    llm.assert_finished();
}

#[tokio::test]
async fn openai_quirks_finish_reason_stop_and_qwen_recovery() {
    let mut pod = Pod::new();
    std::fs::write(pod.workspace.join("q.txt"), "from qwen").unwrap();
    let qwen = "<think>I should read it.</think><tool_call><function=read_file><parameter=path>/workspace/q.txt</parameter></function></tool_call>";
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::tool_call("c1", "list_directory", json!({"path": "/workspace"}))
                    .with_finish_reason("stop"),
            )
            .turn(Turn::default().with_thinking(qwen).expect(Expect {
                tool_results: vec![("c1", "q.txt").into()],
                ..Expect::default()
            }))
            .turn(Turn::text("done").expect(Expect {
                tool_results: vec![("qwen-recovered-0", "from qwen").into()],
                ..Expect::default()
            })),
    )
    .await;
    pod.model(&llm, Dialect::OpenAi, false)
        .set("TOOLS_ENABLED", "true");
    pod.run().await.assert_success("done");
    llm.assert_finished();
}

#[tokio::test]
async fn rate_limit_then_success() {
    let mut pod = Pod::new();
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::error(429).with_retry_after(1))
            .turn(Turn::text("ok")),
    )
    .await;
    pod.model(&llm, Dialect::OpenAi, true);
    let started = Instant::now();
    pod.run().await.assert_success("ok");
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[1].at - reqs[0].at >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    llm.assert_finished();
}

#[tokio::test]
async fn request_timeout_is_classified() {
    let mut pod = Pod::new();
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("late").with_delay_ms(5_000))).await;
    pod.model(&llm, Dialect::Anthropic, true)
        .set("LLM_REQUEST_TIMEOUT", "300ms")
        .set("LLM_MAX_RETRIES", "0");
    let started = Instant::now();
    let run = pod.run().await;
    run.assert_error("request timed out");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn unreachable_endpoint_is_an_error_never_success() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut pod = Pod::new();
    pod.set("MODEL_BASE_URL", &format!("http://127.0.0.1:{port}/v1"))
        .set("LLM_MAX_RETRIES", "1");
    let err = pod.run().await.assert_error("network error");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "names the endpoint: {err}"
    );
}

#[tokio::test]
async fn sigterm_mid_run_ends_within_two_seconds() {
    let mut pod = Pod::new();
    let llm =
        ScriptedLlm::start(Script::new().turn(Turn::text("never").with_delay_ms(30_000))).await;
    pod.model(&llm, Dialect::OpenAi, true);
    let child = pod.command().spawn().unwrap();
    let pid = child.id().unwrap() as i32;
    llm.wait_for_requests(1, Duration::from_secs(10)).await;
    let sent = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "took {:?}",
        sent.elapsed()
    );
    let run = Run::new(out, &pod.ipc);
    run.assert_error("terminated");
}

#[tokio::test]
async fn skip_marker_skips() {
    let mut pod = Pod::new();
    std::fs::create_dir_all(pod.ipc.control()).unwrap();
    std::fs::write(pod.ipc.skip_marker(), "  nothing changed since last run \n").unwrap();
    pod.set("MODEL_BASE_URL", "http://127.0.0.1:1/v1");
    let run = pod.run().await;
    assert_eq!(run.code, 0);
    assert_eq!(run.result().status, ResultStatus::Skipped);
    assert_eq!(run.result().response, "nothing changed since last run");
    assert!(run.done);
    assert_eq!(
        run.outcome(),
        LogOutcome::Skipped {
            reason: "nothing changed since last run".into()
        }
    );
}

#[tokio::test]
async fn dry_run_reports_the_task() {
    let mut pod = Pod::new();
    pod.set("DRY_RUN", "true").set("INSTANCE_NAME", "helper");
    pod.run()
        .await
        .assert_success("DRY RUN: [helper] would execute task: Do the thing.");
}

#[tokio::test]
async fn bad_env_value_takes_the_fatal_path() {
    let mut pod = Pod::new();
    pod.set("MAX_TOOL_ITERATIONS", "many")
        .set("RUN_TIMEOUT", "-1s");
    let run = pod.run().await;
    assert_eq!(run.code, 1);
    let err = &run.result().error;
    assert!(
        err.contains("MAX_TOOL_ITERATIONS=\"many\" is invalid: expected a positive integer"),
        "{err}"
    );
    assert!(
        err.contains("RUN_TIMEOUT=\"-1s\" is invalid: expected a duration"),
        "{err}"
    );
    assert!(run.done);
    assert!(
        !run.stdout.contains("__SYMPOZIUM_RESULT__"),
        "fatal path prints no marker"
    );
    assert!(
        run.stderr.contains("MAX_TOOL_ITERATIONS"),
        "the log names the variable too"
    );
}

#[tokio::test]
async fn missing_task_is_fatal() {
    let mut pod = Pod::new();
    pod.set("TASK", "");
    let run = pod.run().await;
    assert_eq!(run.code, 1);
    assert!(
        run.result().error.contains("no task: set TASK"),
        "{}",
        run.result().error
    );
}

#[tokio::test]
async fn denied_tool_is_refused_at_call_time() {
    let mut pod = Pod::new();
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::tool_call(
                    "w",
                    "write_file",
                    json!({"path": "/workspace/x", "content": "pwned"}),
                )
                .expect(Expect {
                    tools: None,
                    tools_include: vec!["read_file".into()],
                    ..Expect::default()
                }),
            )
            .turn(Turn::text("could not write").expect(Expect {
                tool_results: vec![("w", "Error: tool write_file is not allowed").into()],
                ..Expect::default()
            })),
    )
    .await;
    pod.model(&llm, Dialect::OpenAi, true)
        .set("TOOLS_ENABLED", "true")
        .set("TOOL_POLICY_DENY", "write_file");
    pod.run().await.assert_success("could not write");
    llm.assert_finished();
    let offered = llm.requests()[0].body["tools"].to_string();
    assert!(
        !offered.contains("\"write_file\""),
        "denied tools are not advertised"
    );
    assert!(!pod.workspace.join("x").exists(), "and never executed");
}

#[tokio::test]
async fn help_lists_the_environment() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for v in ["TASK", "MODEL_PROVIDER", "RUN_TIMEOUT", "AGENTPOD_IPC_ROOT"] {
        assert!(text.contains(v), "--help lacks {v}");
    }
    let out = std::process::Command::new(BIN)
        .arg("--bogus")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn run_timeout_bounds_the_whole_run() {
    let mut pod = Pod::new();
    let llm =
        ScriptedLlm::start(Script::new().turn(Turn::text("late").with_delay_ms(20_000))).await;
    pod.model(&llm, Dialect::OpenAi, true)
        .set("RUN_TIMEOUT", "700ms");
    let started = Instant::now();
    pod.run()
        .await
        .assert_error("run timed out after 700ms (RUN_TIMEOUT)");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The calls of one turn run at once: a stand-in sidecar answers only when
/// it sees all three exec requests waiting together (a sequential loop would
/// never show more than one), and answers them in reverse order; the model
/// still gets the results in call order.
#[tokio::test]
async fn tool_calls_of_one_turn_overlap_and_return_in_call_order() {
    let mut pod = Pod::new();
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::default()
                    .with_tool_call("c1", "execute_command", json!({"command": "echo one"}))
                    .with_tool_call("c2", "execute_command", json!({"command": "echo two"}))
                    .with_tool_call("c3", "execute_command", json!({"command": "echo three"})),
            )
            .turn(Turn::text("all three ran").expect(Expect {
                tool_results: vec![
                    ("c1", "out:echo one").into(),
                    ("c2", "out:echo two").into(),
                    ("c3", "out:echo three").into(),
                ],
                ..Expect::default()
            })),
    )
    .await;
    pod.model(&llm, Dialect::OpenAi, true)
        .set("TOOLS_ENABLED", "true");
    if let Ok(n) = std::env::var("OVERLAP_TEST_PARALLEL") {
        // Lets a developer check that the test fails with sequential calls.
        pod.set("AGENTPOD_MAX_PARALLEL_TOOLS", &n);
    }

    let tools = pod.ipc.tools();
    let responder = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let pending = loop {
            let reqs = common::exec_request_ids(&tools);
            if reqs.len() == 3 {
                break reqs;
            }
            assert!(
                Instant::now() < deadline,
                "never saw 3 requests waiting at once: calls did not overlap"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        for id in pending.iter().rev() {
            let req = common::read_exec_request(&tools, id);
            let stdout = format!("out:{}", req["command"].as_str().unwrap());
            common::answer_exec(
                &tools,
                id,
                json!({"exitCode": 0, "stdout": stdout, "stderr": "", "timedOut": false}),
            );
        }
    });
    let run = pod.run().await;
    responder.await.unwrap();
    run.assert_success("all three ran");
    llm.assert_finished();
    assert_eq!(run.result().metrics.tool_calls, 3);
}
