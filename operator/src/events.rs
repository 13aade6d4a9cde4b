//! The control-plane event of a failed run (contract §8.5): when a run
//! reaches `Failed`, the operator publishes `sympozium.agent.run.failed`
//! with data `{"error": ...}` and metadata `{agentRunID, instanceName,
//! reason}`, so web proxies and channel routers stop waiting for it.
//!
//! Publishing never holds up reconciliation: without a bus URL nothing is
//! sent; otherwise connecting, publishing and flushing share one bounded
//! timeout, and a failure is logged and dropped. Each event carries a
//! `Nats-Msg-Id` derived from the run, so a reconcile that publishes twice
//! (its status patch failed after the publish) is deduplicated by JetStream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agentpod_sdk::wire::event::{META_AGENT_RUN_ID, META_INSTANCE_NAME, META_REASON};
use agentpod_sdk::wire::{Event, EventError, Topic};
use kube::ResourceExt;
use serde_json::json;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::resources::AgentRun;

/// How long one publish may take, connecting included, by default.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a run failed, as the bounded `reason` metadata value (upstream's
/// vocabulary, so consumers can alert on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The run outlived `spec.timeout`.
    Timeout,
    /// The agent container ran out of memory.
    Oom,
    /// A policy, validation or gate refused the run.
    Policy,
    /// The ensemble's token budget is spent.
    TokenBudget,
    /// The run's `Model` never became usable.
    ModelUnavailable,
    /// The model provider failed (rate limit, quota, API error).
    LlmError,
    /// The cluster side failed (Job, Pod, memory server).
    Infra,
    /// Anything else the agent reported.
    Other,
}

impl FailureReason {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Oom => "oom",
            Self::Policy => "policy",
            Self::TokenBudget => "token_budget",
            Self::ModelUnavailable => "model_unavailable",
            Self::LlmError => "llm_error",
            Self::Infra => "infra",
            Self::Other => "other",
        }
    }

    /// A reason for an error text the agent (or its log) produced.
    pub fn classify(error: &str) -> Self {
        let e = error.to_lowercase();
        let any = |words: &[&str]| words.iter().any(|w| e.contains(w));
        if any(&["oomkilled", "out of memory"]) {
            Self::Oom
        } else if any(&["timeout", "timed out", "deadline"]) {
            Self::Timeout
        } else if any(&[
            "429",
            "quota",
            "rate limit",
            "too many requests",
            "context length",
            "api error",
        ]) {
            Self::LlmError
        } else if any(&["agent job failed", "agent container exited"]) {
            Self::Infra
        } else {
            Self::Other
        }
    }
}

/// Why an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The bus did not accept a connection.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The bus URL.
        url: String,
        /// The client's complaint.
        source: async_nats::ConnectError,
    },
    /// The publish was refused locally.
    #[error("publishing: {0}")]
    Publish(#[from] async_nats::PublishError),
    /// The bus did not confirm the publish.
    #[error("flushing: {0}")]
    Flush(#[from] async_nats::client::FlushError),
    /// The envelope could not be built.
    #[error("building the event: {0}")]
    Event(#[from] EventError),
    /// Connecting and publishing took longer than allowed.
    #[error("no answer from the event bus within {0:?}")]
    Timeout(Duration),
}

/// Publishes run events to the event bus, when one is configured. Cheap to
/// clone; the connection is opened on first use and then kept (the client
/// reconnects by itself).
#[derive(Clone, Default)]
pub struct RunEvents {
    bus: Option<Arc<Bus>>,
}

struct Bus {
    url: String,
    timeout: Duration,
    client: Mutex<Option<async_nats::Client>>,
}

impl std::fmt::Debug for RunEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunEvents")
            .field("url", &self.bus.as_ref().map(|b| b.url.as_str()))
            .finish()
    }
}

