//! Configuration: upstream's flags (defaults from env) plus our own
//! `IPC_BRIDGE_*` knobs, read in one place.
//!
//! Upstream is a Go binary, so its flags are single-dash (`-ipc-path /ipc`).
//! Both spellings are accepted here: [`normalize_args`] turns a single-dash
//! long flag into the double-dash form before clap sees it.

use std::path::PathBuf;
use std::time::Duration;

use agentpod_sdk::envconf::{Env, EnvError};
use agentpod_sdk::ipc::DEFAULT_IPC_ROOT;
use agentpod_sdk::wire::env::ipc_bridge as names;
use agentpod_sdk::wire::stream_config::DEFAULT_EVENT_BUS_URL;
use clap::Parser;
use thiserror::Error;

/// Spool directory, default `<ipc>/.bridge-spool`.
pub const SPOOL_DIR: &str = "IPC_BRIDGE_SPOOL_DIR";
/// Spool size bound in bytes.
pub const SPOOL_MAX_BYTES: &str = "IPC_BRIDGE_SPOOL_MAX_BYTES";
/// Spool bound in events.
pub const SPOOL_MAX_EVENTS: &str = "IPC_BRIDGE_SPOOL_MAX_EVENTS";
/// Publishes awaiting their ack at once.
pub const MAX_IN_FLIGHT: &str = "IPC_BRIDGE_MAX_IN_FLIGHT";
/// How long one publish waits for its ack.
pub const ACK_TIMEOUT: &str = "IPC_BRIDGE_ACK_TIMEOUT";
/// Wait after `result.json` before draining and exiting.
pub const EXIT_GRACE: &str = "IPC_BRIDGE_EXIT_GRACE";
/// Longest wait for pending events at exit (after the grace, or on SIGTERM).
pub const DRAIN_TIMEOUT: &str = "IPC_BRIDGE_DRAIN_TIMEOUT";
/// Server-side inactivity threshold of our durable consumers.
pub const CONSUMER_INACTIVE_THRESHOLD: &str = "IPC_BRIDGE_CONSUMER_INACTIVE_THRESHOLD";
/// Rescan interval of the `/ipc` watchers.
pub const RESCAN_INTERVAL: &str = "IPC_BRIDGE_RESCAN_INTERVAL";
/// `json` for JSON logs.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// Name of the spool directory under the IPC root.
pub const DEFAULT_SPOOL_DIR_NAME: &str = ".bridge-spool";
/// Default spool bound: 16 MiB (a quarter of the 64 MiB `/ipc` volume).
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Default spool bound in events.
pub const DEFAULT_SPOOL_MAX_EVENTS: usize = 100_000;
/// Default publishes in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default ack timeout.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default exit grace (upstream sleeps 2 s).
pub const DEFAULT_EXIT_GRACE: Duration = Duration::from_secs(2);
/// Default drain timeout.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Default consumer inactivity threshold: long enough for any run, short
/// enough that consumers of finished runs are cleaned up by the server.
pub const DEFAULT_CONSUMER_INACTIVE_THRESHOLD: Duration = Duration::from_secs(3600);
/// Default watcher rescan interval.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// The long flags, as upstream spells them (single dash in Go).
const LONG_FLAGS: [&str; 7] = [
    "ipc-path",
    "agent-run-id",
    "instance",
    "namespace",
    "event-bus-url",
    "help",
    "probe",
];

