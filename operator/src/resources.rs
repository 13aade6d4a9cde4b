//! The `sympozium.ai/v1alpha1` resources that reach a Pod (contract §7),
//! with the fields pod generation reads. Unknown fields are ignored, so
//! full upstream manifests parse.

use std::borrow::Cow;
use std::collections::BTreeMap;

use agentpod_sdk::wire::{SidecarTool, TokenUsage};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{
    ContainerPort, EnvVar, LocalObjectReference, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// API group of every resource here.
pub const GROUP: &str = "sympozium.ai";
/// API version of every resource here.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every resource here.
pub const API_VERSION: &str = "sympozium.ai/v1alpha1";
/// Label naming the Ensemble a run (or Agent) belongs to.
pub const ENSEMBLE_LABEL: &str = "sympozium.ai/ensemble";
/// Label the spawner puts on a sub-agent run: the parent run's name.
pub const PARENT_RUN_LABEL: &str = "sympozium.ai/parent-run";

macro_rules! resource {
    ($(#[$doc:meta])* $ty:ident, $spec:ty, $status:ty, $kind:literal, $plural:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $ty {
            /// Always `sympozium.ai/v1alpha1`.
            #[serde(default)]
            pub api_version: String,
            /// The kind.
            #[serde(default)]
            pub kind: String,
            /// Standard metadata.
            #[serde(default)]
            pub metadata: ObjectMeta,
            /// Desired state.
            #[serde(default)]
            pub spec: $spec,
            /// Observed state.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub status: Option<$status>,
        }

        impl $ty {
            /// The kind, as written in manifests.
            pub const KIND: &'static str = $kind;

            /// A resource with this name, namespace and spec.
            pub fn new(name: &str, namespace: &str, spec: $spec) -> Self {
                Self {
                    api_version: API_VERSION.into(),
                    kind: $kind.into(),
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        namespace: Some(namespace.into()),
                        ..ObjectMeta::default()
                    },
                    spec,
                    status: None,
                }
            }
        }

        impl Resource for $ty {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                GROUP.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                VERSION.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

resource!(
    /// A single agent run (§7.1).
    AgentRun, AgentRunSpec, AgentRunStatus, "AgentRun", "agentruns"
);
resource!(
    /// An agent's configuration (§7.2).
    Agent, AgentSpec, Value, "Agent", "agents"
);
resource!(
    /// Skills, and optionally a sidecar with tools (§7.3).
    SkillPack, SkillPackSpec, Value, "SkillPack", "skillpacks"
);
resource!(
    /// Rules that runs of an Agent must follow (§7.4).
    SympoziumPolicy, PolicySpec, Value, "SympoziumPolicy", "sympoziumpolicies"
);
resource!(
    /// A team of agent personas (§7.7); only its token budget is read here.
    Ensemble, EnsembleSpec, Value, "Ensemble", "ensembles"
);
resource!(
    /// An MCP server reachable from runs (§7.6).
    McpServer, McpServerSpec, McpServerStatus, "MCPServer", "mcpservers"
);

/// `AgentRun.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRunSpec {
    /// The Agent this run belongs to.
    #[serde(default)]
    pub agent_ref: String,
    /// Agent id (`AGENT_ID`).
    #[serde(default)]
    pub agent_id: String,
    /// Session key (`SESSION_KEY`).
    #[serde(default)]
    pub session_key: String,
    /// Extra agent environment (denylist in [`crate::validate`]).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A prompt string, or `{mode, tool, parameters}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Value>,
    /// System prompt.
    #[serde(default)]
    pub system_prompt: String,
    /// Model selection.
    #[serde(default)]
    pub model: ModelSpec,
    /// The optional `sandbox` container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxSpec>,
    /// Skills (SkillPack references).
    #[serde(default)]
    pub skills: Vec<SkillRef>,
    /// Tool allow/deny lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_policy: Option<ToolPolicy>,
    /// Run timeout, a Go duration (`10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `delete` removes the Job and ConfigMaps once the run is finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<String>,
    /// `task` (default) or `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `DRY_RUN`.
    #[serde(default)]
    pub dry_run: bool,
    /// `CANARY_MODE`.
    #[serde(default)]
    pub canary_mode: bool,
    /// Pull secrets for the Pod.
    #[serde(default)]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Hooks around the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// `USE_CONTEXT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_context: Option<bool>,
    /// Extra Pod volumes.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Extra agent mounts.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// The run that spawned this one (sub-agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRef>,
}

/// `AgentRun.spec.parent`: the spawning run of a sub-agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// The parent run.
    #[serde(default)]
    pub run_name: String,
    /// The parent's session.
    #[serde(default)]
    pub session_key: String,
    /// 1 for a direct child.
    #[serde(default)]
    pub spawn_depth: u32,
}

/// `SympoziumPolicy.spec.subagentPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubagentPolicy {
    /// Deepest allowed spawn depth.
    #[serde(default)]
    pub max_depth: Option<u32>,
    /// Most children of one parent running at once.
    #[serde(default)]
    pub max_concurrent: Option<u32>,
}

