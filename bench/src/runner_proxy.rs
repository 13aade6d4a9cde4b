//! A timestamping TCP relay between an agent and the scripted model server.
//!
//! The agent talks to the relay as if it were the server; every read, in
//! either direction, is timestamped. HTTP/1.1 without pipelining alternates
//! strictly (request, then the whole response, then the next request), so
//! the exchanges can be recovered from the timestamps alone without parsing
//! HTTP: a request is the run of client reads after server bytes (or the
//! first on a connection), its response the run of server reads up to the
//! next request. The relay stands where the server would: from a response's
//! last byte to the next request's last byte is the agent's own time; from a
//! request's last byte to its response's last byte is the server's (relay
//! hops included).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Agent → server (a request).
    Up,
    /// Server → agent (a response).
    Down,
}

/// One read on one connection.
#[derive(Debug, Clone, Copy)]
struct Event {
    conn: u64,
    dir: Dir,
    at: Instant,
}

/// One request/response exchange as the relay saw it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// Last request byte read from the agent: the request has arrived.
    pub request_end: Instant,
    /// Last response byte read from the server.
    pub response_end: Instant,
}

type Log = Arc<Mutex<Vec<Event>>>;

/// A running relay on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Log::default();
        let task = tokio::spawn(accept_loop(listener, upstream, log.clone()));
        Ok(Self { addr, log, task })
    }

    /// `http://127.0.0.1:PORT/v1`, the OpenAI base URL to give the agent.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The exchanges seen since the last call, in time order (and forgets
    /// them).
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        let events = std::mem::take(&mut *lock(&self.log));
        exchanges(events)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(log: &Log) -> MutexGuard<'_, Vec<Event>> {
    // A panicking relay task cannot leave a Vec half-pushed; keep the log.
    log.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, log: Log) {
    let mut next_conn = 0u64;
    while let Ok((client, _)) = listener.accept().await {
        let conn = next_conn;
        next_conn += 1;
        tokio::spawn(relay(conn, client, upstream, log.clone()));
    }
}

/// Relays one connection until either side closes.
async fn relay(conn: u64, client: TcpStream, upstream: SocketAddr, log: Log) {
    let _ = client.set_nodelay(true);
    let (mut client_rd, client_wr) = client.into_split();
    // Read the first request bytes before connecting upstream, so the
    // first arrival is stamped as soon as it is readable; the upstream
    // connect then counts as server time.
    let mut first = vec![0u8; 64 * 1024];
    let n = match client_rd.read(&mut first).await {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    lock(&log).push(Event {
        conn,
        dir: Dir::Up,
        at: Instant::now(),
    });
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (server_rd, mut server_wr) = server.into_split();
    if server_wr.write_all(&first[..n]).await.is_err() {
        return;
    }
    let up = pump(conn, Dir::Up, client_rd, server_wr, log.clone());
    let down = pump(conn, Dir::Down, server_rd, client_wr, log);
    tokio::join!(up, down);
}

/// Copies one direction, stamping every read.
async fn pump(conn: u64, dir: Dir, mut from: OwnedReadHalf, mut to: OwnedWriteHalf, log: Log) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lock(&log).push(Event {
            conn,
            dir,
            at: Instant::now(),
        });
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Recovers the exchanges from the raw reads (see the module docs).
fn exchanges(mut events: Vec<Event>) -> Vec<Exchange> {
    events.sort_by_key(|e| e.at);
    let mut last_dir: HashMap<u64, Dir> = HashMap::new();
    let mut out: Vec<Exchange> = Vec::new();
    for e in events {
        let prev = last_dir.insert(e.conn, e.dir);
        match e.dir {
            Dir::Up if prev != Some(Dir::Up) => out.push(Exchange {
                request_end: e.at,
                response_end: e.at,
            }),
            Dir::Up => {
                if let Some(x) = out.last_mut() {
                    x.request_end = e.at;
                }
            }
            // Agents here send one request at a time, so server bytes
            // belong to the latest request.
            Dir::Down => {
                if let Some(x) = out.last_mut() {
                    x.response_end = e.at;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn alternation_splits_exchanges() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let ev = |conn, dir, ms| Event {
            conn,
            dir,
            at: at(ms),
        };
        let x = exchanges(vec![
            ev(0, Dir::Up, 1),
            ev(0, Dir::Up, 2),
            ev(0, Dir::Down, 3),
            ev(0, Dir::Down, 4),
            ev(0, Dir::Up, 6),
            ev(0, Dir::Down, 7),
            // a second connection after the first one
            ev(1, Dir::Up, 9),
            ev(1, Dir::Down, 10),
        ]);
        let got: Vec<_> = x.iter().map(|x| (x.request_end, x.response_end)).collect();
        assert_eq!(got, vec![(at(2), at(4)), (at(6), at(7)), (at(9), at(10))]);
    }
}
