//! MCP tools end to end: the real `agent-runner` and the real `mcp-bridge`
//! against the Python MCP server of the bridge's tests (installed by
//! `scripts/setup-mcp.sh`), with the scripted LLM.

use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::wire::{AgentResult, ResultStatus};
use agentpod_test_support::llm::{Expect, Script, ScriptedLlm, Turn};
use agentpod_test_support::{KillOnDrop, eventually, free_port, workspace_root};
use serde_json::json;

mod common;
const LIMIT: Duration = Duration::from_secs(30);

/// The Python MCP server over Streamable HTTP.
async fn py_server() -> (KillOnDrop, u16) {
    let python = workspace_root().join(".venv/bin/python");
    assert!(python.exists(), "run `bash scripts/setup-mcp.sh`");
    let script = workspace_root().join("sidecars/mcp-bridge/tests/servers/py_server.py");
    let port = free_port();
    let child = Command::new(python)
        .arg(script)
        .args(["http", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(LIMIT, "MCP server port", || async move {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .ok()
            .map(|_| ())
    })
    .await;
    (KillOnDrop(child), port)
}

/// A Pod: temp directories and the runner's variables.
struct Pod {
    dir: tempfile::TempDir,
    ipc: IpcRoot,
    vars: Vec<(String, String)>,
}

impl Pod {
    fn new(llm: &ScriptedLlm) -> Self {
        let (dir, ipc) = common::pod_dir();
        for d in ["workspace", "skills", "tmp"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let p = |d: &str| dir.path().join(d).display().to_string();
        let vars = [
            ("AGENTPOD_IPC_ROOT", ipc.path().display().to_string()),
            ("AGENTPOD_WORKSPACE_ROOT", p("workspace")),
            ("AGENTPOD_SKILLS_ROOT", p("skills")),
            ("AGENTPOD_TMP_ROOT", p("tmp")),
            ("AGENTPOD_SETTLE", "0s".into()),
            ("API_KEY", "k".into()),
            ("TASK", "Use the MCP tools.".into()),
            ("TOOLS_ENABLED", "true".into()),
            ("MODEL_PROVIDER", "openai".into()),
            ("MODEL_BASE_URL", llm.base_url()),
            ("AGENTPOD_MCP_MANIFEST_WAIT", "20s".into()),
            ("LLM_MAX_RETRIES", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self { dir, ipc, vars }
    }

    fn bridge(&self, servers_yaml: &str) -> KillOnDrop {
        let cfg = self.dir.path().join("mcp-servers.yaml");
        std::fs::write(&cfg, format!("servers:\n{servers_yaml}")).unwrap();
        let child = Command::new(common::sidecar("mcp-bridge"))
            .env("MCP_CONFIG_PATH", &cfg)
            .env("MCP_IPC_PATH", self.ipc.tools())
            .env("MCP_DISCOVERY_ATTEMPTS", "2")
            .env("MCP_DISCOVERY_RETRY_DELAY", "500ms")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        KillOnDrop(child)
    }

    async fn run(&self) -> (AgentResult, String) {
        let (result, out) = common::run(&self.vars, &self.ipc).await;
        (result, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn mcp_files(&self) -> Vec<String> {
        std::fs::read_dir(self.ipc.tools())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("mcp-request-") || n.starts_with("mcp-result-"))
            .collect()
    }
}

#[tokio::test]
async fn mcp_tools_through_the_real_bridge() {
    let (_server, port) = py_server().await;
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::text("")
                    .with_tool_call("c1", "py_echo", json!({"text": "hi"}))
                    .with_tool_call("c2", "py_add", json!({"a": 2, "b": 3}))
                    .with_tool_call("c3", "py_fail", json!({"message": "nope"}))
                    .with_tool_call("c4", "py_hang", json!({}))
                    .with_tool_call("c5", "py_image", json!({}))
                    .expect(Expect {
                        tools_include: vec!["py_echo".into(), "py_add".into()],
                        system_contains: Some("## Specialized MCP Tools".into()),
                        ..Expect::default()
                    }),
            )
            .turn(Turn::text("all done").expect(Expect {
                tool_results: vec![
                    ("c1", "echo: hi").into(),
                    ("c2", "5").into(),
                    ("c3", "MCP Error: ").into(),
                    ("c3", "nope").into(),
                    ("c4", "MCP Error: ").into(),
                    ("c5", "[image: image/png").into(),
                ],
                ..Expect::default()
            })),
    )
    .await;
    let pod = Pod::new(&llm);
    let _bridge = pod.bridge(&format!(
        "- name: pyhttp\n  url: http://127.0.0.1:{port}/mcp\n  toolsPrefix: py\n  timeout: 1\n"
    ));
    let (result, _stderr) = pod.run().await;
    assert_eq!(result.status, ResultStatus::Success, "{:?}", llm.failures());
    assert_eq!(result.response, "all done");
    llm.assert_finished();
    // Advertised with the server suffix and an object schema.
    let body = llm.requests()[0].body.clone();
    let echo = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "py_echo")
        .unwrap()
        .clone();
    let desc = echo["function"]["description"].as_str().unwrap();
    assert!(desc.ends_with(" [MCP: pyhttp]"), "{desc}");
    assert_eq!(echo["function"]["parameters"]["type"], "object");
    // Requests and results are gone.
    assert!(pod.mcp_files().is_empty(), "{:?}", pod.mcp_files());
}

#[tokio::test]
async fn mcp_call_without_a_bridge_times_out() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text("").with_tool_call("c1", "gh_list", json!({"q": "x"})))
            .turn(Turn::text("gave up").expect(Expect {
                tool_results: vec![(
                    "c1",
                    "Error: timed out after 11s waiting for MCP tool gh_list on server github",
                )
                    .into()],
                ..Expect::default()
            })),
    )
    .await;
    let pod = Pod::new(&llm);
    // A manifest but no bridge: the call waits the tool's timeout + 10 s.
    std::fs::write(
        pod.ipc.mcp_manifest(),
        json!({"tools":[{"name":"gh_list","description":"List.","server":"github","timeout":1,
            "inputSchema":{"type":"object","$defs":{"Q":{"type":"string"}},"properties":{"q":{"$ref":"#/$defs/Q"}}}}]})
        .to_string(),
    )
    .unwrap();
    let (result, stderr) = pod.run().await;
    assert_eq!(result.status, ResultStatus::Success, "{stderr}");
    llm.assert_finished();
    let body = llm.requests()[0].body.clone();
    let params = &body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "gh_list")
        .unwrap()["function"]["parameters"];
    assert_eq!(
        *params,
        json!({"type":"object","properties":{"q":{"type":"string"}}}),
        "local refs are inlined before the model sees the schema"
    );
    // The unanswered request was withdrawn.
    assert!(pod.mcp_files().is_empty(), "{:?}", pod.mcp_files());
}
