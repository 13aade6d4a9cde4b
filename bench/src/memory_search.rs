//! Memory server: search latency at 10k and 100k entries and store
//! throughput, each next to the same statement run directly through SQLite
//! (rusqlite) on the same file in the same run, so the table shows what
//! HTTP, JSON and the server add over SQLite itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentpod_sdk::memory::{MemoryClient, SearchRequest, StoreRequest};
use anyhow::{Context, Result};
use memory_server::{Config, Store, config::Synchronous, search::fts_query};
use rusqlite::params;

use crate::report::Section;
use crate::stats::{Summary, fmt_duration, fmt_ratio};

/// The benchmark's name for `--only`.
pub const NAME: &str = "memory";

/// Searches measured per database size and path.
const QUERIES: usize = 2000;
/// Stores measured per series.
const STORES: usize = 2000;

/// The columns the server selects, and its filter for live entries.
const SEARCH_SQL: &str = "SELECT m.id, m.content, m.tags, m.visibility, m.source_agent, \
    m.parent_id, m.seq, m.created_at, m.updated_at, m.evidence, m.superseded_by, m.forgotten_at \
    FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid \
    WHERE memories_fts MATCH ?1 AND m.superseded_by = 0 AND m.forgotten_at = '' \
    ORDER BY memories_fts.rank LIMIT ?2";

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A word index with a Zipf-like skew: low indexes are common.
    fn word(&mut self, vocab: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((vocab as f64).powf(u) as usize)
            .saturating_sub(1)
            .min(vocab - 1)
    }
}

fn vocabulary() -> Vec<String> {
    const SYL: [&str; 16] = [
        "ka", "lo", "mi", "ne", "po", "ru", "sa", "te", "vi", "zo", "bra", "cle", "dru", "fli",
        "gno", "pha",
    ];
    (0..4096)
        .map(|i| {
            format!(
                "{}{}{}",
                SYL[i % 16],
                SYL[(i / 16) % 16],
                SYL[(i / 256) % 16]
            )
        })
        .collect()
}

