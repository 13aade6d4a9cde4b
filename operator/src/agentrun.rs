//! The AgentRun handlers (contract §8.1, §8.5) on the Kopf-style framework:
//! `create-job` renders and creates the Job and its ConfigMaps and RBAC;
//! the `watch` timer follows the Job to completion, reads the result marker
//! from the `agent` container log, enforces the timeout and cleans up.

use std::sync::Arc;
use std::time::Duration;

use agentpod_kopf::{Context, HandlerError, HandlerResult, Operator};
use agentpod_sdk::envconf::parse_go_duration;
use agentpod_sdk::wire::LogOutcome;
use agentpod_sdk::wire::marker::{
    RESULT_TAIL_LINES, parse_memory_from_logs, parse_result_from_logs,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams, Patch,
    PatchParams, PostParams,
};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::admission::{self, Verdict};
use crate::events::{FailureReason, RunEvents};
use crate::input::{model_endpoint, secret_strings};
use crate::render::{
    DEFAULT_TIMEOUT, Inputs, RUN_LABEL, RenderOptions, post_run_job_name, render, render_post_run,
};
use crate::resources::{Agent, AgentRun, McpServer, SkillPack, SympoziumPolicy};
use crate::validate::{default_tool_policy, validate};

/// The finalizer name (used only if a delete handler is ever registered).
pub const FINALIZER: &str = "agentpod.dev/agentrun";
/// Namespace of shared SkillPacks and MCPServers (§7.3, §7.6).
pub const SYSTEM_NAMESPACE: &str = "sympozium-system";
/// How often a running run is checked.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Phases of §7.1 that this operator sets.
pub mod phase {
    /// Job not created yet.
    pub const PENDING: &str = "Pending";
    /// Job created.
    pub const RUNNING: &str = "Running";
    /// Marker said success.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Error, timeout or no marker.
    pub const FAILED: &str = "Failed";
    /// Marker said skipped.
    pub const SKIPPED: &str = "Skipped";
    /// Agent done, postRun hooks running.
    pub const POST_RUNNING: &str = "PostRunning";
}

/// What the AgentRun handlers share.
struct Shared {
    opts: RenderOptions,
    events: RunEvents,
}

/// The operator for AgentRuns: objects rendered with `opts`, failures
/// published through `events`.
pub fn operator(client: Client, opts: RenderOptions, events: RunEvents) -> Operator<AgentRun> {
    let shared = Arc::new(Shared { opts, events });
    let watch_shared = shared.clone();
    Operator::new(client, FINALIZER)
        .on_create("create-job", move |run, ctx| {
            let shared = shared.clone();
            async move { create_job(run, ctx, &shared).await }
        })
        .on_delete("cleanup-cluster-rbac", cleanup)
        .timer("watch", WATCH_INTERVAL, move |run, ctx| {
            let shared = watch_shared.clone();
            async move { watch(run, ctx, &shared).await }
        })
}

fn now() -> String {
    Timestamp::now().to_string()
}

fn phase_of(run: &AgentRun) -> &str {
    run.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn is_terminal(p: &str) -> bool {
    matches!(p, phase::SUCCEEDED | phase::FAILED | phase::SKIPPED)
}

async fn get_opt<K>(client: &Client, ns: &str, name: &str) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns).get_opt(name).await
}

