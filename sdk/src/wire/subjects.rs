//! NATS topics and subjects.
//!
//! A *topic* is what the event envelope's `topic` field carries
//! (`agent.run.completed`); the NATS *subject* is [`PREFIX`] + topic
//! (`sympozium.agent.run.completed`). Per-run topics end in `.<run>`, the
//! AgentRun name, which therefore must not contain `.`, `*`, `>` or
//! whitespace (Kubernetes names cannot).

/// Prefix of every subject.
pub const PREFIX: &str = "sympozium.";

/// `output/result.json` → the run finished (data: the result file).
pub const AGENT_RUN_COMPLETED: &str = "agent.run.completed";
/// Published by the controller when a run fails (data: `{"error":...}`).
pub const AGENT_RUN_FAILED: &str = "agent.run.failed";
/// `output/status.json`.
pub const AGENT_STATUS_UPDATE: &str = "agent.status.update";
/// `output/stream-*`.
pub const AGENT_STREAM_CHUNK: &str = "agent.stream.chunk";
/// `spawn/subagent-request-*`.
pub const AGENT_SUBAGENT_REQUEST: &str = "agent.subagent.request";
/// `spawn/request-*` (delegation).
pub const AGENT_SPAWN_REQUEST: &str = "agent.spawn.request";
/// `tools/exec-request*` (audit only).
pub const TOOL_EXEC_REQUEST: &str = "tool.exec.request";
/// `messages/*`, after the outbound policy.
pub const CHANNEL_MESSAGE_SEND: &str = "channel.message.send";
/// `schedules/*`.
pub const SCHEDULE_UPSERT: &str = "schedule.upsert";
/// Declared upstream for tool approval, never published or consumed.
pub const TOOL_APPROVAL_REQUEST: &str = "tool.approval.request";
/// Declared upstream for tool approval, never published or consumed.
pub const TOOL_APPROVAL_RESPONSE: &str = "tool.approval.response";

/// Stem of `agent.prompt.request.<run>` (`prompts/request-*`).
pub const AGENT_PROMPT_REQUEST_STEM: &str = "agent.prompt.request";
/// Stem of `agent.prompt.result.<run>` (`prompts/result-*`).
pub const AGENT_PROMPT_RESULT_STEM: &str = "agent.prompt.result";
/// Stem of `agent.context.clear.<run>` (`context/clear-*`).
pub const AGENT_CONTEXT_CLEAR_STEM: &str = "agent.context.clear";
/// Stem of `agent.followup.<run>` (subscribed; → `input/followup-<nanos>.json`).
pub const AGENT_FOLLOWUP_STEM: &str = "agent.followup";
/// Stem of `tool.exec.result.<run>` (subscribed; → `tools/exec-result-<nanos>.json`).
pub const TOOL_EXEC_RESULT_STEM: &str = "tool.exec.result";
/// Stem of `agent.delegate.result.<run>` (subscribed; → `spawn/result-<requestId>.json`).
pub const AGENT_DELEGATE_RESULT_STEM: &str = "agent.delegate.result";
/// Stem of `agent.subagent.result.<run>` (subscribed; → `spawn/subagent-result-<batchId>.json`).
pub const AGENT_SUBAGENT_RESULT_STEM: &str = "agent.subagent.result";

/// The NATS subject of a topic: `sympozium.<topic>`.
pub fn subject(topic: &str) -> String {
    format!("{PREFIX}{topic}")
}

/// The topic of a subject, if it carries [`PREFIX`].
pub fn topic_of(subject: &str) -> Option<&str> {
    subject.strip_prefix(PREFIX)
}

