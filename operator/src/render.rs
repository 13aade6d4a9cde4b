//! Pod generation (contract §8) as a pure function: resources in,
//! Kubernetes objects out. No API calls; the operator and `agentpod render`
//! share it.
//!
//! Stricter than upstream by default: every container meets the Pod
//! Security Standards `restricted` profile (read-only root filesystems
//! included) unless the run's policy sets `podSecurity` below `restricted`
//! and a skill sidecar asks for host access; the ServiceAccount token is
//! mounted only when a skill or hook needs RBAC; sidecars are native
//! sidecars unless [`RenderOptions::legacy_sidecars`] is set.

use std::collections::BTreeMap;
use std::time::Duration;

use agentpod_sdk::envconf::parse_go_duration;
use agentpod_sdk::wire::env::{mcp_bridge, skill_sidecar};
use agentpod_sdk::wire::stream_config::DEFAULT_EVENT_BUS_URL;
use agentpod_sdk::wire::{SidecarTool, SidecarToolsManifest, manifest};
use serde_json::{Map, Value, json};

use crate::resources::{Agent, AgentRun, McpServer, RbacRule, SkillPack, SympoziumPolicy};
use crate::task_mode::{self, Task, TaskError};

/// The ServiceAccount agent Pods run as.
pub const SERVICE_ACCOUNT: &str = "sympozium-agent";
/// Volume names a run may not use.
pub const RESERVED_VOLUMES: [&str; 7] = [
    "workspace",
    "ipc",
    "skills",
    "tmp",
    "memory",
    "mcp-config",
    "sidecar-tools",
];
/// Default run timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Timeout of a lifecycle hook without `timeout`.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);
/// Label naming the run on every object.
pub const RUN_LABEL: &str = "sympozium.ai/agent-run";

/// Where our images come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Image registry prefix, e.g. `ghcr.io/agentpod`.
    pub registry: String,
    /// Image tag.
    pub tag: String,
    /// Emit upstream's plain sidecar containers instead of native sidecars.
    pub legacy_sidecars: bool,
    /// Image of the `wait-for-memory` init container.
    pub busybox_image: String,
    /// Image of the `sandbox` container when neither the run nor the
    /// policy names one. agentpod ships no sandbox image, so the default
    /// `<registry>/sandbox:<tag>` must be provided by the operator's
    /// deployment (any image with `sleep`; upstream uses its own
    /// `sandbox` image).
    pub sandbox_image: Option<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            registry: "ghcr.io/agentpod".into(),
            tag: env!("CARGO_PKG_VERSION").into(),
            legacy_sidecars: false,
            busybox_image: "busybox:1.36".into(),
            sandbox_image: None,
        }
    }
}

impl RenderOptions {
    fn image(&self, name: &str) -> String {
        format!(
            "{}/{}:{}",
            self.registry.trim_end_matches('/'),
            name,
            self.tag
        )
    }
}

/// Everything a run's Pod depends on.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The run.
    pub run: AgentRun,
    /// Its Agent, when found.
    pub agent: Option<Agent>,
    /// SkillPacks the run (or its Agent) references.
    pub skill_packs: Vec<SkillPack>,
    /// The Agent's policy.
    pub policy: Option<SympoziumPolicy>,
    /// MCPServer CRs that `Agent.spec.mcpServers` entries without a URL
    /// resolve to.
    pub mcp_servers: Vec<McpServer>,
    /// Data of the `spec.model.providerHeadersSecretRef` Secret, merged
    /// into `MODEL_PROVIDER_HEADERS` (Secret keys win).
    pub provider_headers_secret: BTreeMap<String, String>,
    /// `status.endpoint` of the ready `Model` CR named by
    /// `spec.model.modelRef`.
    pub model_endpoint: Option<String>,
}

impl Inputs {
    /// The run's skill refs: its own, or its Agent's when it has none.
    pub fn skills(&self) -> &[crate::resources::SkillRef] {
        match (&self.agent, self.run.spec.skills.is_empty()) {
            (Some(a), true) => &a.spec.skills,
            _ => &self.run.spec.skills,
        }
    }
}

/// Name of the ConfigMap with the run's inputs (not mounted; for
/// tooling and hooks).
pub fn input_config_map_name(run: &str) -> String {
    format!("{run}-input")
}

/// Name of the workspace PVC shared with postRun hooks.
pub fn workspace_pvc_name(run: &str) -> String {
    format!("{run}-workspace")
}

/// Name of the postRun hooks' Job.
pub fn post_run_job_name(run: &str) -> String {
    format!("{run}-postrun")
}

/// Name of the Role and RoleBinding granting `spec.lifecycle.rbac` to the
/// run's hooks.
pub fn lifecycle_rbac_name(run: &str) -> String {
    format!("sympozium-lifecycle-{run}")
}

/// `spec.lifecycle.rbac`, when non-empty.
fn spec_lifecycle_rbac(run: &AgentRun) -> Option<&[RbacRule]> {
    run.spec
        .lifecycle
        .as_ref()
        .map(|l| l.rbac.as_slice())
        .filter(|r| !r.is_empty())
}

/// Where an RBAC grant applies.
#[derive(Clone, Copy)]
enum RbacScope {
    /// Role and RoleBinding in the run namespace.
    Namespace,
    /// ClusterRole and ClusterRoleBinding.
    Cluster,
}

/// The `wait-for-memory` init container's script: polls
/// `$MEMORY_SERVER_URL/health` every 2 s for 120 s. A constant: no field
/// value is ever part of a shell command.
pub const WAIT_FOR_MEMORY_SCRIPT: &str = "i=0; until wget -q --spider \"$MEMORY_SERVER_URL/health\"; do i=$((i+2)); if [ \"$i\" -ge 120 ]; then echo 'memory server not ready after 120s' >&2; exit 1; fi; sleep 2; done";

/// Longest `AGENT_RESULT` handed to postRun hooks, in bytes.
pub const MAX_HOOK_RESULT_BYTES: usize = 32 * 1024;