fn sentence(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    (0..words)
        .map(|_| vocab[rng.word(vocab.len())].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fills the database with `n` entries in one transaction through the
/// same triggers as the server's inserts.
fn bulk_fill(path: &std::path::Path, n: usize, vocab: &[String]) -> Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare(
            "INSERT INTO memories (content, tags, visibility, source_agent, parent_id, seq, \
             created_at, updated_at, evidence) VALUES (?1, ?2, 'public', ?3, 0, ?4, ?5, ?5, '')",
        )?;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for i in 0..n {
            let content = sentence(&mut rng, vocab, 24);
            let tags = format!("t{},auto", i % 10);
            let agent = format!("agent{}", i % 4);
            let at = format!("2026-01-{:02}T00:00:00Z", 1 + i % 28);
            st.execute(params![content, tags, agent, i as i64 + 1, at])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Two-word queries of mid-frequency words (what an agent's task text
/// looks like after stop words).
fn queries(n: usize, vocab: &[String]) -> Vec<String> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    (0..n)
        .map(|_| {
            let a = 20 + (rng.next() % 400) as usize;
            let b = 20 + (rng.next() % 400) as usize;
            format!("{} {}", vocab[a], vocab[b])
        })
        .collect()
}

struct Running {
    client: MemoryClient,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(config: Config) -> Result<Running> {
    let store = Arc::new(tokio::task::block_in_place(|| Store::open(&config))?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = memory_server::serve(listener, store, &config, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(Running {
        client: MemoryClient::new(&url)?.with_max_response_bytes(16 << 20),
        shutdown: tx,
        task,
    })
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

async fn http_search(client: &MemoryClient, qs: &[String]) -> Result<(Vec<Duration>, usize)> {
    let mut out = Vec::with_capacity(qs.len());
    let mut hits = 0;
    for q in qs {
        let t = Instant::now();
        let r = client.search(&SearchRequest::new(q.as_str())).await?;
        out.push(t.elapsed());
        hits += r.len();
    }
    Ok((out, hits))
}

fn bare_search(path: &std::path::Path, qs: &[String]) -> Result<(Vec<Duration>, usize)> {
    let conn = rusqlite::Connection::open(path)?;
    let mut out = Vec::with_capacity(qs.len());
    let mut hits = 0;
    let mut st = conn.prepare(SEARCH_SQL)?;
    for q in qs {
        let t = Instant::now();
        let m = fts_query(q).context("query has words")?;
        let mut rows = st.query(params![m, 5])?;
        while let Some(r) = rows.next()? {
            // Read every column, as the server does.
            for i in 0..12 {
                let _: rusqlite::types::Value = r.get(i)?;
            }
            hits += 1;
        }
        out.push(t.elapsed());
    }
    Ok((out, hits))
}

fn row(label: &str, s: &Summary, vs: Option<&Summary>) -> String {
    format!(
        "| {label} | {} | {} | {} | {} |\n",
        fmt_duration(s.p50),
        fmt_duration(s.p99),
        fmt_duration(s.mean),
        vs.map_or("–".into(), |b| format!(
            "{} / {}",
            fmt_ratio(s.p50, b.p50),
            fmt_ratio(s.p99, b.p99)
        )),
    )
}

/// Runs the benchmark.
pub async fn run() -> Result<Section> {
    let vocab = vocabulary();
    let qs = queries(QUERIES, &vocab);
    let mut table = String::from(
        "| series | p50 | p99 | mean | server ÷ bare (p50 / p99) |\n|---|---|---|---|---|\n",
    );
    let mut notes = String::new();
    let mut store_table = String::new();
    for size in [10_000usize, 100_000] {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("memory.db");
        let config = Config::local(&path);
        // Create the schema, then fill directly.
        drop(tokio::task::block_in_place(|| Store::open(&config))?);
        let t = Instant::now();
        let v = vocab.clone();
        let p = path.clone();
        tokio::task::spawn_blocking(move || bulk_fill(&p, size, &v)).await??;
        notes.push_str(&format!(
            "- {size} entries bulk-inserted in {:.1} s ({} KiB file).\n",
            t.elapsed().as_secs_f64(),
            std::fs::metadata(&path)
                .map(|m| m.len() / 1024)
                .unwrap_or(0)
        ));
        let server = start(config.clone()).await?;
        // Warm both paths (page cache, statement caches, connections).
        let warm = &qs[..qs.len().min(200)];
        http_search(&server.client, warm).await?;
        let (p, w) = (path.clone(), warm.to_vec());
        tokio::task::spawn_blocking(move || bare_search(&p, &w)).await??;

        let (http, http_hits) = http_search(&server.client, &qs).await?;
        let (p, q2) = (path.clone(), qs.clone());
        let (bare, bare_hits) = tokio::task::spawn_blocking(move || bare_search(&p, &q2)).await??;
        anyhow::ensure!(
            http_hits == bare_hits,
            "server found {http_hits}, bare {bare_hits}"
        );
        let hs = Summary::of(&http).context("samples")?;
        let bs = Summary::of(&bare).context("samples")?;
        table.push_str(&row(
            &format!("{size} entries: bare SQLite (rusqlite)"),
            &bs,
            None,
        ));
        table.push_str(&row(
            &format!("{size} entries: memory-server over HTTP"),
            &hs,
            Some(&bs),
        ));
        notes.push_str(&format!(
            "- {size} entries: {:.1} results per query on average.\n",
            http_hits as f64 / qs.len() as f64
        ));

        if size == 10_000 {
            store_table = store_series(&server.client, &path, STORES, &vocab).await?;
        }
        server.stop().await;
    }
    // Store throughput with synchronous=NORMAL for comparison.
    let dir = tempfile::tempdir()?;
    let mut config = Config::local(dir.path().join("memory.db"));
    config.synchronous = Synchronous::Normal;
    let server = start(config).await?;
    let normal = concurrent_stores(&server.client, 8, STORES / 8, &vocab).await?;
    server.stop().await;
    store_table.push_str(&format!(
        "| server, 8 writers, MEMORY_SYNCHRONOUS=normal | {:.0} |\n",
        normal
    ));

    let body = format!(
        "Search: {q} two-word queries (mid-frequency words of a 4096-word synthetic vocabulary, \
         24-word entries), `top_k` 5, one at a time. *Bare* runs the server's statement (same \
         FTS5 `MATCH` expression, same columns, same live-entry filter) through rusqlite on the \
         same file in the same run; the server adds HTTP/1.1 keep-alive over loopback, JSON both \
         ways, a blocking-pool hop and the reader pool.\n\n{table}\n\
         Store throughput (stores per second; default `MEMORY_SYNCHRONOUS=full` unless noted; \
         bare = the same immediate transaction, `MAX(seq)+1` and insert, on one rusqlite \
         connection):\n\n| series | stores/s |\n|---|---|\n{store_table}\n{notes}",
        q = QUERIES
    );
    Ok(Section {
        title: "Memory server: search latency and store throughput".into(),
        body,
    })
}

async fn concurrent_stores(
    client: &MemoryClient,
    writers: usize,
    per_writer: usize,
    vocab: &[String],
) -> Result<f64> {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = client.clone();
        let mut rng = Rng(0xA5A5_0000 + w as u64 + 1);
        let texts: Vec<String> = (0..per_writer)
            .map(|_| sentence(&mut rng, vocab, 24))
            .collect();
        tasks.push(tokio::spawn(async move {
            for text in texts {
                c.store(&StoreRequest::new(text, &["bench"])).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((writers * per_writer) as f64 / t.elapsed().as_secs_f64())
}

async fn store_series(
    client: &MemoryClient,
    path: &std::path::Path,
    n: usize,
    vocab: &[String],
) -> Result<String> {
    let mut rng = Rng(42);
    let texts: Vec<String> = (0..n).map(|_| sentence(&mut rng, vocab, 24)).collect();
    let t = Instant::now();
    for text in &texts {
        client
            .store(&StoreRequest::new(text.as_str(), &["bench"]))
            .await?;
    }
    let one = n as f64 / t.elapsed().as_secs_f64();
    let eight = concurrent_stores(client, 8, n / 8, vocab).await?;
    let p = path.to_path_buf();
    let bare = tokio::task::spawn_blocking(move || -> Result<f64> {
        let mut conn = rusqlite::Connection::open(&p)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA synchronous = FULL")?;
        let t = Instant::now();
        for text in &texts {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let seq: i64 =
                tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM memories", [], |r| {
                    r.get(0)
                })?;
            tx.execute(
                "INSERT INTO memories (content, tags, visibility, source_agent, parent_id, seq, \
                 created_at, updated_at, evidence) VALUES (?1, 'bench', 'public', '', 0, ?2, \
                 '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '')",
                params![text, seq],
            )?;
            tx.commit()?;
        }
        Ok(texts.len() as f64 / t.elapsed().as_secs_f64())
    })
    .await??;
    Ok(format!(
        "| bare SQLite, 1 writer | {bare:.0} |\n| server, 1 writer over HTTP | {one:.0} |\n\
         | server, 8 concurrent writers over HTTP | {eight:.0} |\n"
    ))
}
