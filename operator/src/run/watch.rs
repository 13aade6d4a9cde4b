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

/// How often the containers' stderr files are looked at.
const STDERR_POLL: Duration = Duration::from_millis(100);
/// Distinct warnings shown per container; the rest stay in its log.
const WARNINGS_PER_CONTAINER: usize = 8;

/// A log line made short: a `tracing` text line without its timestamp
/// and target (`WARN message fields`), a JSON line as its level, message
/// and plain fields; anything else as it is.
pub fn compact(line: &str) -> String {
    let line = line.trim();
    if line.starts_with('{')
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
        && let Some(level) = v["level"].as_str()
    {
        let fields = v.get("fields").unwrap_or(&v);
        let message = fields["message"].as_str().unwrap_or_default();
        let rest: Vec<String> = fields
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !matches!(k.as_str(), "message" | "timestamp" | "level" | "target"))
            .filter(|(_, v)| !v.is_object() && !v.is_array())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        return format!("{level} {message} {}", rest.join(" "))
            .trim_end()
            .to_owned();
    }
    // tracing's text format: `<timestamp> <LEVEL> <target>: <message>`.
    let mut parts = line.splitn(2, char::is_whitespace);
    let (stamp, rest) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let rest = rest.trim_start();
    for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] {
        if stamp.contains('T')
            && let Some(msg) = rest.strip_prefix(level)
        {
            let msg = msg.trim_start();
            // Drop the spans (`name{fields}:`) and the target
            // (`module::path: `), keep the message.
            let msg = msg.rsplit_once("}: ").map_or(msg, |(_, m)| m);
            let msg = match msg.split_once(": ") {
                Some((target, m)) if !target.contains(' ') => m,
                _ => msg,
            };
            return format!("{level} {msg}");
        }
    }
    line.to_owned()
}

/// A warning or error line of a container's log, made short ([`compact`]);
/// `None` for other lines.
pub fn warning(line: &str) -> Option<String> {
    let c = compact(line);
    (c.starts_with("WARN ") || c.starts_with("ERROR ")).then_some(c)
}

/// The part of a warning that stays the same when it repeats (its level
/// and message, before the first `key=value` field).
fn gist(w: &str) -> String {
    w.split_whitespace()
        .take_while(|t| !t.contains('='))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Follows `<logs>/<name>.stderr` of each container in `names` until
/// `stop`, and shows each new warning or error line at once (a retry, the
/// reason a container is failing), each distinct one once.
pub async fn stderr(
    logs: PathBuf,
    names: Vec<String>,
    tx: UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    use std::io::{Read, Seek, SeekFrom};
    struct Followed {
        name: String,
        offset: u64,
        partial: String,
        seen: Vec<String>,
    }
    let mut followed: Vec<Followed> = names
        .into_iter()
        .map(|name| Followed {
            name,
            offset: 0,
            partial: String::new(),
            seen: Vec::new(),
        })
        .collect();
    loop {
        let stopping = *stop.borrow();
        for f in &mut followed {
            let Ok(mut file) = std::fs::File::open(logs.join(format!("{}.stderr", f.name))) else {
                continue;
            };
            if file.seek(SeekFrom::Start(f.offset)).is_err() {
                continue;
            }
            // A bounded read per pass: a chatty container cannot stall this.
            let mut buf = Vec::new();
            let Ok(n) = file.take(256 * 1024).read_to_end(&mut buf) else {
                continue;
            };
            f.offset += n as u64;
            f.partial.push_str(&String::from_utf8_lossy(&buf));
            while let Some(end) = f.partial.find('\n') {
                let line: String = f.partial.drain(..=end).collect();
                let Some(w) = warning(&line) else { continue };
                let key = gist(&w);
                if f.seen.contains(&key) || f.seen.len() >= WARNINGS_PER_CONTAINER {
                    continue;
                }
                f.seen.push(key);
                let _ = tx.send(Event::ContainerLog {
                    name: f.name.clone(),
                    line: w,
                });
            }
        }
        if stopping {
            return;
        }
        let _ = tokio::time::timeout(STDERR_POLL, stop.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_lose_their_timestamp_and_target() {
        assert_eq!(
            warning("2026-12-03T20:32:47.849072Z  WARN mcp_bridge::transports::stdio: stdio MCP server is down; restarting server=demo-tools restart_in_ms=2000").as_deref(),
            Some("WARN stdio MCP server is down; restarting server=demo-tools restart_in_ms=2000")
        );
        assert_eq!(warning("2026-12-03T20:32:47Z  INFO x: fine"), None);
        assert_eq!(
            warning("2026-12-03T21:13:42Z  WARN sympozium.agent.run{instance=a task.summary=Do x, y: z}:gen_ai.chat{round=1}: agentpod_sdk::llm::http: LLM request failed, retrying attempt=1").as_deref(),
            Some("WARN LLM request failed, retrying attempt=1")
        );
        assert_eq!(
            warning(r#"{"timestamp":"t","level":"ERROR","message":"cannot start","error":"boom","target":"x"}"#).as_deref(),
            Some("ERROR cannot start error=boom")
        );
        assert_eq!(warning("Traceback (most recent call last):"), None);
        assert_eq!(compact("  plain words "), "plain words");
        assert_eq!(
            gist("WARN LLM request failed, retrying attempt=1 wait_ms=500"),
            "WARN LLM request failed, retrying"
        );
    }
}
