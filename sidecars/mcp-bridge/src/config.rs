//! Configuration: the environment (contract §5.1) and the servers file
//! (§5.2), read in exactly one place and validated all at once.
//!
//! The servers file is upstream's `mcp-servers.yaml` plus one extension: a
//! server may give `command` (and `args`, `env`) instead of `url`, and is
//! then run as a child process speaking MCP over stdio.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentpod_sdk::envconf::{Env, EnvError};
use agentpod_sdk::wire::env::mcp_bridge as envs;
use serde::Deserialize;

/// Per-call timeout of a server that gives none (seconds), as upstream's
/// bridge.
pub const DEFAULT_TIMEOUT_SECS: u64 = 90;
/// Discovery attempts per server (upstream: 6).
pub const DEFAULT_DISCOVERY_ATTEMPTS: u32 = 6;
/// Pause between two discovery attempts of one server (upstream: 10 s).
pub const DEFAULT_DISCOVERY_RETRY_DELAY: Duration = Duration::from_secs(10);
/// Calls in flight at once (upstream: 10).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10;

/// Extension variables (not upstream's).
pub mod ext {
    /// Discovery attempts per server.
    pub const MCP_DISCOVERY_ATTEMPTS: &str = "MCP_DISCOVERY_ATTEMPTS";
    /// Pause between discovery attempts (Go duration).
    pub const MCP_DISCOVERY_RETRY_DELAY: &str = "MCP_DISCOVERY_RETRY_DELAY";
    /// Calls in flight at once.
    pub const MCP_MAX_IN_FLIGHT: &str = "MCP_MAX_IN_FLIGHT";
    /// The IPC root whose `output/result.json` ends the bridge; default the
    /// parent of `MCP_IPC_PATH`.
    pub const MCP_IPC_ROOT: &str = "MCP_IPC_ROOT";
    /// Stdio adapter: address to bind (default `0.0.0.0`).
    pub const STDIO_HOST: &str = "STDIO_HOST";
}

/// What the process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Discover, write the manifest, serve calls until `result.json`.
    Bridge,
    /// Discover, write the manifest, exit (`MCP_DISCOVER_ONLY=true`).
    DiscoverOnly,
    /// Serve one stdio MCP server over HTTP (`--stdio-adapter`).
    StdioAdapter,
}

/// Everything the bridge reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The mode.
    pub mode: Mode,
    /// `MCP_CONFIG_PATH`.
    pub config_path: PathBuf,
    /// `MCP_IPC_PATH`: where requests arrive and results go.
    pub ipc_path: PathBuf,
    /// `MCP_MANIFEST_PATH`.
    pub manifest_path: PathBuf,
    /// The IPC root (its `output/result.json` ends the bridge, its
    /// `.staging` holds temp files).
    pub ipc_root: PathBuf,
    /// `AGENT_RUN_ID`, for logs.
    pub run_id: String,
    /// Discovery attempts per server.
    pub discovery_attempts: u32,
    /// Pause between discovery attempts.
    pub discovery_retry_delay: Duration,
    /// Calls in flight at once.
    pub max_in_flight: usize,
    /// Every variable, kept so the servers file can resolve `MCP_AUTH_*`.
    pub env: HashMap<String, String>,
    /// Stdio adapter settings, in that mode.
    pub adapter: Option<AdapterConfig>,
}

/// The stdio adapter's settings (§5.5).
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    /// `STDIO_CMD`.
    pub command: String,
    /// `STDIO_ARGS`, comma split.
    pub args: Vec<String>,
    /// `STDIO_SERVER_NAME`.
    pub server_name: String,
    /// `STDIO_HOST` (extension), default `0.0.0.0`.
    pub host: String,
    /// `STDIO_PORT`, default 8080.
    pub port: u16,
    /// The child's environment: allowed parent variables plus `STDIO_ENV_*`
    /// with the prefix stripped.
    pub child_env: Vec<(String, String)>,
}

