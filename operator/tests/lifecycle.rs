//! AgentRun lifecycle through kube's client over an in-process API
//! stand-in (`operator/kopf/tests/support/fake_api.rs`; no kube-apiserver
//! can be installed on these machines). The Job controller and kubelet are
//! played by the test: it patches Job status and sets the agent log.

#[path = "../kopf/tests/support/fake_api.rs"]
mod fake_api;

use std::sync::Arc;

use agentpod_operator::agentrun::operator;
use agentpod_operator::events::RunEvents;
use agentpod_operator::render::RenderOptions;
use agentpod_operator::resources::AgentRun;
use fake_api::FakeApi;
use serde_json::{Value, json};

const RUN: &str = "/apis/sympozium.ai/v1alpha1/namespaces/demo/agentruns/r1";
const JOB: &str = "/apis/batch/v1/namespaces/demo/jobs/r1";
const POD: &str = "/api/v1/namespaces/demo/pods/r1-abc";

fn setup(timeout: &str) -> FakeApi {
    let fake = FakeApi::default();
    fake.put("/apis/sympozium.ai/v1alpha1/namespaces/demo/agents/a", json!({
        "apiVersion": "sympozium.ai/v1alpha1", "kind": "Agent", "metadata": {"name": "a", "namespace": "demo"}, "spec": {}}));
    fake.put(RUN, json!({"apiVersion": "sympozium.ai/v1alpha1", "kind": "AgentRun",
        "metadata": {"name": "r1", "namespace": "demo"},
        "spec": {"agentRef": "a", "task": "hi", "model": {"provider": "openai", "model": "m"}, "timeout": timeout}}));
    fake
}

/// The AgentRun operator with the default render options and no event bus.
fn plain_operator(fake: &FakeApi) -> agentpod_kopf::Operator<AgentRun> {
    operator(
        fake.client(),
        RenderOptions::default(),
        RunEvents::disabled(),
    )
}

/// One reconcile of the run as the stand-in holds it.
async fn pass(
    op: &agentpod_kopf::Operator<AgentRun>,
    fake: &FakeApi,
) -> kube::runtime::controller::Action {
    let run: AgentRun = serde_json::from_value(fake.get(RUN).expect("run")).expect("parse");
    op.reconcile(Arc::new(run)).await.expect("reconcile")
}

fn status(fake: &FakeApi) -> Value {
    fake.get(RUN).expect("run")["status"].clone()
}

