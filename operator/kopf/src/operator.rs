//! The registry of handlers and the reconcile pass that dispatches to them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::{debug, error, info, warn};

use crate::cause::{Cause, Diff, LAST_HANDLED, essence};
use crate::error::{Error, HandlerError, backoff};
use crate::progress::{self, Progress};

/// What a handler returns: a value for `status.<handler id>` (or nothing),
/// or an error.
pub type HandlerResult = Result<Option<Value>, HandlerError>;

type HandlerFn<K> =
    Arc<dyn Fn(Arc<K>, Context<K>) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// What the framework needs of a resource type: namespaced, with a static
/// type, serializable both ways.
pub trait Object:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
}

impl<K> Object for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize
        + Send
        + Sync
        + 'static
{
}

/// What a handler gets besides the object.
#[derive(Clone)]
pub struct Context<K: Object> {
    /// The client the operator runs with.
    pub client: Client,
    /// Why the handler runs (timers see [`Cause::Resume`] semantics: `None`
    /// is never passed; timers get the cause `None` through [`Context::timer`]).
    pub cause: Option<Cause>,
    /// For updates: what changed; otherwise empty.
    pub diff: Diff,
    /// For updates: the essence as last handled.
    pub old: Option<Value>,
    /// Temporary errors this handler returned so far for this cause.
    pub retry: u32,
    /// The handler's id.
    pub handler_id: String,
    api: Api<K>,
    status: Arc<Mutex<Map<String, Value>>>,
}

impl<K: Object> Context<K> {
    /// The API of the object's kind in the object's namespace.
    pub fn api(&self) -> &Api<K> {
        &self.api
    }

    /// Merges `fields` into the status patch sent after the handler
    /// returns (together with its return value).
    pub fn patch_status(&self, fields: Value) {
        if let Value::Object(fields) = fields {
            // A poisoned lock only means another handler task panicked;
            // the map itself is still valid.
            let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
            status.extend(fields);
        }
    }

    fn take_status(&self) -> Map<String, Value> {
        std::mem::take(&mut *self.status.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

struct Handler<K: Object> {
    id: String,
    cause: Cause,
    field: Option<Vec<String>>,
    f: HandlerFn<K>,
}

struct Timer<K: Object> {
    id: String,
    interval: Duration,
    f: HandlerFn<K>,
}

/// Handlers for one resource kind, and the reconcile pass that runs them.
///
/// Build one with [`Operator::new`], register handlers, then either call
/// [`Operator::run`] (a `kube::runtime::Controller` drives it) or call
/// [`Operator::reconcile`] yourself (tests do).
pub struct Operator<K: Object> {
    client: Client,
    finalizer: String,
    handlers: Vec<Handler<K>>,
    timers: Vec<Timer<K>>,
    /// Objects whose resume handlers ran (or that were created or updated)
    /// in this process.
    resumed: Mutex<HashSet<String>>,
    /// Last run of each (object, timer).
    timer_runs: Mutex<HashMap<(String, String), Instant>>,
}

enum Outcome {
    Done,
    Pending(Duration),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl<K: Object> Operator<K> {
    /// An operator without handlers. `finalizer` is added to objects only
    /// once a delete handler is registered.
    pub fn new(client: Client, finalizer: impl Into<String>) -> Self {
        Self {
            client,
            finalizer: finalizer.into(),
            handlers: Vec::new(),
            timers: Vec::new(),
            resumed: Mutex::new(HashSet::new()),
            timer_runs: Mutex::new(HashMap::new()),
        }
    }

    fn boxed<F, Fut>(f: F) -> HandlerFn<K>
    where
        F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Arc::new(move |o, c| Box::pin(f(o, c)))
    }

    fn add(mut self, id: &str, cause: Cause, field: Option<&[&str]>, f: HandlerFn<K>) -> Self {
        self.handlers.push(Handler {
            id: id.to_owned(),
            cause,
            field: field.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
            f,
        });
        self
    }

    /// Runs `f` once when an object is first seen (never handled before).
    pub fn on_create<F, Fut>(self, id: &str, f: F) -> Self
    where
        F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.add(id, Cause::Create, None, Self::boxed(f))
    }

    /// Runs `f` when the object's essence changed; [`Context::diff`] says how.
    pub fn on_update<F, Fut>(self, id: &str, f: F) -> Self
    where
        F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.add(id, Cause::Update, None, Self::boxed(f))
    }

    /// Runs `f` on updates that touch the field at `path` (e.g.
    /// `["spec", "timeout"]`).
    pub fn on_field<F, Fut>(self, id: &str, path: &[&str], f: F) -> Self
    where
        F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.add(id, Cause::Update, Some(path), Self::boxed(f))
    }