/// Why rendering is impossible.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// A required field is missing.
    #[error("AgentRun {run}: {field} is required")]
    Missing {
        /// The run.
        run: String,
        /// The field.
        field: &'static str,
    },
    /// `spec.timeout` (or the Agent's `runTimeout`) is not a duration.
    #[error("AgentRun {run}: {field} {value:?} is not a duration such as 90s, 5m or 1h30m")]
    BadTimeout {
        /// The run.
        run: String,
        /// Where the value came from.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// Server mode is not rendered here.
    #[error("AgentRun {0}: spec.mode server is not supported (task mode only)")]
    ServerMode(String),
    /// `spec.task` is an object this operator cannot run.
    #[error("AgentRun {run}: {}: {source}", source.field())]
    Task {
        /// The run.
        run: String,
        /// What is wrong with the task.
        source: TaskError,
    },
    /// A sidecar-driven task names a tool no attached sidecar declares.
    #[error(
        "AgentRun {run}: sidecar-driven: no attached SkillPack sidecar declares tool {tool:?} (declared: {declared})"
    )]
    NoDriver {
        /// The run.
        run: String,
        /// `spec.task.tool`.
        tool: String,
        /// The tools the sidecars declare, as `<pack>.<tool>`.
        declared: String,
    },
}

impl RenderError {
    /// The field at fault, as a path from the run (`spec.task.tool`).
    pub fn field(&self) -> String {
        match self {
            RenderError::Missing { field, .. } | RenderError::BadTimeout { field, .. } => {
                (*field).to_owned()
            }
            RenderError::ServerMode(_) => "spec.mode".into(),
            RenderError::Task { source, .. } => source.field(),
            RenderError::NoDriver { .. } => "spec.task.tool".into(),
        }
    }

    /// What is wrong with [`RenderError::field`], without the run's name.
    pub fn problem(&self) -> String {
        match self {
            RenderError::Missing { field, .. } => match *field {
                "spec.task" => "missing: a run needs a task (a prompt string, or a {mode, tool, parameters} object)".into(),
                _ => "missing (required)".into(),
            },
            RenderError::BadTimeout { value, .. } => {
                format!("{value:?} is not a duration such as 90s, 5m or 1h30m")
            }
            RenderError::ServerMode(_) => "server is not supported (task mode only)".into(),
            RenderError::Task { source, .. } => source.to_string(),
            RenderError::NoDriver { tool, declared, .. } => format!(
                "no attached SkillPack sidecar declares tool {tool:?} (declared: {declared})"
            ),
        }
    }
}

/// The rendered objects, in the order to apply them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// ServiceAccount, ConfigMaps, Roles, RoleBindings, ClusterRoles,
    /// ClusterRoleBindings, and last the Job.
    pub objects: Vec<Value>,
}

impl Rendered {
    /// The Job.
    pub fn job(&self) -> Option<&Value> {
        self.objects.iter().find(|o| o["kind"] == "Job")
    }

    /// The Pod spec inside the Job.
    pub fn pod_spec(&self) -> Option<&Value> {
        self.job().map(|j| &j["spec"]["template"]["spec"])
    }

    /// The objects as multi-document YAML.
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        let mut out = String::new();
        for o in &self.objects {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(o)?);
        }
        Ok(out)
    }
}

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Formats a duration as Go's `time.Duration.String()` does for whole
/// seconds and above (`10m0s`, `1h30m0s`, `45s`).
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let frac = d.subsec_millis();
    let s = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

fn env(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn restricted_sc() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
    })
}

fn resources(req_cpu: &str, req_mem: &str, lim_cpu: &str, lim_mem: &str) -> Value {
    json!({
        "requests": {"cpu": req_cpu, "memory": req_mem},
        "limits": {"cpu": lim_cpu, "memory": lim_mem},
    })
}

fn mount(name: &str, path: &str, read_only: bool) -> Value {
    let mut m = json!({"name": name, "mountPath": path});
    if read_only {
        m["readOnly"] = json!(true);
    }
    m
}

/// Renders the objects of one AgentRun.
pub fn render(inputs: &Inputs, opts: &RenderOptions) -> Result<Rendered, RenderError> {
    Renderer::new(inputs, opts)?.render()
}

/// The postRun hooks' Job (`<run>-postrun`), or `None` when the run has
/// no postRun hooks. The hooks run in order (all but the last as init
/// containers) on the run's workspace PVC, with `AGENT_EXIT_CODE`,
/// `AGENT_RESULT` (cut to [`MAX_HOOK_RESULT_BYTES`]) and, for the gate
/// hook, `GATE_MODE=true`.
pub fn render_post_run(
    inputs: &Inputs,
    opts: &RenderOptions,
    exit_code: i32,
    result: &str,
) -> Result<Option<Value>, RenderError> {
    Ok(Renderer::new(inputs, opts)?.post_run_job(exit_code, result))
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = s.floor_char_boundary(max);
    &s[..end]
}

struct Renderer<'a> {
    inputs: &'a Inputs,
    opts: &'a RenderOptions,
    run: &'a AgentRun,
    name: String,
    ns: String,
    agent: String,
    timeout: Option<Duration>,
    task: Task,
    driver: Option<Driver>,
}

/// The skill sidecar that drives a sidecar-driven run.
struct Driver {
    /// Its SkillPack.
    pack: String,
    /// `tool.exec + [tool.subcommand]`.
    command: Vec<String>,
    /// `SYMPOZIUM_RUN_CONFIG_JSON`.
    config: String,
}

impl<'a> Renderer<'a> {
    fn new(inputs: &'a Inputs, opts: &'a RenderOptions) -> Result<Self, RenderError> {
        let run = &inputs.run;
        let name = run
            .metadata
            .name
            .clone()
            .ok_or_else(|| RenderError::Missing {
                run: "<unnamed>".into(),
                field: "metadata.name",
            })?;
        let missing = |field| RenderError::Missing {
            run: name.clone(),
            field,
        };
        let task = match run.spec.task.as_ref() {
            None | Some(Value::Null) => return Err(missing("spec.task")),
            Some(t) => task_mode::parse(t).map_err(|source| RenderError::Task {
                run: name.clone(),
                source,
            })?,
        };
        if run.spec.agent_ref.is_empty() {
            return Err(missing("spec.agentRef"));
        }
        if run.spec.mode.as_deref().is_some_and(|m| m == "server") {
            return Err(RenderError::ServerMode(name));
        }
        let timeout_text = match &run.spec.timeout {
            Some(t) => Some(("spec.timeout", t.clone())),
            None => inputs
                .agent
                .as_ref()
                .and_then(|a| nonempty(&a.spec.agents.default.run_timeout))
                .map(|t| ("Agent.spec.agents.default.runTimeout", t.to_owned())),
        };
        let timeout = match timeout_text {
            None => None,
            Some((field, t)) => Some(parse_go_duration(&t).ok_or(RenderError::BadTimeout {
                run: name.clone(),
                field,
                value: t,
            })?),
        };
        let mut this = Self {
            inputs,
            opts,
            run,
            ns: run
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            agent: run.spec.agent_ref.clone(),
            name,
            timeout,
            task,
            driver: None,
        };
        this.driver = this.find_driver()?;
        Ok(this)
    }

