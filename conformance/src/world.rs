//! A scenario's Pod world at run time: its directories, services (NATS,
//! scripted model, MCP servers), recorded NATS messages, free ports and
//! placeholder expansion.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentpod_test_support::{NatsServer, Script, ScriptedLlm};
use futures::StreamExt;
use serde_json::Value;

/// The Pod directories, by their Pod path, and the name of the host
/// directory under the scenario root.
pub const POD_DIRS: [(&str, &str); 7] = [
    ("/ipc", "ipc"),
    ("/workspace", "workspace"),
    ("/skills", "skills"),
    ("/tmp", "tmp"),
    ("/config", "config"),
    ("/data", "data"),
    ("/memory", "memory"),
];

/// How the processes of a scenario see paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Binaries on this machine: Pod paths are temp directories.
    Host,
    /// Images: the Pod paths are bind mounts.
    Pod,
}

/// One NATS message as recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Subject.
    pub subject: String,
    /// Body.
    pub payload: Vec<u8>,
}

/// An MCP server a scenario uses.
pub struct McpServer {
    /// Its Streamable-HTTP URL.
    pub url: String,
}

/// The suite's MCP test server (conformance/servers/mcp_server.py), one
/// for every scenario: it is stateless, and starting Python per scenario
/// costs seconds of CPU.
pub struct SharedMcp {
    helpers: Helpers,
    state: tokio::sync::Mutex<Option<Result<(tokio::process::Child, String), String>>>,
}

impl SharedMcp {
    /// Not started yet.
    pub fn new(helpers: Helpers) -> Self {
        Self {
            helpers,
            state: tokio::sync::Mutex::new(None),
        }
    }