impl RunEvents {
    /// No bus: events are skipped (logged at debug level).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Events go to the NATS server at `url`; each publish, connecting
    /// included, gives up after `timeout`.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Self {
        Self {
            bus: Some(Arc::new(Bus {
                url: url.into(),
                timeout,
                client: Mutex::new(None),
            })),
        }
    }

    /// [`RunEvents::new`] with [`DEFAULT_PUBLISH_TIMEOUT`] when `url` is
    /// set and not empty, else [`RunEvents::disabled`].
    pub fn from_url(url: Option<&str>) -> Self {
        match url.filter(|u| !u.is_empty()) {
            Some(u) => Self::new(u, DEFAULT_PUBLISH_TIMEOUT),
            None => Self::disabled(),
        }
    }

    /// Publishes `sympozium.agent.run.failed` for `run`. Never fails: a
    /// missing or unreachable bus is logged, and the caller carries on.
    pub async fn run_failed(&self, run: &AgentRun, error: &str, reason: FailureReason) {
        let name = run.name_any();
        let Some(bus) = &self.bus else {
            debug!(run = %name, "no EVENT_BUS_URL; agent.run.failed not published");
            return;
        };
        match tokio::time::timeout(bus.timeout, bus.publish_failed(run, error, reason)).await {
            Ok(Ok(())) => {
                info!(run = %name, reason = reason.as_str(), "published agent.run.failed")
            }
            Ok(Err(e)) => {
                warn!(run = %name, url = %bus.url, error = %e, "agent.run.failed not published")
            }
            Err(_) => warn!(
                run = %name,
                url = %bus.url,
                error = %PublishError::Timeout(bus.timeout),
                "agent.run.failed not published"
            ),
        }
    }
}

/// The envelope of `sympozium.agent.run.failed` for `run`.
pub fn run_failed_event(
    run: &AgentRun,
    error: &str,
    reason: FailureReason,
) -> Result<Event, EventError> {
    let metadata = BTreeMap::from([
        (META_AGENT_RUN_ID.to_owned(), run.name_any()),
        (META_INSTANCE_NAME.to_owned(), run.spec.agent_ref.clone()),
        (META_REASON.to_owned(), reason.as_str().to_owned()),
    ]);
    Event::from_value(&Topic::RunFailed, metadata, &json!({"error": error}))
}

impl Bus {
    async fn client(&self) -> Result<async_nats::Client, PublishError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(self.timeout)
            .connect(&self.url)
            .await
            .map_err(|source| PublishError::Connect {
                url: self.url.clone(),
                source,
            })?;
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn publish_failed(
        &self,
        run: &AgentRun,
        error: &str,
        reason: FailureReason,
    ) -> Result<(), PublishError> {
        let event = run_failed_event(run, error, reason)?;
        let client = self.client().await?;
        let mut headers = async_nats::HeaderMap::new();
        // One failure per run object: the uid tells a re-created run apart.
        let id = format!(
            "{}/{}/{}/failed",
            run.namespace().unwrap_or_default(),
            run.name_any(),
            run.uid().unwrap_or_default()
        );
        headers.insert("Nats-Msg-Id", id.as_str());
        client
            .publish_with_headers(Topic::RunFailed.subject(), headers, event.to_bytes().into())
            .await?;
        client.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_upstream_buckets() {
        assert_eq!(
            FailureReason::classify("timeout: run exceeded 5m0s"),
            FailureReason::Timeout
        );
        assert_eq!(
            FailureReason::classify("agent container exited with code 137 (OOMKilled)"),
            FailureReason::Oom
        );
        assert_eq!(
            FailureReason::classify("Error: 429 Too Many Requests"),
            FailureReason::LlmError
        );
        assert_eq!(
            FailureReason::classify("model exploded"),
            FailureReason::Other
        );
        assert_eq!(FailureReason::TokenBudget.as_str(), "token_budget");
    }

    #[test]
    fn envelope_has_the_contract_shape() {
        let mut run = AgentRun::new("r1", "demo", Default::default());
        run.spec.agent_ref = "helper".into();
        let ev = run_failed_event(&run, "boom", FailureReason::Policy).expect("event");
        assert_eq!(ev.topic, "agent.run.failed");
        assert_eq!(ev.metadata["agentRunID"], "r1");
        assert_eq!(ev.metadata["instanceName"], "helper");
        assert_eq!(ev.metadata["reason"], "policy");
        assert_eq!(ev.data.get(), r#"{"error":"boom"}"#);
    }
}
