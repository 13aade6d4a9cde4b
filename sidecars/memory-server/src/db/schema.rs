//! The schema: upstream's tables, FTS5 index, triggers and indexes, plus
//! agentpod's two columns. Every step checks before it changes anything,
//! so opening any earlier database (upstream's, from any version, or ours)
//! migrates it, and opening it again changes nothing.

use rusqlite::{Connection, TransactionBehavior};
use tracing::info;

/// Upstream's base schema, verbatim in meaning: the table, the external
/// content FTS5 index and the three triggers that keep it in step.
const BASE: &str = "
CREATE TABLE IF NOT EXISTS memories (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    content    TEXT NOT NULL,
    tags       TEXT DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    content,
    content=memories,
    content_rowid=id,
    tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER IF NOT EXISTS memories_au AFTER UPDATE ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO memories_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE INDEX IF NOT EXISTS idx_memories_updated ON memories(updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_memories_tags ON memories(tags);
";

/// Columns added after the base table, in the order upstream added them,
/// then agentpod's (`superseded_by`, `forgotten_at`: defaults that mean
/// "live", so rows written by an upstream server stay visible).
const COLUMNS: &[(&str, &str)] = &[
    ("visibility", "TEXT DEFAULT 'public'"),
    ("source_agent", "TEXT DEFAULT ''"),
    ("parent_id", "INTEGER DEFAULT 0"),
    ("seq", "INTEGER DEFAULT 0"),
    ("evidence", "TEXT DEFAULT ''"),
    ("superseded_by", "INTEGER NOT NULL DEFAULT 0"),
    ("forgotten_at", "TEXT NOT NULL DEFAULT ''"),
];

/// Indexes on the added columns.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS idx_memories_visibility ON memories(visibility);
CREATE INDEX IF NOT EXISTS idx_memories_source_agent ON memories(source_agent);
CREATE INDEX IF NOT EXISTS idx_memories_seq ON memories(seq DESC);
";

/// Creates or migrates the schema in one immediate transaction, so two
/// servers starting on one file cannot both add a column.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(BASE)?;
    for (name, decl) in COLUMNS {
        let present: bool = tx.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('memories') WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?;
        if !present {
            info!(column = name, "adding column to memories");
            tx.execute_batch(&format!("ALTER TABLE memories ADD COLUMN {name} {decl}"))?;
        }
    }
    tx.execute_batch(INDEXES)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT name FROM pragma_table_info('memories')")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let first = columns(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(columns(&conn), first);
        assert_eq!(first.len(), 12);
    }
}
