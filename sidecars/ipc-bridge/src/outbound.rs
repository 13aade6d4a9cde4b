//! Outbound message policy (contract §3.3): the channel allowlist and
//! sender-attribution stripping, applied to `messages/*` before publishing.

use agentpod_sdk::wire::OutboundMessage;
use thiserror::Error;

/// Why a message is not published.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refused {
    /// The file is not an outbound message.
    #[error("not an outbound message: {0}")]
    Invalid(String),
    /// `ALLOWED_OUTBOUND_CHANNELS` is set and does not list the channel.
    #[error("channel {channel:?} is not in ALLOWED_OUTBOUND_CHANNELS")]
    ChannelNotAllowed {
        /// The lowercased channel.
        channel: String,
    },
}

/// The policy, built once from the config.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// `None`: no allowlist; `Some(list)`: only these (lowercase) channels.
    pub allowed_channels: Option<Vec<String>>,
    /// The one `username` a message may keep.
    pub allowed_username: String,
}

impl OutboundPolicy {
    /// Checks and sanitises one message file; returns the JSON to publish.
    pub fn apply(&self, bytes: &[u8]) -> Result<Vec<u8>, Refused> {
        let mut msg: OutboundMessage =
            serde_json::from_slice(bytes).map_err(|e| Refused::Invalid(e.to_string()))?;
        if let Some(allowed) = &self.allowed_channels {
            let channel = msg.channel.to_lowercase();
            if !allowed.contains(&channel) {
                return Err(Refused::ChannelNotAllowed { channel });
            }
        }
        msg.strip_attribution(&self.allowed_username);
        serde_json::to_vec(&msg).map_err(|e| Refused::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn policy(allowed: Option<&[&str]>) -> OutboundPolicy {
        OutboundPolicy {
            allowed_channels: allowed.map(|a| a.iter().map(|s| s.to_string()).collect()),
            allowed_username: "Helper".into(),
        }
    }

    fn apply(p: &OutboundPolicy, v: Value) -> Result<Value, Refused> {
        p.apply(v.to_string().as_bytes())
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn no_allowlist_passes_every_channel() {
        let out = apply(&policy(None), json!({"channel":"IRC","text":"x"})).unwrap();
        assert_eq!(out, json!({"channel":"IRC","text":"x"}));
    }

    #[test]
    fn allowlist_is_case_insensitive_and_empty_means_none() {
        let p = policy(Some(&["slack"]));
        assert!(apply(&p, json!({"channel":"Slack","text":"x"})).is_ok());
        assert_eq!(
            apply(&p, json!({"channel":"telegram","text":"x"})),
            Err(Refused::ChannelNotAllowed {
                channel: "telegram".into()
            })
        );
        assert!(apply(&policy(Some(&[])), json!({"channel":"slack","text":"x"})).is_err());
    }

    #[test]
    fn attribution_is_stripped() {
        let p = policy(None);
        let out = apply(
            &p,
            json!({"channel":"slack","text":"x","username":"CEO","iconUrl":"u","iconEmoji":":)"}),
        )
        .unwrap();
        assert_eq!(out, json!({"channel":"slack","text":"x"}));
        let out = apply(
            &p,
            json!({"channel":"slack","text":"x","username":"Helper"}),
        )
        .unwrap();
        assert_eq!(out["username"], "Helper");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            policy(None).apply(b"[1,2]"),
            Err(Refused::Invalid(_))
        ));
    }
}
