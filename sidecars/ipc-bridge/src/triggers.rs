//! File → event: which `/ipc` files are published on which subject
//! (contract §3.3), the envelope they get, and their `Nats-Msg-Id`.
//!
//! One watcher per directory (inotify plus rescan, from the SDK) decodes a
//! file once it is whole JSON; a forwarder task per directory turns it into
//! an [`OutEvent`] and hands it to the publisher in arrival order, so files
//! of one kind keep their order end to end.
//!
//! Deliberate differences from upstream: names ending in `.tmp` are skipped
//! in every directory (upstream skips them only in `prompts/` and
//! `context/`, and would publish a half-written `request-1.json.tmp`), and a
//! file is read only once it parses, never half-written.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentpod_sdk::ipc::{IpcRoot, NameFilter, Watch, WatchError, WatchEvent, validate_id};
use agentpod_sdk::wire::{BridgeMetadata, Event, Topic};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::outbound::OutboundPolicy;
use crate::trace::traceparent_of;

/// One event ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// NATS subject.
    pub subject: String,
    /// `Nats-Msg-Id`: the same file always gets the same id.
    pub msg_id: String,
    /// W3C `traceparent` from the file's `_meta`.
    pub traceparent: Option<String>,
    /// The envelope, JSON.
    pub payload: Bytes,
    /// The file, relative to the IPC root (for logs).
    pub source: String,
}

/// What a file means to the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Publish this.
    Publish(OutEvent),
    /// `output/result.json`: publish (unless gate mode) and start the exit.
    Completed(Option<OutEvent>),
}

/// The kinds of file the bridge publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `output/result.json`.
    RunCompleted,
    /// `output/status.json`.
    Status,
    /// `output/stream-*`.
    Stream,
    /// `spawn/subagent-request-*`.
    SubagentRequest,
    /// `spawn/request-*`.
    SpawnRequest,
    /// `tools/exec-request*` (more than 12 characters).
    ExecRequest,
    /// `messages/*`.
    Message,
    /// `schedules/*`.
    Schedule,
    /// `prompts/request-*`.
    PromptRequest,
    /// `prompts/result-*`.
    PromptResult,
    /// `context/clear-*`.
    ContextClear,
}

/// The watched directories, in the order upstream registers them.
pub const WATCHED_DIRS: [&str; 7] = [
    "output",
    "spawn",
    "tools",
    "messages",
    "schedules",
    "prompts",
    "context",
];

/// The route of file `name` in directory `dir`, if the bridge publishes it.
pub fn classify(dir: &str, name: &str) -> Option<Route> {
    if name.starts_with('.') || name.ends_with(".tmp") {
        return None;
    }
    match dir {
        "output" if name == "result.json" => Some(Route::RunCompleted),
        "output" if name == "status.json" => Some(Route::Status),
        "output" if name.starts_with("stream-") => Some(Route::Stream),
        "spawn" if name.starts_with("subagent-request-") => Some(Route::SubagentRequest),
        "spawn" if name.starts_with("request-") => Some(Route::SpawnRequest),
        "tools" if name.len() > 12 && name.starts_with("exec-request") => Some(Route::ExecRequest),
        "messages" => Some(Route::Message),
        "schedules" => Some(Route::Schedule),
        "prompts" if name.starts_with("request-") => Some(Route::PromptRequest),
        "prompts" if name.starts_with("result-") => Some(Route::PromptResult),
        "context" if name.starts_with("clear-") => Some(Route::ContextClear),
        _ => None,
    }
}

/// What identifies one version of a file: inode, mtime, size, content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Device and inode.
    pub dev_ino: (u64, u64),
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Size in bytes.
    pub size: u64,
}

impl FileStamp {
    /// Stats `path`; `None` if it vanished.
    pub fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev_ino: (m.dev(), m.ino()),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            size: m.len(),
        })
    }
}

/// 64-bit FNV-1a: a stable hash (unlike std's, it never changes between
/// Rust releases, so a restarted bridge derives the same ids).
fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The `Nats-Msg-Id` of one version of a file: readable run and path, then a
/// hash of run, path, inode, mtime, size and content. A retry of the same
/// file dedupes in JetStream; a new file at the same path gets a new id.
pub fn msg_id(run: &str, rel_path: &str, stamp: Option<FileStamp>, content: &[u8]) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325;
    h = fnv1a(h, run.as_bytes());
    h = fnv1a(h, &[0]);
    h = fnv1a(h, rel_path.as_bytes());
    if let Some(s) = stamp {
        h = fnv1a(h, &s.dev_ino.0.to_le_bytes());
        h = fnv1a(h, &s.dev_ino.1.to_le_bytes());
        h = fnv1a(h, &s.mtime_ns.to_le_bytes());
        h = fnv1a(h, &s.size.to_le_bytes());
    }
    h = fnv1a(h, content);
    format!("{run}/{rel_path}@{h:016x}")
}

