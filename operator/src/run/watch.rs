//! The two things a local run watches besides its processes: the event bus
//! (`sympozium.>`) and the agent's `/ipc/output/stream-<n>.json` chunks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use agentpod_sdk::wire::{ChunkType, StreamChunk};
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};

use super::timeline::Event;

/// How often the stream folder is looked at (the files are written
/// atomically, so a file that exists is whole).
const STREAM_POLL: Duration = Duration::from_millis(25);
/// After the run: how long to wait for the last bus messages.
const NATS_DRAIN: Duration = Duration::from_millis(300);

/// Forwards every `sympozium.>` message until `stop`, then drains briefly.
/// `ready` fires once the subscription is in place.
pub async fn nats(
    url: String,
    tx: UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<()>,
) {
    let Ok(client) = async_nats::connect(&url).await else {
        return;
    };
    let Ok(mut sub) = client.subscribe("sympozium.>").await else {
        return;
    };
    let _ = client.flush().await;
    let _ = ready.send(());
    let forward = |m: async_nats::Message| {
        let data = serde_json::from_slice(&m.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&m.payload).into_owned())
        });
        let _ = tx.send(Event::Nats {
            subject: m.subject.to_string(),
            data,
        });
    };
    loop {
        tokio::select! {
            m = sub.next() => match m {
                Some(m) => forward(m),
                None => return,
            },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    let _ = client.flush().await;
    while let Ok(Some(m)) = tokio::time::timeout(NATS_DRAIN, sub.next()).await {
        forward(m);
    }
}

/// Emits the agent's stream chunks in order until `stop` (then reads what
/// is left). Tool durations come from the chunk files' modification times.
pub async fn stream(ipc: PathBuf, tx: UnboundedSender<Event>, mut stop: watch::Receiver<bool>) {
    let mut next = 0u64;
    let mut calls: HashMap<String, (String, SystemTime)> = HashMap::new();
    loop {
        let stopping = *stop.borrow();
        loop {
            let path = ipc.join(format!("output/stream-{next}.json"));
            let Ok(text) = std::fs::read(&path) else {
                break;
            };
            let Ok(chunk) = serde_json::from_slice::<StreamChunk>(&text) else {
                break;
            };
            let when = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            next += 1;
            let ev = match chunk.kind {
                ChunkType::Text => Event::Text {
                    content: chunk.content,
                },
                ChunkType::Thinking => Event::Thinking {
                    content: chunk.content,
                },
                ChunkType::ToolUse => {
                    let (name, args) = chunk
                        .content
                        .split_once(' ')
                        .unwrap_or((chunk.content.as_str(), ""));
                    calls.insert(chunk.tool_id.clone(), (name.to_owned(), when));
                    Event::ToolCall {
                        id: chunk.tool_id,
                        name: name.to_owned(),
                        arguments: args.to_owned(),
                    }
                }
                ChunkType::ToolResult => {
                    let (name, t0) = calls
                        .remove(&chunk.tool_id)
                        .unwrap_or_else(|| (String::new(), when));
                    Event::ToolResult {
                        id: chunk.tool_id,
                        name,
                        duration_ms: when
                            .duration_since(t0)
                            .map(|d| d.as_millis() as u64)
                            .unwrap_or_default(),
                        preview: chunk.content,
                    }
                }
            };
            let _ = tx.send(ev);
        }
        if stopping {
            return;
        }
        let _ = tokio::time::timeout(STREAM_POLL, stop.changed()).await;
    }
}
