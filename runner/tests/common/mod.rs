//! What the runner's integration test binaries share: the binary, the
//! sidecars they start, a Pod's env and one run of the real runner.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::wire::AgentResult;
use agentpod_test_support::llm::ScriptedLlm;
use agentpod_test_support::workspace_root;

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
