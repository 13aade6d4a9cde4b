//! The scenario language: one YAML file per behaviour, under
//! `scenarios/<component>/<name>.yaml`. See `conformance/README.md` for the
//! reference; the types here are that reference in code.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// A component of the Pod: the containers an implementation provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// `agent-runner`, the `agent` container.
    Runner,
    /// `ipc-bridge`.
    IpcBridge,
    /// `mcp-bridge`.
    McpBridge,
    /// `tool-executor`, a skill sidecar.
    ToolExecutor,
    /// `memory-server`.
    MemoryServer,
}

impl Component {
    /// Every component, in report order.
    pub const ALL: [Component; 5] = [
        Component::Runner,
        Component::IpcBridge,
        Component::McpBridge,
        Component::ToolExecutor,
        Component::MemoryServer,
    ];

    /// The scenario-file and CLI name (`ipc-bridge`).
    pub fn name(self) -> &'static str {
        match self {
            Component::Runner => "runner",
            Component::IpcBridge => "ipc-bridge",
            Component::McpBridge => "mcp-bridge",
            Component::ToolExecutor => "tool-executor",
            Component::MemoryServer => "memory-server",
        }
    }

    /// The binary (and image) name: `agent-runner` for the runner.
    pub fn binary(self) -> &'static str {
        match self {
            Component::Runner => "agent-runner",
            other => other.name(),
        }
    }

    /// Parses a CLI / file name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s || c.binary() == s)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A duration written Go-style: `500ms`, `2s`, `1m`, `1.5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses `500ms`, `2s`, `1m`, `1.5s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (num, unit) = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map(|i| s.split_at(i))
            .ok_or_else(|| format!("duration {s:?} has no unit (ms, s, m)"))?;
        let n: f64 = num
            .parse()
            .map_err(|_| format!("duration {s:?}: bad number"))?;
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            _ => return Err(format!("duration {s:?}: unit must be ms, s or m")),
        };
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a scenario needs beyond the components it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    /// Every component it runs must be an image (run through podman).
    Image,
    /// The Python MCP SDK (`.venv/bin/python -c "import mcp"`).
    McpPython,
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// `<component>/<file stem>`, filled from the path.
    #[serde(skip)]
    pub name: String,
    /// The file it came from.
    #[serde(skip)]
    pub path: PathBuf,
    /// The contract section it checks, e.g. `1.9` or `3.3`.
    pub section: String,
    /// One sentence: the behaviour.
    pub description: String,
    /// Free labels; `extension` marks behaviour agentpod adds to the
    /// upstream contract (an upstream implementation is expected to fail).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Extra requirements (skipped with the reason when unmet).
    #[serde(default)]
    pub requires: Vec<Requirement>,
    /// Hard limit for the whole scenario (default 60s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// The Pod world set up before any step.
    #[serde(default)]
    pub world: WorldSpec,
    /// The processes (containers) the steps start, by id.
    #[serde(default)]
    pub processes: BTreeMap<String, ProcessSpec>,
    /// What happens, in order.
    pub steps: Vec<Step>,
    /// Checks after the steps (each polled up to its `within`, default 5s).
    #[serde(default)]
    pub expect: Vec<TimedCheck>,
}

impl Scenario {
    /// The component group (first path segment of the name).
    pub fn group(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }

    /// The components the scenario starts.
    pub fn components(&self) -> Vec<Component> {
        let mut v: Vec<Component> = self.processes.values().map(|p| p.component).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Whether it checks behaviour beyond the upstream contract.
    pub fn is_extension(&self) -> bool {
        self.tags.iter().any(|t| t == "extension")
    }
}

/// The Pod world: services and files that exist before the first step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSpec {
    /// Start a `nats-server -js` (`{nats}`) and record every message on
    /// `sympozium.>` from the start.
    #[serde(default)]
    pub nats: bool,
    /// A scripted model conversation (the `scripted-llm` script format of
    /// `agentpod-test-support`); `{llm}` / `{llm_origin}` point at it.
    #[serde(default)]
    pub llm: Option<serde_yaml::Value>,
    /// MCP servers to start, by name (`{mcp:<name>}` is the URL). The
    /// value is the kind: `python` (conformance/servers/mcp_server.py).
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, String>,
    /// Files to create, by Pod path (`/ipc/...`, `/workspace/...`,
    /// `/skills/...`, `/config/...`). A string is written as text (after
    /// placeholder expansion), anything else as JSON.
    #[serde(default)]
    pub files: BTreeMap<String, serde_yaml::Value>,
    /// Symbolic links to create, by Pod path; the target is used verbatim
    /// (`/etc` points outside every volume, for binaries and images alike).
    #[serde(default)]
    pub symlinks: BTreeMap<String, String>,
    /// Create the IPC subdirectories (`input`, `output`, ...) up front, as
    /// the ipc-bridge would (default true).
    #[serde(default = "yes")]
    pub ipc_dirs: bool,
    /// The AgentRun name, `{run}` (default `conformance-run`).
    #[serde(default = "default_run")]
    pub run_id: String,
}

