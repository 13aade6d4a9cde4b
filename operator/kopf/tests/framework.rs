//! Framework tests, driven through kube's real client over an in-process
//! API stand-in (`support/fake_api.rs`): no kube-apiserver can be installed
//! on these machines, so the reconcile pass is called directly instead of
//! being fed by a watch.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use agentpod_kopf::{DiffOp, HandlerError, LAST_HANDLED, Operator};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use support::fake_api::FakeApi;

const PATH: &str = "/api/v1/namespaces/default/configmaps/cm";

fn setup() -> FakeApi {
    let fake = FakeApi::default();
    fake.put(
        PATH,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default"}, "data": {"k": "1"}}),
    );
    fake
}

async fn pass(op: &Operator<ConfigMap>, fake: &FakeApi) -> kube::runtime::controller::Action {
    let obj: ConfigMap =
        serde_json::from_value(fake.get(PATH).expect("object")).expect("configmap");
    op.reconcile(Arc::new(obj)).await.expect("reconcile")
}

fn counter() -> Arc<AtomicU32> {
    Arc::new(AtomicU32::new(0))
}

#[tokio::test]
async fn create_runs_once_and_return_value_lands_in_status() {
    let fake = setup();
    let n = counter();
    let c = n.clone();
    let op = Operator::new(fake.client(), "test/finalizer").on_create("hello", move |_, ctx| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            assert_eq!(ctx.cause, Some(agentpod_kopf::Cause::Create));
            ctx.patch_status(json!({"phase": "Done"}));
            Ok(Some(json!({"greeting": "hi"})))
        }
    });
    pass(&op, &fake).await;
    pass(&op, &fake).await;
    assert_eq!(n.load(Ordering::SeqCst), 1);
    let obj = fake.get(PATH).expect("object");
    assert_eq!(obj["status"]["hello"], json!({"greeting": "hi"}));
    assert_eq!(obj["status"]["phase"], "Done");
    assert!(obj["metadata"]["annotations"][LAST_HANDLED].is_string());
    assert!(
        obj["metadata"]["finalizers"].is_null(),
        "no delete handler, no finalizer"
    );
}

#[tokio::test]
async fn succeeded_handler_not_rerun_while_sibling_retries() {
    let fake = setup();
    let (a, b) = (counter(), counter());
    let (ca, cb) = (a.clone(), b.clone());
    let op = Operator::new(fake.client(), "test/finalizer")
        .on_create("first", move |_, _| {
            let c = ca.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
        })
        .on_create("second", move |_, ctx| {
            let c = cb.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                if ctx.retry == 0 {
                    Err(HandlerError::temporary("not yet", Duration::ZERO))
                } else {
                    Ok(None)
                }
            }
        });
    pass(&op, &fake).await;
    let obj = fake.get(PATH).expect("object");
    assert!(
        obj["metadata"]["annotations"][LAST_HANDLED].is_null(),
        "cause unfinished"
    );
    let progress: Value = serde_json::from_str(
        obj["metadata"]["annotations"]["kopf.agentpod.dev/progress.second"]
            .as_str()
            .expect("progress"),
    )
    .expect("json");
    assert_eq!(progress["retries"], 1);
    pass(&op, &fake).await;
    assert_eq!(a.load(Ordering::SeqCst), 1, "first not re-run");
    assert_eq!(b.load(Ordering::SeqCst), 2);
    let obj = fake.get(PATH).expect("object");
    assert!(obj["metadata"]["annotations"][LAST_HANDLED].is_string());
    assert!(obj["metadata"]["annotations"]["kopf.agentpod.dev/progress.second"].is_null());
}

#[tokio::test]
async fn temporary_error_with_delay_requeues_and_permanent_error_stops() {
    let fake = setup();
    let n = counter();
    let c = n.clone();
    let op = Operator::new(fake.client(), "f")
        .on_create("slow", |_, _| async {
            Err(HandlerError::temporary("later", Duration::from_secs(30)))
        })
        .on_create("broken", move |_, _| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Err(HandlerError::permanent("no"))
            }
        });
    let action = pass(&op, &fake).await;
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(30))
    );
    // The delayed handler is not due yet; the failed one is never re-run.
    let action = pass(&op, &fake).await;
    assert!(format!("{action:?}").contains("requeue_after: Some("));
    assert_eq!(n.load(Ordering::SeqCst), 1);
    let obj = fake.get(PATH).expect("object");
    let p: Value = serde_json::from_str(
        obj["metadata"]["annotations"]["kopf.agentpod.dev/progress.broken"]
            .as_str()
            .expect("p"),
    )
    .expect("json");
    assert_eq!(p["failure"], true);
    assert_eq!(p["message"], "no");
}