    /// For a sidecar-driven task: the first attached sidecar that declares
    /// the task's tool (upstream's choice), with its command override and
    /// run config.
    fn find_driver(&self) -> Result<Option<Driver>, RenderError> {
        let Task::SidecarDriven { tool, parameters } = &self.task else {
            return Ok(None);
        };
        let sidecars = self.sidecars();
        for (_, pack, sc) in &sidecars {
            if let Some(t) = sc.tools.iter().find(|t| &t.name == tool) {
                let mut command = t.exec.clone();
                if !t.subcommand.is_empty() {
                    command.push(t.subcommand.clone());
                }
                return Ok(Some(Driver {
                    pack: pack.metadata.name.clone().unwrap_or_default(),
                    command,
                    config: task_mode::run_config_json(parameters),
                }));
            }
        }
        let declared: Vec<String> = sidecars
            .iter()
            .flat_map(|(_, pack, sc)| {
                let pack = pack.metadata.name.as_deref().unwrap_or_default();
                sc.tools.iter().map(move |t| format!("{pack}.{}", t.name))
            })
            .collect();
        Err(RenderError::NoDriver {
            run: self.name.clone(),
            tool: tool.clone(),
            declared: if declared.is_empty() {
                "none".into()
            } else {
                declared.join(", ")
            },
        })
    }

    /// Whether `pack`'s sidecar drives this run (and so is a primary
    /// container, not a sidecar the kubelet would restart).
    fn is_driver(&self, pack: &SkillPack) -> bool {
        self.driver
            .as_ref()
            .is_some_and(|d| pack.metadata.name.as_deref() == Some(d.pack.as_str()))
    }

    fn agent_spec(&self) -> Option<&crate::resources::AgentSpec> {
        self.inputs.agent.as_ref().map(|a| &a.spec)
    }

    fn labels(&self) -> Value {
        json!({
            RUN_LABEL: self.name,
            "sympozium.ai/instance": self.agent,
            "sympozium.ai/component": "agent-run",
            "sympozium.ai/role": "agent",
            "app.kubernetes.io/part-of": "sympozium",
            "app.kubernetes.io/managed-by": "agentpod-operator",
        })
    }

    fn metadata(&self, name: &str) -> Value {
        let mut m = json!({"name": name, "namespace": self.ns, "labels": self.labels()});
        if let Some(uid) = &self.run.metadata.uid {
            m["ownerReferences"] = json!([{
                "apiVersion": crate::resources::API_VERSION,
                "kind": "AgentRun",
                "name": self.name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }]);
        }
        m
    }