impl Default for WorldSpec {
    fn default() -> Self {
        Self {
            nats: false,
            llm: None,
            mcp_servers: BTreeMap::new(),
            files: BTreeMap::new(),
            symlinks: BTreeMap::new(),
            ipc_dirs: true,
            run_id: default_run(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_run() -> String {
    "conformance-run".into()
}

/// A process: one container of the Pod.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Which implementation runs.
    pub component: Component,
    /// Environment (values expanded), on top of the harness's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Arguments (expanded).
    #[serde(default)]
    pub args: Vec<String>,
    /// `null` (default): stdin is `/dev/null`; `open`: a pipe that is never
    /// written or closed (a process that reads stdin hangs).
    #[serde(default)]
    pub stdin: StdinMode,
}

/// What a process gets on stdin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StdinMode {
    /// `/dev/null`.
    #[default]
    Null,
    /// An open pipe nobody writes to.
    Open,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start the process with this id.
    Start(String),
    /// Poll a check until it holds (default timeout 30s).
    Wait(TimedCheck),
    /// Write a file (Pod path).
    Write(WriteSpec),
    /// Send a signal (`TERM`, `INT`, `KILL`) to a process.
    Signal {
        /// Process id.
        process: String,
        /// Signal name.
        signal: String,
    },
    /// Publish a JSON message on a NATS subject through JetStream.
    Publish {
        /// Subject.
        subject: String,
        /// Body (placeholders expanded in strings).
        json: Value,
    },
    /// An HTTP request and its expected answer.
    Http(HttpSpec),
    /// Remember a value from a recorded NATS message as `{var:NAME}`:
    /// the first message on `subject`, at JSON pointer `pointer` (strings
    /// verbatim, other values as JSON). The control plane's half of a
    /// round trip (a reply that must carry the request's id).
    Capture {
        /// Variable name.
        name: String,
        /// Subject (wildcards allowed).
        subject: String,
        /// JSON pointer into the message body.
        pointer: String,
    },
    /// Do nothing for a while (only to let a wrong behaviour happen before
    /// checking that it did not).
    Sleep(Dur),
}

/// A file to write.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteSpec {
    /// Pod path.
    pub path: String,
    /// Text content (expanded).
    #[serde(default)]
    pub text: Option<String>,
    /// JSON content.
    #[serde(default)]
    pub json: Option<Value>,
    /// Write to a hidden temp name in the same directory, then rename.
    #[serde(default)]
    pub atomic: bool,
}

/// An HTTP request step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// `GET` (default), `POST`, `DELETE`...
    #[serde(default)]
    pub method: Option<String>,
    /// URL (expanded).
    pub url: String,
    /// JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// Raw body (expanded).
    #[serde(default)]
    pub body: Option<String>,
    /// Request headers (values expanded).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Expected status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Matchers on the JSON answer.
    #[serde(default)]
    pub json_matches: Option<Matchers>,
    /// A matcher on the answer text.
    #[serde(default)]
    pub text: Option<Value>,
}

/// JSON pointer → matcher (see [`crate::matcher`]).
pub type Matchers = BTreeMap<String, Value>;

/// A check with its polling bound.
#[derive(Debug, Clone, Deserialize)]
pub struct TimedCheck {
    /// The check.
    #[serde(flatten)]
    pub check: Check,
    /// How long it may take to hold (wait steps: 30s; expect: 5s).
    #[serde(default)]
    pub within: Option<Dur>,
}

