//! The `/ipc` directory layout (contract §2).

use std::path::{Path, PathBuf};

/// Where the shared IPC volume is mounted in a Pod.
pub const DEFAULT_IPC_ROOT: &str = "/ipc";

/// The subdirectories the ipc-bridge creates at start (contract §2), in the
/// order upstream creates them.
pub const SUBDIRS: [&str; 8] = [
    "input",
    "output",
    "spawn",
    "tools",
    "messages",
    "schedules",
    "prompts",
    "context",
];

/// Name of the ipc-bridge's readiness marker under the IPC root (ours, not
/// upstream's): written once every watcher is in place, so a file created
/// after it exists is seen. Hidden, so no watcher delivers it.
pub const BRIDGE_READY_FILE: &str = ".ipc-bridge-ready";

/// A configurable IPC root. Every path a component uses under `/ipc` comes
/// from here, so tests and the local runner can point it at a temp dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcRoot {
    root: PathBuf,
}

impl Default for IpcRoot {
    fn default() -> Self {
        Self::new(DEFAULT_IPC_ROOT)
    }
}

impl IpcRoot {
    /// An IPC root at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<root>/<sub>` for one of [`SUBDIRS`] or `control`.
    pub fn dir(&self, sub: &str) -> PathBuf {
        self.root.join(sub)
    }

    /// `<root>/input`.
    pub fn input(&self) -> PathBuf {
        self.dir("input")
    }
    /// `<root>/output`.
    pub fn output(&self) -> PathBuf {
        self.dir("output")
    }
    /// `<root>/spawn`.
    pub fn spawn(&self) -> PathBuf {
        self.dir("spawn")
    }
    /// `<root>/tools`.
    pub fn tools(&self) -> PathBuf {
        self.dir("tools")
    }
    /// `<root>/messages`.
    pub fn messages(&self) -> PathBuf {
        self.dir("messages")
    }
    /// `<root>/schedules`.
    pub fn schedules(&self) -> PathBuf {
        self.dir("schedules")
    }
    /// `<root>/prompts`.
    pub fn prompts(&self) -> PathBuf {
        self.dir("prompts")
    }
    /// `<root>/context`.
    pub fn context(&self) -> PathBuf {
        self.dir("context")
    }
    /// `<root>/control`.
    pub fn control(&self) -> PathBuf {
        self.dir("control")
    }