/// `AgentRun.spec.model`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Provider name.
    #[serde(default)]
    pub provider: String,
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// Base URL.
    #[serde(default, rename = "baseURL")]
    pub base_url: String,
    /// Thinking mode.
    #[serde(default)]
    pub thinking: String,
    /// Secret with provider keys.
    #[serde(default)]
    pub auth_secret_ref: String,
    /// Extra provider headers.
    #[serde(default)]
    pub provider_headers: BTreeMap<String, String>,
    /// Secret whose data is merged into the provider headers (its keys
    /// win over `providerHeaders`).
    #[serde(default)]
    pub provider_headers_secret_ref: String,
    /// A `Model` CR serving the model in-cluster (provider `openai`, base
    /// URL from its `status.endpoint`, no auth).
    #[serde(default)]
    pub model_ref: String,
    /// Pod node selector.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

/// `AgentRun.spec.sandbox`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxSpec {
    /// Whether the container is added.
    #[serde(default)]
    pub enabled: bool,
    /// Image override.
    #[serde(default)]
    pub image: String,
    /// Pull policy.
    #[serde(default)]
    pub image_pull_policy: String,
    /// Security overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SandboxSecurity>,
    /// Resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// `sandbox.securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxSecurity {
    /// Read-only root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// Must run as non-root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Capabilities to drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<Seccomp>,
}

/// Capabilities to drop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Dropped capabilities.
    #[serde(default)]
    pub drop: Vec<String>,
}

/// A seccomp profile type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    /// `RuntimeDefault`, `Localhost` or `Unconfined`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// For `Localhost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

/// A skill reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkillRef {
    /// SkillPack name.
    #[serde(default)]
    pub skill_pack_ref: String,
    /// ConfigMap with the skill files (default: the SkillPack's).
    #[serde(default)]
    pub config_map_ref: String,
    /// `SKILL_<KEY>` env for the sidecar.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

impl SkillRef {
    /// The SkillPack CR name (`skillpack-` prefix stripped).
    pub fn pack_name(&self) -> &str {
        self.skill_pack_ref
            .strip_prefix("skillpack-")
            .unwrap_or(&self.skill_pack_ref)
    }
}

/// Tool allow/deny lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolPolicy {
    /// Only these tools (when non-empty).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Never these tools.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Lifecycle hooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// Init containers before the agent.
    #[serde(default)]
    pub pre_run: Vec<Hook>,
    /// A follow-up Job after the agent.
    #[serde(default)]
    pub post_run: Vec<Hook>,
    /// Rules the hooks need.
    #[serde(default)]
    pub rbac: Vec<RbacRule>,
    /// `block` (default) or `allow`.
    #[serde(default)]
    pub gate_default: String,
}

/// One hook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// Name (container `pre-<name>`).
    #[serde(default)]
    pub name: String,
    /// Image.
    #[serde(default)]
    pub image: String,
    /// Pull policy.
    #[serde(default)]
    pub image_pull_policy: String,
    /// Command.
    #[serde(default)]
    pub command: Vec<String>,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Timeout (Go duration).
    #[serde(default)]
    pub timeout: String,
    /// Whether this postRun hook gates the result.
    #[serde(default)]
    pub gate: bool,
}

/// An RBAC rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RbacRule {
    /// API groups.
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Resources.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Verbs.
    #[serde(default)]
    pub verbs: Vec<String>,
}

/// `AgentRun.status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRunStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Skipped`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The agent Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// The Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// The response, or the skip reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Failure message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Agent container exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Tokens and tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_usage: Option<TokenUsage>,
    /// The postRun hooks' Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_run_job_name: Option<String>,
    /// The gate hook's verdict (`approved`, `rejected`, `rewritten`,
    /// `timeout`, `error`, `allowed-by-default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_verdict: Option<String>,
}

