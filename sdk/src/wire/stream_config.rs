//! The JetStream stream and consumer settings every component must agree
//! on. Upstream components call `CreateOrUpdateStream` with these values, so
//! a component that used others would fight them over the stream.
//!
//! Plain data: the NATS client crate lives with the binaries, not here.

use std::time::Duration;

/// Stream name.
pub const STREAM_NAME: &str = "sympozium";
/// The one subject filter of the stream.
pub const STREAM_SUBJECTS: &str = "sympozium.>";
/// How long a message is kept.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Stream replicas.
pub const STREAM_REPLICAS: usize = 1;
/// Attempts to ensure the stream at startup.
pub const STREAM_ENSURE_ATTEMPTS: u32 = 10;
/// Pause between those attempts.
pub const STREAM_ENSURE_BACKOFF: Duration = Duration::from_secs(2);
/// Wait between reconnect attempts (reconnects are unlimited).
pub const RECONNECT_WAIT: Duration = Duration::from_secs(2);
/// Longest wait of one pull (`Fetch(1)`) on a subscription.
pub const FETCH_MAX_WAIT: Duration = Duration::from_secs(5);
/// Pause after a failed fetch before the consumer is re-created.
pub const FETCH_ERROR_BACKOFF: Duration = Duration::from_secs(2);
/// Default NATS URL (`EVENT_BUS_URL`).
pub const DEFAULT_EVENT_BUS_URL: &str = "nats://nats.sympozium-system.svc:4222";

/// Message retention policy of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep messages until a limit (here: age) removes them.
    Limits,
}

/// Storage backend of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// On disk.
    File,
}

/// The stream configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// [`STREAM_NAME`].
    pub name: &'static str,
    /// `[STREAM_SUBJECTS]`.
    pub subjects: &'static [&'static str],
    /// [`Retention::Limits`].
    pub retention: Retention,
    /// [`STREAM_MAX_AGE`].
    pub max_age: Duration,
    /// [`Storage::File`].
    pub storage: Storage,
    /// [`STREAM_REPLICAS`].
    pub replicas: usize,
}

impl StreamConfig {
    /// The `sympozium` stream as upstream creates it.
    pub const SYMPOZIUM: StreamConfig = StreamConfig {
        name: STREAM_NAME,
        subjects: &[STREAM_SUBJECTS],
        retention: Retention::Limits,
        max_age: STREAM_MAX_AGE,
        storage: Storage::File,
        replicas: STREAM_REPLICAS,
    };
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self::SYMPOZIUM
    }
}

/// How a subscriber consumes: an ephemeral pull consumer per subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverPolicy {
    /// Only messages published after the consumer was created.
    New,
}

/// Consumer settings of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Ack every message explicitly (after it is handed on).
    pub ack_explicit: bool,
    /// [`DeliverPolicy::New`].
    pub deliver: DeliverPolicy,
    /// Messages per fetch.
    pub fetch_batch: usize,
    /// [`FETCH_MAX_WAIT`].
    pub fetch_max_wait: Duration,
}

impl ConsumerConfig {
    /// The settings upstream's subscribers use.
    pub const SYMPOZIUM: ConsumerConfig = ConsumerConfig {
        ack_explicit: true,
        deliver: DeliverPolicy::New,
        fetch_batch: 1,
        fetch_max_wait: FETCH_MAX_WAIT,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_matches_contract() {
        let c = StreamConfig::default();
        assert_eq!(c.name, "sympozium");
        assert_eq!(c.subjects, &["sympozium.>"]);
        assert_eq!(c.max_age, Duration::from_secs(86_400));
        assert_eq!(
            (c.retention, c.storage, c.replicas),
            (Retention::Limits, Storage::File, 1)
        );
        assert!(crate::wire::subjects::subject("agent.run.completed").starts_with("sympozium."));
    }
}
