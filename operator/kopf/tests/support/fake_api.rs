//! An in-process stand-in for the Kubernetes API server.
//!
//! No kube-apiserver can be installed on the machines these tests run on
//! (nothing in Debian, PyPI or npm ships one), so tests drive kube's real
//! client through `kube::Client::new(tower::service_fn(..), ns)` against
//! this store: GET, LIST (with `k=v` label selectors), POST, merge PATCH
//! (object and `/status`), DELETE (honouring finalizers) and pod logs.
//! WATCH is not served: tests call the reconcile pass directly.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

/// The store: object path (without `/status`) → object; pod logs by path.
#[derive(Clone, Default)]
pub struct FakeApi {
    objects: Arc<Mutex<BTreeMap<String, Value>>>,
    logs: Arc<Mutex<BTreeMap<String, String>>>,
    counter: Arc<Mutex<u64>>,
}

fn merge(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = json!({});
        }
        let t = target.as_object_mut().expect("object");
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

fn status(code: u16, reason: &str) -> Response<Body> {
    let body = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": reason, "reason": reason, "code": code});
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).expect("json")))
        .expect("response")
}

fn ok(v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).expect("json")))
        .expect("response")
}

/// `/api/v1/namespaces/ns/pods` → `/api/v1/namespaces/ns/pods/<name>`.
fn object_path(collection: &str, name: &str) -> String {
    format!("{collection}/{name}")
}

impl FakeApi {
    /// A kube client talking to this store.
    pub fn client(&self) -> kube::Client {
        let this = self.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.handle(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    /// Stores an object at its API path.
    pub fn put(&self, path: &str, mut obj: Value) {
        let mut n = self.counter.lock().expect("lock");
        *n += 1;
        obj["metadata"]["uid"] = json!(format!("uid-{n}"));
        obj["metadata"]["resourceVersion"] = json!(n.to_string());
        self.objects
            .lock()
            .expect("lock")
            .insert(path.to_owned(), obj);
    }

    /// The object at `path`.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.objects.lock().expect("lock").get(path).cloned()
    }

    /// Applies a merge patch directly (what a kubelet or Job controller
    /// would change).
    pub fn patch(&self, path: &str, patch: Value) {
        if let Some(o) = self.objects.lock().expect("lock").get_mut(path) {
            merge(o, &patch);
        }
    }

    /// Sets the log of a pod's container.
    pub fn set_log(&self, pod_path: &str, text: &str) {
        self.logs
            .lock()
            .expect("lock")
            .insert(pod_path.to_owned(), text.to_owned());
    }

    /// Paths of every stored object.
    pub fn paths(&self) -> Vec<String> {
        self.objects.lock().expect("lock").keys().cloned().collect()
    }

    async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);

        if let Some(pod) = path.strip_suffix("/log") {
            return match self.logs.lock().expect("lock").get(pod) {
                Some(text) => Response::new(Body::from(text.clone().into_bytes())),
                None => status(404, "NotFound"),
            };
        }
        let (path, sub_status) = match path.strip_suffix("/status") {
            Some(p) => (p.to_owned(), true),
            None => (path, false),
        };
        let _ = sub_status;
        let mut objects = self.objects.lock().expect("lock");
        match method.as_str() {
            "GET" => {
                if let Some(o) = objects.get(&path) {
                    return ok(o);
                }
                // A collection: everything directly below `path`.
                let selector: Vec<(String, String)> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("labelSelector="))
                    .flat_map(|s| s.split("%2C").map(str::to_owned).collect::<Vec<_>>())
                    .filter_map(|s| {
                        let s = s.replace("%3D", "=").replace("%2F", "/");
                        s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))
                    })
                    .collect();
                let prefix = format!("{path}/");
                let items: Vec<Value> = objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                    .map(|(_, v)| v.clone())
                    .filter(|o| {
                        selector
                            .iter()
                            .all(|(k, v)| o["metadata"]["labels"][k] == json!(v))
                    })
                    .collect();
                if items.is_empty() && !path.ends_with('s') {
                    return status(404, "NotFound");
                }
                ok(
                    &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            "POST" => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let p = object_path(&path, &name);
                if objects.contains_key(&p) {
                    return status(409, "AlreadyExists");
                }
                drop(objects);
                self.put(&p, body);
                ok(&self.get(&p).expect("stored"))
            }
            "PATCH" => match objects.get_mut(&path) {
                Some(o) => {
                    merge(o, &body);
                    let o = o.clone();
                    let gone = !o["metadata"]["deletionTimestamp"].is_null()
                        && o["metadata"]["finalizers"]
                            .as_array()
                            .is_none_or(|f| f.is_empty());
                    if gone {
                        objects.remove(&path);
                    }
                    drop(objects);
                    ok(&o)
                }
                None => status(404, "NotFound"),
            },
            "DELETE" => match objects.get_mut(&path) {
                Some(o) => {
                    let has_finalizers = o["metadata"]["finalizers"]
                        .as_array()
                        .is_some_and(|f| !f.is_empty());
                    if has_finalizers {
                        o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                        let o = o.clone();
                        ok(&o)
                    } else {
                        let o = objects.remove(&path).expect("present");
                        ok(&o)
                    }
                }
                None => status(404, "NotFound"),
            },
            _ => status(405, "MethodNotAllowed"),
        }
    }
}