/// Creates the Job, then plays the Pod finishing with `log`.
async fn finish(fake: &FakeApi, log: &str, job_status: Value) -> Value {
    let op = plain_operator(fake);
    pass(&op, fake).await;
    assert_eq!(status(fake)["phase"], "Running");
    assert!(fake.get(JOB).is_some(), "job created");
    assert!(
        fake.get("/api/v1/namespaces/demo/serviceaccounts/sympozium-agent")
            .is_some()
    );
    fake.put(POD, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r1-abc", "namespace": "demo", "labels": {"sympozium.ai/agent-run": "r1"}}}));
    fake.set_log(POD, log);
    fake.patch(JOB, json!({"status": job_status}));
    // A new operator instance, so the watch timer is due immediately.
    let op = plain_operator(fake);
    pass(&op, fake).await;
    status(fake)
}

#[tokio::test]
async fn success_records_result_and_tokens() {
    let fake = setup("5m");
    let s = finish(&fake, "noise\n__SYMPOZIUM_RESULT__{\"status\":\"success\",\"response\":\"hello\",\"metrics\":{\"inputTokens\":10,\"outputTokens\":5,\"toolCalls\":1,\"durationMs\":7}}__SYMPOZIUM_END__\n", json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Succeeded");
    assert_eq!(s["result"], "hello");
    assert_eq!(s["tokenUsage"]["totalTokens"], 15);
    assert_eq!(s["podName"], "r1-abc");
}

#[tokio::test]
async fn error_marker_fails_the_run() {
    let fake = setup("5m");
    let s = finish(&fake, "__SYMPOZIUM_RESULT__{\"status\":\"error\",\"error\":\"model exploded\"}__SYMPOZIUM_END__\n", json!({"failed": 1})).await;
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["error"], "model exploded");
}

#[tokio::test]
async fn skipped_marker_skips() {
    let fake = setup("5m");
    let s = finish(&fake, "__SYMPOZIUM_RESULT__{\"status\":\"skipped\",\"response\":\"nothing to do\"}__SYMPOZIUM_END__\n", json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Skipped");
    assert_eq!(s["result"], "nothing to do");
}

#[tokio::test]
async fn failed_job_without_marker_reports_the_quota_line() {
    let fake = setup("5m");
    let s = finish(
        &fake,
        "calling model\nError: 429 Too Many Requests\n",
        json!({"failed": 1}),
    )
    .await;
    assert_eq!(s["phase"], "Failed");
    let e = s["error"].as_str().expect("error");
    assert!(e.contains("429 Too Many Requests"), "{e}");
}

#[tokio::test]
async fn timeout_deletes_the_job_and_fails() {
    let fake = setup("1s");
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    fake.patch(
        RUN,
        json!({"status": {"startedAt": "2020-01-01T00:00:00Z"}}),
    );
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    let s = status(&fake);
    assert_eq!(s["phase"], "Failed");
    assert!(s["error"].as_str().expect("error").starts_with("timeout"));
    assert!(fake.get(JOB).is_none(), "job deleted");
}

#[tokio::test]
async fn invalid_run_fails_without_a_job() {
    let fake = setup("5m");
    fake.patch(RUN, json!({"spec": {"env": {"LD_PRELOAD": "/evil.so"}}}));
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    let s = status(&fake);
    assert_eq!(s["phase"], "Failed");
    assert!(
        s["error"]
            .as_str()
            .expect("e")
            .contains("spec.env.LD_PRELOAD")
    );
    assert!(fake.get(JOB).is_none());
}

const POST_JOB: &str = "/apis/batch/v1/namespaces/demo/jobs/r1-postrun";
const SUCCESS_LOG: &str =
    "__SYMPOZIUM_RESULT__{\"status\":\"success\",\"response\":\"draft\"}__SYMPOZIUM_END__\n";

/// A run with postRun hooks (`gate` on the second when `gate_default` is
/// given), finished by the agent: returns the fake in phase PostRunning.
async fn post_running(gate_default: Option<&str>) -> FakeApi {
    let fake = setup("5m");
    let mut hooks = vec![json!({"name": "format", "image": "ghcr.io/example/fmt:1"})];
    if gate_default.is_some() {
        hooks.push(json!({"name": "review", "image": "ghcr.io/example/gate:1", "gate": true}));
    }
    fake.patch(
        RUN,
        json!({"spec": {"lifecycle": {"postRun": hooks, "gateDefault": gate_default.unwrap_or_default()}}}),
    );
    let s = finish(&fake, SUCCESS_LOG, json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "PostRunning");
    assert_eq!(s["result"], "draft");
    assert_eq!(s["postRunJobName"], "r1-postrun");
    assert!(
        fake.get("/api/v1/namespaces/demo/persistentvolumeclaims/r1-workspace")
            .is_some(),
        "workspace PVC shared with the hooks"
    );
    let job = fake.get(POST_JOB).expect("postRun job");
    let env = job["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains("AGENT_EXIT_CODE") && env.contains("\"draft\""),
        "{env}"
    );
    assert_eq!(env.contains("GATE_MODE"), gate_default.is_some(), "{env}");
    fake
}

async fn post_run_done(fake: &FakeApi, job_status: Value) -> Value {
    fake.patch(POST_JOB, json!({"status": job_status}));
    let op = plain_operator(fake);
    pass(&op, fake).await;
    status(fake)
}

#[tokio::test]
async fn post_run_hooks_run_after_the_agent_and_keep_its_result() {
    let fake = post_running(None).await;
    let s = post_run_done(&fake, json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Succeeded");
    assert_eq!(s["result"], "draft");
    assert!(s["gateVerdict"].is_null());
}

#[tokio::test]
async fn gate_without_verdict_blocks_by_default() {
    let fake = post_running(Some("block")).await;
    let s = post_run_done(&fake, json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["gateVerdict"], "error");
}

#[tokio::test]
async fn gate_without_verdict_allows_with_gate_default_allow() {
    let fake = post_running(Some("allow")).await;
    let s = post_run_done(&fake, json!({"failed": 1})).await;
    assert_eq!(s["phase"], "Succeeded");
    assert_eq!(s["gateVerdict"], "allowed-by-default");
    assert_eq!(s["result"], "draft");
}

#[tokio::test]
async fn gate_verdicts_reject_and_rewrite() {
    let fake = post_running(Some("block")).await;
    fake.patch(RUN, json!({"metadata": {"annotations": {"sympozium.ai/gate-verdict": "{\"action\":\"reject\",\"reason\":\"leaks a secret\"}"}}}));
    let s = post_run_done(&fake, json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["gateVerdict"], "rejected");
    assert!(
        s["error"]
            .as_str()
            .expect("error")
            .contains("leaks a secret")
    );

    let fake = post_running(Some("block")).await;
    fake.patch(RUN, json!({"metadata": {"annotations": {"sympozium.ai/gate-verdict": "{\"action\":\"rewrite\",\"response\":\"redacted\"}"}}}));
    let s = post_run_done(&fake, json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Succeeded");
    assert_eq!(s["gateVerdict"], "rewritten");
    assert_eq!(s["result"], "redacted");
}

#[tokio::test]
async fn memory_marker_is_written_to_the_agent_memory_config_map() {
    let fake = setup("5m");
    let log = format!("__SYMPOZIUM_MEMORY__\n- likes tea\n__SYMPOZIUM_MEMORY_END__\n{SUCCESS_LOG}");
    let s = finish(&fake, &log, json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Succeeded");
    let cm = fake
        .get("/api/v1/namespaces/demo/configmaps/a-memory")
        .expect("memory ConfigMap");
    assert_eq!(cm["data"]["MEMORY.md"], "- likes tea");
}

#[tokio::test]
async fn input_config_map_holds_the_task() {
    let fake = setup("5m");
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    let cm = fake
        .get("/api/v1/namespaces/demo/configmaps/r1-input")
        .expect("input ConfigMap");
    assert_eq!(cm["data"]["task"], "hi");
    assert_eq!(cm["data"]["session-key"], "");
}

#[tokio::test]
async fn exit_zero_without_marker_fails_on_a_quota_line() {
    let fake = setup("5m");
    let s = finish(
        &fake,
        "quota exceeded for model m\n",
        json!({"succeeded": 1}),
    )
    .await;
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["error"], "quota exceeded for model m");
    let fake = setup("5m");
    let s = finish(&fake, "bye\n", json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Succeeded");
    assert_eq!(s["result"], "");
}

const CLUSTER_ROLE: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles/sympozium-skill-k8s-r1";
const CLUSTER_BINDING: &str =
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/sympozium-skill-k8s-r1";

fn with_cluster_rbac_skill(fake: &FakeApi) {
    fake.put("/apis/sympozium.ai/v1alpha1/namespaces/demo/skillpacks/k8s", json!({
        "apiVersion": "sympozium.ai/v1alpha1", "kind": "SkillPack", "metadata": {"name": "k8s", "namespace": "demo"},
        "spec": {"sidecar": {"image": "ghcr.io/example/kubectl:1", "clusterRBAC": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}}}));
    fake.patch(RUN, json!({"spec": {"skills": [{"skillPackRef": "k8s"}]}}));
}

#[tokio::test]
async fn cluster_rbac_is_deleted_when_the_run_ends() {
    let fake = setup("5m");
    with_cluster_rbac_skill(&fake);
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    assert!(fake.get(CLUSTER_ROLE).is_some(), "ClusterRole created");
    assert!(fake.get(CLUSTER_BINDING).is_some(), "binding created");
    let s = finish(&fake, SUCCESS_LOG, json!({"succeeded": 1})).await;
    assert_eq!(s["phase"], "Succeeded");
    assert!(fake.get(CLUSTER_ROLE).is_none(), "ClusterRole deleted");
    assert!(fake.get(CLUSTER_BINDING).is_none(), "binding deleted");
}

#[tokio::test]
async fn cluster_rbac_is_deleted_when_the_run_is_deleted() {
    let fake = setup("5m");
    with_cluster_rbac_skill(&fake);
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    assert!(fake.get(CLUSTER_ROLE).is_some());
    // kubectl delete: the finalizer holds the run until the handler ran.
    fake.patch(
        RUN,
        json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
    );
    pass(&op, &fake).await;
    assert!(fake.get(CLUSTER_ROLE).is_none(), "ClusterRole deleted");
    assert!(fake.get(CLUSTER_BINDING).is_none(), "binding deleted");
    assert!(fake.get(RUN).is_none(), "finalizer released");
}

// ---- the agent.run.failed event (contract §8.5) over a real nats-server ----

mod events {
    use super::*;
    use agentpod_sdk::wire::Event;
    use agentpod_test_support::NatsServer;
    use futures::StreamExt;
    use std::time::{Duration, Instant};

    const SUBJECT: &str = "sympozium.agent.run.failed";

    async fn subscriber(nats: &NatsServer) -> (async_nats::Client, async_nats::Subscriber) {
        let client = nats.connect().await;
        let sub = client.subscribe(SUBJECT).await.expect("subscribe");
        // The subscription is registered on the server once flush returns.
        client.flush().await.expect("flush");
        (client, sub)
    }

    async fn next_event(sub: &mut async_nats::Subscriber) -> Event {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("an agent.run.failed event within 10 s")
            .expect("subscription open");
        Event::from_slice(&msg.payload).expect("envelope")
    }

    fn events_to(nats: &NatsServer) -> RunEvents {
        RunEvents::new(nats.url(), Duration::from_secs(5))
    }

    /// Creates the Job, then plays the Pod ending with `log`, all with an
    /// operator that publishes to `events`.
    async fn finish_with(fake: &FakeApi, events: &RunEvents, log: &str, job_status: Value) {
        let op = operator(fake.client(), RenderOptions::default(), events.clone());
        pass(&op, fake).await;
        fake.put(POD, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r1-abc", "namespace": "demo", "labels": {"sympozium.ai/agent-run": "r1"}}}));
        fake.set_log(POD, log);
        fake.patch(JOB, json!({"status": job_status}));
        let op = operator(fake.client(), RenderOptions::default(), events.clone());
        pass(&op, fake).await;
    }

    #[tokio::test]
    async fn error_marker_publishes_run_failed_with_the_contract_payload() {
        let nats = NatsServer::start();
        let (_c, mut sub) = subscriber(&nats).await;
        let fake = setup("5m");
        let log = "__SYMPOZIUM_RESULT__{\"status\":\"error\",\"error\":\"model exploded\"}__SYMPOZIUM_END__\n";
        finish_with(&fake, &events_to(&nats), log, json!({"failed": 1})).await;
        assert_eq!(status(&fake)["phase"], "Failed");
        let ev = next_event(&mut sub).await;
        assert_eq!(ev.topic, "agent.run.failed");
        assert_eq!(ev.metadata["agentRunID"], "r1");
        assert_eq!(ev.metadata["instanceName"], "a");
        assert_eq!(ev.metadata["reason"], "other");
        assert_eq!(ev.metadata.len(), 3, "{:?}", ev.metadata);
        let data: Value = ev.data_as().expect("data");
        assert_eq!(data, json!({"error": "model exploded"}));
    }

    #[tokio::test]
    async fn timeout_and_missing_marker_publish_with_their_reasons() {
        let nats = NatsServer::start();
        let (_c, mut sub) = subscriber(&nats).await;
        let events = events_to(&nats);

        let fake = setup("1s");
        let op = operator(fake.client(), RenderOptions::default(), events.clone());
        pass(&op, &fake).await;
        fake.patch(
            RUN,
            json!({"status": {"startedAt": "2020-01-01T00:00:00Z"}}),
        );
        let op = operator(fake.client(), RenderOptions::default(), events.clone());
        pass(&op, &fake).await;
        let ev = next_event(&mut sub).await;
        assert_eq!(ev.metadata["reason"], "timeout");
        let data: Value = ev.data_as().expect("data");
        assert!(
            data["error"]
                .as_str()
                .expect("error")
                .starts_with("timeout")
        );

        let fake = setup("5m");
        finish_with(
            &fake,
            &events,
            "Error: 429 Too Many Requests\n",
            json!({"failed": 1}),
        )
        .await;
        let ev = next_event(&mut sub).await;
        assert_eq!(ev.metadata["reason"], "llm_error");
    }

    #[tokio::test]
    async fn invalid_run_publishes_before_any_job() {
        let nats = NatsServer::start();
        let (_c, mut sub) = subscriber(&nats).await;
        let fake = setup("5m");
        fake.patch(RUN, json!({"spec": {"env": {"LD_PRELOAD": "/evil.so"}}}));
        let op = operator(fake.client(), RenderOptions::default(), events_to(&nats));
        pass(&op, &fake).await;
        assert!(fake.get(JOB).is_none());
        let ev = next_event(&mut sub).await;
        assert_eq!(ev.metadata["reason"], "policy");
        let data: Value = ev.data_as().expect("data");
        assert!(
            data["error"]
                .as_str()
                .expect("e")
                .contains("spec.env.LD_PRELOAD")
        );
    }

    #[tokio::test]
    async fn a_successful_run_publishes_nothing() {
        let nats = NatsServer::start();
        let (_c, mut sub) = subscriber(&nats).await;
        let fake = setup("5m");
        finish_with(
            &fake,
            &events_to(&nats),
            SUCCESS_LOG,
            json!({"succeeded": 1}),
        )
        .await;
        assert_eq!(status(&fake)["phase"], "Succeeded");
        // The operator flushed before reconcile returned; nothing can be in flight.
        let got = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
        assert!(got.is_err(), "unexpected event: {got:?}");
    }

    #[tokio::test]
    async fn a_down_or_silent_bus_neither_blocks_nor_fails_reconciliation() {
        // Nothing listens on a released port; a bound socket that never
        // answers stalls the NATS handshake.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed_url = format!("nats://{}", closed.local_addr().expect("addr"));
        drop(closed);
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let silent_url = format!("nats://{}", silent.local_addr().expect("addr"));
        for url in [closed_url, silent_url] {
            let fake = setup("5m");
            fake.patch(RUN, json!({"spec": {"env": {"LD_PRELOAD": "/evil.so"}}}));
            let events = RunEvents::new(url.clone(), Duration::from_millis(300));
            let op = operator(fake.client(), RenderOptions::default(), events);
            let started = Instant::now();
            pass(&op, &fake).await;
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{url}: reconcile took {:?}",
                started.elapsed()
            );
            assert_eq!(status(&fake)["phase"], "Failed", "{url}");
        }
        drop(silent);
    }
}

// ---- pre-pod steps (contract §8.1) ----

/// One reconcile pass that returns the framework's requeue decision.
async fn pass_action(fake: &FakeApi) -> kube::runtime::controller::Action {
    pass(&plain_operator(fake), fake).await
}

fn requeue_5s() -> kube::runtime::controller::Action {
    kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(5))
}

/// Whether the create handler is waiting to retry (Kopf progress record).
fn retrying(fake: &FakeApi) -> bool {
    let run = fake.get(RUN).expect("run");
    let p = &run["metadata"]["annotations"]["kopf.agentpod.dev/progress.create-job"];
    p.as_str()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .is_some_and(|p| p["retries"].as_u64().unwrap_or(0) > 0)
}

/// Forgets the create handler's retry delay (as if 5 s had passed).
fn retry_now(fake: &FakeApi) {
    fake.patch(
        RUN,
        json!({"metadata": {"annotations": {"kopf.agentpod.dev/progress.create-job": null}}}),
    );
}

fn agent_env(fake: &FakeApi) -> Vec<Value> {
    fake.get(JOB).expect("job")["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .clone()
}

fn env_value(env: &[Value], name: &str) -> Option<String> {
    env.iter()
        .rev()
        .find(|e| e["name"] == name)
        .map(|e| e["value"].as_str().unwrap_or_default().to_owned())
}

const LIFECYCLE_ROLE: &str =
    "/apis/rbac.authorization.k8s.io/v1/namespaces/demo/roles/sympozium-lifecycle-r1";
const LIFECYCLE_BINDING: &str =
    "/apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings/sympozium-lifecycle-r1";

#[tokio::test]
async fn lifecycle_rbac_creates_a_role_and_binding_for_the_hooks() {
    let fake = setup("5m");
    fake.patch(
        RUN,
        json!({"spec": {"lifecycle": {
        "preRun": [{"name": "label", "image": "ghcr.io/example/kubectl:1"}],
        "rbac": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}]}}}),
    );
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    let role = fake.get(LIFECYCLE_ROLE).expect("Role");
    assert_eq!(role["rules"][0]["resources"], json!(["configmaps"]));
    assert_eq!(
        role["metadata"]["labels"]["sympozium.ai/component"],
        "lifecycle"
    );
    assert_eq!(role["metadata"]["ownerReferences"][0]["kind"], "AgentRun");
    let binding = fake.get(LIFECYCLE_BINDING).expect("RoleBinding");
    assert_eq!(binding["roleRef"]["name"], "sympozium-lifecycle-r1");
    assert_eq!(binding["subjects"][0]["name"], "sympozium-agent");
    let pod = &fake.get(JOB).expect("job")["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], true);
}

#[tokio::test]
async fn lifecycle_rbac_on_a_denied_resource_fails_without_rbac() {
    let fake = setup("5m");
    fake.put("/apis/sympozium.ai/v1alpha1/namespaces/demo/sympoziumpolicies/p", json!({
        "apiVersion": "sympozium.ai/v1alpha1", "kind": "SympoziumPolicy", "metadata": {"name": "p", "namespace": "demo"},
        "spec": {"lifecyclePolicy": {"deniedResources": ["secrets"]}}}));
    fake.patch(
        "/apis/sympozium.ai/v1alpha1/namespaces/demo/agents/a",
        json!({"spec": {"policyRef": "p"}}),
    );
    fake.patch(
        RUN,
        json!({"spec": {"lifecycle": {
        "rbac": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}}}),
    );
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    assert_eq!(status(&fake)["phase"], "Failed");
    assert!(fake.get(LIFECYCLE_ROLE).is_none());
    assert!(fake.get(JOB).is_none());
}

fn with_subagent_policy(fake: &FakeApi, max_depth: u32, max_concurrent: u32) {
    fake.put("/apis/sympozium.ai/v1alpha1/namespaces/demo/sympoziumpolicies/p", json!({
        "apiVersion": "sympozium.ai/v1alpha1", "kind": "SympoziumPolicy", "metadata": {"name": "p", "namespace": "demo"},
        "spec": {"subagentPolicy": {"maxDepth": max_depth, "maxConcurrent": max_concurrent}}}));
    fake.patch(
        "/apis/sympozium.ai/v1alpha1/namespaces/demo/agents/a",
        json!({"spec": {"policyRef": "p"}}),
    );
}

/// Makes r1 a sub-agent of `parent` at `depth`, and adds a sibling run.
fn as_child(fake: &FakeApi, depth: u32, sibling_phase: &str) {
    fake.patch(
        RUN,
        json!({
        "metadata": {"labels": {"sympozium.ai/parent-run": "parent"}},
        "spec": {"parent": {"runName": "parent", "spawnDepth": depth}}}),
    );
    fake.put("/apis/sympozium.ai/v1alpha1/namespaces/demo/agentruns/sibling", json!({
        "apiVersion": "sympozium.ai/v1alpha1", "kind": "AgentRun",
        "metadata": {"name": "sibling", "namespace": "demo", "labels": {"sympozium.ai/parent-run": "parent"}},
        "spec": {"agentRef": "a", "task": "t", "parent": {"runName": "parent", "spawnDepth": depth}},
        "status": {"phase": sibling_phase}}));
}

#[tokio::test]
async fn subagent_too_deep_fails_for_good() {
    let fake = setup("5m");
    with_subagent_policy(&fake, 2, 5);
    as_child(&fake, 3, "Succeeded");
    let action = pass_action(&fake).await;
    let s = status(&fake);
    assert_eq!(s["phase"], "Failed");
    assert!(
        s["error"]
            .as_str()
            .expect("e")
            .contains("spawn depth 3 exceeds the policy's maximum 2"),
        "{s}"
    );
    assert!(
        !retrying(&fake),
        "a permanent failure is not retried: {action:?}"
    );
    assert!(fake.get(JOB).is_none());
}

#[tokio::test]
async fn subagent_over_max_concurrent_waits_for_a_slot() {
    let fake = setup("5m");
    with_subagent_policy(&fake, 3, 1);
    as_child(&fake, 1, "Running");
    assert_eq!(pass_action(&fake).await, requeue_5s());
    assert!(retrying(&fake), "a temporary error is retried");
    assert!(
        status(&fake)["phase"].is_null(),
        "still pending: {}",
        status(&fake)
    );
    assert!(fake.get(JOB).is_none(), "no Job while the slot is taken");
    // The sibling ends; the next attempt is admitted.
    fake.patch(
        "/apis/sympozium.ai/v1alpha1/namespaces/demo/agentruns/sibling",
        json!({"status": {"phase": "Succeeded"}}),
    );
    retry_now(&fake);
    pass_action(&fake).await;
    assert_eq!(status(&fake)["phase"], "Running");
    assert!(fake.get(JOB).is_some());
}

fn with_ensemble_budget(fake: &FakeApi, max: i64, action: &str, used: i64) {
    fake.put("/apis/sympozium.ai/v1alpha1/namespaces/demo/ensembles/team", json!({
        "apiVersion": "sympozium.ai/v1alpha1", "kind": "Ensemble", "metadata": {"name": "team", "namespace": "demo"},
        "spec": {"sharedMemory": {"enabled": true, "membrane": {"tokenBudget": {"maxTokens": max, "action": action}}}}}));
    fake.patch(
        RUN,
        json!({"metadata": {"labels": {"sympozium.ai/ensemble": "team"}}}),
    );
    for (i, tokens) in [used / 2, used - used / 2].into_iter().enumerate() {
        fake.put(&format!("/apis/sympozium.ai/v1alpha1/namespaces/demo/agentruns/done-{i}"), json!({
            "apiVersion": "sympozium.ai/v1alpha1", "kind": "AgentRun",
            "metadata": {"name": format!("done-{i}"), "namespace": "demo", "labels": {"sympozium.ai/ensemble": "team"}},
            "spec": {"agentRef": "a", "task": "t"},
            "status": {"phase": "Succeeded", "tokenUsage": {"inputTokens": tokens, "outputTokens": 0, "totalTokens": tokens}}}));
    }
}

#[tokio::test]
async fn spent_ensemble_token_budget_fails_the_run() {
    let fake = setup("5m");
    with_ensemble_budget(&fake, 1000, "halt", 1200);
    let action = pass_action(&fake).await;
    let s = status(&fake);
    assert_eq!(s["phase"], "Failed");
    assert_eq!(
        s["error"],
        "token budget exceeded: ensemble team has used 1200 of 1000 tokens"
    );
    assert!(
        !retrying(&fake),
        "a permanent failure is not retried: {action:?}"
    );
    assert!(fake.get(JOB).is_none());
}

#[tokio::test]
async fn token_budget_left_or_warn_only_lets_the_run_start() {
    let fake = setup("5m");
    with_ensemble_budget(&fake, 1000, "halt", 400);
    pass_action(&fake).await;
    assert_eq!(status(&fake)["phase"], "Running");

    let fake = setup("5m");
    with_ensemble_budget(&fake, 1000, "warn", 5000);
    pass_action(&fake).await;
    assert_eq!(status(&fake)["phase"], "Running");
}

const MEMORY_DEPLOYMENT: &str = "/apis/apps/v1/namespaces/demo/deployments/a-memory";

fn with_memory_skill(fake: &FakeApi) {
    fake.patch(
        RUN,
        json!({"spec": {"skills": [{"skillPackRef": "memory"}]}}),
    );
}

#[tokio::test]
async fn memory_skill_waits_for_a_ready_memory_deployment() {
    let fake = setup("5m");
    with_memory_skill(&fake);
    // Missing Deployment: retry in 5 s, no Job, not failed.
    assert_eq!(pass_action(&fake).await, requeue_5s());
    assert!(fake.get(JOB).is_none());
    assert!(status(&fake)["phase"].is_null());
    // Present but no ready replica: still waiting.
    fake.put(MEMORY_DEPLOYMENT, json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "a-memory", "namespace": "demo"}, "spec": {"selector": {}, "template": {}},
        "status": {"replicas": 1, "readyReplicas": 0}}));
    retry_now(&fake);
    assert_eq!(pass_action(&fake).await, requeue_5s());
    assert!(fake.get(JOB).is_none());
    // Ready: the Job is created.
    fake.patch(MEMORY_DEPLOYMENT, json!({"status": {"readyReplicas": 1}}));
    retry_now(&fake);
    pass_action(&fake).await;
    assert_eq!(status(&fake)["phase"], "Running");
    let env = agent_env(&fake);
    assert_eq!(
        env_value(&env, "MEMORY_SERVER_URL").as_deref(),
        Some("http://a-memory.demo.svc:8080")
    );
}