    /// Runs `f` when the object is deleted; registering one makes the
    /// framework put its finalizer on every object of the kind.
    pub fn on_delete<F, Fut>(self, id: &str, f: F) -> Self
    where
        F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.add(id, Cause::Delete, None, Self::boxed(f))
    }

    /// Runs `f` once per process for objects handled before it started.
    pub fn on_resume<F, Fut>(self, id: &str, f: F) -> Self
    where
        F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.add(id, Cause::Resume, None, Self::boxed(f))
    }

    /// Runs `f` at most every `interval` while the object exists and no
    /// cause is being handled (implemented by requeueing).
    pub fn timer<F, Fut>(mut self, id: &str, interval: Duration, f: F) -> Self
    where
        F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.timers.push(Timer {
            id: id.to_owned(),
            interval,
            f: Self::boxed(f),
        });
        self
    }

    fn has_delete_handlers(&self) -> bool {
        self.handlers.iter().any(|h| h.cause == Cause::Delete)
    }

    /// One reconcile pass over `obj`: finalizer bookkeeping, cause
    /// detection, the handlers of that cause that are due, then timers.
    pub async fn reconcile(&self, obj: Arc<K>) -> Result<Action, Error> {
        let (Some(name), Some(ns)) = (obj.meta().name.clone(), obj.namespace()) else {
            return Err(Error::Unnamed);
        };
        let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
        let key = format!("{ns}/{name}");
        let annotations = obj.annotations().clone();
        let finalizers = obj.finalizers().to_vec();
        let has_finalizer = finalizers.contains(&self.finalizer);

        if obj.meta().deletion_timestamp.is_some() {
            if !has_finalizer {
                return Ok(Action::await_change());
            }
            return match self
                .run_cause(
                    Cause::Delete,
                    &obj,
                    &api,
                    &annotations,
                    Diff::default(),
                    None,
                )
                .await?
            {
                Outcome::Pending(d) => Ok(Action::requeue(d)),
                Outcome::Done => {
                    let kept: Vec<&String> = finalizers
                        .iter()
                        .filter(|f| **f != self.finalizer)
                        .collect();
                    self.patch_meta(&api, &name, json!({"metadata": {"finalizers": kept}}))
                        .await?;
                    info!(object = %key, "delete handled, finalizer removed");
                    self.resumed_lock().remove(&key);
                    Ok(Action::await_change())
                }
            };
        }

        if self.has_delete_handlers() != has_finalizer {
            let list: Vec<&String> = if has_finalizer {
                finalizers
                    .iter()
                    .filter(|f| **f != self.finalizer)
                    .collect()
            } else {
                finalizers.iter().chain([&self.finalizer]).collect()
            };
            self.patch_meta(&api, &name, json!({"metadata": {"finalizers": list}}))
                .await?;
            debug!(object = %key, added = !has_finalizer, "finalizer updated");
        }

        let new = essence(&serde_json::to_value(obj.as_ref())?);
        let old: Option<Value> = annotations
            .get(LAST_HANDLED)
            .and_then(|s| serde_json::from_str(s).ok());
        let cause = match &old {
            None => Some(Cause::Create),
            Some(old) if *old != new => Some(Cause::Update),
            Some(_) if !self.resumed_lock().contains(&key) => Some(Cause::Resume),
            Some(_) => None,
        };

        if let Some(cause) = cause {
            let diff = match (&old, cause) {
                (Some(o), Cause::Update) => Diff::between(o, &new),
                (None, _) => Diff::between(&Value::Null, &new),
                _ => Diff::default(),
            };
            debug!(object = %key, ?cause, changes = diff.0.len(), "handling");
            match self
                .run_cause(cause, &obj, &api, &annotations, diff, old.clone())
                .await?
            {
                Outcome::Pending(d) => return Ok(Action::requeue(d)),
                Outcome::Done => {
                    // Done with this cause: remember the essence, drop the
                    // progress records.
                    let mut ann = Map::new();
                    if cause != Cause::Resume {
                        ann.insert(LAST_HANDLED.into(), Value::String(new.to_string()));
                    }
                    for h in &self.handlers {
                        ann.insert(progress::key(&h.id), Value::Null);
                    }
                    self.patch_meta(&api, &name, json!({"metadata": {"annotations": ann}}))
                        .await?;
                    self.resumed_lock().insert(key.clone());
                }
            }
        }

        Ok(self.run_timers(&key, &obj, &api).await)
    }

    fn resumed_lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.resumed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn context(
        &self,
        api: &Api<K>,
        id: &str,
        cause: Option<Cause>,
        diff: Diff,
        old: Option<Value>,
        retry: u32,
    ) -> Context<K> {
        Context {
            client: self.client.clone(),
            cause,
            diff,
            old,
            retry,
            handler_id: id.to_owned(),
            api: api.clone(),
            status: Arc::default(),
        }
    }

    async fn run_cause(
        &self,
        cause: Cause,
        obj: &Arc<K>,
        api: &Api<K>,
        annotations: &BTreeMap<String, String>,
        diff: Diff,
        old: Option<Value>,
    ) -> Result<Outcome, Error> {
        let name = obj.name_any();
        let now = now_ms();
        let mut wait: Option<Duration> = None;
        for h in self.handlers.iter().filter(|h| h.cause == cause) {
            if let Some(path) = &h.field {
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                if !diff.touches(&p) {
                    continue;
                }
            }
            let pkey = progress::key(&h.id);
            let mut p: Progress = annotations
                .get(&pkey)
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            if p.done() {
                continue;
            }
            if let Some(until) = p.delayed_until_ms.filter(|u| *u > now) {
                let d = Duration::from_millis(until - now);
                wait = Some(wait.map_or(d, |w| w.min(d)));
                continue;
            }
            let ctx = self.context(
                api,
                &h.id,
                Some(cause),
                diff.clone(),
                old.clone(),
                p.retries,
            );
            let result = (h.f)(obj.clone(), ctx.clone()).await;
            let mut status = ctx.take_status();
            match result {
                Ok(value) => {
                    p = Progress {
                        success: true,
                        ..Progress::default()
                    };
                    if let Some(v) = value {
                        status.insert(h.id.clone(), v);
                    }
                    info!(object = %name, handler = %h.id, ?cause, "handler succeeded");
                }
                Err(HandlerError::Temporary { message, delay }) => {
                    let d = delay.unwrap_or_else(|| backoff(p.retries));
                    p.retries += 1;
                    p.delayed_until_ms = Some(now + d.as_millis() as u64);
                    warn!(object = %name, handler = %h.id, retry = p.retries, delay_ms = d.as_millis() as u64, %message, "handler will retry");
                    p.message = Some(message);
                    wait = Some(wait.map_or(d, |w| w.min(d)));
                }
                Err(HandlerError::Permanent(message)) => {
                    error!(object = %name, handler = %h.id, %message, "handler failed permanently");
                    p.failure = true;
                    p.message = Some(message);
                }
            }
            let encoded = serde_json::to_string(&p)?;
            self.patch_meta(
                api,
                &name,
                json!({"metadata": {"annotations": {pkey: encoded}}}),
            )
            .await?;
            if !status.is_empty() {
                self.patch_status(api, &name, status).await?;
            }
        }
        Ok(wait.map_or(Outcome::Done, Outcome::Pending))
    }

    async fn run_timers(&self, key: &str, obj: &Arc<K>, api: &Api<K>) -> Action {
        let mut next: Option<Duration> = None;
        for t in &self.timers {
            let slot = (key.to_owned(), t.id.clone());
            let last = self
                .timer_runs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&slot)
                .copied();
            let due = last.is_none_or(|l| l.elapsed() >= t.interval);
            let mut after = match last {
                Some(l) if !due => t.interval.saturating_sub(l.elapsed()),
                _ => t.interval,
            };
            if due {
                self.timer_runs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(slot, Instant::now());
                let ctx = self.context(api, &t.id, None, Diff::default(), None, 0);
                let result = (t.f)(obj.clone(), ctx.clone()).await;
                let mut status = ctx.take_status();
                match result {
                    Ok(Some(v)) => {
                        status.insert(t.id.clone(), v);
                    }
                    Ok(None) => {}
                    Err(HandlerError::Temporary { message, delay }) => {
                        warn!(object = %key, timer = %t.id, %message, "timer will retry");
                        after = delay.unwrap_or_else(|| backoff(0));
                    }
                    Err(HandlerError::Permanent(message)) => {
                        error!(object = %key, timer = %t.id, %message, "timer failed");
                    }
                }
                if !status.is_empty()
                    && let Err(e) = self.patch_status(api, &obj.name_any(), status).await
                {
                    warn!(object = %key, timer = %t.id, error = %e, "status patch failed");
                    after = after.min(backoff(0));
                }
            }
            next = Some(next.map_or(after, |n| n.min(after)));
        }
        next.map_or_else(Action::await_change, Action::requeue)
    }

    async fn patch_meta(&self, api: &Api<K>, name: &str, patch: Value) -> Result<(), Error> {
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn patch_status(
        &self,
        api: &Api<K>,
        name: &str,
        status: Map<String, Value>,
    ) -> Result<(), Error> {
        let patch = json!({ "status": status });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Runs the operator on every object of `api` until SIGTERM or Ctrl-C.
    /// `configure` can add watches (e.g. `owns::<Job>`).
    pub async fn run(self, api: Api<K>, configure: impl FnOnce(Controller<K>) -> Controller<K>) {
        let this = Arc::new(self);
        let controller = configure(Controller::new(api, watcher::Config::default()));
        controller
            .shutdown_on_signal()
            .run(
                |obj, op: Arc<Self>| async move { op.reconcile(obj).await },
                |obj, err, _| {
                    warn!(object = %obj.name_any(), error = %err, "reconcile failed");
                    Action::requeue(Duration::from_secs(5))
                },
                this,
            )
            .for_each(|res| async move {
                if let Err(e) = res {
                    debug!(error = %e, "controller event");
                }
            })
            .await;
    }
}