#[tokio::test]
async fn update_gets_the_diff_and_field_handlers_filter() {
    let fake = setup();
    let (u, f, other) = (counter(), counter(), counter());
    let (cu, cf, co) = (u.clone(), f.clone(), other.clone());
    let op = Operator::new(fake.client(), "f")
        .on_create("c", |_, _| async { Ok(None) })
        .on_update("u", move |_, ctx| {
            let c = cu.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                assert_eq!(ctx.diff.0.len(), 1);
                let item = &ctx.diff.0[0];
                assert_eq!(
                    (item.op, item.path.clone()),
                    (DiffOp::Change, vec!["data".to_owned(), "k".to_owned()])
                );
                assert_eq!(item.old, Some(json!("1")));
                assert_eq!(item.new, Some(json!("2")));
                assert_eq!(
                    ctx.old.as_ref().map(|o| o["data"]["k"].clone()),
                    Some(json!("1"))
                );
                Ok(None)
            }
        })
        .on_field("k-changed", &["data", "k"], move |_, _| {
            let c = cf.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
        })
        .on_field("other", &["data", "other"], move |_, _| {
            let c = co.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
        });
    pass(&op, &fake).await;
    assert_eq!(u.load(Ordering::SeqCst), 0, "create is not an update");
    fake.patch(PATH, json!({"data": {"k": "2"}}));
    pass(&op, &fake).await;
    pass(&op, &fake).await;
    assert_eq!(u.load(Ordering::SeqCst), 1);
    assert_eq!(f.load(Ordering::SeqCst), 1);
    assert_eq!(other.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn resume_runs_once_per_process_for_handled_objects() {
    let fake = setup();
    let first = Operator::new(fake.client(), "f").on_create("c", |_, _| async { Ok(None) });
    pass(&first, &fake).await;
    let r = counter();
    let cr = r.clone();
    // A new process: the object was handled before and has not changed.
    let second = Operator::new(fake.client(), "f")
        .on_create("c", |_, _| async { panic!("already created") })
        .on_resume("r", move |_, ctx| {
            let c = cr.clone();
            async move {
                assert_eq!(ctx.cause, Some(agentpod_kopf::Cause::Resume));
                c.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
        });
    pass(&second, &fake).await;
    pass(&second, &fake).await;
    assert_eq!(r.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn finalizer_added_with_delete_handler_and_removed_after_it() {
    let fake = setup();
    let d = counter();
    let cd = d.clone();
    let op = Operator::new(fake.client(), "test.dev/fin")
        .on_create("c", |_, _| async { Ok(None) })
        .on_delete("d", move |_, ctx| {
            let c = cd.clone();
            async move {
                assert_eq!(ctx.cause, Some(agentpod_kopf::Cause::Delete));
                c.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
        });
    pass(&op, &fake).await;
    assert_eq!(
        fake.get(PATH).expect("obj")["metadata"]["finalizers"],
        json!(["test.dev/fin"])
    );
    // Delete: the store only marks it while the finalizer is there.
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(fake.client(), "default");
    api.delete("cm", &Default::default()).await.expect("delete");
    assert!(fake.get(PATH).expect("still there")["metadata"]["deletionTimestamp"].is_string());
    pass(&op, &fake).await;
    assert_eq!(d.load(Ordering::SeqCst), 1);
    assert!(fake.get(PATH).is_none(), "finalizer removed, object gone");
}

#[tokio::test]
async fn timers_run_when_idle_and_requeue() {
    let fake = setup();
    let t = counter();
    let ct = t.clone();
    let op =
        Operator::new(fake.client(), "f").timer("tick", Duration::from_secs(60), move |_, _| {
            let c = ct.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(Some(json!(c.load(Ordering::SeqCst))))
            }
        });
    let action = pass(&op, &fake).await;
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(60))
    );
    pass(&op, &fake).await;
    assert_eq!(
        t.load(Ordering::SeqCst),
        1,
        "not due again within the interval"
    );
    assert_eq!(fake.get(PATH).expect("obj")["status"]["tick"], 1);
}
