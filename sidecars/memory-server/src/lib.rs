//! `memory-server`: persistent agent memory over HTTP on SQLite FTS5.
//!
//! Wire-compatible with Sympozium's memory server (contract §6): the same
//! routes, JSON, schema and search semantics, so either runner works
//! against either server and an upstream database opens as is. Beyond
//! upstream: `POST /update` (supersede, keeping provenance), `POST /forget`
//! (soft delete) and `GET /capabilities` (how a client learns about them);
//! user text never reaches FTS5 syntax unquoted; one writer connection and a
//! pool of readers make concurrent use safe.
//!
//! - [`config`]: the environment, read once.
//! - [`db`]: schema, migrations and every query.
//! - [`search`]: FTS5 query building and the membrane filters.
//! - [`routes`]: the HTTP API.
//! - [`auth`]: the admin token check.
//! - [`clock`]: timestamps as upstream writes them.

pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod routes;
pub mod search;

use std::future::Future;
use std::sync::Arc;

pub use config::Config;
pub use db::{DbError, Store};

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = routes::router(store, config);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
