//! AgentRun lifecycle through kube's client over an in-process API
//! stand-in (`operator/kopf/tests/support/fake_api.rs`; no kube-apiserver
//! can be installed on these machines). The Job controller and kubelet are
//! played by the test: it patches Job status and sets the agent log.

#[path = "../kopf/tests/support/fake_api.rs"]
mod fake_api;

use std::sync::Arc;

use agentpod_operator::agentrun::operator;
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

async fn pass(op: &agentpod_kopf::Operator<AgentRun>, fake: &FakeApi) {
    let run: AgentRun = serde_json::from_value(fake.get(RUN).expect("run")).expect("parse");
    op.reconcile(Arc::new(run)).await.expect("reconcile");
}

fn status(fake: &FakeApi) -> Value {
    fake.get(RUN).expect("run")["status"].clone()
}

/// Creates the Job, then plays the Pod finishing with `log`.
async fn finish(fake: &FakeApi, log: &str, job_status: Value) -> Value {
    let op = operator(fake.client(), RenderOptions::default());
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
    let op = operator(fake.client(), RenderOptions::default());
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
    let op = operator(fake.client(), RenderOptions::default());
    pass(&op, &fake).await;
    fake.patch(
        RUN,
        json!({"status": {"startedAt": "2020-01-01T00:00:00Z"}}),
    );
    let op = operator(fake.client(), RenderOptions::default());
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
    let op = operator(fake.client(), RenderOptions::default());
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
    let op = operator(fake.client(), RenderOptions::default());
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
    let op = operator(fake.client(), RenderOptions::default());
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
    let op = operator(fake.client(), RenderOptions::default());
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
    let op = operator(fake.client(), RenderOptions::default());
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