/// Gathers the run's inputs from the API (Agent, policy, SkillPacks,
/// MCPServers); missing ones are left out.
pub async fn load_inputs(client: &Client, run: &AgentRun) -> Result<Inputs, kube::Error> {
    let ns = run.namespace().unwrap_or_default();
    let agent: Option<Agent> = get_opt(client, &ns, &run.spec.agent_ref).await?;
    let policy = match agent
        .as_ref()
        .map(|a| a.spec.policy_ref.clone())
        .filter(|p| !p.is_empty())
    {
        Some(p) => get_opt::<SympoziumPolicy>(client, &ns, &p).await?,
        None => None,
    };
    let refs = if run.spec.skills.is_empty() {
        agent
            .as_ref()
            .map(|a| a.spec.skills.clone())
            .unwrap_or_default()
    } else {
        run.spec.skills.clone()
    };
    let mut skill_packs = Vec::new();
    for r in &refs {
        // Run namespace first, then the shared catalogue (§7.3).
        let found = match get_opt::<SkillPack>(client, &ns, r.pack_name()).await? {
            Some(p) => Some(p),
            None => get_opt::<SkillPack>(client, SYSTEM_NAMESPACE, r.pack_name()).await?,
        };
        skill_packs.extend(found);
    }
    let mut mcp_servers = Vec::new();
    for s in agent
        .iter()
        .flat_map(|a| &a.spec.mcp_servers)
        .filter(|s| s.url.is_empty())
    {
        let found = match get_opt::<McpServer>(client, &ns, &s.name).await? {
            Some(m) => Some(m),
            None => get_opt::<McpServer>(client, SYSTEM_NAMESPACE, &s.name).await?,
        };
        mcp_servers.extend(found);
    }
    let model = &run.spec.model;
    let provider_headers_secret = if model.provider_headers_secret_ref.is_empty() {
        Default::default()
    } else {
        get_opt::<Secret>(client, &ns, &model.provider_headers_secret_ref)
            .await?
            .as_ref()
            .map(secret_strings)
            .unwrap_or_default()
    };
    let model_endpoint = if model.model_ref.is_empty() {
        None
    } else {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("sympozium.ai", "v1alpha1", "Model"),
            "models",
        );
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ar)
            .get_opt(&model.model_ref)
            .await?
            .and_then(|m| serde_json::to_value(m).ok())
            .as_ref()
            .and_then(model_endpoint)
    };
    Ok(Inputs {
        run: run.clone(),
        agent,
        skill_packs,
        policy,
        mcp_servers,
        provider_headers_secret,
        model_endpoint,
    })
}

async fn create<K>(api: Api<K>, obj: &Value) -> Result<(), HandlerError>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let typed: K = serde_json::from_value(obj.clone())
        .map_err(|e| HandlerError::permanent(format!("rendered object does not parse: {e}")))?;
    match api.create(&PostParams::default(), &typed).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Fails a run before its Job exists.
async fn fail(
    run: &AgentRun,
    ctx: &Context<AgentRun>,
    events: &RunEvents,
    error: String,
    reason: FailureReason,
) {
    warn!(run = %run.name_any(), %error, reason = reason.as_str(), "run failed");
    ctx.patch_status(json!({"phase": phase::FAILED, "error": error, "completedAt": now()}));
    events.run_failed(run, &error, reason).await;
}

