//! The publisher: triggers in, JetStream acks out, nothing lost or doubled.
//!
//! Every event gets a sequence number when it arrives and keeps it to the
//! end. Events live in one ordered line:
//!
//! ```text
//! input ──▶ pending (not sent yet) ──▶ window (sent, ack awaited) ──▶ done
//!              ▲        │ on disk while NATS is away                    │
//!              └────────┴──── connection lost: window goes back ◀───────┘
//! ```
//!
//! - Connected, with nothing waiting: an event goes straight out (no disk).
//!   Up to `max_in_flight` publishes await their acks at once; acks are
//!   taken in order.
//! - Connection lost (a `Disconnected` event, an ack error or timeout): the
//!   window goes back to the front of `pending`, every pending event still
//!   only in memory is written to the spool, the connection is dropped for
//!   good (see [`crate::nats`]) and a new one is tried forever with backoff.
//!   Meanwhile new files go to the spool while it has room; when it is full
//!   the bridge logs an error and stops taking files (they wait in `/ipc`
//!   and the watcher's queue) until room frees.
//! - Reconnected: `pending` is sent in order before any new file. A message
//!   the server had already stored before the break is answered as a
//!   duplicate thanks to its `Nats-Msg-Id`.

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::pin::Pin;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::nats::{self, BACKOFF_START, Epoch};
use crate::spool::{Spool, Spooled};
use crate::trace::TRACEPARENT_HEADER;
use crate::triggers::{OutEvent, Trigger};

/// Publisher settings.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// NATS URL.
    pub url: String,
    /// Publishes awaiting their ack at once.
    pub max_in_flight: usize,
    /// Ack timeout.
    pub ack_timeout: Duration,
}

/// What the publisher did, reported when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishSummary {
    /// Events acked by JetStream.
    pub published: u64,
    /// Of those, answered as duplicates (already stored).
    pub duplicates: u64,
    /// Events that went through the spool.
    pub spooled: u64,
    /// Events given up on (too large for the server, or a corrupt spool
    /// entry); each was logged at error level.
    pub dropped: u64,
    /// Events still waiting when the publisher stopped (left in the spool
    /// when possible).
    pub left: u64,
    /// Connections made.
    pub connections: u64,
}

/// One event in the line.
#[derive(Debug)]
struct Entry {
    seq: u64,
    /// The event, when held in memory.
    ev: Option<OutEvent>,
    /// Size on disk, when spooled.
    disk: Option<u64>,
}

type AckFuture = BoxFuture<'static, Result<bool, async_nats::jetstream::context::PublishError>>;
type ConnectFuture = Pin<Box<dyn Future<Output = Epoch> + Send>>;

/// The publisher task's state.
pub struct Publisher {
    settings: PublishSettings,
    spool: Spool,
    pending: VecDeque<Entry>,
    window: VecDeque<Entry>,
    acks: FuturesOrdered<AckFuture>,
    conn: Option<Epoch>,
    summary: PublishSummary,
    spool_full_logged: bool,
    completed: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("pending", &self.pending.len())
            .field("window", &self.window.len())
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// Connects forever with capped exponential backoff.
async fn connect_forever(s: PublishSettings) -> Epoch {
    let mut backoff = BACKOFF_START;
    let mut failures = 0u64;
    loop {
        match nats::connect_publisher(&s.url, s.ack_timeout, s.max_in_flight).await {
            Ok(epoch) => {
                tracing::info!(url = %s.url, after_failures = failures, "publisher connected to NATS; stream ensured");
                return epoch;
            }
            Err(e) => {
                failures += 1;
                // Loud on the first failure and then every 30th, quiet between.
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(url = %s.url, error = %e, failures, "NATS unreachable; events go to the spool, retrying");
                } else {
                    tracing::debug!(error = %e, failures, "NATS still unreachable");
                }
                tokio::time::sleep(backoff).await;
                backoff = nats::next_backoff(backoff);
            }
        }
    }
}

