//! What the runner's integration test binaries share: the binary, the
//! sidecars they start, a Pod's env and one run of the real runner.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::wire::AgentResult;
use agentpod_test_support::llm::ScriptedLlm;
use agentpod_test_support::workspace_root;
use serde_json::{Value, json};

/// The runner under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_agent-runner");

/// A sibling sidecar binary (`mcp-bridge`, `memory-server`), built once per
/// test binary (a no-op when fresh): `CARGO_BIN_EXE_` covers only this
/// crate's binaries.
pub fn sidecar(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "mcp-bridge", "-p", "memory-server"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo build")
            .success();
        assert!(ok, "building the sidecars failed");
    });
    PathBuf::from(BIN).parent().unwrap().join(name)
}

/// A temp folder for one Pod's volumes, with its `/ipc` (subdirectories
/// created) at `<dir>/ipc`.
pub fn pod_dir() -> (tempfile::TempDir, IpcRoot) {
    let dir = tempfile::tempdir().unwrap();
    let ipc = IpcRoot::new(dir.path().join("ipc"));
    ipc.create_dirs().unwrap();
    (dir, ipc)
}

/// The env of a Pod whose roots live under `dir`, talking to `llm`, with no
/// mcp-bridge (so no manifest wait) and no LLM retries.
pub fn vars(dir: &Path, ipc: &IpcRoot, llm: &ScriptedLlm, task: &str) -> Vec<(String, String)> {
    for d in ["workspace", "skills", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let p = |d: &str| dir.join(d).display().to_string();
    [
        ("AGENTPOD_IPC_ROOT", ipc.path().display().to_string()),
        ("AGENTPOD_WORKSPACE_ROOT", p("workspace")),
        ("AGENTPOD_SKILLS_ROOT", p("skills")),
        ("AGENTPOD_TMP_ROOT", p("tmp")),
        ("AGENTPOD_SETTLE", "0s".into()),
        ("AGENTPOD_MCP_MANIFEST_WAIT", "0s".into()),
        ("API_KEY", "k".into()),
        ("TASK", task.into()),
        ("MODEL_PROVIDER", "openai".into()),
        ("MODEL_BASE_URL", llm.base_url()),
        ("LLM_MAX_RETRIES", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Runs the runner with exactly `vars` (90 s at most) and returns its
/// `result.json` and the process output.
pub async fn run(vars: &[(String, String)], ipc: &IpcRoot) -> (AgentResult, Output) {
    let mut c = tokio::process::Command::new(BIN);
    c.env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), c.output())
        .await
        .expect("agent-runner did not finish")
        .unwrap();
    let result = serde_json::from_slice(
        &std::fs::read(ipc.result())
            .unwrap_or_else(|_| panic!("no result: {}", String::from_utf8_lossy(&out.stderr))),
    )
    .unwrap();
    (result, out)
}

/// The ids of the exec requests waiting in `tools`
/// (`exec-request-<id>.json`), sorted; none when `tools` cannot be read.
pub fn exec_request_ids(tools: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(tools) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("exec-request-")?
                .strip_suffix(".json")
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids
}

/// The exec request `id` in `tools`, parsed.
pub fn read_exec_request(tools: &Path, id: &str) -> Value {
    let path = tools.join(format!("exec-request-{id}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Answers exec request `id` with `result` (its `id` set) the way
/// upstream's tool-executor writes it: `exec-result-<id>.json.tmp`, then a
/// rename.
pub fn answer_exec(tools: &Path, id: &str, mut result: Value) {
    result["id"] = json!(id);
    let done = tools.join(format!("exec-result-{id}.json"));
    let tmp = tools.join(format!("exec-result-{id}.json.tmp"));
    std::fs::write(&tmp, result.to_string()).unwrap();
    std::fs::rename(&tmp, done).unwrap();
}

/// Waits (blocking, up to `within`) for an exec request in `tools`; its id
/// and body.
pub fn wait_exec_request(tools: &Path, within: Duration) -> (String, Value) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(id) = exec_request_ids(tools).into_iter().next() {
            let req = read_exec_request(tools, &id);
            return (id, req);
        }
        assert!(
            Instant::now() < deadline,
            "no exec request within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