/// Something that holds, or not, about the Pod world.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The process exited (with `code`, within `max` of its start).
    Exit {
        /// Process id.
        process: String,
        /// Expected exit code (a signal N counts as 128+N).
        #[serde(default)]
        code: Option<i32>,
        /// Longest allowed time from start to exit.
        #[serde(default)]
        max: Option<Dur>,
    },
    /// The process is still running.
    Running {
        /// Process id.
        process: String,
    },
    /// A file (Pod path) exists, or not, with this content.
    File {
        /// Pod path.
        path: String,
        /// Default true.
        #[serde(default)]
        exists: Option<bool>,
        /// Matchers on its JSON.
        #[serde(default)]
        json: Option<Matchers>,
        /// A matcher on its text.
        #[serde(default)]
        text: Option<Value>,
    },
    /// Files in a directory whose names start with `prefix`: how many, and
    /// matchers every one of them must satisfy.
    Dir {
        /// Pod path of the directory.
        path: String,
        /// Name prefix (default: any).
        #[serde(default)]
        prefix: String,
        /// Exact count.
        #[serde(default)]
        count: Option<usize>,
        /// Matchers on each file's JSON.
        #[serde(default)]
        json: Option<Matchers>,
    },
    /// The stdout result marker, judged as the controller judges it (last
    /// 500 lines; last start marker; first end after it). Matchers apply to
    /// `{"count","outcome","response","error","token_usage","payload"}`.
    Marker {
        /// Process id.
        process: String,
        /// Matchers.
        json: Matchers,
    },
    /// A matcher on a process's stdout or stderr text.
    Output {
        /// Process id.
        process: String,
        /// `stdout` or `stderr`.
        stream: String,
        /// Matcher on the text.
        text: Value,
    },
    /// Messages recorded on a subject (`*` and `>` wildcards allowed).
    Nats {
        /// Subject.
        subject: String,
        /// Exact count.
        #[serde(default)]
        count: Option<usize>,
        /// At least this many.
        #[serde(default)]
        at_least: Option<usize>,
        /// Matchers every message body (JSON) must satisfy.
        #[serde(default)]
        json: Option<Matchers>,
    },
    /// The JetStream stream's info (`config.*`) matches.
    Stream {
        /// Stream name.
        name: String,
        /// Matchers on `{"config": {...}}` (async-nats field names).
        json: Matchers,
    },
    /// At least this many consumers on a stream.
    Consumers {
        /// Stream name.
        stream: String,
        /// Minimum count.
        at_least: usize,
    },
    /// The scripted model: requests seen, script finished, offered tools.
    Llm {
        /// Every turn used and every request matched its checks.
        #[serde(default)]
        finished: bool,
        /// Exact number of requests.
        #[serde(default)]
        requests: Option<u64>,
        /// At least this many requests.
        #[serde(default)]
        at_least: Option<u64>,
        /// Tool names that no request offered.
        #[serde(default)]
        tools_exclude: Vec<String>,
        /// Matchers every request body must satisfy.
        #[serde(default)]
        body: Option<Matchers>,
    },
    /// An HTTP GET answers this status (readiness).
    HttpStatus {
        /// URL (expanded).
        url: String,
        /// Status (default 200).
        #[serde(default)]
        status: Option<u16>,
    },
}

/// Problems loading scenarios.
#[derive(Debug)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Loads every `*.yaml` under `dir` (two levels: `<component>/<name>.yaml`),
/// sorted by name. Every broken file is reported at once.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, LoadError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let groups = std::fs::read_dir(dir)
        .map_err(|e| LoadError(format!("read scenarios dir {}: {e}", dir.display())))?;
    for group in groups.flatten() {
        if !group.path().is_dir() {
            continue;
        }
        let gname = group.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(group.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            if p.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            let name = format!("{gname}/{stem}");
            match load_file(&p, &name) {
                Ok(s) => out.push(s),
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        return Err(LoadError(errors.join("\n")));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Loads and validates one file.
pub fn load_file(path: &Path, name: &str) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Through JSON: serde_yaml wants `!Tag`s for enums, JSON takes the
    // single-key maps the scenario language uses.
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let json = serde_json::to_value(yaml).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut s: Scenario =
        serde_json::from_value(json).map_err(|e| format!("{}: {e}", path.display()))?;
    s.name = name.to_owned();
    s.path = path.to_owned();
    validate(&s).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(s)
}

/// Cross-references: every process a step or check names exists.
fn validate(s: &Scenario) -> Result<(), String> {
    let known = |p: &str| {
        if s.processes.contains_key(p) {
            Ok(())
        } else {
            Err(format!("unknown process {p:?}"))
        }
    };
    let check = |c: &Check| match c {
        Check::Exit { process, .. }
        | Check::Running { process }
        | Check::Marker { process, .. }
        | Check::Output { process, .. } => known(process),
        Check::Llm { .. } if s.world.llm.is_none() => Err("llm check without world.llm".into()),
        Check::Nats { .. } | Check::Stream { .. } | Check::Consumers { .. } if !s.world.nats => {
            Err("NATS check without world.nats".into())
        }
        _ => Ok(()),
    };
    for step in &s.steps {
        match step {
            Step::Start(p) | Step::Signal { process: p, .. } => known(p)?,
            Step::Wait(c) => check(&c.check)?,
            Step::Publish { .. } if !s.world.nats => {
                return Err("publish without world.nats".into());
            }
            _ => {}
        }
    }
    for c in &s.expect {
        check(&c.check)?;
    }
    if s.section.trim().is_empty() {
        return Err("section is empty".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert_eq!(Dur::parse("2s").unwrap().0, Duration::from_secs(2));
        assert_eq!(Dur::parse("1m").unwrap().0, Duration::from_secs(60));
        assert!(Dur::parse("2").is_err());
        assert!(Dur::parse("2h").is_err());
    }

    #[test]
    fn components_parse_by_either_name() {
        assert_eq!(Component::parse("agent-runner"), Some(Component::Runner));
        assert_eq!(Component::parse("runner"), Some(Component::Runner));
        assert_eq!(Component::parse("ipc-bridge"), Some(Component::IpcBridge));
        assert_eq!(Component::parse("nope"), None);
    }
}