#[tokio::test]
async fn memory_deployment_not_ready_after_120s_fails_the_run() {
    let fake = setup("5m");
    with_memory_skill(&fake);
    fake.patch(
        RUN,
        json!({"metadata": {"creationTimestamp": "2020-01-01T00:00:00Z"}}),
    );
    pass_action(&fake).await;
    let s = status(&fake);
    assert_eq!(s["phase"], "Failed");
    assert!(
        s["error"]
            .as_str()
            .expect("e")
            .contains("a-memory has no ready replica after 120s"),
        "{s}"
    );
    assert!(fake.get(JOB).is_none());
}

const MODEL: &str = "/apis/sympozium.ai/v1alpha1/namespaces/demo/models/llama";

fn with_model_ref(fake: &FakeApi) {
    fake.patch(
        RUN,
        json!({"spec": {"model": {"provider": "anthropic", "model": "ignored",
        "authSecretRef": "keys", "modelRef": "llama"}}}),
    );
}

#[tokio::test]
async fn model_ref_retries_until_the_model_is_ready() {
    let fake = setup("5m");
    with_model_ref(&fake);
    // No Model yet.
    assert_eq!(pass_action(&fake).await, requeue_5s());
    assert!(fake.get(JOB).is_none());
    // A Model still loading.
    fake.put(
        MODEL,
        json!({"apiVersion": "sympozium.ai/v1alpha1", "kind": "Model",
        "metadata": {"name": "llama", "namespace": "demo"}, "status": {"phase": "Pending"}}),
    );
    retry_now(&fake);
    assert_eq!(pass_action(&fake).await, requeue_5s());
    assert!(fake.get(JOB).is_none());
    assert!(status(&fake)["phase"].is_null());
}

