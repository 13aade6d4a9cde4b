//! A small Kopf-style operator framework on `kube::runtime`.
//!
//! Instead of one `reconcile` function per controller, you register
//! handlers per resource kind and cause, as in Python's Kopf:
//!
//! - **causes**: create, update (with a field diff), delete, resume (objects
//!   handled before this process started), optionally per field;
//! - **cause detection** from an annotation holding the object's essence as
//!   last handled (`kopf.agentpod.dev/last-handled-configuration`);
//! - **progress per handler** in annotations, so a handler that succeeded is
//!   not run again while a sibling is retried;
//! - the handler's **return value is patched into `status.<handler id>`**,
//!   and [`Context::patch_status`] patches any other status fields;
//! - [`HandlerError::Temporary`] (with a delay, or exponential backoff) and
//!   [`HandlerError::Permanent`];
//! - a **finalizer** only when a delete handler exists;
//! - **timers** by requeueing.
//!
//! See `examples/configmap_counter.rs`.

mod cause;
mod error;
mod operator;
mod progress;

pub use cause::{ANNOTATION_PREFIX, Cause, Diff, DiffItem, DiffOp, LAST_HANDLED, essence};
pub use error::{Error, HandlerError, backoff};
pub use operator::{Context, HandlerResult, Object, Operator};
pub use progress::{Progress, key as progress_key};