/// `Agent.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Display name (`AGENT_DISPLAY_NAME`).
    #[serde(default)]
    pub display_name: String,
    /// Channels (types feed `ALLOWED_OUTBOUND_CHANNELS`).
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Defaults for runs.
    #[serde(default)]
    pub agents: AgentsBlock,
    /// Skills inherited by runs without their own.
    #[serde(default)]
    pub skills: Vec<SkillRef>,
    /// The SympoziumPolicy (run namespace).
    #[serde(default)]
    pub policy_ref: String,
    /// Legacy memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySpec>,
    /// OpenTelemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<Observability>,
    /// MCP servers.
    #[serde(default)]
    pub mcp_servers: Vec<McpServerRef>,
    /// Pull secrets.
    #[serde(default)]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// A channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// `slack`, `telegram`, ...
    #[serde(default, rename = "type")]
    pub type_: String,
}

/// `Agent.spec.agents`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentsBlock {
    /// Defaults for every run.
    #[serde(default)]
    pub default: AgentDefaults,
}

/// `Agent.spec.agents.default`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentDefaults {
    /// Default model.
    #[serde(default)]
    pub model: String,
    /// Default base URL.
    #[serde(default, rename = "baseURL")]
    pub base_url: String,
    /// Default run timeout.
    #[serde(default)]
    pub run_timeout: String,
    /// Default node selector.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

/// `Agent.spec.memory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemorySpec {
    /// Legacy memory ConfigMap.
    #[serde(default)]
    pub enabled: bool,
    /// `false` sets `MEMORY_AUTO_STORE=false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_store: Option<bool>,
}

/// `Agent.spec.observability`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observability {
    /// On or off.
    #[serde(default)]
    pub enabled: bool,
    /// OTLP endpoint.
    #[serde(default)]
    pub otlp_endpoint: String,
    /// OTLP protocol.
    #[serde(default)]
    pub otlp_protocol: String,
    /// Service name.
    #[serde(default)]
    pub service_name: String,
    /// Extra resource attributes.
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
}

/// `Agent.spec.mcpServers[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McpServerRef {
    /// Server name (also the MCPServer CR name when `url` is empty).
    #[serde(default)]
    pub name: String,
    /// Remote URL.
    #[serde(default)]
    pub url: String,
    /// Tool name prefix.
    #[serde(default)]
    pub tools_prefix: String,
    /// Timeout in seconds.
    #[serde(default)]
    pub timeout: Option<u32>,
    /// Secret with the bearer token.
    #[serde(default)]
    pub auth_secret: String,
    /// Key in that Secret (default `token`).
    #[serde(default)]
    pub auth_key: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Allowed tools.
    #[serde(default)]
    pub tools_allow: Vec<String>,
    /// Denied tools.
    #[serde(default)]
    pub tools_deny: Vec<String>,
}

/// `SkillPack.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkillPackSpec {
    /// Skills (Markdown).
    #[serde(default)]
    pub skills: Vec<Skill>,
    /// The optional sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<Sidecar>,
}

/// One skill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    /// Name (file `<name>.md`).
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Markdown.
    #[serde(default)]
    pub content: String,
}

/// `SkillPack.spec.sidecar`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    /// Image.
    #[serde(default)]
    pub image: String,
    /// Pull policy.
    #[serde(default)]
    pub image_pull_policy: String,
    /// Command (else the image's).
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Mount `/workspace` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_workspace: Option<bool>,
    /// Request = limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<SidecarResources>,
    /// Namespaced rules (Role).
    #[serde(default)]
    pub rbac: Vec<RbacRule>,
    /// Cluster rules (ClusterRole).
    #[serde(default, rename = "clusterRBAC")]
    pub cluster_rbac: Vec<RbacRule>,
    /// Secret mounted into the sidecar.
    #[serde(default)]
    pub secret_ref: String,
    /// Where (default `/secrets/<secretRef>`).
    #[serde(default)]
    pub secret_mount_path: String,
    /// Host access (breaks the `restricted` profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_access: Option<HostAccess>,
    /// Only in server mode.
    #[serde(default)]
    pub requires_server: bool,
    /// Ports.
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    /// Extra volumes.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Extra mounts.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// Native tools.
    #[serde(default)]
    pub tools: Vec<SidecarTool>,
}

/// Sidecar CPU and memory (request = limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SidecarResources {
    /// CPU (default `100m`).
    #[serde(default)]
    pub cpu: String,
    /// Memory (default `128Mi`).
    #[serde(default)]
    pub memory: String,
}

