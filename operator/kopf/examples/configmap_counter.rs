//! A minimal operator: counts the keys of every ConfigMap into its status
//! on create and update, and logs deletions (which adds a finalizer).
//!
//! `cargo run -p agentpod-kopf --example configmap_counter` (needs a cluster).

use std::time::Duration;

use agentpod_kopf::{HandlerError, Operator};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), kube::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default().await?;
    let count = |cm: &ConfigMap| cm.data.as_ref().map_or(0, |d| d.len());
    Operator::new(client.clone(), "example.agentpod.dev/counter")
        .on_create(
            "count",
            move |cm, _| async move { Ok(Some(json!(count(&cm)))) },
        )
        .on_update("recount", move |cm, ctx| async move {
            if ctx.retry > 3 {
                return Err(HandlerError::permanent("giving up"));
            }
            Ok(Some(
                json!({"keys": count(&cm), "changes": ctx.diff.0.len()}),
            ))
        })
        .on_delete("goodbye", |_, _| async { Ok(None) })
        .timer("heartbeat", Duration::from_secs(60), |_, _| async {
            Ok(None)
        })
        .run(Api::default_namespaced(client), |c| c)
        .await;
    Ok(())
}
