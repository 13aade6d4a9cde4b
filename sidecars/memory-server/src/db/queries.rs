//! Every query, as plain functions on a connection.

use std::collections::HashSet;
use std::time::SystemTime;

use agentpod_sdk::memory::{
    AgentVisibilityCount, Entry, Evidence, ForgetRequest, ForgetResult, Stats, StoreRequest,
    StoreResult, UpdateRequest, UpdateResult,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};

use super::DbError;
use crate::clock;
use crate::search::{Filters, fts_query, like_pattern};

/// The columns every entry query selects, on the alias `m`.
const COLUMNS: &str = "m.id, m.content, m.tags, m.visibility, m.source_agent, m.parent_id, \
    m.seq, m.created_at, m.updated_at, m.evidence, m.superseded_by, m.forgotten_at";

/// Longest provenance chain followed (guards against absurd data).
const MAX_CHAIN: usize = 10_000;

/// One `POST /search`, validated.
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    /// The user's text.
    pub query: String,
    /// Results wanted (already bounded).
    pub top_k: usize,
    /// Membrane filters.
    pub filters: Filters,
}

fn entry(row: &Row<'_>) -> rusqlite::Result<Entry> {
    // Columns added by migration are NULL-tolerant: rows written by any
    // server version decode.
    let text = |i: usize| -> rusqlite::Result<String> {
        Ok(row.get::<_, Option<String>>(i)?.unwrap_or_default())
    };
    let int =
        |i: usize| -> rusqlite::Result<i64> { Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0)) };
    let tags = text(2)?;
    let evidence = text(9)?;
    Ok(Entry {
        id: row.get(0)?,
        content: text(1)?,
        tags: if tags.is_empty() {
            Vec::new()
        } else {
            tags.split(',').map(str::to_owned).collect()
        },
        visibility: text(3)?,
        source_agent: text(4)?,
        parent_id: int(5)?,
        seq: int(6)?,
        created_at: text(7)?,
        updated_at: text(8)?,
        // Unreadable evidence is left out, as upstream does.
        evidence: if evidence.is_empty() {
            None
        } else {
            serde_json::from_str::<Evidence>(&evidence).ok()
        },
        superseded_by: int(10)?,
        forgotten_at: text(11)?,
    })
}

fn collect(conn: &Connection, sql: &str, args: Vec<Value>) -> Result<Vec<Entry>, DbError> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params_from_iter(args), entry)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Ranked full-text search (bm25), or a `LIKE` scan newest first when the
/// query has no indexable word.
pub fn search(conn: &Connection, p: &SearchParams, now: SystemTime) -> Result<Vec<Entry>, DbError> {
    let (filter_sql, filter_args) = p.filters.sql(now);
    let limit = Value::Integer(i64::try_from(p.top_k).unwrap_or(i64::MAX));
    let (sql, first) = match fts_query(&p.query) {
        Some(m) => (
            format!(
                "SELECT {COLUMNS} FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid \
                 WHERE memories_fts MATCH ?{filter_sql} ORDER BY memories_fts.rank LIMIT ?"
            ),
            m,
        ),
        None => (
            format!(
                "SELECT {COLUMNS} FROM memories m WHERE m.content LIKE ? ESCAPE '\\'{filter_sql} \
                 ORDER BY m.updated_at DESC LIMIT ?"
            ),
            like_pattern(&p.query),
        ),
    };
    let mut args = Vec::with_capacity(filter_args.len() + 2);
    args.push(Value::Text(first));
    args.extend(filter_args);
    args.push(limit);
    collect(conn, &sql, args)
}

/// Live entries, newest update first.
pub fn list(
    conn: &Connection,
    filters: &Filters,
    limit: usize,
    now: SystemTime,
) -> Result<Vec<Entry>, DbError> {
    let (filter_sql, mut args) = filters.sql(now);
    let sql = format!(
        "SELECT {COLUMNS} FROM memories m WHERE 1 = 1{filter_sql} ORDER BY m.updated_at DESC LIMIT ?"
    );
    args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    collect(conn, &sql, args)
}