async fn create_job(run: Arc<AgentRun>, ctx: Context<AgentRun>, shared: &Shared) -> HandlerResult {
    let (opts, events) = (&shared.opts, &shared.events);
    let p = phase_of(&run);
    if !p.is_empty() && p != phase::PENDING {
        return Ok(None);
    }
    let ns = run.namespace().unwrap_or_default();
    let client = ctx.client.clone();
    let mut inputs = load_inputs(&client, &run).await?;
    if !run.spec.model.model_ref.is_empty() && inputs.model_endpoint.is_none() {
        return Err(HandlerError::temporary(
            format!("Model {} is not ready", run.spec.model.model_ref),
            MEMORY_RETRY,
        ));
    }
    let violations = validate(&inputs);
    if !violations.is_empty() {
        let msg: Vec<String> = violations.iter().map(ToString::to_string).collect();
        let error = format!("invalid run: {}", msg.join("; "));
        fail(&run, &ctx, events, error, FailureReason::Policy).await;
        return Ok(None);
    }
    match admission::check(&client, &inputs).await? {
        Verdict::Admit => {}
        Verdict::Wait { reason, retry } => return Err(HandlerError::temporary(reason, retry)),
        Verdict::Refuse(r) => {
            fail(
                &run,
                &ctx,
                events,
                r.to_string(),
                FailureReason::TokenBudget,
            )
            .await;
            return Ok(None);
        }
    }
    if let Some(tp) = default_tool_policy(&inputs) {
        inputs.run.spec.tool_policy = Some(tp);
    }
    let rendered = match render(&inputs, opts) {
        Ok(r) => r,
        Err(e) => {
            fail(&run, &ctx, events, e.to_string(), FailureReason::Policy).await;
            return Ok(None);
        }
    };
    if uses_memory_server(&inputs) && !memory_ready(&client, &ns, &run.spec.agent_ref).await? {
        let age = run
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| Timestamp::now().duration_since(t.0).as_secs_f64())
            .unwrap_or_default();
        if age > MEMORY_READY_TIMEOUT.as_secs_f64() {
            let error = format!(
                "memory Deployment {}-memory has no ready replica after {}s",
                run.spec.agent_ref,
                MEMORY_READY_TIMEOUT.as_secs()
            );
            fail(&run, &ctx, events, error, FailureReason::Infra).await;
            return Ok(None);
        }
        return Err(HandlerError::temporary(
            format!("waiting for Deployment {}-memory", run.spec.agent_ref),
            MEMORY_RETRY,
        ));
    }
    for obj in &rendered.objects {
        match obj["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => {
                create(Api::<ServiceAccount>::namespaced(client.clone(), &ns), obj).await?
            }
            "ConfigMap" => create(Api::<ConfigMap>::namespaced(client.clone(), &ns), obj).await?,
            "Role" => create(Api::<Role>::namespaced(client.clone(), &ns), obj).await?,
            "RoleBinding" => {
                create(Api::<RoleBinding>::namespaced(client.clone(), &ns), obj).await?
            }
            "ClusterRole" => create(Api::<ClusterRole>::all(client.clone()), obj).await?,
            "ClusterRoleBinding" => {
                create(Api::<ClusterRoleBinding>::all(client.clone()), obj).await?
            }
            "PersistentVolumeClaim" => {
                create(
                    Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns),
                    obj,
                )
                .await?
            }
            "Job" => create(Api::<Job>::namespaced(client.clone(), &ns), obj).await?,
            other => warn!(kind = other, "rendered object of unknown kind skipped"),
        }
    }
    info!(run = %run.name_any(), objects = rendered.objects.len(), "job created");
    ctx.patch_status(
        json!({"phase": phase::RUNNING, "jobName": run.name_any(), "startedAt": now()}),
    );
    Ok(None)
}

/// Whether the run uses the `memory` skill (a memory-server Deployment).
fn uses_memory_server(inputs: &Inputs) -> bool {
    inputs.skills().iter().any(|r| r.skill_pack_ref == "memory")
}

/// Whether Deployment `<agent>-memory` has a ready replica.
async fn memory_ready(client: &Client, ns: &str, agent: &str) -> Result<bool, kube::Error> {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&format!("{agent}-memory"))
        .await?;
    Ok(d.and_then(|d| d.status)
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
        >= 1)
}

fn timeout_of(run: &AgentRun) -> Duration {
    run.spec
        .timeout
        .as_deref()
        .and_then(parse_go_duration)
        .unwrap_or(DEFAULT_TIMEOUT)
}

async fn delete_job(client: &Client, ns: &str, name: &str) -> Result<(), kube::Error> {
    match Api::<Job>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the `agent` container of `pod` has terminated, and its exit
/// code.
fn agent_exit(pod: &Pod) -> Option<(i32, String)> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let t = statuses
        .iter()
        .find(|s| s.name == "agent")?
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    Some((t.exit_code, t.reason.clone().unwrap_or_default()))
}

/// Annotation a gate hook (or a human) sets on the run:
/// `{"action":"approve|reject|rewrite","response"?,"reason"?}`.
pub const GATE_VERDICT_ANNOTATION: &str = "sympozium.ai/gate-verdict";
/// Key of the agent's memory in ConfigMap `<agent>-memory`.
pub const MEMORY_KEY: &str = "MEMORY.md";
/// How long a run waits for its memory Deployment to become ready.
pub const MEMORY_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a run waiting for its memory Deployment (or its `Model`) looks
/// again.
pub const MEMORY_RETRY: Duration = Duration::from_secs(5);

