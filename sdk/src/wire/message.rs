//! `/ipc/messages/send-<nanos>.json`: a message the agent sends to a chat
//! channel (`send_channel_message`), published by the bridge on
//! `sympozium.channel.message.send`.
//!
//! The bridge re-marshals the whole object after its policy checks, so
//! fields this struct does not name are kept in [`OutboundMessage::extra`]
//! and written back unchanged.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Channels the runner's `send_channel_message` tool accepts.
pub const CHANNELS: [&str; 4] = ["whatsapp", "telegram", "discord", "slack"];
/// Sender name field; the bridge drops it unless it equals the agent's
/// display name (or `INSTANCE_NAME`).
pub const USERNAME_FIELD: &str = "username";
/// Sender icon fields; the bridge always drops them.
pub const ICON_FIELDS: [&str; 2] = ["iconUrl", "iconEmoji"];

/// `/ipc/messages/send-<nanos>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboundMessage {
    /// Channel type (`slack`, `telegram`, ...).
    pub channel: String,
    /// Target chat; omitted when empty (the channel's owner).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chat_id: String,
    /// Thread to reply in; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thread_id: String,
    /// Message text.
    #[serde(default)]
    pub text: String,
    /// Text format hint (e.g. `markdown`); omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
    /// Channel-specific metadata; omitted when empty.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Any other top-level field (e.g. `username`), kept for re-publishing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl OutboundMessage {
    /// A plain text message.
    pub fn new(channel: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            text: text.into(),
            ..Self::default()
        }
    }

    /// Applies the bridge's attribution rule: keeps `username` only when it
    /// equals `allowed_username`, and always removes the icon fields.
    pub fn strip_attribution(&mut self, allowed_username: &str) {
        if self
            .extra
            .get(USERNAME_FIELD)
            .is_some_and(|u| u.as_str() != Some(allowed_username))
        {
            self.extra.remove(USERNAME_FIELD);
        }
        for field in ICON_FIELDS {
            self.extra.remove(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_and_attribution_is_stripped() {
        let mut m: OutboundMessage = serde_json::from_str(
            r#"{"channel":"slack","text":"hi","username":"mallory","iconUrl":"x","iconEmoji":":)","priority":2}"#,
        )
        .unwrap();
        m.strip_attribution("helper");
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"channel":"slack","text":"hi","priority":2}"#
        );
        let mut ok: OutboundMessage =
            serde_json::from_str(r#"{"channel":"slack","text":"hi","username":"helper"}"#).unwrap();
        ok.strip_attribution("helper");
        assert_eq!(
            ok.extra.get("username").and_then(|v| v.as_str()),
            Some("helper")
        );
    }
}