    /// `<root>/control/skip`: the preRun hook's skip marker.
    pub fn skip_marker(&self) -> PathBuf {
        self.control().join("skip")
    }
    /// `<root>/input/task.json`.
    pub fn task_input(&self) -> PathBuf {
        self.input().join("task.json")
    }
    /// `<root>/output/result.json`.
    pub fn result(&self) -> PathBuf {
        self.output().join("result.json")
    }
    /// `<root>/output/status.json`.
    pub fn status(&self) -> PathBuf {
        self.output().join("status.json")
    }
    /// `<root>/output/stream-<n>.json`.
    pub fn stream_chunk(&self, n: u64) -> PathBuf {
        self.output().join(format!("stream-{n}.json"))
    }
    /// `<root>/tools/exec-request-<id>.json`.
    pub fn exec_request(&self, id: &str) -> PathBuf {
        self.tools().join(format!("exec-request-{id}.json"))
    }
    /// `<root>/tools/exec-result-<id>.json`.
    pub fn exec_result(&self, id: &str) -> PathBuf {
        self.tools().join(format!("exec-result-{id}.json"))
    }
    /// `<root>/tools/.claim-<id>`: a tool-executor's claim directory.
    pub fn exec_claim(&self, id: &str) -> PathBuf {
        self.tools().join(format!(".claim-{id}"))
    }
    /// `<root>/tools/mcp-tools.json`: the MCP manifest.
    pub fn mcp_manifest(&self) -> PathBuf {
        self.tools().join("mcp-tools.json")
    }
    /// `<root>/tools/mcp-request-<id>.json`.
    pub fn mcp_request(&self, id: &str) -> PathBuf {
        self.tools().join(format!("mcp-request-{id}.json"))
    }
    /// `<root>/tools/mcp-result-<id>.json`.
    pub fn mcp_result(&self, id: &str) -> PathBuf {
        self.tools().join(format!("mcp-result-{id}.json"))
    }
    /// `<root>/spawn/request-<id>.json`: a delegation request.
    pub fn spawn_request(&self, id: &str) -> PathBuf {
        self.spawn().join(format!("request-{id}.json"))
    }
    /// `<root>/spawn/result-<id>.json`: a delegation result.
    pub fn spawn_result(&self, id: &str) -> PathBuf {
        self.spawn().join(format!("result-{id}.json"))
    }
    /// `<root>/spawn/subagent-request-<batch>.json`.
    pub fn subagent_request(&self, batch: &str) -> PathBuf {
        self.spawn().join(format!("subagent-request-{batch}.json"))
    }
    /// `<root>/spawn/subagent-result-<batch>.json`.
    pub fn subagent_result(&self, batch: &str) -> PathBuf {
        self.spawn().join(format!("subagent-result-{batch}.json"))
    }
    /// `<root>/messages/send-<id>.json`.
    pub fn outbound_message(&self, id: &str) -> PathBuf {
        self.messages().join(format!("send-{id}.json"))
    }
    /// `<root>/schedules/schedule-<id>.json`.
    pub fn schedule(&self, id: &str) -> PathBuf {
        self.schedules().join(format!("schedule-{id}.json"))
    }
    /// `<root>/prompts/request-<id>.json`.
    pub fn prompt_request(&self, id: &str) -> PathBuf {
        self.prompts().join(format!("request-{id}.json"))
    }
    /// `<root>/prompts/result-<id>.json`.
    pub fn prompt_result(&self, id: &str) -> PathBuf {
        self.prompts().join(format!("result-{id}.json"))
    }
    /// `<root>/context/clear-<id>.json`.
    pub fn context_clear(&self, id: &str) -> PathBuf {
        self.context().join(format!("clear-{id}.json"))
    }
    /// `<root>/input/followup-<id>.json`.
    pub fn followup(&self, id: &str) -> PathBuf {
        self.input().join(format!("followup-{id}.json"))
    }
    /// `<root>/run-result.json`: written by an orchestrator sidecar.
    pub fn run_result(&self) -> PathBuf {
        self.root.join("run-result.json")
    }
    /// `<root>/.ipc-bridge-ready`: see [`BRIDGE_READY_FILE`].
    pub fn bridge_ready(&self) -> PathBuf {
        self.root.join(BRIDGE_READY_FILE)
    }
    /// `<root>/done`: the end-of-run sentinel.
    pub fn done(&self) -> PathBuf {
        self.root.join("done")
    }

    /// Creates the root and every directory of [`SUBDIRS`] (mode 0750, as
    /// the upstream bridge does). Existing directories are left as they are.
    pub fn create_dirs(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true).mode(0o750);
        b.create(&self.root)?;
        for sub in SUBDIRS {
            b.create(self.dir(sub))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_the_contract() {
        let r = IpcRoot::default();
        assert_eq!(r.result(), Path::new("/ipc/output/result.json"));
        assert_eq!(
            r.exec_request("42"),
            Path::new("/ipc/tools/exec-request-42.json")
        );
        assert_eq!(r.exec_claim("42"), Path::new("/ipc/tools/.claim-42"));
        assert_eq!(
            r.subagent_result("b"),
            Path::new("/ipc/spawn/subagent-result-b.json")
        );
        assert_eq!(r.skip_marker(), Path::new("/ipc/control/skip"));
        assert_eq!(r.done(), Path::new("/ipc/done"));
    }

    #[test]
    fn create_dirs_makes_every_subdir() {
        let t = tempfile::tempdir().unwrap();
        let r = IpcRoot::new(t.path().join("ipc"));
        r.create_dirs().unwrap();
        r.create_dirs().unwrap();
        for s in SUBDIRS {
            assert!(r.dir(s).is_dir(), "{s} missing");
        }
    }
}
