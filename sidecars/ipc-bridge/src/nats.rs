//! NATS connections and the `sympozium` stream.
//!
//! The bridge uses two connections:
//!
//! - the **publisher's**, one per *epoch*: it is made by us, and when it
//!   breaks it is abandoned, never reconnected by the client library. A
//!   client that reconnects on its own would send the messages it had
//!   buffered while down *before* our retry of an earlier message whose
//!   bytes died with the old socket, and the stream would store them out of
//!   order. A fresh connection per epoch, onto which the unacked window is
//!   re-sent in order, keeps the stream order equal to the file order (the
//!   `Nats-Msg-Id` makes the re-sent copies of stored messages no-ops).
//! - the **subscriber's**, a normal client that reconnects forever by
//!   itself; its consumers are re-created on any error (see
//!   [`crate::subscribe`]).
//!
//! Both ensure the stream (contract §3.2) every time they (re)connect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentpod_sdk::wire::stream_config::{self, Retention, Storage, StreamConfig};
use async_nats::jetstream::{self, stream};
use async_nats::{ConnectOptions, Event};
use tokio::sync::Notify;

/// How long one TCP + handshake attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of JetStream API requests (stream and consumer management).
const API_TIMEOUT: Duration = Duration::from_secs(5);
/// An abandoned publisher client never reconnects: its reconnect delay is
/// longer than any Pod lives.
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);
/// First reconnect backoff; doubles up to [`stream_config::RECONNECT_WAIT`].
pub const BACKOFF_START: Duration = Duration::from_millis(50);

/// A NATS or JetStream failure, classified by where it happened.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The TCP connection or handshake failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL tried.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The stream could not be created or updated.
    #[error("cannot create or update stream {name}: {source}")]
    Stream {
        /// Stream name.
        name: &'static str,
        /// The client's error.
        #[source]
        source: jetstream::context::CreateStreamError,
    },
}

/// The stream configuration of the contract, in async-nats terms.
pub fn stream_config() -> stream::Config {
    let c = StreamConfig::SYMPOZIUM;
    stream::Config {
        name: c.name.to_owned(),
        subjects: c.subjects.iter().map(|s| (*s).to_owned()).collect(),
        retention: match c.retention {
            Retention::Limits => stream::RetentionPolicy::Limits,
        },
        max_age: c.max_age,
        storage: match c.storage {
            Storage::File => stream::StorageType::File,
        },
        num_replicas: c.replicas,
        ..Default::default()
    }
}

/// Creates the stream, or updates it to the contract's configuration.
pub async fn ensure_stream(js: &jetstream::Context) -> Result<(), NatsError> {
    js.create_or_update_stream(stream_config())
        .await
        .map(|_| ())
        .map_err(|source| NatsError::Stream {
            name: stream_config::STREAM_NAME,
            source,
        })
}

/// The next backoff: doubles, capped at the contract's reconnect wait.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(stream_config::RECONNECT_WAIT)
}

/// One publisher connection. When [`Epoch::dead`] fires, drop it and make
/// a new one.
#[derive(Debug)]
pub struct Epoch {
    /// JetStream context with our ack timeout.
    pub js: jetstream::Context,
    /// Notified when the connection drops.
    pub dead: Arc<Notify>,
}

/// Connects a publisher epoch and ensures the stream. One attempt; the
/// caller retries with backoff.
pub async fn connect_publisher(
    url: &str,
    ack_timeout: Duration,
    max_in_flight: usize,
) -> Result<Epoch, NatsError> {
    let connected = Arc::new(AtomicBool::new(false));
    let dead = Arc::new(Notify::new());
    let (c, d) = (connected.clone(), dead.clone());
    let opts = ConnectOptions::new()
        .name("ipc-bridge-publisher")
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(1)
        // First connect: at once. After that: never (see the module docs).
        .reconnect_delay_callback(move |_| {
            if c.load(Ordering::Acquire) {
                NEVER
            } else {
                Duration::ZERO
            }
        })
        .event_callback(move |ev| {
            let d = d.clone();
            async move {
                if matches!(ev, Event::Disconnected | Event::Closed) {
                    d.notify_one();
                }
            }
        });
    let client = opts
        .connect(url)
        .await
        .map_err(|source| NatsError::Connect {
            url: url.to_owned(),
            source,
        })?;
    connected.store(true, Ordering::Release);
    let js = jetstream::context::ContextBuilder::new()
        .timeout(API_TIMEOUT)
        .ack_timeout(ack_timeout)
        .max_ack_inflight(max_in_flight.saturating_mul(2).max(16))
        .build(client);
    ensure_stream(&js).await?;
    Ok(Epoch { js, dead })
}

/// Connects the subscriber client: it starts even when NATS is down and
/// reconnects forever with capped backoff.
pub async fn connect_subscriber(url: &str) -> Result<async_nats::Client, NatsError> {
    ConnectOptions::new()
        .name("ipc-bridge-subscriber")
        .connection_timeout(CONNECT_TIMEOUT)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            let exp = u32::try_from(attempts.min(16)).unwrap_or(16);
            (BACKOFF_START * 2u32.saturating_pow(exp)).min(stream_config::RECONNECT_WAIT)
        })
        .event_callback(|ev| async move {
            match ev {
                Event::Connected => tracing::info!("subscriber connected to NATS"),
                Event::Disconnected => tracing::warn!("subscriber lost NATS; reconnecting"),
                other => tracing::debug!(event = %other, "subscriber NATS event"),
            }
        })
        .connect(url)
        .await
        .map_err(|source| NatsError::Connect {
            url: url.to_owned(),
            source,
        })
}

/// A JetStream context on the subscriber client.
pub fn subscriber_context(client: async_nats::Client) -> jetstream::Context {
    jetstream::context::ContextBuilder::new()
        .timeout(API_TIMEOUT)
        .build(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_the_contract_one() {
        let c = stream_config();
        assert_eq!(c.name, "sympozium");
        assert_eq!(c.subjects, vec!["sympozium.>".to_owned()]);
        assert_eq!(c.retention, stream::RetentionPolicy::Limits);
        assert_eq!(c.storage, stream::StorageType::File);
        assert_eq!(c.max_age, Duration::from_secs(86_400));
        assert_eq!(c.num_replicas, 1);
    }

    #[test]
    fn backoff_is_capped() {
        let mut b = BACKOFF_START;
        for _ in 0..20 {
            b = next_backoff(b);
        }
        assert_eq!(b, stream_config::RECONNECT_WAIT);
    }
}