impl Config {
    /// Reads the configuration; `stdio_adapter_flag` is the command-line
    /// flag. Every invalid variable is reported at once.
    pub fn from_env(
        mut env: Env,
        vars: HashMap<String, String>,
        stdio_adapter_flag: bool,
    ) -> Result<Self, EnvError> {
        let adapter_mode = stdio_adapter_flag | env.flag(envs::MCP_STDIO_ADAPTER, false);
        let discover_only = env.flag(envs::MCP_DISCOVER_ONLY, false);
        let mode = if adapter_mode {
            Mode::StdioAdapter
        } else if discover_only {
            Mode::DiscoverOnly
        } else {
            Mode::Bridge
        };
        let config_path =
            PathBuf::from(env.string_or(envs::MCP_CONFIG_PATH, envs::DEFAULT_CONFIG_PATH));
        let ipc_path = PathBuf::from(env.string_or(envs::MCP_IPC_PATH, envs::DEFAULT_IPC_PATH));
        let manifest_path = env
            .string(envs::MCP_MANIFEST_PATH)
            .map(PathBuf::from)
            .unwrap_or_else(|| ipc_path.join("mcp-tools.json"));
        let ipc_root = env
            .string(ext::MCP_IPC_ROOT)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                ipc_path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("/ipc"))
                    .to_path_buf()
            });
        let run_id = env.string_or(envs::AGENT_RUN_ID, "");
        let discovery_attempts = env
            .parse::<u32>(ext::MCP_DISCOVERY_ATTEMPTS, "a positive integer", |n| {
                *n > 0
            })
            .unwrap_or(DEFAULT_DISCOVERY_ATTEMPTS);
        let discovery_retry_delay = env
            .duration(ext::MCP_DISCOVERY_RETRY_DELAY)
            .unwrap_or(DEFAULT_DISCOVERY_RETRY_DELAY);
        let max_in_flight = env
            .parse::<usize>(ext::MCP_MAX_IN_FLIGHT, "a positive integer", |n| *n > 0)
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        let adapter = if adapter_mode {
            Some(AdapterConfig::read(&mut env, &vars))
        } else {
            None
        };
        env.finish()?;
        Ok(Self {
            mode,
            config_path,
            ipc_path,
            manifest_path,
            ipc_root,
            run_id,
            discovery_attempts,
            discovery_retry_delay,
            max_in_flight,
            env: vars,
            adapter,
        })
    }
}

impl AdapterConfig {
    fn read(env: &mut Env, vars: &HashMap<String, String>) -> Self {
        let command = env.string(envs::STDIO_CMD).unwrap_or_default();
        if command.is_empty() {
            env.invalid(
                envs::STDIO_CMD,
                "",
                "the stdio server's program (required with the stdio adapter)",
            );
        }
        let args = env
            .raw(envs::STDIO_ARGS)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let port = env
            .parse::<u16>(envs::STDIO_PORT, "a TCP port", |_| true)
            .unwrap_or(envs::DEFAULT_STDIO_PORT);
        Self {
            command,
            args,
            server_name: env.string_or(envs::STDIO_SERVER_NAME, "stdio"),
            host: env.string_or(ext::STDIO_HOST, "0.0.0.0"),
            port,
            child_env: adapter_child_env(vars),
        }
    }
}

/// The stdio child's environment in adapter mode: parent variables whose
/// `NAME=value` starts with an allowed prefix, plus `STDIO_ENV_<K>=v` as
/// `<K>=v`.
pub fn adapter_child_env(vars: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = inherited_env(vars).into_iter().collect();
    for (k, v) in vars {
        if let Some(name) = k
            .strip_prefix(envs::STDIO_ENV_PREFIX)
            .filter(|n| !n.is_empty())
        {
            out.insert(name.to_owned(), v.clone());
        }
    }
    out.into_iter().collect()
}

/// Parent variables a stdio child may inherit (§5.5's allow list).
pub fn inherited_env(vars: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .iter()
        .filter(|(k, v)| {
            let pair = format!("{k}={v}");
            envs::STDIO_CHILD_ENV_PREFIXES
                .iter()
                .any(|p| pair.starts_with(p))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.sort();
    out
}

/// The servers file as written (§5.2 plus the stdio extension).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    servers: Option<Vec<RawServer>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawServer {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    transport: Option<String>,
    #[serde(default)]
    tools_prefix: Option<String>,
    #[serde(default)]
    timeout: Option<serde_yaml::Value>,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    tools_allow: Option<Vec<String>>,
    #[serde(default)]
    tools_deny: Option<Vec<String>>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuth {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    secret_key: Option<String>,
    #[serde(default)]
    header_name: Option<String>,
}

/// One validated server.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Unique name.
    pub name: String,
    /// Unique tool prefix: tools are exposed as `<prefix>_<tool>`.
    pub prefix: String,
    /// How to reach it.
    pub transport: TransportConfig,
    /// Per-call deadline.
    pub timeout: Duration,
    /// Headers sent on every HTTP request (auth first, then custom).
    /// Secret values: never logged (see the `Debug` impl).
    pub headers: Vec<(String, String)>,
    /// Only these tools (unprefixed), when non-empty.
    pub allow: Vec<String>,
    /// Never these tools (unprefixed).
    pub deny: Vec<String>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ServerConfig")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("transport", &self.transport)
            .field("timeout", &self.timeout)
            .field("headers", &header_names)
            .field("allow", &self.allow)
            .field("deny", &self.deny)
            .finish()
    }
}