/// Command line. Every flag defaults to its environment variable, as
/// upstream's do; an explicit flag wins.
#[derive(Debug, Default, Parser)]
#[command(
    name = "ipc-bridge",
    version,
    about = "Bridges the Pod's /ipc files to NATS JetStream and back (Sympozium-compatible).",
    long_about = None,
    after_help = "Flags may also be written Go-style with one dash (-agent-run-id run-1).\n\
Other environment: AGENT_DISPLAY_NAME, GATE_SUPPRESS_COMPLETION, ALLOWED_OUTBOUND_CHANNELS,\n\
IPC_BRIDGE_SPOOL_DIR, IPC_BRIDGE_SPOOL_MAX_BYTES, IPC_BRIDGE_SPOOL_MAX_EVENTS,\n\
IPC_BRIDGE_MAX_IN_FLIGHT, IPC_BRIDGE_ACK_TIMEOUT, IPC_BRIDGE_EXIT_GRACE, IPC_BRIDGE_DRAIN_TIMEOUT,\n\
IPC_BRIDGE_CONSUMER_INACTIVE_THRESHOLD, IPC_BRIDGE_RESCAN_INTERVAL, LOG_FORMAT, RUST_LOG\n\
(see the crate README)."
)]
pub struct Flags {
    /// IPC volume root [env: none; default /ipc]
    #[arg(long = "ipc-path", value_name = "DIR")]
    pub ipc_path: Option<PathBuf>,
    /// AgentRun name, required [env: AGENT_RUN_ID]
    #[arg(long = "agent-run-id", value_name = "NAME")]
    pub agent_run_id: Option<String>,
    /// Agent (instance) name [env: INSTANCE_NAME]
    #[arg(long = "instance", value_name = "NAME")]
    pub instance: Option<String>,
    /// Namespace [env: AGENT_NAMESPACE]
    #[arg(long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
    /// NATS URL [env: EVENT_BUS_URL; default nats://nats.sympozium-system.svc:4222]
    #[arg(long = "event-bus-url", value_name = "URL")]
    pub event_bus_url: Option<String>,
    /// Check, do not run: exit 0 when the bridge on this IPC path is ready
    /// (every watcher in place; <ipc>/.ipc-bridge-ready exists), 1 when not.
    /// For a startupProbe; AGENT_RUN_ID is not needed.
    #[arg(long = "probe")]
    pub probe: bool,
}

/// The bridge's whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// IPC volume root.
    pub ipc_path: PathBuf,
    /// AgentRun name (metadata `agentRunID`, per-run subjects).
    pub agent_run_id: String,
    /// Agent name (metadata `instanceName`).
    pub instance: String,
    /// Namespace (metadata `namespace`, left out when empty).
    pub namespace: String,
    /// NATS URL.
    pub event_bus_url: String,
    /// `AGENT_DISPLAY_NAME`: the one `username` outbound messages may keep
    /// (falls back to [`Config::instance`] when empty).
    pub display_name: String,
    /// `GATE_SUPPRESS_COMPLETION`: do not publish completion or stream chunks.
    pub gate_suppress_completion: bool,
    /// `ALLOWED_OUTBOUND_CHANNELS`: `None` when unset (no check); a set
    /// list (maybe empty) when present.
    pub allowed_outbound_channels: Option<Vec<String>>,
    /// Where events wait while NATS is unreachable.
    pub spool_dir: PathBuf,
    /// Spool bound in bytes.
    pub spool_max_bytes: u64,
    /// Spool bound in events.
    pub spool_max_events: usize,
    /// Publishes awaiting their ack at once.
    pub max_in_flight: usize,
    /// How long one publish waits for its ack before the connection is
    /// considered broken.
    pub ack_timeout: Duration,
    /// Wait after `result.json` before draining and exiting.
    pub exit_grace: Duration,
    /// Longest wait for pending events at exit.
    pub drain_timeout: Duration,
    /// Inactivity threshold of our durable consumers.
    pub consumer_inactive_threshold: Duration,
    /// Rescan interval of the `/ipc` watchers.
    pub rescan_interval: Duration,
    /// JSON logs.
    pub json_logs: bool,
    /// `--probe`: check readiness instead of running.
    pub probe: bool,
}

/// Configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// Bad command line, or `--help` / `--version` (clap renders both).
    #[error("{0}")]
    Flags(#[from] clap::Error),
    /// Invalid or missing variables, all of them.
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// Rewrites Go-style single-dash long flags (`-ipc-path`, `-ipc-path=/x`)
/// into `--ipc-path`. The program name and everything after `--` are kept.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest_literal = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest_literal {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest_literal = true;
            out.push(a);
            continue;
        }
        let is_go_long = a
            .strip_prefix('-')
            .filter(|r| !r.starts_with('-'))
            .map(|r| r.split('=').next().unwrap_or(r))
            .is_some_and(|name| LONG_FLAGS.contains(&name));
        out.push(if is_go_long { format!("-{a}") } else { a });
    }
    out
}

impl Config {
    /// Reads the process's arguments and environment.
    pub fn from_process() -> Result<Self, ConfigError> {
        Self::from_sources(std::env::args(), Env::from_process())
    }