impl Publisher {
    /// A publisher with the entries already in the spool queued first.
    pub fn new(
        settings: PublishSettings,
        spool: Spool,
        found: Vec<Spooled>,
        completed: oneshot::Sender<()>,
    ) -> Self {
        if !found.is_empty() {
            tracing::info!(events = found.len(), dir = %spool.dir().display(), "resuming spooled events from a previous run");
        }
        let pending = found
            .into_iter()
            .map(|s| Entry {
                seq: s.seq,
                ev: None,
                disk: Some(s.size),
            })
            .collect();
        Self {
            settings,
            spool,
            pending,
            window: VecDeque::new(),
            acks: FuturesOrdered::new(),
            conn: None,
            summary: PublishSummary::default(),
            spool_full_logged: false,
            completed: Some(completed),
        }
    }

    /// Runs until `finish` carries a deadline and everything is published,
    /// or the deadline passes. `completed` fires on `output/result.json`.
    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<Trigger>,
        mut finish: watch::Receiver<Option<Instant>>,
    ) -> PublishSummary {
        let mut input_open = true;
        let mut deadline: Option<Instant> = None;
        let mut connecting: Option<ConnectFuture> = None;
        loop {
            if deadline.is_some() && self.pending.is_empty() && self.window.is_empty() {
                break;
            }
            if self.conn.is_some() {
                self.fill_window().await;
            }
            if self.conn.is_none() && connecting.is_none() {
                connecting = Some(Box::pin(connect_forever(self.settings.clone())));
            }
            let take_input = input_open
                && deadline.is_none()
                && match self.conn {
                    Some(_) => {
                        self.pending.is_empty() && self.window.len() < self.settings.max_in_flight
                    }
                    None => self.spool_has_room(),
                };
            let dead = self.conn.as_ref().map(|c| c.dead.clone());
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => break,
                Some(res) = self.acks.next(), if !self.acks.is_empty() => self.on_ack(res),
                _ = async { if let Some(d) = &dead { d.notified().await } }, if dead.is_some() => {
                    tracing::warn!(in_flight = self.window.len(), "lost NATS; re-sending unacked events after reconnect");
                    self.lose_connection();
                }
                epoch = async { if let Some(f) = connecting.as_mut() { f.as_mut().await } else { std::future::pending().await } }, if connecting.is_some() => {
                    connecting = None;
                    self.conn = Some(epoch);
                    self.summary.connections += 1;
                }
                changed = finish.changed() => {
                    if changed.is_err() {
                        // The owner is gone: finish now.
                        deadline = Some(Instant::now());
                    } else if let Some(at) = *finish.borrow() {
                        deadline = Some(at);
                        // Take what is already queued, then stop reading.
                        while let Ok(t) = input.try_recv() {
                            self.accept(t);
                        }
                        input.close();
                        input_open = false;
                    }
                }
                t = input.recv(), if take_input => match t {
                    Some(t) => self.accept(t),
                    None => input_open = false,
                },
            }
        }
        self.stop()
    }

    fn spool_has_room(&mut self) -> bool {
        if self.spool.has_room() {
            if self.spool_full_logged {
                tracing::info!(
                    events = self.spool.events(),
                    "spool has room again; taking new files"
                );
                self.spool_full_logged = false;
            }
            return true;
        }
        if !self.spool_full_logged {
            tracing::error!(
                events = self.spool.events(),
                bytes = self.spool.bytes(),
                dir = %self.spool.dir().display(),
                "SPOOL FULL while NATS is unreachable: not taking new files until it drains (nothing is dropped; files wait in /ipc)"
            );
            self.spool_full_logged = true;
        }
        false
    }

    /// Takes one trigger into the line.
    fn accept(&mut self, t: Trigger) {
        let ev = match t {
            Trigger::Publish(ev) => ev,
            Trigger::Completed(ev) => {
                if let Some(tx) = self.completed.take() {
                    let _ = tx.send(());
                }
                match ev {
                    Some(ev) => ev,
                    None => return,
                }
            }
        };
        let seq = self.spool.next_seq();
        let mut entry = Entry {
            seq,
            ev: Some(ev),
            disk: None,
        };
        if self.conn.is_none() {
            self.persist(&mut entry);
        }
        self.pending.push_back(entry);
    }

    /// Writes an in-memory entry to the spool (keeping it in memory if the
    /// write fails, so it is never lost while the process lives).
    fn persist(&mut self, entry: &mut Entry) {
        if entry.disk.is_some() {
            return;
        }
        let Some(ev) = entry.ev.as_ref() else {
            return;
        };
        match self.spool.write(entry.seq, ev) {
            Ok(size) => {
                entry.disk = Some(size);
                entry.ev = None;
                self.summary.spooled += 1;
            }
            Err(e) => {
                tracing::error!(file = %ev.source, error = %e, "cannot spool event; keeping it in memory");
            }
        }
    }

    /// Sends pending events while the window has room.
    async fn fill_window(&mut self) {
        while self.window.len() < self.settings.max_in_flight {
            let Some(js) = self.conn.as_ref().map(|c| c.js.clone()) else {
                return;
            };
            let Some(mut entry) = self.pending.pop_front() else {
                return;
            };
            let ev = match entry.ev.take() {
                Some(ev) => ev,
                None => match self.spool.read(entry.seq) {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::error!(error = %e, "spool entry unreadable; dropped");
                        self.drop_entry(entry);
                        continue;
                    }
                },
            };
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, ev.msg_id.as_str());
            if let Some(tp) = &ev.traceparent {
                headers.insert(TRACEPARENT_HEADER, tp.as_str());
            }
            let msg = PublishMessage::build()
                .payload(ev.payload.clone())
                .headers(headers);
            match js.send_publish(ev.subject.clone(), msg).await {
                Ok(ack) => {
                    self.acks.push_back(Box::pin(async move {
                        ack.into_future().await.map(|a| a.duplicate)
                    }));
                    // Keep the bytes for a re-send unless they are on disk.
                    if entry.disk.is_none() {
                        entry.ev = Some(ev);
                    }
                    self.window.push_back(entry);
                }
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    tracing::error!(file = %ev.source, subject = %ev.subject, bytes = ev.payload.len(), error = %e, "event larger than the server's max_payload; dropped");
                    self.drop_entry(entry);
                }
                Err(e) => {
                    tracing::warn!(file = %ev.source, error = %e, "publish failed; reconnecting");
                    if entry.disk.is_none() {
                        entry.ev = Some(ev);
                    }
                    self.pending.push_front(entry);
                    self.lose_connection();
                    return;
                }
            }
        }
    }

    fn drop_entry(&mut self, entry: Entry) {
        if let Some(size) = entry.disk {
            self.spool.remove(entry.seq, size);
        }
        self.summary.dropped += 1;
    }

    fn on_ack(&mut self, res: Result<bool, async_nats::jetstream::context::PublishError>) {
        match res {
            Ok(duplicate) => {
                let Some(entry) = self.window.pop_front() else {
                    return;
                };
                if let Some(size) = entry.disk {
                    self.spool.remove(entry.seq, size);
                }
                self.summary.published += 1;
                if duplicate {
                    self.summary.duplicates += 1;
                    tracing::debug!(
                        seq = entry.seq,
                        "already stored (deduplicated by Nats-Msg-Id)"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, in_flight = self.window.len(), "publish not acked; reconnecting and re-sending in order");
                self.lose_connection();
            }
        }
    }

    /// Drops the connection; puts the window back in front of `pending` and
    /// writes everything that is only in memory to the spool.
    fn lose_connection(&mut self) {
        self.conn = None;
        self.acks = FuturesOrdered::new();
        while let Some(e) = self.window.pop_back() {
            self.pending.push_front(e);
        }
        let mut pending = std::mem::take(&mut self.pending);
        for e in pending.iter_mut() {
            self.persist(e);
        }
        self.pending = pending;
    }

    /// At the deadline: what is not acked stays in the spool.
    fn stop(mut self) -> PublishSummary {
        while let Some(e) = self.window.pop_back() {
            self.pending.push_front(e);
        }
        let mut pending = std::mem::take(&mut self.pending);
        for e in pending.iter_mut() {
            self.persist(e);
        }
        self.summary.left = pending.len() as u64;
        if !pending.is_empty() {
            tracing::error!(
                events = pending.len(),
                dir = %self.spool.dir().display(),
                "stopping with unpublished events; they stay in the spool for the next bridge start"
            );
        }
        self.summary
    }
}
