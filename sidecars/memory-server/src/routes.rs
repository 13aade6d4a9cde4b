//! The HTTP API (contract §6.2, plus `/update`, `/forget`,
//! `/capabilities`). Every JSON answer is `{"success", "content"?,
//! "error"?}`; `GET /health` answers plain `ok`.

use std::sync::Arc;
use std::time::SystemTime;

use agentpod_sdk::memory::{
    ApiResponse, Capabilities, FEATURE_FORGET, FEATURE_UPDATE, ForgetRequest, SearchRequest,
    StoreRequest, UpdateRequest,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info, warn};

use crate::auth::{Denied, check_admin};
use crate::config::Config;
use crate::db::{self, DbError, SearchParams, Store};
use crate::search::Filters;

/// The `top_k` of a search that gives none.
const DEFAULT_TOP_K: usize = 5;
/// The `limit` of a list that gives none.
const DEFAULT_LIST_LIMIT: usize = 20;

struct AppState {
    store: Arc<Store>,
    admin_token: Option<String>,
    agent: String,
    max_top_k: usize,
    max_list_limit: usize,
    max_body_bytes: usize,
}

type Shared = State<Arc<AppState>>;

/// The API on `store`.
pub fn router(store: Arc<Store>, config: &Config) -> Router {
    let state = Arc::new(AppState {
        store,
        admin_token: config.admin_token.clone(),
        agent: config.agent.clone(),
        max_top_k: config.max_top_k,
        max_list_limit: config.max_list_limit,
        max_body_bytes: config.max_body_bytes,
    });
    Router::new()
        .route("/search", post(search))
        .route("/store", post(store_entry))
        .route("/list", get(list))
        .route("/stats", get(stats))
        .route("/provenance", get(provenance))
        .route("/delete", delete(delete_entry))
        .route("/update", post(update))
        .route("/forget", post(forget))
        .route("/capabilities", get(capabilities))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}

/// A failed request: status and the `error` text.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json(self.0, &ApiResponse::<()>::err(self.1))
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        let status = match &e {
            DbError::NotFound(_) => StatusCode::NOT_FOUND,
            DbError::Superseded { .. } => StatusCode::CONFLICT,
            DbError::NotOwner { .. } => StatusCode::FORBIDDEN,
            DbError::Open { .. } | DbError::Sqlite(_) | DbError::Worker(_) => {
                warn!(error = %e, "database error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self(status, e.to_string())
    }
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn ok<T: Serialize>(content: T) -> Response {
    json(StatusCode::OK, &ApiResponse::ok(content))
}

/// The first JSON value of the body (as Go's decoder reads it; trailing
/// bytes are ignored). Content-Type is not checked, as upstream.
fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {limit} bytes"),
            )
        } else {
            ApiError::bad("invalid JSON body")
        }
    })?;
    match serde_json::Deserializer::from_slice(&bytes)
        .into_iter::<T>()
        .next()
    {
        Some(Ok(v)) => Ok(v),
        _ => Err(ApiError::bad("invalid JSON body")),
    }
}

/// The first value of a query parameter (as Go's `Query().Get`).
fn param<'a>(q: &'a [(String, String)], name: &str) -> &'a str {
    q.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// `?id=N`, with upstream's error texts.
fn id_param(q: &[(String, String)]) -> Result<i64, ApiError> {
    match param(q, "id") {
        "" => Err(ApiError::bad("'id' query parameter is required")),
        s => s
            .parse()
            .map_err(|_| ApiError::bad("invalid 'id' parameter")),
    }
}

type QueryPairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn pairs(q: QueryPairs) -> Result<Vec<(String, String)>, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|_| ApiError::bad("invalid query string"))
}

async fn search(
    State(s): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: SearchRequest = parse_body(body, s.max_body_bytes)?;
    if req.query.is_empty() {
        return Err(ApiError::bad("'query' is required"));
    }
    let top_k = usize::try_from(req.top_k)
        .ok()
        .filter(|k| *k > 0)
        .unwrap_or(DEFAULT_TOP_K)
        .min(s.max_top_k);
    let params = SearchParams {
        filters: Filters::new(
            &req.caller_agent,
            &req.trust_peers,
            &req.accept_tags,
            &req.max_age,
            &req.min_kind,
        ),
        query: req.query,
        top_k,
    };
    let found = s
        .store
        .read(move |c| db::search(c, &params, SystemTime::now()))
        .await?;
    debug!(results = found.len(), top_k, caller = %req.caller_agent, "search");
    Ok(ok(found))
}