async fn watch(run: Arc<AgentRun>, ctx: Context<AgentRun>, shared: &Shared) -> HandlerResult {
    let (opts, events) = (&shared.opts, &shared.events);
    let p = phase_of(&run).to_owned();
    let ns = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let client = ctx.client.clone();
    if is_terminal(&p) {
        if run.spec.cleanup.as_deref() == Some("delete") {
            delete_job(&client, &ns, &name).await?;
            delete_job(&client, &ns, &post_run_job_name(&name)).await?;
        }
        return Ok(None);
    }
    if p == phase::POST_RUNNING {
        return watch_post_run(&run, &ctx, events).await;
    }
    if p != phase::RUNNING {
        return Ok(None);
    }
    let job = Api::<Job>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&format!("{RUN_LABEL}={name}")))
        .await?;
    let pod = pods.items.first();
    let status = run.status.clone().unwrap_or_default();
    if let Some(pod) = pod
        && status.pod_name.is_none()
    {
        ctx.patch_status(json!({"podName": pod.name_any()}));
    }
    let js = job.as_ref().and_then(|j| j.status.as_ref());
    let succeeded = js.and_then(|s| s.succeeded).unwrap_or(0) > 0;
    let failed = js.and_then(|s| s.failed).unwrap_or(0) > 0;
    let exited = pod.and_then(agent_exit);
    if succeeded || failed || exited.is_some() {
        let logs = match pod {
            Some(pod) => Api::<Pod>::namespaced(client.clone(), &ns)
                .logs(
                    &pod.name_any(),
                    &LogParams {
                        container: Some("agent".into()),
                        tail_lines: Some(RESULT_TAIL_LINES as i64),
                        ..LogParams::default()
                    },
                )
                .await
                .unwrap_or_else(|e| {
                    warn!(run = %name, error = %e, "reading the agent log failed");
                    String::new()
                }),
            None => String::new(),
        };
        let exit = exited.as_ref().map(|(c, _)| *c);
        let clean_exit = succeeded || exit == Some(0);
        let mut patch = match parse_result_from_logs(&logs) {
            LogOutcome::Succeeded {
                response,
                token_usage,
            } => {
                json!({"phase": phase::SUCCEEDED, "result": response, "tokenUsage": token_usage})
            }
            LogOutcome::Failed { error, token_usage } => {
                json!({"phase": phase::FAILED, "error": error, "tokenUsage": token_usage})
            }
            LogOutcome::Skipped { reason } => json!({"phase": phase::SKIPPED, "result": reason}),
            // Upstream (§8.5): without a marker the log is scanned for
            // quota/429 text, which becomes the error even after a clean
            // exit; a clean exit with no such line succeeds with an empty
            // result.
            LogOutcome::NoMarker { hint: None } if clean_exit => {
                json!({"phase": phase::SUCCEEDED, "result": ""})
            }
            LogOutcome::NoMarker { hint: Some(h) } if clean_exit => {
                json!({"phase": phase::FAILED, "error": h})
            }
            LogOutcome::NoMarker { hint } => {
                let base = match &exited {
                    Some((code, reason)) => {
                        format!("agent container exited with code {code} ({reason})")
                    }
                    None => "agent job failed".to_owned(),
                };
                json!({"phase": phase::FAILED, "error": hint.map_or(base.clone(), |h| format!("{base}: {h}"))})
            }
        };
        if let Some(o) = patch.as_object_mut() {
            o.retain(|_, v| !v.is_null());
            if let Some(c) = exit {
                o.insert("exitCode".into(), json!(c));
            }
        }
        if let Some(memory) = parse_memory_from_logs(&logs) {
            write_memory(&client, &ns, &run.spec.agent_ref, &memory).await?;
        }
        // Native sidecars end with the agent; legacy plain sidecars (and the
        // sandbox's sleep) need the Job deleted to stop.
        if !succeeded && !failed {
            delete_job(&client, &ns, &name).await?;
        }
        let outcome = patch["phase"].as_str().unwrap_or_default().to_owned();
        let has_post_run = run
            .spec
            .lifecycle
            .as_ref()
            .is_some_and(|l| !l.post_run.is_empty());
        if has_post_run && outcome != phase::SKIPPED {
            let code = exit.unwrap_or(if outcome == phase::SUCCEEDED { 0 } else { 1 });
            let text = patch["result"]
                .as_str()
                .or(patch["error"].as_str())
                .unwrap_or_default()
                .to_owned();
            start_post_run(&run, &ctx, opts, code, &text).await?;
            patch["phase"] = json!(phase::POST_RUNNING);
            patch["postRunJobName"] = json!(post_run_job_name(&name));
            info!(run = %name, agent_outcome = %outcome, "agent finished; postRun hooks started");
            ctx.patch_status(patch);
            return Ok(None);
        }
        info!(run = %name, phase = %outcome, "run finished");
        finish(&run, &ctx, events, patch, None).await?;
        return Ok(None);
    }
    let started = status
        .started_at
        .as_deref()
        .and_then(|s| s.parse::<Timestamp>().ok());
    if let Some(started) = started {
        let elapsed = Timestamp::now().duration_since(started);
        let limit = timeout_of(&run);
        if elapsed.as_secs_f64() > limit.as_secs_f64() {
            delete_job(&client, &ns, &name).await?;
            info!(run = %name, "run timed out");
            let error = format!(
                "timeout: run exceeded {}",
                crate::render::go_duration(limit)
            );
            finish(
                &run,
                &ctx,
                events,
                json!({"phase": phase::FAILED, "error": error}),
                Some(FailureReason::Timeout),
            )
            .await?;
        }
    }
    Ok(None)
}

