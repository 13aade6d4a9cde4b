//! `send_channel_message`: queues a chat message for the bridge by writing
//! `/ipc/messages/send-<nanos>.json` (contract §2.1).
//!
//! The file is written atomically, staged outside `messages/`, because the
//! upstream bridge publishes every file that appears there.

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::OutboundMessage;
use agentpod_sdk::wire::message::CHANNELS;
use async_trait::async_trait;
use serde_json::json;

use agentpod_sdk::ipc::next_nanos_id;

use super::str_arg;

/// The `send_channel_message` tool.
#[derive(Debug)]
pub struct SendChannelMessage {
    ipc: IpcRoot,
    spec: ToolSpec,
}

impl SendChannelMessage {
    /// A `send_channel_message` writing under `ipc`.
    pub fn new(ipc: IpcRoot) -> Self {
        let spec = ToolSpec {
            name: "send_channel_message".into(),
            description:
                "Send a message to a chat channel (WhatsApp, Telegram, Discord or Slack). \
                          Without chatId the message goes to the channel owner."
                    .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "channel": {"type": "string", "enum": CHANNELS, "description": "The channel to send on"},
                    "text": {"type": "string", "description": "The message text"},
                    "chatId": {"type": "string", "description": "Target chat ID; omit to message the owner"},
                    "threadId": {"type": "string", "description": "Thread to reply in, if any"}
                },
                "required": ["channel", "text"]
            }),
        };
        Self { ipc, spec }
    }

    fn send(&self, args: &Args) -> Result<String, String> {
        let channel = str_arg(args, "channel").map(str::trim).unwrap_or_default();
        if !CHANNELS.contains(&channel) {
            return Err(format!("channel must be one of {}", CHANNELS.join(", ")));
        }
        let text = str_arg(args, "text").unwrap_or_default();
        if text.trim().is_empty() {
            return Err("text is required".into());
        }
        let mut msg = OutboundMessage::new(channel, text);
        msg.chat_id = str_arg(args, "chatId")
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        msg.thread_id = str_arg(args, "threadId")
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();

        let dir = self.ipc.messages();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = self.ipc.outbound_message(&next_nanos_id());
        self.ipc
            .write_json_atomic(&path, &msg)
            .map_err(|e| format!("failed to queue message: {e}"))?;
        tracing::info!(channel, file = %path.display(), "queued channel message");

        let target = if msg.chat_id.is_empty() {
            "owner (self)"
        } else {
            msg.chat_id.as_str()
        };
        let mut out = format!("Message sent to {channel} channel (target: {target}");
        if !msg.thread_id.is_empty() {
            out.push_str(&format!(", thread: {}", msg.thread_id));
        }
        out.push(')');
        Ok(out)
    }
}

#[async_trait]
impl Tool for SendChannelMessage {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        self.send(&args).unwrap_or_else(|e| format!("Error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_the_wire_file() {
        let t = tempfile::tempdir().unwrap();
        let tool = SendChannelMessage::new(IpcRoot::new(t.path()));
        let out = tool
            .send(&args(
                json!({"channel": "slack", "text": "hi", "chatId": "C1", "threadId": "T9"}),
            ))
            .unwrap();
        assert_eq!(
            out,
            "Message sent to slack channel (target: C1, thread: T9)"
        );
        let out = tool
            .send(&args(json!({"channel": "telegram", "text": "yo"})))
            .unwrap();
        assert_eq!(
            out,
            "Message sent to telegram channel (target: owner (self))"
        );

        let names = files(&t.path().join("messages"));
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("send-") && n.ends_with(".json"))
        );
        let bodies: Vec<String> = names
            .iter()
            .map(|n| std::fs::read_to_string(t.path().join("messages").join(n)).unwrap())
            .collect();
        assert_eq!(
            bodies[0],
            r#"{"channel":"slack","chatId":"C1","threadId":"T9","text":"hi"}"#
        );
        assert_eq!(bodies[1], r#"{"channel":"telegram","text":"yo"}"#);
    }

    #[test]
    fn validates_channel_and_text() {
        let t = tempfile::tempdir().unwrap();
        let tool = SendChannelMessage::new(IpcRoot::new(t.path()));
        assert_eq!(
            tool.send(&args(json!({"channel": "irc", "text": "x"})))
                .unwrap_err(),
            "channel must be one of whatsapp, telegram, discord, slack"
        );
        assert_eq!(
            tool.send(&args(json!({"channel": "slack", "text": " "})))
                .unwrap_err(),
            "text is required"
        );
        assert!(!t.path().join("messages").exists());
    }
}