    /// Builds a config from arguments (first is the program name) and an
    /// environment snapshot. Every invalid variable is reported at once.
    pub fn from_sources(
        args: impl IntoIterator<Item = String>,
        env: Env,
    ) -> Result<Self, ConfigError> {
        let flags = Flags::try_parse_from(normalize_args(args))?;
        Ok(Self::from_flags(flags, env)?)
    }

    /// Merges parsed flags with the environment.
    pub fn from_flags(flags: Flags, mut env: Env) -> Result<Self, EnvError> {
        let ipc_path = flags
            .ipc_path
            .unwrap_or_else(|| PathBuf::from(DEFAULT_IPC_ROOT));
        let agent_run_id = flags
            .agent_run_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| env.string(names::AGENT_RUN_ID))
            .unwrap_or_default();
        if agent_run_id.is_empty() && !flags.probe {
            env.invalid(
                names::AGENT_RUN_ID,
                "",
                "the AgentRun name (set AGENT_RUN_ID or pass -agent-run-id); it is required",
            );
        } else if agent_run_id
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
        {
            let v = agent_run_id.clone();
            env.invalid(
                names::AGENT_RUN_ID,
                &v,
                "a name without '.', '*', '>' or whitespace (it becomes a NATS subject token)",
            );
        }
        let instance = flags
            .instance
            .or_else(|| env.string(names::INSTANCE_NAME))
            .unwrap_or_default();
        let namespace = flags
            .namespace
            .or_else(|| env.string(names::AGENT_NAMESPACE))
            .unwrap_or_default();
        let event_bus_url = flags
            .event_bus_url
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| env.string_or(names::EVENT_BUS_URL, DEFAULT_EVENT_BUS_URL));
        let display_name = env.string(names::AGENT_DISPLAY_NAME).unwrap_or_default();
        let gate_suppress_completion = env.flag(names::GATE_SUPPRESS_COMPLETION, false);
        // Presence, not content, switches the allowlist on (upstream rule).
        let allowed_outbound_channels = env.raw(names::ALLOWED_OUTBOUND_CHANNELS).map(|v| {
            v.split(',')
                .map(|c| c.trim().to_lowercase())
                .filter(|c| !c.is_empty())
                .collect()
        });
        let spool_dir = env
            .string(SPOOL_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(|| ipc_path.join(DEFAULT_SPOOL_DIR_NAME));
        let spool_max_bytes = env
            .parse::<u64>(SPOOL_MAX_BYTES, "a positive number of bytes", |n| *n > 0)
            .unwrap_or(DEFAULT_SPOOL_MAX_BYTES);
        let spool_max_events = env
            .parse::<usize>(SPOOL_MAX_EVENTS, "a positive integer", |n| *n > 0)
            .unwrap_or(DEFAULT_SPOOL_MAX_EVENTS);
        let max_in_flight = env
            .parse::<usize>(MAX_IN_FLIGHT, "an integer from 1 to 4096", |n| {
                (1..=4096).contains(n)
            })
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        let mut dur = |name: &str, default: Duration, min: Duration| match env.duration(name) {
            Some(d) if d < min => {
                env.invalid(name, &format!("{d:?}"), format!("at least {min:?}"));
                default
            }
            Some(d) => d,
            None => default,
        };
        let ms = Duration::from_millis;
        let ack_timeout = dur(ACK_TIMEOUT, DEFAULT_ACK_TIMEOUT, ms(10));
        let exit_grace = dur(EXIT_GRACE, DEFAULT_EXIT_GRACE, Duration::ZERO);
        let drain_timeout = dur(DRAIN_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, Duration::ZERO);
        let consumer_inactive_threshold = dur(
            CONSUMER_INACTIVE_THRESHOLD,
            DEFAULT_CONSUMER_INACTIVE_THRESHOLD,
            ms(100),
        );
        let rescan_interval = dur(RESCAN_INTERVAL, DEFAULT_RESCAN_INTERVAL, ms(1));
        let json_logs = match env.string(LOG_FORMAT).as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                let v = other.to_owned();
                env.invalid(LOG_FORMAT, &v, "json or text");
                false
            }
        };
        env.finish()?;
        Ok(Self {
            ipc_path,
            agent_run_id,
            instance,
            namespace,
            event_bus_url,
            display_name,
            gate_suppress_completion,
            allowed_outbound_channels,
            spool_dir,
            spool_max_bytes,
            spool_max_events,
            max_in_flight,
            ack_timeout,
            exit_grace,
            drain_timeout,
            consumer_inactive_threshold,
            rescan_interval,
            json_logs,
            probe: flags.probe,
        })
    }

    /// The `username` outbound messages may keep.
    pub fn allowed_username(&self) -> &str {
        if self.display_name.is_empty() {
            &self.instance
        } else {
            &self.display_name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        std::iter::once("ipc-bridge")
            .chain(a.iter().copied())
            .map(String::from)
            .collect()
    }

    #[test]
    fn go_style_and_double_dash_flags() {
        let env = Env::from_map([("AGENT_RUN_ID", "from-env"), ("INSTANCE_NAME", "inst")]);
        let c = Config::from_sources(
            args(&[
                "-ipc-path",
                "/x",
                "-agent-run-id=run-1",
                "--namespace",
                "ns",
            ]),
            env,
        )
        .unwrap();
        assert_eq!(c.ipc_path, PathBuf::from("/x"));
        assert_eq!(c.agent_run_id, "run-1");
        assert_eq!(c.instance, "inst");
        assert_eq!(c.namespace, "ns");
        assert_eq!(c.event_bus_url, DEFAULT_EVENT_BUS_URL);
        assert_eq!(c.spool_dir, PathBuf::from("/x/.bridge-spool"));
        assert_eq!(c.allowed_outbound_channels, None);
        assert!(!c.gate_suppress_completion);
    }

    #[test]
    fn missing_run_id_and_bad_values_are_reported_together() {
        let env = Env::from_map([
            ("GATE_SUPPRESS_COMPLETION", "maybe"),
            ("IPC_BRIDGE_EXIT_GRACE", "soon"),
            ("LOG_FORMAT", "xml"),
        ]);
        let err = Config::from_sources(args(&[]), env).unwrap_err();
        let msg = err.to_string();
        for want in [
            "AGENT_RUN_ID",
            "GATE_SUPPRESS_COMPLETION",
            "IPC_BRIDGE_EXIT_GRACE",
            "LOG_FORMAT",
        ] {
            assert!(msg.contains(want), "{want} missing in {msg}");
        }
    }

    #[test]
    fn allowlist_presence_switches_it_on() {
        let base = [("AGENT_RUN_ID", "r")];
        let c = Config::from_sources(
            args(&[]),
            Env::from_map(base.into_iter().chain([("ALLOWED_OUTBOUND_CHANNELS", "")])),
        )
        .unwrap();
        assert_eq!(c.allowed_outbound_channels, Some(vec![]));
        let c = Config::from_sources(
            args(&[]),
            Env::from_map(
                base.into_iter()
                    .chain([("ALLOWED_OUTBOUND_CHANNELS", " Slack, telegram ,")]),
            ),
        )
        .unwrap();
        assert_eq!(
            c.allowed_outbound_channels,
            Some(vec!["slack".to_owned(), "telegram".to_owned()])
        );
    }

    #[test]
    fn run_id_must_be_a_subject_token() {
        let err =
            Config::from_sources(args(&["-agent-run-id", "a.b"]), Env::default()).unwrap_err();
        assert!(err.to_string().contains("AGENT_RUN_ID"), "{err}");
    }

    #[test]
    fn normalize_keeps_values_and_unknowns() {
        assert_eq!(
            normalize_args(args(&["-instance", "-x", "-h", "--", "-namespace"])),
            args(&["--instance", "-x", "-h", "--", "-namespace"])
        );
        assert_eq!(normalize_args(args(&["-help"])), args(&["--help"]));
    }

    #[test]
    fn username_falls_back_to_instance() {
        let env = Env::from_map([("AGENT_RUN_ID", "r"), ("INSTANCE_NAME", "inst")]);
        let mut c = Config::from_sources(args(&[]), env).unwrap();
        assert_eq!(c.allowed_username(), "inst");
        c.display_name = "Helper".into();
        assert_eq!(c.allowed_username(), "Helper");
    }
}