async fn store_entry(
    State(s): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: StoreRequest = parse_body(body, s.max_body_bytes)?;
    if req.content.is_empty() {
        return Err(ApiError::bad("'content' is required"));
    }
    let bytes = req.content.len();
    let source = req.source_agent.clone();
    let out = s.store.write(move |c| db::store(c, &req)).await?;
    info!(id = out.id, seq = out.seq, bytes, source_agent = %source, agent = %s.agent, "stored memory");
    Ok(ok(out))
}

async fn list(State(s): Shared, q: QueryPairs) -> Result<Response, ApiError> {
    let q = pairs(q)?;
    let limit = param(&q, "limit")
        .parse::<usize>()
        .ok()
        .filter(|l| *l > 0)
        .unwrap_or(DEFAULT_LIST_LIMIT)
        .min(s.max_list_limit);
    let peers: Vec<String> = match param(&q, "trust_peers") {
        "" => Vec::new(),
        p => p.split(',').map(str::to_owned).collect(),
    };
    let mut filters = Filters::new(
        param(&q, "caller_agent"),
        &peers,
        &[],
        param(&q, "max_age"),
        param(&q, "min_kind"),
    );
    filters.tags_substring = param(&q, "tags").to_owned();
    filters.source_agent = param(&q, "source_agent").to_owned();
    let found = s
        .store
        .read(move |c| db::list(c, &filters, limit, SystemTime::now()))
        .await?;
    Ok(ok(found))
}

async fn stats(State(s): Shared) -> Result<Response, ApiError> {
    Ok(ok(s.store.read(db::stats).await?))
}

async fn provenance(State(s): Shared, q: QueryPairs) -> Result<Response, ApiError> {
    let id = id_param(&pairs(q)?)?;
    Ok(ok(s.store.read(move |c| db::provenance(c, id)).await?))
}

async fn delete_entry(
    State(s): Shared,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    match check_admin(s.admin_token.as_deref(), auth) {
        Ok(()) => {}
        Err(Denied::Disabled) => {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "delete is disabled: MEMORY_ADMIN_TOKEN is not set".into(),
            ));
        }
        Err(Denied::BadToken) => {
            warn!("delete refused: bad admin token");
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "invalid or missing admin token".into(),
            ));
        }
    }
    let id = id_param(&pairs(q)?)?;
    match s.store.write(move |c| db::delete(c, id)).await? {
        Some(entry) => {
            info!(id, "deleted memory");
            Ok(ok(serde_json::json!({ "deleted": entry })))
        }
        None => Err(DbError::NotFound(id).into()),
    }
}

async fn update(
    State(s): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: UpdateRequest = parse_body(body, s.max_body_bytes)?;
    if req.id <= 0 {
        return Err(ApiError::bad("'id' is required"));
    }
    if req.content.is_empty() {
        return Err(ApiError::bad("'content' is required"));
    }
    let out = s.store.write(move |c| db::update(c, &req)).await?;
    info!(
        id = out.id,
        supersedes = out.supersedes,
        seq = out.seq,
        "updated memory"
    );
    Ok(ok(out))
}

async fn forget(
    State(s): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: ForgetRequest = parse_body(body, s.max_body_bytes)?;
    if req.id <= 0 {
        return Err(ApiError::bad("'id' is required"));
    }
    let out = s.store.write(move |c| db::forget(c, &req)).await?;
    info!(id = out.id, "forgot memory");
    Ok(ok(out))
}

async fn capabilities(State(s): Shared) -> Response {
    ok(Capabilities {
        server: "agentpod-memory-server".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        features: vec![FEATURE_UPDATE.into(), FEATURE_FORGET.into()],
        max_top_k: i64::try_from(s.max_top_k).unwrap_or(i64::MAX),
        max_list_limit: i64::try_from(s.max_list_limit).unwrap_or(i64::MAX),
        max_body_bytes: u64::try_from(s.max_body_bytes).unwrap_or(u64::MAX),
    })
}