/// `sidecar.hostAccess`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostAccess {
    /// On or off.
    #[serde(default)]
    pub enabled: bool,
    /// `hostNetwork`.
    #[serde(default)]
    pub host_network: bool,
    /// `hostPID`.
    #[serde(default, rename = "hostPID")]
    pub host_pid: bool,
    /// Privileged container.
    #[serde(default)]
    pub privileged: bool,
    /// UID 0.
    #[serde(default)]
    pub run_as_root: bool,
    /// hostPath mounts.
    #[serde(default)]
    pub mounts: Vec<HostMount>,
}

/// One hostPath mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostMount {
    /// Host path.
    #[serde(default)]
    pub host_path: String,
    /// Container path.
    #[serde(default)]
    pub mount_path: String,
    /// Read only (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `SympoziumPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Sandbox rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_policy: Option<SandboxPolicy>,
    /// Tool gating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_gating: Option<ToolGating>,
    /// Feature gates (`code-execution`, `sub-agents`).
    #[serde(default)]
    pub feature_gates: BTreeMap<String, bool>,
    /// Image registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_policy: Option<ImagePolicy>,
    /// Lifecycle RBAC limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<LifecyclePolicy>,
    /// agentpod extension: the Pod Security Standards profile runs must
    /// meet, `restricted` (default), `baseline` or `privileged`. Anything
    /// below `restricted` is the explicit exception that lets skill
    /// sidecars use host access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<String>,
    /// Sub-agent limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subagent_policy: Option<SubagentPolicy>,
}

/// `sandboxPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxPolicy {
    /// Runs must enable the sandbox.
    #[serde(default)]
    pub required: bool,
    /// Default sandbox image.
    #[serde(default)]
    pub default_image: String,
    /// hostPath mounts allowed.
    #[serde(default)]
    pub allow_host_mounts: bool,
}

/// `toolGating`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolGating {
    /// `allow`, `deny` or `ask` (ignored, as upstream).
    #[serde(default)]
    pub default_action: String,
    /// Per-tool rules.
    #[serde(default)]
    pub rules: Vec<ToolRule>,
}

/// A tool gating rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolRule {
    /// Tool name.
    #[serde(default)]
    pub tool: String,
    /// `allow`, `deny` or `ask`.
    #[serde(default)]
    pub action: String,
}

/// `imagePolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicy {
    /// Registry prefixes images must start with (empty: any).
    #[serde(default)]
    pub allowed_registries: Vec<String>,
}

/// `lifecyclePolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicy {
    /// Resources hooks may not be granted.
    #[serde(default)]
    pub denied_resources: Vec<String>,
}

/// `MCPServer.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McpServerSpec {
    /// `stdio` or `http`.
    #[serde(default)]
    pub transport_type: String,
    /// External URL.
    #[serde(default)]
    pub url: String,
    /// Default tool prefix.
    #[serde(default)]
    pub tools_prefix: String,
    /// Default timeout (seconds).
    #[serde(default)]
    pub timeout: Option<u32>,
    /// Default allowed tools.
    #[serde(default)]
    pub tools_allow: Vec<String>,
    /// Default denied tools.
    #[serde(default)]
    pub tools_deny: Vec<String>,
}

/// `MCPServer.status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpServerStatus {
    /// Whether the server is up.
    #[serde(default)]
    pub ready: bool,
    /// Its URL.
    #[serde(default)]
    pub url: String,
}

/// `Ensemble.spec`, the part pod generation and admission read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnsembleSpec {
    /// Shared memory, whose membrane carries the token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_memory: Option<SharedMemory>,
}

/// `Ensemble.spec.sharedMemory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SharedMemory {
    /// The membrane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membrane: Option<Membrane>,
}

/// `Ensemble.spec.sharedMemory.membrane`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membrane {
    /// Token budget of all the ensemble's runs together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<TokenBudget>,
}

/// `membrane.tokenBudget`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenBudget {
    /// Tokens all runs may use together (0 or absent: no limit).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Tokens one run may use (not checked before the Pod exists).
    #[serde(default)]
    pub max_tokens_per_run: Option<i64>,
    /// `halt` (default here) refuses new runs once the budget is spent;
    /// `warn` only logs.
    #[serde(default)]
    pub action: String,
}

impl Ensemble {
    /// The token budget, when one is set.
    pub fn token_budget(&self) -> Option<&TokenBudget> {
        self.spec
            .shared_memory
            .as_ref()?
            .membrane
            .as_ref()?
            .token_budget
            .as_ref()
    }
}