/// Why a file is not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Gate mode suppresses stream chunks.
    #[error("suppressed in gate mode")]
    Gated,
    /// Outbound policy refused the message.
    #[error(transparent)]
    Policy(#[from] crate::outbound::Refused),
    /// A prompt file whose `requestId` cannot be used.
    #[error("unusable requestId: {0}")]
    BadRequestId(String),
    /// The file's bytes cannot become an envelope.
    #[error("cannot build the envelope: {0}")]
    Envelope(String),
}

/// Turns files into triggers. Pure apart from the clock.
#[derive(Debug, Clone)]
pub struct Router {
    /// AgentRun name.
    pub run: String,
    /// Metadata of every envelope.
    pub metadata: BTreeMap<String, String>,
    /// `GATE_SUPPRESS_COMPLETION`.
    pub gate: bool,
    /// Outbound message policy.
    pub policy: OutboundPolicy,
}

#[derive(Deserialize)]
struct RequestId {
    #[serde(rename = "requestId", default)]
    request_id: String,
}

impl Router {
    /// Builds the router for a run.
    pub fn new(meta: &BridgeMetadata, gate: bool, policy: OutboundPolicy) -> Self {
        Self {
            run: meta.agent_run_id.clone(),
            metadata: meta.to_map(),
            gate,
            policy,
        }
    }

    /// The trigger for a decoded file.
    pub fn route(
        &self,
        route: Route,
        rel_path: &str,
        bytes: &[u8],
        stamp: Option<FileStamp>,
    ) -> Result<Trigger, Skip> {
        let run = self.run.as_str();
        let topic = match route {
            Route::RunCompleted => Topic::RunCompleted,
            Route::Status => Topic::StatusUpdate,
            Route::Stream => Topic::StreamChunk,
            Route::SubagentRequest => Topic::SubagentRequest,
            Route::SpawnRequest => Topic::SpawnRequest,
            Route::ExecRequest => Topic::ToolExecRequest,
            Route::Message => Topic::ChannelMessageSend,
            Route::Schedule => Topic::ScheduleUpsert,
            Route::PromptRequest => Topic::PromptRequest(run),
            Route::PromptResult => Topic::PromptResult(run),
            Route::ContextClear => Topic::ContextClear(run),
        };
        if route == Route::RunCompleted && self.gate {
            return Ok(Trigger::Completed(None));
        }
        if route == Route::Stream && self.gate {
            return Err(Skip::Gated);
        }
        let sanitized;
        let data: &[u8] = match route {
            Route::Message => {
                sanitized = self.policy.apply(bytes)?;
                &sanitized
            }
            Route::PromptRequest | Route::PromptResult => {
                let id: RequestId =
                    serde_json::from_slice(bytes).map_err(|e| Skip::BadRequestId(e.to_string()))?;
                validate_id(&id.request_id).map_err(|e| Skip::BadRequestId(e.to_string()))?;
                bytes
            }
            _ => bytes,
        };
        let event = Event::from_raw(&topic, self.metadata.clone(), data)
            .map_err(|e| Skip::Envelope(e.to_string()))?;
        let out = OutEvent {
            subject: topic.subject(),
            msg_id: msg_id(run, rel_path, stamp, bytes),
            traceparent: traceparent_of(bytes),
            payload: Bytes::from(event.to_bytes()),
            source: rel_path.to_owned(),
        };
        Ok(if route == Route::RunCompleted {
            Trigger::Completed(Some(out))
        } else {
            Trigger::Publish(out)
        })
    }
}

/// A decoded file: valid JSON, with its stamp taken right after the read.
#[derive(Debug)]
struct Decoded {
    stamp: Option<FileStamp>,
}