/// Records a terminal phase: `completedAt`, cluster RBAC removed, and for
/// `Failed` the `agent.run.failed` event (its reason `reason`, else derived
/// from the error text).
async fn finish(
    run: &AgentRun,
    ctx: &Context<AgentRun>,
    events: &RunEvents,
    mut patch: Value,
    reason: Option<FailureReason>,
) -> Result<(), HandlerError> {
    patch["completedAt"] = json!(now());
    let failed = patch["phase"] == phase::FAILED;
    // A terminal patch without `error` (the postRun path) keeps the agent's.
    let error = patch["error"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| run.status.as_ref().and_then(|s| s.error.clone()))
        .unwrap_or_default();
    ctx.patch_status(patch);
    delete_cluster_rbac(&ctx.client, &run.name_any()).await?;
    if failed {
        let reason = reason.unwrap_or_else(|| FailureReason::classify(&error));
        warn!(run = %run.name_any(), %error, reason = reason.as_str(), "run failed");
        events.run_failed(run, &error, reason).await;
    }
    Ok(())
}

/// Writes the agent's memory (the log's memory marker) to ConfigMap
/// `<agent>-memory`, key [`MEMORY_KEY`], creating it when missing.
async fn write_memory(
    client: &Client,
    ns: &str,
    agent: &str,
    memory: &str,
) -> Result<(), kube::Error> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let name = format!("{agent}-memory");
    let data = json!({"data": {MEMORY_KEY: memory}});
    if api.get_opt(&name).await?.is_some() {
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&data))
            .await?;
    } else {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"sympozium.ai/instance": agent}},
            "data": {MEMORY_KEY: memory},
        }))
        .map_err(kube::Error::SerdeError)?;
        api.create(&PostParams::default(), &cm).await?;
    }
    info!(agent, bytes = memory.len(), "memory written");
    Ok(())
}

/// Deletes the run's ClusterRoles and ClusterRoleBindings (cluster-scoped,
/// so no owner reference can garbage-collect them).
pub async fn delete_cluster_rbac(client: &Client, run: &str) -> Result<(), kube::Error> {
    let lp = ListParams::default().labels(&format!("{RUN_LABEL}={run}"));
    let dp = DeleteParams::background();
    let bindings = Api::<ClusterRoleBinding>::all(client.clone());
    for b in bindings.list(&lp).await?.items {
        ignore_404(bindings.delete(&b.name_any(), &dp).await.map(|_| ()))?;
    }
    let roles = Api::<ClusterRole>::all(client.clone());
    for r in roles.list(&lp).await?.items {
        ignore_404(roles.delete(&r.name_any(), &dp).await.map(|_| ()))?;
    }
    Ok(())
}