#[tokio::test]
async fn ready_model_ref_means_openai_at_its_endpoint_without_keys() {
    let fake = setup("5m");
    with_model_ref(&fake);
    fake.put(
        MODEL,
        json!({"apiVersion": "sympozium.ai/v1alpha1", "kind": "Model",
        "metadata": {"name": "llama", "namespace": "demo"},
        "status": {"phase": "Ready", "endpoint": "http://llama.demo.svc:8000/v1"}}),
    );
    pass_action(&fake).await;
    assert_eq!(status(&fake)["phase"], "Running");
    let env = agent_env(&fake);
    assert_eq!(env_value(&env, "MODEL_PROVIDER").as_deref(), Some("openai"));
    assert_eq!(
        env_value(&env, "MODEL_BASE_URL").as_deref(),
        Some("http://llama.demo.svc:8000/v1")
    );
    assert_eq!(env_value(&env, "MODEL_NAME").as_deref(), Some("llama"));
    assert!(
        !env.iter().any(|e| e["name"] == "OPENAI_API_KEY"),
        "no auth keys for an in-cluster Model"
    );
}

#[tokio::test]
async fn sidecar_driven_task_without_a_declaring_sidecar_fails_clearly() {
    let fake = setup("5m");
    fake.patch(
        RUN,
        json!({"spec": {"task": {"mode": "sidecar-driven", "tool": "collect"}}}),
    );
    let op = plain_operator(&fake);
    pass(&op, &fake).await;
    let s = status(&fake);
    assert_eq!(s["phase"], "Failed");
    assert!(
        s["error"]
            .as_str()
            .expect("e")
            .contains("no attached SkillPack sidecar declares tool \"collect\""),
        "{s}"
    );
    assert!(fake.get(JOB).is_none());
}