impl ServerConfig {
    /// Whether the unprefixed tool passes allow (if any) then deny.
    pub fn permits(&self, tool: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|a| a == tool))
            && !self.deny.iter().any(|d| d == tool)
    }
}

/// How a server is reached.
#[derive(Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// Streamable HTTP at this URL.
    Http {
        /// Absolute `http(s)` URL.
        url: String,
    },
    /// A child process speaking newline-delimited JSON-RPC on stdio.
    Stdio {
        /// Program (path or name in `PATH`).
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its environment: the allow-listed parent variables plus these.
        env: Vec<(String, String)>,
    },
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http { url } => f.debug_struct("Http").field("url", url).finish(),
            // The env may carry secrets: names only.
            Self::Stdio { command, args, env } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field(
                    "env",
                    &env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

/// One problem in the servers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The server's name, or `#<index>` when it has none.
    pub server: String,
    /// The field (`url`, `toolsPrefix`, `auth.headerName`, ...).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server {}: {}: {}",
            self.server, self.field, self.message
        )
    }
}

/// Why the servers file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ServersFileError {
    /// Not readable.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not YAML of the expected shape.
    #[error("parsing {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_yaml::Error,
    },
    /// Fields with invalid values, every one of them.
    #[error("invalid {path}: {}", join(.problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem.
        problems: Vec<ConfigProblem>,
    },
}

fn join(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads the servers file; `Ok(None)` when it does not exist (the bridge
/// then has nothing to do).
pub fn load_servers(
    path: &Path,
    env: &HashMap<String, String>,
) -> Result<Option<Vec<ServerConfig>>, ServersFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ServersFileError::Read {
                path: path.into(),
                source,
            });
        }
    };
    parse_servers(&text, env).map(Some).map_err(|e| match e {
        ParseError::Yaml(source) => ServersFileError::Parse {
            path: path.into(),
            source,
        },
        ParseError::Invalid(problems) => ServersFileError::Invalid {
            path: path.into(),
            problems,
        },
    })
}

/// Why a servers document was refused.
#[derive(Debug)]
pub enum ParseError {
    /// Not YAML of the expected shape.
    Yaml(serde_yaml::Error),
    /// Every invalid field.
    Invalid(Vec<ConfigProblem>),
}