    /// Its URL, starting it on first use.
    pub async fn url(&self) -> Result<String, String> {
        let mut state = self.state.lock().await;
        if state.is_none() {
            *state = Some(start_python_mcp(&self.helpers).await);
        }
        match state.as_ref() {
            Some(Ok((_, url))) => Ok(url.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err("MCP server not started".into()),
        }
    }

    /// Stops it, if it runs.
    pub async fn stop(&self) {
        if let Some(Ok((mut child, _))) = self.state.lock().await.take() {
            let _ = child.kill().await;
        }
    }
}

async fn start_python_mcp(h: &Helpers) -> Result<(tokio::process::Child, String), String> {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))?;
    let mut child = tokio::process::Command::new(&h.python)
        .arg(h.servers_dir.join("mcp_server.py"))
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start the MCP server ({}): {e}", h.python.display()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill().await;
            return Err(format!("MCP server did not listen on {port} within 30s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((child, format!("http://127.0.0.1:{port}/mcp")))
}

/// The services and directories of one scenario.
pub struct World {
    root: tempfile::TempDir,
    /// How processes see paths.
    pub view: View,
    /// `{run}`.
    pub run_id: String,
    /// The NATS server, if the world has one.
    pub nats: Option<NatsServer>,
    /// A client to it.
    pub nats_client: Option<async_nats::Client>,
    /// Every message on `sympozium.>` since the world started.
    pub messages: Arc<Mutex<Vec<Recorded>>>,
    /// The scripted model.
    pub llm: Option<ScriptedLlm>,
    /// MCP servers by name.
    pub mcp: BTreeMap<String, McpServer>,
    ports: Mutex<BTreeMap<String, u16>>,
    /// Values captured by `capture` steps, `{var:NAME}`.
    pub vars: Mutex<BTreeMap<String, String>>,
    /// For HTTP steps and checks.
    pub http: reqwest::Client,
}

/// Where the harness finds its helpers.
#[derive(Debug, Clone)]
pub struct Helpers {
    /// Python with the `mcp` package.
    pub python: PathBuf,
    /// `conformance/servers`.
    pub servers_dir: PathBuf,
}

impl World {
    /// Creates the directories; services are started by the `start_*`
    /// methods.
    pub fn new(view: View, run_id: &str, ipc_dirs: bool) -> Result<Self, String> {
        let root = tempfile::Builder::new()
            .prefix("agentpod-conformance-")
            .tempdir()
            .map_err(|e| format!("create temp dir: {e}"))?;
        for (_, d) in POD_DIRS {
            std::fs::create_dir_all(root.path().join(d)).map_err(|e| e.to_string())?;
        }
        for d in ["home", "logs"] {
            std::fs::create_dir_all(root.path().join(d)).map_err(|e| e.to_string())?;
        }
        if ipc_dirs {
            agentpod_sdk::ipc::IpcRoot::new(root.path().join("ipc"))
                .create_dirs()
                .map_err(|e| format!("create IPC dirs: {e}"))?;
        }
        if view == View::Pod {
            // Containers run as UID 1000, which rootless podman maps to
            // another host user: let it write the volumes.
            open_up(root.path());
        }
        agentpod_test_support::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Self {
            root,
            view,
            run_id: run_id.to_owned(),
            nats: None,
            nats_client: None,
            messages: Arc::default(),
            llm: None,
            mcp: BTreeMap::new(),
            ports: Mutex::default(),
            vars: Mutex::default(),
            http,
        })
    }

    /// The scenario's temp root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Starts `nats-server -js` and records `sympozium.>`.
    pub async fn start_nats(&mut self) -> Result<(), String> {
        let server = tokio::task::spawn_blocking(NatsServer::start)
            .await
            .map_err(|e| format!("nats-server did not start: {e}"))?;
        let client = async_nats::connect(server.url())
            .await
            .map_err(|e| format!("connect to NATS: {e}"))?;
        let mut sub = client
            .subscribe("sympozium.>")
            .await
            .map_err(|e| format!("subscribe: {e}"))?;
        // The subscription is live on the server once the flush returns.
        client.flush().await.map_err(|e| format!("flush: {e}"))?;
        let messages = self.messages.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if let Ok(mut v) = messages.lock() {
                    v.push(Recorded {
                        subject: m.subject.to_string(),
                        payload: m.payload.to_vec(),
                    });
                }
            }
        });
        self.nats = Some(server);
        self.nats_client = Some(client);
        Ok(())
    }

    /// Starts the scripted model (the script's strings are expanded first).
    pub async fn start_llm(&mut self, script: &serde_yaml::Value) -> Result<(), String> {
        let expanded = self.expand_yaml(script)?;
        let text = serde_yaml::to_string(&expanded).map_err(|e| e.to_string())?;
        let script = Script::from_yaml_str(&text).map_err(|e| format!("world.llm: {e}"))?;
        self.llm = Some(ScriptedLlm::start(script).await);
        Ok(())
    }

    /// Makes the MCP server `name` of `kind` reachable as `{mcp:<name>}`:
    /// the suite's shared server of that kind (started on first use).
    pub async fn start_mcp(
        &mut self,
        name: &str,
        kind: &str,
        shared: &SharedMcp,
    ) -> Result<(), String> {
        if kind != "python" {
            return Err(format!(
                "mcp server {name}: unknown kind {kind:?} (known: python)"
            ));
        }
        let url = shared.url().await?;
        self.mcp.insert(name.to_owned(), McpServer { url });
        Ok(())
    }

    /// A free port, the same for the same name within the scenario.
    pub fn port(&self, name: &str) -> u16 {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        *ports.entry(name.to_owned()).or_insert_with(|| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or(0)
        })
    }

    /// The host path of a Pod path (`/ipc/x` → `<root>/ipc/x`).
    pub fn host_path(&self, pod: &str) -> Result<PathBuf, String> {
        for (prefix, dir) in POD_DIRS {
            if pod == prefix {
                return Ok(self.root().join(dir));
            }
            if let Some(rest) = pod.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
                if rest.split('/').any(|c| c == "..") {
                    return Err(format!("path {pod:?} climbs out of its volume"));
                }
                return Ok(self.root().join(dir).join(rest));
            }
        }
        Err(format!(
            "path {pod:?} is not under a Pod volume (/ipc, /workspace, /skills, /tmp, /config, /data, /memory)"
        ))
    }

    /// A Pod directory as the processes see it.
    fn seen(&self, pod: &str) -> String {
        match self.view {
            View::Pod => pod.to_owned(),
            View::Host => self
                .host_path(pod)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }

    /// Expands `{placeholders}` in `s`. Unknown names are errors; text in
    /// braces that is not a placeholder name (JSON, shell) is left alone.
    ///
    /// | placeholder | value |
    /// |---|---|
    /// | `{ipc}`, `{workspace}`, `{skills}`, `{tmp}`, `{config}`, `{data}`, `{memory}` | the Pod directory as the processes see it |
    /// | `{run}` | the AgentRun name |
    /// | `{llm}` | the scripted model's OpenAI base URL (`http://127.0.0.1:P/v1`) |
    /// | `{llm_origin}` | its origin (Anthropic clients) |
    /// | `{nats}` | the NATS URL |
    /// | `{mcp:NAME}` | an MCP server's URL |
    /// | `{port:NAME}` | a free port, stable per name |
    /// | `{var:NAME}` | a value remembered by a `capture` step |
    pub fn expand(&self, s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}');
            let name = close.map(|c| &after[..c]);
            match name.filter(|n| is_placeholder(n)) {
                Some(n) => {
                    out.push_str(&self.value_of(n)?);
                    rest = &after[n.len() + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn value_of(&self, name: &str) -> Result<String, String> {
        if let Some(p) = POD_DIRS.iter().find(|(pod, _)| &pod[1..] == name) {
            return Ok(self.seen(p.0));
        }
        let need = |what: &str| format!("{{{name}}} used but the world has no {what}");
        Ok(match name {
            "run" => self.run_id.clone(),
            "llm" => self.llm.as_ref().ok_or_else(|| need("llm"))?.base_url(),
            "llm_origin" => self.llm.as_ref().ok_or_else(|| need("llm"))?.origin(),
            "nats" => self.nats.as_ref().ok_or_else(|| need("nats"))?.url(),
            _ => {
                if let Some(n) = name.strip_prefix("port:") {
                    self.port(n).to_string()
                } else if let Some(n) = name.strip_prefix("var:") {
                    self.vars
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(n)
                        .cloned()
                        .ok_or_else(|| format!("{{var:{n}}} used before a capture step set it"))?
                } else if let Some(n) = name.strip_prefix("mcp:") {
                    self.mcp
                        .get(n)
                        .map(|s| s.url.clone())
                        .ok_or_else(|| need(&format!("MCP server {n}")))?
                } else {
                    return Err(format!("unknown placeholder {{{name}}}"));
                }
            }
        })
    }

    /// Expands every string in a YAML tree.
    pub fn expand_yaml(&self, v: &serde_yaml::Value) -> Result<serde_yaml::Value, String> {
        use serde_yaml::Value as Y;
        Ok(match v {
            Y::String(s) => Y::String(self.expand(s)?),
            Y::Sequence(items) => Y::Sequence(
                items
                    .iter()
                    .map(|i| self.expand_yaml(i))
                    .collect::<Result<_, _>>()?,
            ),
            Y::Mapping(m) => {
                let mut out = serde_yaml::Mapping::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.expand_yaml(v)?);
                }
                Y::Mapping(out)
            }
            other => other.clone(),
        })
    }

    /// Expands every string in a JSON tree.
    pub fn expand_json(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => Value::String(self.expand(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.expand_json(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), self.expand_json(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Writes a world file: a YAML string as expanded text, anything else
    /// as JSON.
    pub fn write_world_file(&self, pod: &str, content: &serde_yaml::Value) -> Result<(), String> {
        let bytes = match content {
            serde_yaml::Value::String(s) => self.expand(s)?.into_bytes(),
            other => {
                let json: Value = serde_json::to_value(other).map_err(|e| e.to_string())?;
                serde_json::to_vec(&self.expand_json(&json)?).map_err(|e| e.to_string())?
            }
        };
        self.write(pod, &bytes, false)
    }

    /// Writes bytes at a Pod path (parents created), optionally through a
    /// hidden temp name and a rename.
    pub fn write(&self, pod: &str, bytes: &[u8], atomic: bool) -> Result<(), String> {
        let path = self.host_path(pod)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("create {pod} parent: {e}"))?;
            if self.view == View::Pod {
                open_up(parent);
            }
        }
        if atomic {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let tmp = path.with_file_name(format!(".conformance-{name}"));
            std::fs::write(&tmp, bytes).map_err(|e| format!("write {pod}: {e}"))?;
            std::fs::rename(&tmp, &path).map_err(|e| format!("rename into {pod}: {e}"))?;
        } else {
            std::fs::write(&path, bytes).map_err(|e| format!("write {pod}: {e}"))?;
        }
        if self.view == View::Pod {
            open_up(&path);
        }
        Ok(())
    }
}

/// `{name}` placeholders are lower-case words, optionally `kind:name`.
fn is_placeholder(n: &str) -> bool {
    !n.is_empty()
        && n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'))
}

/// Makes a path (recursively, if a directory) writable by anyone: the
/// container user is not the host user under rootless podman.
fn open_up(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if p.is_dir() { 0o777 } else { 0o666 };
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    if p.is_dir()
        && let Ok(rd) = std::fs::read_dir(p)
    {
        for e in rd.flatten() {
            open_up(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_and_paths() {
        let w = World::new(View::Pod, "run-1", false).unwrap();
        assert_eq!(w.expand("{ipc}/tools/{run}").unwrap(), "/ipc/tools/run-1");
        assert_eq!(
            w.expand(r#"{"a": 1} ${X} {}"#).unwrap(),
            r#"{"a": 1} ${X} {}"#
        );
        assert!(w.expand("{nats}").is_err());
        assert!(w.expand("{bogus}").is_err());
        let p = w.expand("{port:a}").unwrap();
        assert_eq!(w.expand("{port:a}").unwrap(), p);
        assert_eq!(w.host_path("/ipc/done").unwrap(), w.root().join("ipc/done"));
        assert!(w.host_path("/etc/passwd").is_err());
        assert!(w.host_path("/ipc/../x").is_err());
        let h = World::new(View::Host, "r", false).unwrap();
        assert_eq!(
            h.expand("{workspace}").unwrap(),
            h.root().join("workspace").display().to_string()
        );
    }
}
