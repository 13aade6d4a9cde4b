//! Subscriptions (contract §3.4): control-plane events written back into
//! `/ipc`, atomically, with safe ids only.
//!
//! Each subject has a durable pull consumer named after the run and the
//! subject, pulled one message at a time with a 5 s wait (upstream's
//! `Fetch(1, MaxWait 5s)`). Upstream's ephemeral consumers died with a NATS
//! restart or were reaped while idle, and the subscription went silent.
//! Here any error (pull failed, consumer gone, connection lost) leads to
//! the stream being ensured and the consumer fetched or re-created, forever,
//! with backoff. A re-created consumer starts right after the last stream
//! sequence this bridge saw (or that the consumer had reached when it was
//! made), so messages published while it was gone are still delivered.
//!
//! The durable consumers carry an inactivity threshold
//! (`IPC_BRIDGE_CONSUMER_INACTIVE_THRESHOLD`, default 1 h): while the
//! bridge runs there is always a pull waiting, so the server never counts
//! them idle; after the Pod is gone the server removes them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentpod_sdk::ipc::{IpcRoot, WriteOptions, validate_id};
use agentpod_sdk::wire::stream_config::{ConsumerConfig, STREAM_NAME};
use agentpod_sdk::wire::{Event, Topic};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use serde::Deserialize;
use tokio::task::JoinSet;

use crate::nats::{self, BACKOFF_START};

/// Mode of files written back (upstream: 0640).
pub const FILE_MODE: u32 = 0o640;

/// The four subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `agent.followup.<run>` → `input/followup-<nanos>.json`.
    Followup,
    /// `tool.exec.result.<run>` → `tools/exec-result-<nanos>.json`.
    ExecResult,
    /// `agent.delegate.result.<run>` → `spawn/result-<requestId>.json`.
    DelegateResult,
    /// `agent.subagent.result.<run>` → `spawn/subagent-result-<batchId>.json`.
    SubagentResult,
}

impl Kind {
    /// All of them.
    pub const ALL: [Kind; 4] = [
        Kind::Followup,
        Kind::ExecResult,
        Kind::DelegateResult,
        Kind::SubagentResult,
    ];

    /// The topic for run `run`.
    pub fn topic(self, run: &str) -> Topic<'_> {
        match self {
            Kind::Followup => Topic::Followup(run),
            Kind::ExecResult => Topic::ToolExecResult(run),
            Kind::DelegateResult => Topic::DelegateResult(run),
            Kind::SubagentResult => Topic::SubagentResult(run),
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Followup => "followup",
            Kind::ExecResult => "exec-result",
            Kind::DelegateResult => "delegate-result",
            Kind::SubagentResult => "subagent-result",
        }
    }
}

/// The durable consumer name: `ipc-bridge-<run>-<kind>`, with any character
/// NATS does not allow in names replaced by `_`.
pub fn durable_name(run: &str, kind: Kind) -> String {
    let safe: String = run
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ipc-bridge-{safe}-{}", kind.short())
}

/// Why a message is not written back.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    /// Not an event envelope, or the id field is missing.
    #[error("unparseable event: {0}")]
    Parse(String),
    /// The id would make an unsafe file name.
    #[error(transparent)]
    UnsafeId(#[from] agentpod_sdk::ipc::UnsafeId),
}

#[derive(Deserialize)]
struct Ids {
    #[serde(rename = "requestId", default)]
    request_id: String,
    #[serde(rename = "batchId", default)]
    batch_id: String,
}

/// A nanosecond id that is unique within this process even when two
/// messages arrive in the same nanosecond.
fn unique_nanos() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// Where a message goes and what is written: the target path and the
/// event's raw `data`.
pub fn target(
    root: &IpcRoot,
    kind: Kind,
    body: &[u8],
) -> Result<(std::path::PathBuf, Vec<u8>), Reject> {
    let ev = Event::from_slice(body).map_err(|e| Reject::Parse(e.to_string()))?;
    let data = ev.data.get().as_bytes().to_vec();
    let path = match kind {
        Kind::Followup => root.followup(&unique_nanos().to_string()),
        Kind::ExecResult => root.exec_result(&unique_nanos().to_string()),
        Kind::DelegateResult | Kind::SubagentResult => {
            let ids: Ids = ev.data_as().map_err(|e| Reject::Parse(e.to_string()))?;
            if kind == Kind::DelegateResult {
                validate_id(&ids.request_id)?;
                root.spawn_result(&ids.request_id)
            } else {
                validate_id(&ids.batch_id)?;
                root.subagent_result(&ids.batch_id)
            }
        }
    };
    Ok((path, data))
}

/// Settings shared by the subscription tasks.
#[derive(Debug, Clone)]
pub struct SubscribeSettings {
    /// AgentRun name.
    pub run: String,
    /// IPC root.
    pub root: IpcRoot,
    /// Consumer inactivity threshold.
    pub inactive_threshold: Duration,
}

/// Starts one task per subscription on `client`.
pub fn spawn_all(client: async_nats::Client, s: SubscribeSettings, tasks: &mut JoinSet<()>) {
    let js = nats::subscriber_context(client);
    for kind in Kind::ALL {
        tasks.spawn(subscription(js.clone(), s.clone(), kind));
    }
}