fn ignore_404(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}

async fn cleanup(run: Arc<AgentRun>, ctx: Context<AgentRun>) -> HandlerResult {
    delete_cluster_rbac(&ctx.client, &run.name_any()).await?;
    Ok(None)
}

async fn start_post_run(
    run: &AgentRun,
    ctx: &Context<AgentRun>,
    opts: &RenderOptions,
    exit_code: i32,
    result: &str,
) -> Result<(), HandlerError> {
    let ns = run.namespace().unwrap_or_default();
    let inputs = load_inputs(&ctx.client, run).await?;
    let job = render_post_run(&inputs, opts, exit_code, result)
        .map_err(|e| HandlerError::permanent(e.to_string()))?;
    if let Some(job) = job {
        create(Api::<Job>::namespaced(ctx.client.clone(), &ns), &job).await?;
    }
    Ok(())
}

/// What the gate said, from [`GATE_VERDICT_ANNOTATION`].
fn gate_verdict(run: &AgentRun) -> Option<Value> {
    let text = run.annotations().get(GATE_VERDICT_ANNOTATION)?;
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| v["action"].is_string())
}

async fn watch_post_run(
    run: &AgentRun,
    ctx: &Context<AgentRun>,
    events: &RunEvents,
) -> HandlerResult {
    let ns = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let job = Api::<Job>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&post_run_job_name(&name))
        .await?;
    let js = job.as_ref().and_then(|j| j.status.as_ref());
    let succeeded = js.and_then(|s| s.succeeded).unwrap_or(0) > 0;
    let failed = js.and_then(|s| s.failed).unwrap_or(0) > 0;
    let deadline = js.and_then(|s| s.conditions.as_ref()).is_some_and(|c| {
        c.iter()
            .any(|c| c.type_ == "Failed" && c.reason.as_deref() == Some("DeadlineExceeded"))
    });
    let gone = job.is_none();
    if !(succeeded || failed || gone) {
        return Ok(None);
    }
    let status = run.status.clone().unwrap_or_default();
    let agent_phase = if status.error.is_some() {
        phase::FAILED
    } else {
        phase::SUCCEEDED
    };
    let lifecycle = run.spec.lifecycle.clone().unwrap_or_default();
    let has_gate = lifecycle.post_run.iter().any(|h| h.gate);
    if !has_gate {
        if failed || gone {
            warn!(run = %name, "postRun hooks failed; the run keeps the agent's outcome");
        }
        finish(run, ctx, events, json!({"phase": agent_phase}), None).await?;
        return Ok(None);
    }
    let patch = match gate_verdict(run) {
        Some(v) => match v["action"].as_str().unwrap_or_default() {
            "approve" => json!({"phase": agent_phase, "gateVerdict": "approved"}),
            "rewrite" => json!({
                "phase": phase::SUCCEEDED,
                "gateVerdict": "rewritten",
                "result": v["response"].as_str().unwrap_or_default(),
                "error": Value::Null,
            }),
            _ => json!({
                "phase": phase::FAILED,
                "gateVerdict": "rejected",
                "error": format!("rejected by gate: {}", v["reason"].as_str().unwrap_or("no reason given")),
            }),
        },
        None => {
            let verdict = if deadline { "timeout" } else { "error" };
            if lifecycle.gate_default == "allow" {
                json!({"phase": agent_phase, "gateVerdict": "allowed-by-default"})
            } else {
                json!({
                    "phase": phase::FAILED,
                    "gateVerdict": verdict,
                    "error": format!("gate gave no verdict ({verdict}); gateDefault is block"),
                })
            }
        }
    };
    info!(run = %name, verdict = %patch["gateVerdict"], "gate decided");
    let reason = (patch["phase"] == phase::FAILED && patch["gateVerdict"] != "approved")
        .then_some(FailureReason::Policy);
    finish(run, ctx, events, patch, reason).await?;
    Ok(None)
}