/// Counts of live entries, the highest `seq`, and the hidden counts.
pub fn stats(conn: &Connection) -> Result<Stats, DbError> {
    let mut st = conn.prepare_cached(
        "SELECT COALESCE(source_agent, ''), COALESCE(visibility, 'public'), COUNT(*) AS n \
         FROM memories WHERE superseded_by = 0 AND forgotten_at = '' \
         GROUP BY source_agent, visibility ORDER BY n DESC",
    )?;
    let by_agent_visibility = st
        .query_map([], |r| {
            Ok(AgentVisibilityCount {
                source_agent: r.get(0)?,
                visibility: r.get(1)?,
                count: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let (max_seq, superseded, forgotten) = conn.query_row(
        "SELECT COALESCE(MAX(seq), 0), \
                COALESCE(SUM(superseded_by != 0), 0), \
                COALESCE(SUM(forgotten_at != ''), 0) FROM memories",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Stats {
        by_agent_visibility,
        max_seq,
        superseded,
        forgotten,
    })
}

/// One entry by id, hidden or not.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Entry>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM memories m WHERE m.id = ?");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], entry)
        .optional()?)
}

/// The chain from the root to `id` following `parent_id`; empty for an
/// unknown id. Hidden entries are included: this is the audit trail.
pub fn provenance(conn: &Connection, id: i64) -> Result<Vec<Entry>, DbError> {
    let mut chain = Vec::new();
    let mut seen = HashSet::new();
    let mut current = id;
    while current > 0 && chain.len() < MAX_CHAIN && seen.insert(current) {
        let Some(e) = get(conn, current)? else { break };
        current = e.parent_id;
        chain.push(e);
    }
    chain.reverse();
    Ok(chain)
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    req: &StoreRequest,
    now: &str,
) -> Result<StoreResult, DbError> {
    let evidence = match &req.evidence {
        Some(e) => serde_json::to_string(e)
            .map_err(|e| DbError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?,
        None => String::new(),
    };
    let visibility = if req.visibility.is_empty() {
        "public"
    } else {
        &req.visibility
    };
    let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM memories", [], |r| {
        r.get(0)
    })?;
    tx.prepare_cached(
        "INSERT INTO memories (content, tags, visibility, source_agent, parent_id, seq, \
         created_at, updated_at, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        req.content,
        req.tags.join(","),
        visibility,
        req.source_agent,
        req.parent_id,
        seq,
        now,
        now,
        evidence
    ])?;
    Ok(StoreResult {
        id: tx.last_insert_rowid(),
        seq,
        stored_at: now.to_owned(),
    })
}

/// Stores a new entry with the next `seq`.
pub fn store(conn: &mut Connection, req: &StoreRequest) -> Result<StoreResult, DbError> {
    let now = clock::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = insert(&tx, req, &now)?;
    tx.commit()?;
    Ok(out)
}

/// A live entry the caller may change.
fn live_owned(tx: &rusqlite::Transaction<'_>, id: i64, caller: &str) -> Result<Entry, DbError> {
    let old = get(tx, id)?.ok_or(DbError::NotFound(id))?;
    if !old.forgotten_at.is_empty() {
        return Err(DbError::NotFound(id));
    }
    if !caller.is_empty() && !old.source_agent.is_empty() && old.source_agent != caller {
        return Err(DbError::NotOwner {
            id,
            owner: old.source_agent,
        });
    }
    Ok(old)
}

/// Supersedes entry `req.id` with a new entry (its `parent_id`), taking
/// unspecified fields from the old one.
pub fn update(conn: &mut Connection, req: &UpdateRequest) -> Result<UpdateResult, DbError> {
    let now = clock::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let old = live_owned(&tx, req.id, &req.caller_agent)?;
    if old.superseded_by != 0 {
        return Err(DbError::Superseded {
            id: old.id,
            by: old.superseded_by,
        });
    }
    let new = StoreRequest {
        content: req.content.clone(),
        tags: req.tags.clone().unwrap_or(old.tags),
        visibility: if req.visibility.is_empty() {
            old.visibility
        } else {
            req.visibility.clone()
        },
        source_agent: old.source_agent,
        parent_id: old.id,
        evidence: req.evidence.clone().or(old.evidence),
    };
    let stored = insert(&tx, &new, &now)?;
    tx.execute(
        "UPDATE memories SET superseded_by = ?1 WHERE id = ?2",
        params![stored.id, old.id],
    )?;
    tx.commit()?;
    Ok(UpdateResult {
        id: stored.id,
        seq: stored.seq,
        stored_at: stored.stored_at,
        supersedes: old.id,
    })
}

/// Hides entry `req.id` from search and list; forgetting twice keeps the
/// first time.
pub fn forget(conn: &mut Connection, req: &ForgetRequest) -> Result<ForgetResult, DbError> {
    let now = clock::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(old) = get(&tx, req.id)? else {
        return Err(DbError::NotFound(req.id));
    };
    if !old.forgotten_at.is_empty() {
        return Ok(ForgetResult {
            id: old.id,
            forgotten_at: old.forgotten_at,
        });
    }
    live_owned(&tx, req.id, &req.caller_agent)?;
    tx.execute(
        "UPDATE memories SET forgotten_at = ?1 WHERE id = ?2",
        params![now, req.id],
    )?;
    tx.commit()?;
    Ok(ForgetResult {
        id: req.id,
        forgotten_at: now,
    })
}

/// Removes entry `id` for good; the removed entry, or `None` if unknown.
pub fn delete(conn: &mut Connection, id: i64) -> Result<Option<Entry>, DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(old) = get(&tx, id)? else {
        return Ok(None);
    };
    tx.execute("DELETE FROM memories WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(Some(old))
}