/// Parses and validates a servers document; `env` resolves auth secrets.
pub fn parse_servers(
    text: &str,
    env: &HashMap<String, String>,
) -> Result<Vec<ServerConfig>, ParseError> {
    let raw: RawFile = if text.trim().is_empty() {
        RawFile::default()
    } else {
        serde_yaml::from_str(text).map_err(ParseError::Yaml)?
    };
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut names = HashSet::new();
    let mut prefixes = HashSet::new();
    for (i, s) in raw.servers.unwrap_or_default().into_iter().enumerate() {
        let name = s
            .name
            .clone()
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        let label = if name.is_empty() {
            format!("#{i}")
        } else {
            format!("{name:?}")
        };
        let mut bad = |field: &str, message: String| {
            problems.push(ConfigProblem {
                server: label.clone(),
                field: field.to_owned(),
                message,
            })
        };
        if name.is_empty() {
            bad("name", "is required".into());
        } else if !names.insert(name.clone()) {
            bad("name", "is used by another server".into());
        }
        let prefix = s
            .tools_prefix
            .clone()
            .map(|p| p.trim().to_owned())
            .unwrap_or_default();
        if prefix.is_empty() {
            bad("toolsPrefix", "is required".into());
        } else if prefix.contains(['/', '\\']) || prefix.chars().any(char::is_whitespace) {
            bad(
                "toolsPrefix",
                format!("{prefix:?} must not contain slashes or spaces"),
            );
        } else if !prefixes.insert(prefix.clone()) {
            bad(
                "toolsPrefix",
                format!("{prefix:?} is used by another server"),
            );
        }
        let url = s.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
        let command = s
            .command
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let transport_name = s
            .transport
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let transport = match (url, command) {
            (Some(_), Some(_)) => {
                bad("command", "give either url or command, not both".into());
                None
            }
            (None, None) => {
                bad("url", "is required (or command, for a stdio server)".into());
                None
            }
            (Some(url), None) => {
                if !matches!(transport_name, None | Some("streamable-http")) {
                    bad(
                        "transport",
                        format!(
                            "{:?} is not supported with url: use streamable-http",
                            transport_name.unwrap_or_default()
                        ),
                    );
                }
                if s.args.is_some() || s.env.is_some() {
                    bad(
                        "args",
                        "args and env apply only to a stdio server (command)".into(),
                    );
                }
                match reqwest::Url::parse(url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                        Some(TransportConfig::Http {
                            url: url.to_owned(),
                        })
                    }
                    _ => {
                        bad("url", format!("{url:?} is not an absolute http(s) URL"));
                        None
                    }
                }
            }
            (None, Some(command)) => {
                if !matches!(transport_name, None | Some("stdio")) {
                    bad(
                        "transport",
                        format!(
                            "{:?} is not supported with command: use stdio",
                            transport_name.unwrap_or_default()
                        ),
                    );
                }
                let mut child_env = inherited_env(env);
                child_env.extend(s.env.clone().unwrap_or_default());
                Some(TransportConfig::Stdio {
                    command: command.to_owned(),
                    args: s.args.clone().unwrap_or_default(),
                    env: child_env,
                })
            }
        };
        let timeout = match &s.timeout {
            None | Some(serde_yaml::Value::Null) => Some(Duration::from_secs(DEFAULT_TIMEOUT_SECS)),
            Some(v) => match v.as_u64().filter(|n| *n > 0) {
                Some(n) => Some(Duration::from_secs(n)),
                None => match v.as_f64().filter(|f| *f > 0.0 && f.is_finite()) {
                    Some(f) => Some(Duration::from_secs_f64(f)),
                    None => {
                        bad("timeout", "must be a positive number of seconds".into());
                        None
                    }
                },
            },
        };
        let mut headers = Vec::new();
        if let Some(auth) = &s.auth {
            let kind = auth.kind.as_deref().map(str::trim).unwrap_or("bearer");
            let var = auth
                .secret_key
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| envs::auth_var(&name));
            // Upstream reads the token from the variable named by secretKey;
            // MCP_AUTH_<NAME> is the fallback when that one is unset.
            let token = env
                .get(&var)
                .or_else(|| env.get(&envs::auth_var(&name)))
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty());
            let header_name = auth
                .header_name
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty());
            match kind {
                "bearer" => {}
                "header" if header_name.is_none() => bad(
                    "auth.headerName",
                    "is required when auth.type is header".into(),
                ),
                "header" => {}
                other => bad("auth.type", format!("{other:?} is not bearer or header")),
            }
            match (kind, token, header_name) {
                ("bearer", Some(t), _) => {
                    headers.push(("Authorization".to_owned(), format!("Bearer {t}")))
                }
                ("header", Some(t), Some(h)) => headers.push((h.to_owned(), t)),
                (_, None, _) => tracing::warn!(
                    server = %name,
                    variable = %var,
                    "auth is configured but its variable is unset or empty; calling without credentials"
                ),
                _ => {}
            }
        }
        for (k, v) in s.headers.clone().unwrap_or_default() {
            let name_ok = reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_ok();
            let value_ok = reqwest::header::HeaderValue::from_str(&v).is_ok();
            if !name_ok || !value_ok {
                bad(&format!("headers.{k}"), "is not a valid HTTP header".into());
            } else {
                headers.push((k, v));
            }
        }
        let allow = s.tools_allow.clone().unwrap_or_default();
        let deny = s.tools_deny.clone().unwrap_or_default();
        if let (Some(transport), Some(timeout)) = (transport, timeout) {
            out.push(ServerConfig {
                name,
                prefix,
                transport,
                timeout,
                headers,
                allow,
                deny,
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ParseError::Invalid(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_upstream_shape() {
        let yaml = r#"
servers:
- name: github
  url: http://127.0.0.1:9/mcp
  toolsPrefix: gh
  timeout: 30
  auth: {type: bearer, secretKey: MCP_AUTH_GITHUB}
  headers: {X-Team: blue}
  toolsAllow: [list_issues]
  toolsDeny: [delete_repo]
- name: local
  command: node
  args: [server.js]
  env: {FOO: bar}
  toolsPrefix: loc
"#;
        let s = parse_servers(
            yaml,
            &env(&[
                ("MCP_AUTH_GITHUB", "s3cret"),
                ("PATH", "/bin"),
                ("SECRET", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].timeout, Duration::from_secs(30));
        assert_eq!(
            s[0].headers,
            vec![
                ("Authorization".into(), "Bearer s3cret".into()),
                ("X-Team".into(), "blue".into())
            ]
        );
        assert!(s[0].permits("list_issues") && !s[0].permits("other"));
        assert_eq!(s[1].timeout, Duration::from_secs(DEFAULT_TIMEOUT_SECS));
        let TransportConfig::Stdio { env, .. } = &s[1].transport else {
            panic!("stdio")
        };
        assert_eq!(
            env,
            &vec![("PATH".into(), "/bin".into()), ("FOO".into(), "bar".into())]
        );
        assert!(
            !format!("{:?}", s[0]).contains("s3cret"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn header_auth_and_fallback_variable() {
        let yaml = "servers:\n- {name: my-api, url: 'https://x.example/mcp', toolsPrefix: api, auth: {type: header, headerName: X-Key}}\n";
        let s = parse_servers(yaml, &env(&[("MCP_AUTH_MY_API", "k")])).unwrap();
        assert_eq!(s[0].headers, vec![("X-Key".into(), "k".into())]);
    }

    #[test]
    fn reports_every_problem_with_server_and_field() {
        let yaml = r#"
servers:
- name: a
  url: ftp://x
  toolsPrefix: p
- name: a
  url: http://127.0.0.1/
  toolsPrefix: p
  timeout: -3
- url: http://127.0.0.1/
  toolsPrefix: q
  transport: sse
- name: c
  toolsPrefix: r
  auth: {type: header}
- name: d
  url: http://127.0.0.1/
  command: x
  toolsPrefix: s
"#;
        let ParseError::Invalid(p) = parse_servers(yaml, &env(&[("MCP_AUTH_C", "t")])).unwrap_err()
        else {
            panic!()
        };
        let msgs: Vec<String> = p.iter().map(ToString::to_string).collect();
        let has = |s: &str| assert!(msgs.iter().any(|m| m.contains(s)), "{s} not in {msgs:#?}");
        has(r#"server "a": url: "ftp://x" is not an absolute http(s) URL"#);
        has(r#"server "a": name: is used by another server"#);
        has(r#"server "a": toolsPrefix: "p" is used by another server"#);
        has(r#"server "a": timeout: must be a positive number"#);
        has("server #2: name: is required");
        has(r#"server #2: transport: "sse" is not supported"#);
        has(r#"server "c": url: is required"#);
        has(r#"server "c": auth.headerName: is required"#);
        has(r#"server "d": command: give either url or command"#);
    }

    #[test]
    fn empty_and_missing() {
        assert!(parse_servers("", &HashMap::new()).unwrap().is_empty());
        assert!(
            parse_servers("servers: []", &HashMap::new())
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            parse_servers("servers: 3", &HashMap::new()),
            Err(ParseError::Yaml(_))
        ));
        assert!(
            load_servers(Path::new("/nonexistent/mcp.yaml"), &HashMap::new())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn env_config() {
        let vars = env(&[
            ("MCP_IPC_PATH", "/x/tools"),
            ("MCP_DISCOVERY_ATTEMPTS", "0"),
            ("MCP_DISCOVER_ONLY", "maybe"),
        ]);
        let err = Config::from_env(Env::from_map(vars.clone()), vars, false).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        let vars = env(&[
            ("MCP_IPC_PATH", "/x/tools"),
            ("STDIO_CMD", "node"),
            ("STDIO_ARGS", "a, b,,c"),
            ("STDIO_ENV_TOKEN", "t"),
            ("PATH", "/bin"),
            ("OTHER", "o"),
        ]);
        let c = Config::from_env(Env::from_map(vars.clone()), vars, true).unwrap();
        assert_eq!(c.mode, Mode::StdioAdapter);
        assert_eq!(c.ipc_root, PathBuf::from("/x"));
        assert_eq!(c.manifest_path, PathBuf::from("/x/tools/mcp-tools.json"));
        let a = c.adapter.unwrap();
        assert_eq!(a.args, ["a", "b", "c"]);
        assert_eq!(
            a.child_env,
            vec![("PATH".into(), "/bin".into()), ("TOKEN".into(), "t".into())]
        );
    }
}