async fn make_consumer(
    js: &jetstream::Context,
    s: &SubscribeSettings,
    kind: Kind,
    resume_after: Option<u64>,
) -> Result<(PullConsumer, u64), String> {
    nats::ensure_stream(js).await.map_err(|e| e.to_string())?;
    let stream = js
        .get_stream(STREAM_NAME)
        .await
        .map_err(|e| e.to_string())?;
    let name = durable_name(&s.run, kind);
    let cc = ConsumerConfig::SYMPOZIUM;
    let config = pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: kind.topic(&s.run).subject(),
        ack_policy: if cc.ack_explicit {
            AckPolicy::Explicit
        } else {
            AckPolicy::None
        },
        deliver_policy: match resume_after {
            Some(seq) => DeliverPolicy::ByStartSequence {
                start_sequence: seq + 1,
            },
            None => DeliverPolicy::New,
        },
        inactive_threshold: s.inactive_threshold,
        ..Default::default()
    };
    let consumer: PullConsumer = stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| e.to_string())?;
    let reached = consumer.cached_info().delivered.stream_sequence;
    Ok((consumer, reached))
}

/// One subscription, forever.
async fn subscription(js: jetstream::Context, s: SubscribeSettings, kind: Kind) {
    let subject = kind.topic(&s.run).subject();
    let fetch_wait = ConsumerConfig::SYMPOZIUM.fetch_max_wait;
    let mut last_seq: Option<u64> = None;
    let mut backoff = BACKOFF_START;
    loop {
        let consumer = match make_consumer(&js, &s, kind, last_seq).await {
            Ok((c, reached)) => {
                tracing::debug!(subject = %subject, consumer = %durable_name(&s.run, kind), "subscribed");
                last_seq = Some(last_seq.unwrap_or(0).max(reached));
                backoff = BACKOFF_START;
                c
            }
            Err(e) => {
                tracing::debug!(subject = %subject, error = %e, "cannot (re)create consumer; retrying");
                tokio::time::sleep(backoff).await;
                backoff = nats::next_backoff(backoff);
                continue;
            }
        };
        // Pull one at a time until anything goes wrong.
        'pull: loop {
            let batch = consumer
                .batch()
                .max_messages(ConsumerConfig::SYMPOZIUM.fetch_batch)
                .expires(fetch_wait)
                .messages();
            let mut batch = match tokio::time::timeout(fetch_wait, batch).await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    tracing::debug!(subject = %subject, error = %e, "pull failed; re-creating consumer");
                    break 'pull;
                }
                Err(_) => break 'pull,
            };
            loop {
                let next =
                    tokio::time::timeout(fetch_wait + Duration::from_secs(2), batch.next()).await;
                let msg = match next {
                    Ok(Some(Ok(m))) => m,
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        tracing::debug!(subject = %subject, error = %e, "pull failed; re-creating consumer");
                        break 'pull;
                    }
                    Err(_) => {
                        tracing::debug!(subject = %subject, "pull stalled; re-creating consumer");
                        break 'pull;
                    }
                };
                let seq = msg.info().map(|i| i.stream_sequence).ok();
                match target(&s.root, kind, &msg.payload) {
                    Ok((path, data)) => {
                        match s.root.write_atomic_with(
                            &path,
                            &data,
                            WriteOptions { mode: FILE_MODE },
                        ) {
                            Ok(()) => {
                                tracing::info!(subject = %subject, file = %path.display(), "wrote control-plane event");
                                if let Err(e) = msg.ack().await {
                                    tracing::warn!(subject = %subject, error = %e, "ack failed; the message may come again");
                                }
                            }
                            Err(e) => {
                                tracing::error!(subject = %subject, error = %e, "cannot write event file; asking for redelivery");
                                let _ = msg
                                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                                    .await;
                                continue;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(subject = %subject, error = %e, "event rejected (terminated)");
                        let _ = msg.ack_with(AckKind::Term).await;
                    }
                }
                if let Some(seq) = seq {
                    last_seq = Some(last_seq.unwrap_or(0).max(seq));
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = nats::next_backoff(backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(data: &str) -> Vec<u8> {
        format!(r#"{{"topic":"x","timestamp":"t","metadata":{{}},"data":{data}}}"#).into_bytes()
    }

    #[test]
    fn targets() {
        let root = IpcRoot::new("/ipc");
        let (p, d) = target(
            &root,
            Kind::DelegateResult,
            &body(r#"{"requestId":"r1","status":"success"}"#),
        )
        .unwrap();
        assert_eq!(p, std::path::Path::new("/ipc/spawn/result-r1.json"));
        assert_eq!(d, br#"{"requestId":"r1","status":"success"}"#);
        let (p, _) = target(&root, Kind::SubagentResult, &body(r#"{"batchId":"b"}"#)).unwrap();
        assert_eq!(p, std::path::Path::new("/ipc/spawn/subagent-result-b.json"));
        let (p, _) = target(&root, Kind::Followup, &body(r#"{"a":1}"#)).unwrap();
        assert!(p.starts_with("/ipc/input") && p.to_string_lossy().contains("followup-"));
        let (p, _) = target(&root, Kind::ExecResult, &body("{}")).unwrap();
        assert!(p.to_string_lossy().contains("/ipc/tools/exec-result-"));
    }

    #[test]
    fn rejects() {
        let root = IpcRoot::new("/ipc");
        assert!(matches!(
            target(
                &root,
                Kind::DelegateResult,
                &body(r#"{"requestId":"../x"}"#)
            ),
            Err(Reject::UnsafeId(_))
        ));
        assert!(target(&root, Kind::SubagentResult, &body("{}")).is_err());
        assert!(matches!(
            target(&root, Kind::Followup, b"nope"),
            Err(Reject::Parse(_))
        ));
    }

    #[test]
    fn names() {
        assert_eq!(
            durable_name("run.a b", Kind::DelegateResult),
            "ipc-bridge-run_a_b-delegate-result"
        );
        assert!(unique_nanos() < unique_nanos());
    }
}