    /// Skill refs: the run's, or the Agent's when the run has none.
    fn skills(&self) -> Vec<&'a crate::resources::SkillRef> {
        self.inputs.skills().iter().collect()
    }

    fn pack(&self, name: &str) -> Option<&'a SkillPack> {
        self.inputs
            .skill_packs
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
    }

    /// Sidecars of the run's packs (server-only ones dropped in task mode).
    fn sidecars(
        &self,
    ) -> Vec<(
        &'a crate::resources::SkillRef,
        &'a SkillPack,
        &'a crate::resources::Sidecar,
    )> {
        self.skills()
            .into_iter()
            .filter_map(|r| {
                let pack = self.pack(r.pack_name())?;
                let sc = pack.spec.sidecar.as_ref()?;
                (!sc.requires_server && !sc.image.is_empty()).then_some((r, pack, sc))
            })
            .collect()
    }

    fn memory_skill(&self) -> bool {
        self.skills().iter().any(|s| s.skill_pack_ref == "memory")
    }

    fn legacy_memory(&self) -> bool {
        self.agent_spec()
            .and_then(|a| a.memory.as_ref())
            .is_some_and(|m| m.enabled)
    }

    fn memory_url(&self) -> String {
        format!("http://{}-memory.{}.svc:8080", self.agent, self.ns)
    }

    fn host_access_allowed(&self) -> bool {
        self.inputs
            .policy
            .as_ref()
            .and_then(|p| p.spec.pod_security.as_deref())
            .is_some_and(|p| p != "restricted")
    }

    /// MCP servers after resolution against MCPServer CRs; unresolvable
    /// and not-ready ones are skipped, as upstream.
    fn mcp_servers(&self) -> Vec<Value> {
        let Some(agent) = self.agent_spec() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in &agent.mcp_servers {
            let cr = self
                .inputs
                .mcp_servers
                .iter()
                .find(|m| m.metadata.name.as_deref() == Some(s.name.as_str()));
            let url = if !s.url.is_empty() {
                s.url.clone()
            } else {
                match cr {
                    Some(m) if m.status.as_ref().is_some_and(|st| st.ready) => {
                        let st_url = m
                            .status
                            .as_ref()
                            .map(|st| st.url.clone())
                            .unwrap_or_default();
                        if !st_url.is_empty() {
                            st_url
                        } else {
                            m.spec.url.clone()
                        }
                    }
                    _ => String::new(),
                }
            };
            if url.is_empty() {
                continue;
            }
            let spec = cr.map(|m| &m.spec);
            let prefix = nonempty(&s.tools_prefix)
                .or_else(|| spec.and_then(|c| nonempty(&c.tools_prefix)))
                .unwrap_or(&s.name);
            let timeout = s
                .timeout
                .or_else(|| spec.and_then(|c| c.timeout))
                .unwrap_or(30);
            let mut e =
                json!({"name": s.name, "url": url, "toolsPrefix": prefix, "timeout": timeout});
            if !s.auth_secret.is_empty() {
                e["auth"] = json!({"type": "bearer", "secretKey": mcp_bridge::auth_var(&s.name)});
            }
            if !s.headers.is_empty() {
                e["headers"] = json!(s.headers);
            }
            let allow = if s.tools_allow.is_empty() {
                spec.map(|c| c.tools_allow.clone()).unwrap_or_default()
            } else {
                s.tools_allow.clone()
            };
            let deny = if s.tools_deny.is_empty() {
                spec.map(|c| c.tools_deny.clone()).unwrap_or_default()
            } else {
                s.tools_deny.clone()
            };
            if !allow.is_empty() {
                e["toolsAllow"] = json!(allow);
            }
            if !deny.is_empty() {
                e["toolsDeny"] = json!(deny);
            }
            out.push(e);
        }
        out
    }

    fn sidecar_tools(&self) -> Vec<SidecarTool> {
        self.sidecars()
            .into_iter()
            .flat_map(|(_, pack, sc)| {
                let target = pack.metadata.name.clone().unwrap_or_default();
                sc.tools.iter().map(move |t| SidecarTool {
                    target: target.clone(),
                    ..t.clone()
                })
            })
            .collect()
    }

    fn task(&self) -> String {
        self.task.prompt().to_owned()
    }

    fn has_post_run(&self) -> bool {
        self.run
            .spec
            .lifecycle
            .as_ref()
            .is_some_and(|l| !l.post_run.is_empty())
    }

    fn needs_token(&self) -> bool {
        self.sidecars()
            .iter()
            .any(|(_, _, sc)| !sc.rbac.is_empty() || !sc.cluster_rbac.is_empty())
            || spec_lifecycle_rbac(self.run).is_some()
    }

    fn render(&self) -> Result<Rendered, RenderError> {
        let mut objects = Vec::new();
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": self.ns},
            "automountServiceAccountToken": false,
        }));
        objects.push(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": self.metadata(&input_config_map_name(&self.name)),
            "data": {
                "task": self.task(),
                "system-prompt": self.run.spec.system_prompt,
                "agent-id": self.run.spec.agent_id,
                "session-key": self.run.spec.session_key,
            },
        }));
        if self.has_post_run() {
            objects.push(json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": self.metadata(&workspace_pvc_name(&self.name)),
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }));
        }
        // Skill ConfigMaps, one per SkillPack, named after it.
        for r in self.skills() {
            if let Some(pack) = self.pack(r.pack_name())
                && !pack.spec.skills.is_empty()
            {
                let mut data = Map::new();
                for s in &pack.spec.skills {
                    let body = if s.description.is_empty() {
                        s.content.clone()
                    } else {
                        format!("# {}\n\n> {}\n\n{}", s.name, s.description, s.content)
                    };
                    data.insert(format!("{}.md", s.name), Value::String(body));
                }
                let mut meta = self.metadata(r.pack_name());
                meta["labels"]["sympozium.ai/skillpack"] = json!(r.pack_name());
                objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}));
            }
        }
        let servers = self.mcp_servers();
        if !servers.is_empty() {
            // serde_yaml cannot fail on a JSON value.
            let yaml = serde_yaml::to_string(&json!({"servers": servers})).unwrap_or_default();
            objects.push(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": self.metadata(&format!("{}-mcp-servers", self.name)),
                "data": {"mcp-servers.yaml": yaml},
            }));
        }
        let tools = self.sidecar_tools();
        if !tools.is_empty() {
            let manifest =
                serde_json::to_string(&SidecarToolsManifest { tools }).unwrap_or_default();
            objects.push(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": self.metadata(&format!("{}-sidecar-tools", self.name)),
                "immutable": true,
                "data": {"sidecar-tools.json": manifest},
            }));
        }
        for (_, pack, sc) in self.sidecars() {
            let pack_name = pack.metadata.name.clone().unwrap_or_default();
            let rbac_name = format!("sympozium-skill-{pack_name}-{}", self.name);
            if !sc.rbac.is_empty() {
                objects.extend(self.rbac(&rbac_name, &sc.rbac, RbacScope::Namespace, None));
            }
            if !sc.cluster_rbac.is_empty() {
                objects.extend(self.rbac(&rbac_name, &sc.cluster_rbac, RbacScope::Cluster, None));
            }
        }
        if let Some(rules) = spec_lifecycle_rbac(self.run) {
            objects.extend(self.rbac(
                &lifecycle_rbac_name(&self.name),
                rules,
                RbacScope::Namespace,
                Some("lifecycle"),
            ));
        }
        objects.push(self.job());
        Ok(Rendered { objects })
    }

    /// A Role and RoleBinding (or ClusterRole and ClusterRoleBinding) named
    /// `name` granting `rules` to [`SERVICE_ACCOUNT`]; `component` replaces
    /// the `sympozium.ai/component` label.
    fn rbac(
        &self,
        name: &str,
        rules: &[RbacRule],
        scope: RbacScope,
        component: Option<&str>,
    ) -> [Value; 2] {
        let rules: Vec<Value> = rules
            .iter()
            .map(|r| json!({"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs}))
            .collect();
        let subjects =
            json!([{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": self.ns}]);
        let mut labels = self.labels();
        if let Some(c) = component {
            labels["sympozium.ai/component"] = json!(c);
        }
        let (kind, meta) = match scope {
            RbacScope::Namespace => {
                let mut meta = self.metadata(name);
                meta["labels"] = labels;
                ("Role", meta)
            }
            // Cluster-scoped: no namespace, no owner (GC cannot follow a
            // namespaced owner); the operator deletes them on cleanup.
            RbacScope::Cluster => ("ClusterRole", json!({"name": name, "labels": labels})),
        };
        let api = "rbac.authorization.k8s.io/v1";
        [
            json!({"apiVersion": api, "kind": kind, "metadata": meta, "rules": rules}),
            json!({"apiVersion": api, "kind": format!("{kind}Binding"), "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
                "subjects": subjects}),
        ]
    }

    fn job(&self) -> Value {
        let deadline = self.timeout.map_or(600, |t| t.as_secs() + 60);
        let labels = self.labels();
        let pod = self.pod_spec();
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.metadata(&self.name),
            "spec": {
                "ttlSecondsAfterFinished": 300,
                "backoffLimit": 0,
                "activeDeadlineSeconds": deadline,
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        })
    }

    /// What every Pod of the run shares: never restarted, the agent service
    /// account (token only when RBAC needs it), and the `restricted` Pod
    /// security context as UID/GID 1000 with `seccomp`.
    fn pod_base(&self, seccomp: Value) -> Value {
        json!({
            "restartPolicy": "Never",
            "serviceAccountName": SERVICE_ACCOUNT,
            "automountServiceAccountToken": self.needs_token(),
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "seccompProfile": seccomp,
            },
        })
    }

    fn pod_spec(&self) -> Value {
        let spec = &self.run.spec;
        let seccomp = spec
            .sandbox
            .as_ref()
            .and_then(|s| s.security_context.as_ref())
            .and_then(|s| s.seccomp_profile.as_ref())
            .filter(|p| p.type_ == "Localhost" || p.type_ == "RuntimeDefault")
            .map(|p| {
                let mut v = json!({"type": p.type_});
                if let Some(l) = &p.localhost_profile {
                    v["localhostProfile"] = json!(l);
                }
                v
            })
            .unwrap_or_else(|| json!({"type": "RuntimeDefault"}));
        let mut pod = self.pod_base(seccomp);
        let mut pull: Vec<Value> = spec.image_pull_secrets.iter().map(|s| json!(s)).collect();
        if let Some(a) = self.agent_spec() {
            pull.extend(a.image_pull_secrets.iter().map(|s| json!(s)));
        }
        if !pull.is_empty() {
            pod["imagePullSecrets"] = json!(pull);
        }
        let node_selector = if spec.model.node_selector.is_empty() {
            self.agent_spec()
                .map(|a| a.agents.default.node_selector.clone())
                .unwrap_or_default()
        } else {
            spec.model.node_selector.clone()
        };
        if !node_selector.is_empty() {
            pod["nodeSelector"] = json!(node_selector);
        }
        let sidecars = self.sidecars();
        if self.host_access_allowed() {
            let ha = |f: fn(&crate::resources::HostAccess) -> bool| {
                sidecars
                    .iter()
                    .any(|(_, _, sc)| sc.host_access.as_ref().is_some_and(|h| h.enabled && f(h)))
            };
            if ha(|h| h.host_network) {
                pod["hostNetwork"] = json!(true);
                pod["dnsPolicy"] = json!("ClusterFirstWithHostNet");
            }
            if ha(|h| h.host_pid) {
                pod["hostPID"] = json!(true);
            }
            if ha(|h| h.privileged || h.run_as_root) {
                // A root or privileged sidecar cannot live under a pod-level
                // runAsNonRoot; move the non-root rule onto the containers.
                pod["securityContext"]["runAsNonRoot"] = Value::Null;
                if let Some(o) = pod["securityContext"].as_object_mut() {
                    o.remove("runAsNonRoot");
                }
            }
        }

        let mut init = Vec::new();
        let mut side = Vec::new();
        if self.memory_skill() {
            // The script is a constant: the URL (built from the run's
            // agentRef and namespace) reaches it as a variable, quoted,
            // never as shell text.
            init.push(json!({
                "name": "wait-for-memory",
                "image": self.opts.busybox_image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", WAIT_FOR_MEMORY_SCRIPT],
                "env": [env(agentpod_sdk::wire::env::runner::MEMORY_SERVER_URL, self.memory_url())],
                "securityContext": restricted_sc(),
                "resources": resources("10m", "16Mi", "50m", "32Mi"),
            }));
        }
        let servers = self.mcp_servers();
        if !servers.is_empty() {
            let mut discover = self.mcp_bridge(&servers);
            discover["name"] = json!("mcp-discover");
            if let Some(e) = discover["env"].as_array_mut() {
                e.push(env(mcp_bridge::MCP_DISCOVER_ONLY, "true"));
            }
            init.push(discover);
        }
        if let Some(l) = &spec.lifecycle {
            for h in &l.pre_run {
                init.push(self.hook(h));
            }
        }

        side.push(self.ipc_bridge());
        if let Some(s) = spec.sandbox.as_ref().filter(|s| s.enabled) {
            side.push(self.sandbox(s));
        }
        if !servers.is_empty() {
            side.push(self.mcp_bridge(&servers));
        }
        let mut containers = vec![self.agent_container()];
        for (r, pack, sc) in &sidecars {
            let c = self.skill_sidecar(r, pack, sc);
            // The driving sidecar is a primary process: it ends the run by
            // writing /ipc/done and exiting, so it must not be a native
            // sidecar (the kubelet would restart it and rerun the workflow).
            if self.is_driver(pack) && !self.opts.legacy_sidecars {
                containers.push(c);
            } else {
                side.push(c);
            }
        }

        if self.opts.legacy_sidecars {
            containers.extend(side);
        } else {
            for mut s in side {
                s["restartPolicy"] = json!("Always");
                if s["name"] == "ipc-bridge" {
                    // The kubelet starts the next container only once this
                    // passes: the agent never writes a file before the
                    // bridge watches for it (an exec request, deleted as
                    // soon as its result is read, would go unpublished).
                    s["startupProbe"] = json!({
                        "exec": {"command": ["/usr/local/bin/ipc-bridge", "--probe"]},
                        "periodSeconds": 1,
                        "failureThreshold": 30,
                    });
                }
                init.push(s);
            }
        }
        if !init.is_empty() {
            pod["initContainers"] = json!(init);
        }
        pod["containers"] = json!(containers);
        pod["volumes"] = json!(self.volumes());
        pod
    }

    fn volumes(&self) -> Vec<Value> {
        let spec = &self.run.spec;
        let workspace = if self.has_post_run() {
            json!({"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_pvc_name(&self.name)}})
        } else {
            json!({"name": "workspace", "emptyDir": {"sizeLimit": "1Gi"}})
        };
        let mut v = vec![
            workspace,
            json!({"name": "ipc", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}),
            json!({"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}),
        ];
        let sources: Vec<Value> = self
            .skills()
            .iter()
            .map(|r| {
                let cm = nonempty(&r.config_map_ref).unwrap_or(r.pack_name());
                json!({"configMap": {"name": cm, "optional": true}})
            })
            .collect();
        if sources.is_empty() {
            v.push(json!({"name": "skills", "emptyDir": {"sizeLimit": "1Mi"}}));
        } else {
            v.push(json!({"name": "skills", "projected": {"sources": sources}}));
        }
        if self.legacy_memory() {
            v.push(json!({"name": "memory", "configMap": {"name": format!("{}-memory", self.agent), "optional": true}}));
        }
        if !self.mcp_servers().is_empty() {
            v.push(json!({"name": "mcp-config", "configMap": {"name": format!("{}-mcp-servers", self.name)}}));
        }
        if !self.sidecar_tools().is_empty() {
            v.push(json!({"name": "sidecar-tools", "configMap": {"name": format!("{}-sidecar-tools", self.name)}}));
        }
        for (_, pack, sc) in self.sidecars() {
            let pack_name = pack.metadata.name.clone().unwrap_or_default();
            if !sc.secret_ref.is_empty() {
                v.push(json!({"name": format!("skill-secret-{pack_name}"), "secret": {"secretName": sc.secret_ref, "optional": true}}));
            }
            if self.host_access_allowed()
                && let Some(h) = sc.host_access.as_ref().filter(|h| h.enabled)
            {
                for (i, m) in h.mounts.iter().enumerate() {
                    v.push(json!({"name": format!("host-{pack_name}-{i}"), "hostPath": {"path": m.host_path}}));
                }
            }
        }
        let mut seen: Vec<String> = v
            .iter()
            .filter_map(|x| x["name"].as_str().map(str::to_owned))
            .collect();
        let extra = spec.volumes.iter().chain(
            self.sidecars()
                .into_iter()
                .flat_map(|(_, _, sc)| sc.volumes.iter()),
        );
        for vol in extra {
            // Reserved and duplicate names are dropped (validate rejects them).
            if RESERVED_VOLUMES.contains(&vol.name.as_str()) || seen.contains(&vol.name) {
                continue;
            }
            seen.push(vol.name.clone());
            v.push(json!(vol));
        }
        v
    }

    fn user_mounts(&self, mounts: &[k8s_openapi::api::core::v1::VolumeMount]) -> Vec<Value> {
        mounts
            .iter()
            .filter(|m| !RESERVED_VOLUMES.contains(&m.name.as_str()))
            .map(|m| json!(m))
            .collect()
    }

    fn agent_container(&self) -> Value {
        use agentpod_sdk::wire::env::runner as r;
        let spec = &self.run.spec;
        let agent = self.agent_spec();
        let mut e = vec![
            env(r::INSTANCE_NAME, &self.agent),
            env(
                r::ENSEMBLE_NAME,
                self.run
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("sympozium.ai/ensemble"))
                    .cloned()
                    .unwrap_or_default(),
            ),
            env(r::AGENT_NAMESPACE, &self.ns),
        ];
        // modelRef: an in-cluster Model serves an OpenAI-compatible API
        // without auth.
        let model_ref = nonempty(&spec.model.model_ref).zip(self.inputs.model_endpoint.as_deref());
        if !spec.model.auth_secret_ref.is_empty() && model_ref.is_none() {
            for k in r::AUTH_SECRET_KEYS {
                e.push(json!({"name": k, "valueFrom": {"secretKeyRef": {"name": spec.model.auth_secret_ref, "key": k, "optional": true}}}));
            }
        }
        let mut headers = spec.model.provider_headers.clone();
        headers.extend(
            self.inputs
                .provider_headers_secret
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        if !headers.is_empty() {
            e.push(env(
                r::MODEL_PROVIDER_HEADERS,
                serde_json::to_string(&headers).unwrap_or_default(),
            ));
        }
        if spec.dry_run {
            e.push(env(r::DRY_RUN, "true"));
        }
        if spec.canary_mode {
            e.push(env(r::CANARY_MODE, "true"));
            e.push(json!({"name": r::HOST_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}));
        }
        if self.legacy_memory() {
            e.push(env(r::MEMORY_ENABLED, "true"));
        }
        if self.memory_skill() {
            e.push(env(r::MEMORY_SERVER_URL, self.memory_url()));
        }
        let task = self.task();
        let (provider, model, base_url) = match model_ref {
            Some((name, endpoint)) => ("openai", name, endpoint),
            None => (
                spec.model.provider.as_str(),
                nonempty(&spec.model.model)
                    .or_else(|| agent.and_then(|a| nonempty(&a.agents.default.model)))
                    .unwrap_or_default(),
                nonempty(&spec.model.base_url)
                    .or_else(|| agent.and_then(|a| nonempty(&a.agents.default.base_url)))
                    .unwrap_or_default(),
            ),
        };
        e.extend([
            env(r::AGENT_RUN_ID, &self.name),
            env(r::AGENT_ID, &spec.agent_id),
            env(r::SESSION_KEY, &spec.session_key),
            env(r::TASK, task),
            env(r::SYSTEM_PROMPT, &spec.system_prompt),
            env(r::MODEL_PROVIDER, provider),
            env(r::MODEL_NAME, model),
            env(r::MODEL_BASE_URL, base_url),
            env(r::THINKING_MODE, &spec.model.thinking),
        ]);
        if let Some(u) = spec.use_context {
            e.push(env(r::USE_CONTEXT, u.to_string()));
        }
        if let Task::SidecarDriven { .. } = self.task {
            // The sidecar drives; the runner only answers /ipc/prompts.
            e.push(env(r::AGENT_MODE, r::AGENT_MODE_PROMPT_SERVER));
        }
        e.push(env(
            r::RUN_TIMEOUT,
            go_duration(self.timeout.unwrap_or(DEFAULT_TIMEOUT)),
        ));
        let obs = agent
            .and_then(|a| a.observability.as_ref())
            .filter(|o| o.enabled);
        if let Some(tp) = self
            .run
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("otel.dev/traceparent"))
        {
            e.push(env(r::TRACEPARENT, tp));
        }
        for (k, v) in &spec.env {
            e.push(env(k, v));
        }
        e.push(env(r::TOOLS_ENABLED, "true"));
        if let Some(p) = &spec.tool_policy {
            if !p.allow.is_empty() {
                e.push(env(r::TOOL_POLICY_ALLOW, p.allow.join(",")));
            }
            if !p.deny.is_empty() {
                e.push(env(r::TOOL_POLICY_DENY, p.deny.join(",")));
            }
        }
        let targets: Vec<String> = self
            .sidecars()
            .iter()
            .filter_map(|(_, p, _)| p.metadata.name.clone())
            .collect();
        if !targets.is_empty() {
            e.push(env(r::SYMPOZIUM_SKILL_TARGETS, targets.join(",")));
        }
        if !self.sidecar_tools().is_empty() {
            e.push(env(
                r::SIDECAR_TOOLS_MANIFEST_PATH,
                manifest::DEFAULT_MANIFEST_PATH,
            ));
        }
        if self.mcp_servers().is_empty() {
            // No mcp-bridge in this Pod: our runner need not wait for an MCP
            // manifest (upstream's runner ignores the variable and waits).
            e.push(env("AGENTPOD_MCP_MANIFEST_WAIT", "0s"));
        }
        if let Some(o) = obs {
            e.extend(self.otel_env(o));
        }
        if agent
            .and_then(|a| a.memory.as_ref())
            .and_then(|m| m.auto_store)
            == Some(false)
            && !spec.env.contains_key(r::MEMORY_AUTO_STORE)
        {
            e.push(env(r::MEMORY_AUTO_STORE, "false"));
        }
        let mut mounts = vec![
            mount("workspace", "/workspace", false),
            mount("skills", "/skills", true),
            mount("ipc", "/ipc", false),
            mount("tmp", "/tmp", false),
        ];
        if self.legacy_memory() {
            mounts.push(mount("memory", "/memory", true));
        }
        if !self.sidecar_tools().is_empty() {
            mounts.push(mount("sidecar-tools", "/config/sidecar-tools", true));
        }
        mounts.extend(self.user_mounts(&spec.volume_mounts));
        json!({
            "name": "agent",
            "image": self.opts.image("agent-runner"),
            "imagePullPolicy": "IfNotPresent",
            "env": e,
            "volumeMounts": mounts,
            "securityContext": restricted_sc(),
            "resources": resources("250m", "512Mi", "1", "1Gi"),
        })
    }

    fn otel_env(&self, o: &crate::resources::Observability) -> Vec<Value> {
        use agentpod_sdk::wire::env::runner as r;
        let mut e = vec![env(r::SYMPOZIUM_OTEL_ENABLED, "true")];
        if !o.otlp_endpoint.is_empty() {
            e.push(env(r::SYMPOZIUM_OTEL_OTLP_ENDPOINT, &o.otlp_endpoint));
            e.push(env(r::OTEL_EXPORTER_OTLP_ENDPOINT, &o.otlp_endpoint));
        }
        if !o.otlp_protocol.is_empty() {
            e.push(env(r::SYMPOZIUM_OTEL_OTLP_PROTOCOL, &o.otlp_protocol));
        }
        e.push(env(
            r::SYMPOZIUM_OTEL_SERVICE_NAME,
            nonempty(&o.service_name).unwrap_or(r::DEFAULT_SERVICE_NAME),
        ));
        let mut attrs = vec![
            format!("sympozium.instance.name={}", self.agent),
            format!("sympozium.agent_run.id={}", self.name),
            format!("k8s.namespace.name={}", self.ns),
        ];
        attrs.extend(
            o.resource_attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        e.push(env(r::SYMPOZIUM_OTEL_RESOURCE_ATTRIBUTES, attrs.join(",")));
        e
    }

    fn ipc_bridge(&self) -> Value {
        use agentpod_sdk::wire::env::ipc_bridge as b;
        let agent = self.agent_spec();
        let mut e = vec![
            env(b::AGENT_RUN_ID, &self.name),
            env(b::INSTANCE_NAME, &self.agent),
            env(b::AGENT_NAMESPACE, &self.ns),
            env(b::EVENT_BUS_URL, DEFAULT_EVENT_BUS_URL),
        ];
        if let Some(d) = agent.and_then(|a| nonempty(&a.display_name)) {
            e.push(env(b::AGENT_DISPLAY_NAME, d));
        }
        if self
            .run
            .spec
            .lifecycle
            .as_ref()
            .is_some_and(|l| l.post_run.iter().any(|h| h.gate))
        {
            e.push(env(b::GATE_SUPPRESS_COMPLETION, "true"));
        }
        let channels: Vec<&str> = agent
            .map(|a| a.channels.iter().map(|c| c.type_.as_str()).collect())
            .unwrap_or_default();
        e.push(env(b::ALLOWED_OUTBOUND_CHANNELS, channels.join(",")));
        if let Some(o) = agent
            .and_then(|a| a.observability.as_ref())
            .filter(|o| o.enabled)
        {
            e.extend(self.otel_env(o));
        }
        json!({
            "name": "ipc-bridge",
            "image": self.opts.image("ipc-bridge"),
            "imagePullPolicy": "IfNotPresent",
            "env": e,
            "volumeMounts": [mount("ipc", "/ipc", false)],
            "securityContext": restricted_sc(),
            "resources": resources("50m", "64Mi", "100m", "128Mi"),
        })
    }

    fn sandbox(&self, s: &crate::resources::SandboxSpec) -> Value {
        let image = nonempty(&s.image)
            .map(str::to_owned)
            .or_else(|| {
                self.inputs
                    .policy
                    .as_ref()
                    .and_then(|p| p.spec.sandbox_policy.as_ref())
                    .and_then(|sp| nonempty(&sp.default_image).map(str::to_owned))
            })
            .or_else(|| self.opts.sandbox_image.clone())
            .unwrap_or_else(|| self.opts.image("sandbox"));
        let res = s
            .resources
            .as_ref()
            .map_or_else(|| resources("100m", "256Mi", "500m", "512Mi"), |r| json!(r));
        json!({
            "name": "sandbox",
            "image": image,
            "imagePullPolicy": nonempty(&s.image_pull_policy).unwrap_or("IfNotPresent"),
            "command": ["sleep", "infinity"],
            "volumeMounts": [mount("workspace", "/workspace", false), mount("tmp", "/tmp", false)],
            "securityContext": restricted_sc(),
            "resources": res,
        })
    }

    fn mcp_bridge(&self, servers: &[Value]) -> Value {
        use mcp_bridge as m;
        let mut e = vec![
            env(m::AGENT_RUN_ID, &self.name),
            env(m::MCP_CONFIG_PATH, m::DEFAULT_CONFIG_PATH),
            env(m::MCP_IPC_PATH, m::DEFAULT_IPC_PATH),
            env(
                m::MCP_MANIFEST_PATH,
                agentpod_sdk::wire::mcp::DEFAULT_MANIFEST_PATH,
            ),
        ];
        if let Some(agent) = self.agent_spec() {
            for s in &agent.mcp_servers {
                let resolved = servers.iter().any(|v| v["name"] == json!(s.name));
                if resolved && !s.auth_secret.is_empty() {
                    e.push(
                        json!({"name": m::auth_var(&s.name), "valueFrom": {"secretKeyRef": {
                        "name": s.auth_secret, "key": nonempty(&s.auth_key).unwrap_or("token")}}}),
                    );
                }
            }
        }
        json!({
            "name": "mcp-bridge",
            "image": self.opts.image("mcp-bridge"),
            "imagePullPolicy": "IfNotPresent",
            "env": e,
            "volumeMounts": [mount("ipc", "/ipc", false), mount("mcp-config", "/config", true)],
            "securityContext": restricted_sc(),
            "resources": resources("100m", "128Mi", "200m", "256Mi"),
        })
    }

    fn skill_sidecar(
        &self,
        r: &crate::resources::SkillRef,
        pack: &SkillPack,
        sc: &crate::resources::Sidecar,
    ) -> Value {
        let pack_name = pack.metadata.name.clone().unwrap_or_default();
        let mut e = vec![env(skill_sidecar::SYMPOZIUM_SKILL_PACK, &pack_name)];
        e.extend(sc.env.iter().map(|v| json!(v)));
        let driver = self.driver.as_ref().filter(|_| self.is_driver(pack));
        if let Some(d) = driver {
            e.push(env(skill_sidecar::SYMPOZIUM_RUN_CONFIG_JSON, &d.config));
        }
        for (k, v) in &r.params {
            e.push(env(&skill_sidecar::skill_param(k), v));
        }
        let mut mounts = vec![mount("ipc", "/ipc", false), mount("tmp", "/tmp", false)];
        if sc.mount_workspace.unwrap_or(true) {
            mounts.push(mount("workspace", "/workspace", false));
        }
        let host = sc
            .host_access
            .as_ref()
            .filter(|h| h.enabled && self.host_access_allowed());
        if let Some(h) = host {
            for (i, m) in h.mounts.iter().enumerate() {
                mounts.push(mount(
                    &format!("host-{pack_name}-{i}"),
                    &m.mount_path,
                    m.read_only.unwrap_or(true),
                ));
            }
        }
        if !sc.secret_ref.is_empty() {
            let path = nonempty(&sc.secret_mount_path)
                .map_or_else(|| format!("/secrets/{}", sc.secret_ref), str::to_owned);
            mounts.push(mount(&format!("skill-secret-{pack_name}"), &path, true));
        }
        mounts.extend(self.user_mounts(&sc.volume_mounts));
        let (cpu, mem) = sc.resources.as_ref().map_or(("100m", "128Mi"), |r| {
            (
                nonempty(&r.cpu).unwrap_or("100m"),
                nonempty(&r.memory).unwrap_or("128Mi"),
            )
        });
        let security = match host {
            Some(h) if h.privileged || h.run_as_root => {
                let mut s = json!({});
                if h.privileged {
                    s = json!({"privileged": true, "allowPrivilegeEscalation": true, "seccompProfile": {"type": "Unconfined"}});
                }
                if h.run_as_root {
                    s["runAsUser"] = json!(0);
                    s["runAsNonRoot"] = json!(false);
                }
                s
            }
            _ => restricted_sc(),
        };
        let mut c = json!({
            "name": format!("skill-{pack_name}"),
            "image": sc.image,
            "imagePullPolicy": nonempty(&sc.image_pull_policy).unwrap_or("IfNotPresent"),
            "env": e,
            "volumeMounts": mounts,
            "securityContext": security,
            "resources": resources(cpu, mem, cpu, mem),
        });
        if let Some(d) = driver {
            c["command"] = json!(d.command);
        } else if !sc.command.is_empty() {
            c["command"] = json!(sc.command);
        }
        if !sc.ports.is_empty() {
            c["ports"] = json!(sc.ports);
        }
        c
    }

    fn post_run_job(&self, exit_code: i32, result: &str) -> Option<Value> {
        use agentpod_sdk::wire::env::hooks;
        let hooks_ = &self.run.spec.lifecycle.as_ref()?.post_run;
        let mut containers: Vec<Value> = hooks_
            .iter()
            .map(|h| {
                let mut extra = vec![
                    env(hooks::AGENT_EXIT_CODE, exit_code.to_string()),
                    env(hooks::AGENT_RESULT, truncate(result, MAX_HOOK_RESULT_BYTES)),
                ];
                if h.gate {
                    extra.push(env(hooks::GATE_MODE, "true"));
                }
                let mut c = self.hook_container(h, "post", extra);
                // The workspace is the run's PVC; no /ipc in this Pod.
                c["volumeMounts"] = json!([
                    mount("workspace", "/workspace", false),
                    mount("tmp", "/tmp", false)
                ]);
                c
            })
            .collect();
        let main = containers.pop()?;
        let deadline: u64 = hooks_
            .iter()
            .map(|h| {
                parse_go_duration(&h.timeout)
                    .unwrap_or(DEFAULT_HOOK_TIMEOUT)
                    .as_secs()
            })
            .sum();
        let mut labels = self.labels();
        labels["sympozium.ai/component"] = json!("post-run");
        let mut pod = self.pod_base(json!({"type": "RuntimeDefault"}));
        pod["containers"] = json!([main]);
        pod["volumes"] = json!([
            {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_pvc_name(&self.name)}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ]);
        if !containers.is_empty() {
            pod["initContainers"] = json!(containers);
        }
        let mut meta = self.metadata(&post_run_job_name(&self.name));
        meta["labels"] = labels.clone();
        Some(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {
                "ttlSecondsAfterFinished": 300,
                "backoffLimit": 0,
                "activeDeadlineSeconds": deadline,
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }))
    }

    fn hook(&self, h: &crate::resources::Hook) -> Value {
        self.hook_container(h, "pre", Vec::new())
    }

    fn hook_container(&self, h: &crate::resources::Hook, prefix: &str, extra: Vec<Value>) -> Value {
        use agentpod_sdk::wire::env::hooks;
        let mut e = vec![
            env(hooks::AGENT_RUN_ID, &self.name),
            env(hooks::INSTANCE_NAME, &self.agent),
            env(hooks::AGENT_NAMESPACE, &self.ns),
        ];
        e.extend(extra);
        e.extend(h.env.iter().map(|v| json!(v)));
        e.extend(self.run.spec.env.iter().map(|(k, v)| env(k, v)));
        let mut c = json!({
            "name": format!("{prefix}-{}", h.name),
            "image": h.image,
            "imagePullPolicy": nonempty(&h.image_pull_policy).unwrap_or("IfNotPresent"),
            "env": e,
            "volumeMounts": [mount("workspace", "/workspace", false), mount("ipc", "/ipc", false), mount("tmp", "/tmp", false)],
            "securityContext": restricted_sc(),
            "resources": resources("100m", "128Mi", "500m", "512Mi"),
        });
        if !h.command.is_empty() {
            c["command"] = json!(h.command);
        }
        if !h.args.is_empty() {
            c["args"] = json!(h.args);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_matches_go() {
        assert_eq!(go_duration(Duration::from_secs(600)), "10m0s");
        assert_eq!(go_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