/// The longest wait for one watcher to be in place before the bridge
/// declares itself ready anyway (the rescan still finds later files).
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts one watcher per directory and one forwarder per watcher, sending
/// triggers into `tx`. Files already present are delivered first. Returns
/// once every watcher is in place (its inotify watch set and its first scan
/// done), or after [`ATTACH_TIMEOUT`] for one that is not, with a warning.
pub async fn spawn_watchers(
    root: &IpcRoot,
    router: Arc<Router>,
    rescan: Duration,
    tx: mpsc::Sender<Trigger>,
    tasks: &mut JoinSet<()>,
) -> Result<(), WatchError> {
    for dir in WATCHED_DIRS {
        let filter = NameFilter::custom(move |n| classify(dir, n).is_some());
        let mut watch: Watch<Decoded> = agentpod_sdk::ipc::WatchOptions::new(root.dir(dir))
            .filter(filter)
            .rescan_interval(rescan)
            .capacity(64)
            .spawn(|path: &Path, bytes: &[u8]| {
                serde_json::from_slice::<serde::de::IgnoredAny>(bytes)?;
                Ok::<_, serde_json::Error>(Decoded {
                    stamp: FileStamp::of(path),
                })
            })?;
        let deadline = tokio::time::Instant::now() + ATTACH_TIMEOUT;
        while !watch.stats().attached {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(dir = %watch.dir().display(), "watcher not in place after {ATTACH_TIMEOUT:?}; going on");
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let router = router.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            while let Some(ev) = watch.recv().await {
                let d = match ev {
                    WatchEvent::File(d) => d,
                    WatchEvent::Invalid(bad) => {
                        tracing::warn!(file = %bad.path.display(), error = %bad.error, len = bad.len, "file is not valid JSON; not published");
                        continue;
                    }
                };
                let name = d
                    .path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let Some(route) = classify(dir, name) else {
                    continue;
                };
                let rel = format!("{dir}/{name}");
                match router.route(route, &rel, &d.bytes, d.value.stamp) {
                    Ok(t) => {
                        if tx.send(t).await.is_err() {
                            return;
                        }
                    }
                    Err(Skip::Gated) => {
                        tracing::debug!(file = %rel, "stream chunk suppressed in gate mode")
                    }
                    Err(e) => tracing::warn!(file = %rel, error = %e, "file not published"),
                }
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(gate: bool) -> Router {
        Router::new(
            &BridgeMetadata {
                agent_run_id: "run-1".into(),
                instance_name: "helper".into(),
                namespace: String::new(),
            },
            gate,
            OutboundPolicy::default(),
        )
    }

    #[test]
    fn classification_follows_the_contract() {
        let cases = [
            ("output", "result.json", Some(Route::RunCompleted)),
            ("output", "result.json.tmp", None),
            ("output", "status.json", Some(Route::Status)),
            ("output", "stream-0.json", Some(Route::Stream)),
            ("output", "other.json", None),
            (
                "spawn",
                "subagent-request-b.json",
                Some(Route::SubagentRequest),
            ),
            ("spawn", "request-1.json", Some(Route::SpawnRequest)),
            ("spawn", "result-1.json", None),
            ("tools", "exec-request-1.json", Some(Route::ExecRequest)),
            ("tools", "exec-request", None),
            ("tools", "exec-result-1.json", None),
            ("tools", "mcp-request-1.json", None),
            ("messages", "anything", Some(Route::Message)),
            ("messages", ".send-1.json", None),
            ("schedules", "s.json", Some(Route::Schedule)),
            ("prompts", "request-a.json", Some(Route::PromptRequest)),
            ("prompts", "result-a.json", Some(Route::PromptResult)),
            ("prompts", "request-a.json.tmp", None),
            ("context", "clear-a.json", Some(Route::ContextClear)),
            ("input", "task.json", None),
        ];
        for (dir, name, want) in cases {
            assert_eq!(classify(dir, name), want, "{dir}/{name}");
        }
    }

    #[test]
    fn msg_id_is_stable_and_distinguishes_versions() {
        let s = FileStamp {
            dev_ino: (1, 2),
            mtime_ns: 3,
            size: 2,
        };
        let a = msg_id("r", "messages/a", Some(s), b"{}");
        assert_eq!(a, msg_id("r", "messages/a", Some(s), b"{}"));
        assert!(a.starts_with("r/messages/a@"));
        let s2 = FileStamp { mtime_ns: 4, ..s };
        assert_ne!(a, msg_id("r", "messages/a", Some(s2), b"{}"));
        assert_ne!(a, msg_id("r", "messages/a", Some(s), b"[]"));
        assert_ne!(a, msg_id("r2", "messages/a", Some(s), b"{}"));
    }

    #[test]
    fn gate_mode() {
        let r = router(true);
        assert_eq!(
            r.route(Route::RunCompleted, "output/result.json", b"{}", None),
            Ok(Trigger::Completed(None))
        );
        assert_eq!(
            r.route(Route::Stream, "output/stream-0.json", b"{}", None),
            Err(Skip::Gated)
        );
    }

    #[test]
    fn envelope_and_subjects() {
        let r = router(false);
        let Ok(Trigger::Publish(ev)) = r.route(
            Route::PromptRequest,
            "prompts/request-a.json",
            br#"{"requestId":"a"}"#,
            None,
        ) else {
            panic!("not published");
        };
        assert_eq!(ev.subject, "sympozium.agent.prompt.request.run-1");
        let env: serde_json::Value = serde_json::from_slice(&ev.payload).unwrap();
        assert_eq!(env["topic"], "agent.prompt.request.run-1");
        assert_eq!(env["metadata"]["agentRunID"], "run-1");
        assert_eq!(env["data"]["requestId"], "a");
        for bad in [br#"{"requestId":"../x"}"#.as_slice(), b"{}"] {
            assert!(matches!(
                r.route(Route::PromptResult, "prompts/result-x.json", bad, None),
                Err(Skip::BadRequestId(_))
            ));
        }
        assert!(matches!(
            r.route(Route::RunCompleted, "output/result.json", b"{}", None),
            Ok(Trigger::Completed(Some(_)))
        ));
    }
}