/// Every topic the in-Pod world uses, with the run name where the topic is
/// per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic<'a> {
    /// [`AGENT_RUN_COMPLETED`].
    RunCompleted,
    /// [`AGENT_RUN_FAILED`].
    RunFailed,
    /// [`AGENT_STATUS_UPDATE`].
    StatusUpdate,
    /// [`AGENT_STREAM_CHUNK`].
    StreamChunk,
    /// [`AGENT_SUBAGENT_REQUEST`].
    SubagentRequest,
    /// [`AGENT_SPAWN_REQUEST`].
    SpawnRequest,
    /// [`TOOL_EXEC_REQUEST`].
    ToolExecRequest,
    /// [`CHANNEL_MESSAGE_SEND`].
    ChannelMessageSend,
    /// [`SCHEDULE_UPSERT`].
    ScheduleUpsert,
    /// `agent.prompt.request.<run>`.
    PromptRequest(&'a str),
    /// `agent.prompt.result.<run>`.
    PromptResult(&'a str),
    /// `agent.context.clear.<run>`.
    ContextClear(&'a str),
    /// `agent.followup.<run>`.
    Followup(&'a str),
    /// `tool.exec.result.<run>`.
    ToolExecResult(&'a str),
    /// `agent.delegate.result.<run>`.
    DelegateResult(&'a str),
    /// `agent.subagent.result.<run>`.
    SubagentResult(&'a str),
}

/// Fixed topics and their variants, for lookup.
const FIXED: [(&str, Topic<'static>); 9] = [
    (AGENT_RUN_COMPLETED, Topic::RunCompleted),
    (AGENT_RUN_FAILED, Topic::RunFailed),
    (AGENT_STATUS_UPDATE, Topic::StatusUpdate),
    (AGENT_STREAM_CHUNK, Topic::StreamChunk),
    (AGENT_SUBAGENT_REQUEST, Topic::SubagentRequest),
    (AGENT_SPAWN_REQUEST, Topic::SpawnRequest),
    (TOOL_EXEC_REQUEST, Topic::ToolExecRequest),
    (CHANNEL_MESSAGE_SEND, Topic::ChannelMessageSend),
    (SCHEDULE_UPSERT, Topic::ScheduleUpsert),
];

impl<'a> Topic<'a> {
    /// The stem and run of a per-run topic; `None` for fixed topics.
    fn per_run(&self) -> Option<(&'static str, &'a str)> {
        match *self {
            Topic::PromptRequest(r) => Some((AGENT_PROMPT_REQUEST_STEM, r)),
            Topic::PromptResult(r) => Some((AGENT_PROMPT_RESULT_STEM, r)),
            Topic::ContextClear(r) => Some((AGENT_CONTEXT_CLEAR_STEM, r)),
            Topic::Followup(r) => Some((AGENT_FOLLOWUP_STEM, r)),
            Topic::ToolExecResult(r) => Some((TOOL_EXEC_RESULT_STEM, r)),
            Topic::DelegateResult(r) => Some((AGENT_DELEGATE_RESULT_STEM, r)),
            Topic::SubagentResult(r) => Some((AGENT_SUBAGENT_RESULT_STEM, r)),
            _ => None,
        }
    }

    /// The topic string, as the envelope's `topic` field carries it.
    pub fn topic(&self) -> String {
        if let Some((stem, run)) = self.per_run() {
            return format!("{stem}.{run}");
        }
        FIXED
            .iter()
            .find(|(_, t)| t == self)
            .map(|(name, _)| (*name).to_owned())
            .unwrap_or_default()
    }

    /// The NATS subject: `sympozium.<topic>`.
    pub fn subject(&self) -> String {
        subject(&self.topic())
    }

    /// The run name of a per-run topic.
    pub fn run(&self) -> Option<&'a str> {
        self.per_run().map(|(_, run)| run)
    }

    /// Parses a topic (without the prefix). Per-run topics need a non-empty
    /// run name without dots.
    pub fn parse(topic: &'a str) -> Option<Self> {
        if let Some((_, t)) = FIXED.iter().find(|(name, _)| *name == topic) {
            return Some(*t);
        }
        let (stem, run) = topic.rsplit_once('.')?;
        if run.is_empty() {
            return None;
        }
        let make: fn(&'a str) -> Topic<'a> = match stem {
            AGENT_PROMPT_REQUEST_STEM => Topic::PromptRequest,
            AGENT_PROMPT_RESULT_STEM => Topic::PromptResult,
            AGENT_CONTEXT_CLEAR_STEM => Topic::ContextClear,
            AGENT_FOLLOWUP_STEM => Topic::Followup,
            TOOL_EXEC_RESULT_STEM => Topic::ToolExecResult,
            AGENT_DELEGATE_RESULT_STEM => Topic::DelegateResult,
            AGENT_SUBAGENT_RESULT_STEM => Topic::SubagentResult,
            _ => return None,
        };
        Some(make(run))
    }

    /// Parses a subject (`sympozium.<topic>`).
    pub fn from_subject(subject: &'a str) -> Option<Self> {
        Self::parse(topic_of(subject)?)
    }

    /// The topics the ipc-bridge publishes for run `run`, in the order of
    /// the contract's file-to-subject table (§3.3).
    pub fn bridge_published(run: &'a str) -> [Topic<'a>; 11] {
        [
            Topic::RunCompleted,
            Topic::StatusUpdate,
            Topic::StreamChunk,
            Topic::SubagentRequest,
            Topic::SpawnRequest,
            Topic::ToolExecRequest,
            Topic::ChannelMessageSend,
            Topic::ScheduleUpsert,
            Topic::PromptRequest(run),
            Topic::PromptResult(run),
            Topic::ContextClear(run),
        ]
    }

    /// The topics the ipc-bridge subscribes to for run `run` (§3.4).
    pub fn bridge_subscribed(run: &'a str) -> [Topic<'a>; 4] {
        [
            Topic::Followup(run),
            Topic::ToolExecResult(run),
            Topic::DelegateResult(run),
            Topic::SubagentResult(run),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_subjects() {
        let cases = [
            (Topic::RunCompleted, "sympozium.agent.run.completed"),
            (Topic::RunFailed, "sympozium.agent.run.failed"),
            (Topic::StatusUpdate, "sympozium.agent.status.update"),
            (Topic::StreamChunk, "sympozium.agent.stream.chunk"),
            (Topic::SubagentRequest, "sympozium.agent.subagent.request"),
            (Topic::SpawnRequest, "sympozium.agent.spawn.request"),
            (Topic::ToolExecRequest, "sympozium.tool.exec.request"),
            (Topic::ChannelMessageSend, "sympozium.channel.message.send"),
            (Topic::ScheduleUpsert, "sympozium.schedule.upsert"),
        ];
        for (topic, subj) in cases {
            assert_eq!(topic.subject(), subj);
            assert_eq!(Topic::from_subject(subj), Some(topic));
            assert_eq!(topic.run(), None);
        }
    }

    #[test]
    fn per_run_subjects() {
        let run = "run-abc";
        let cases = [
            (
                Topic::PromptRequest(run),
                "sympozium.agent.prompt.request.run-abc",
            ),
            (
                Topic::PromptResult(run),
                "sympozium.agent.prompt.result.run-abc",
            ),
            (
                Topic::ContextClear(run),
                "sympozium.agent.context.clear.run-abc",
            ),
            (Topic::Followup(run), "sympozium.agent.followup.run-abc"),
            (
                Topic::ToolExecResult(run),
                "sympozium.tool.exec.result.run-abc",
            ),
            (
                Topic::DelegateResult(run),
                "sympozium.agent.delegate.result.run-abc",
            ),
            (
                Topic::SubagentResult(run),
                "sympozium.agent.subagent.result.run-abc",
            ),
        ];
        for (topic, subj) in cases {
            assert_eq!(topic.subject(), subj);
            assert_eq!(topic.topic(), &subj[PREFIX.len()..]);
            assert_eq!(Topic::from_subject(subj), Some(topic));
            assert_eq!(topic.run(), Some(run));
        }
    }

    #[test]
    fn rejects_unknown() {
        for bad in [
            "agent.run.completed",
            "sympozium.agent.unknown",
            "sympozium.agent.prompt.request.",
            "sympozium.agent.prompt.request",
            "other.agent.run.completed",
        ] {
            assert_eq!(Topic::from_subject(bad), None, "{bad}");
        }
    }

    #[test]
    fn bridge_sets() {
        let published = Topic::bridge_published("r");
        assert!(published.contains(&Topic::PromptResult("r")));
        assert!(!published.contains(&Topic::RunFailed));
        assert_eq!(
            Topic::bridge_subscribed("r")[2].subject(),
            "sympozium.agent.delegate.result.r"
        );
        assert_eq!(subject("x.y"), "sympozium.x.y");
        assert_eq!(topic_of("sympozium.x.y"), Some("x.y"));
    }
}
