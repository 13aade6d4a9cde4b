//! The memory client against a scripted HTTP server: error texts, retries,
//! deadlines, answer caps, the wire shape of requests, and how it tells an
//! upstream server (no extensions) from agentpod's. The client against the
//! real server is covered by `sidecars/memory-server/tests/api.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentpod_sdk::memory::{
    Capabilities, ListQuery, MemoryClient, MemoryErrorKind, SearchRequest, StoreRequest,
    UpdateRequest,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted server does with the n-th connection.
#[derive(Clone)]
enum Reply {
    /// Close without answering (a transport error for the client).
    Drop,
    /// Never answer.
    Hang,
    /// Answer with this status and body.
    With(u16, String),
}

/// One request as received: request line and body.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn scripted(script: Vec<Reply>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let reply = script[n.min(script.len() - 1)].clone();
            n += 1;
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let (line, body) = read_request(&mut sock).await;
                log.lock().unwrap().push((line, body));
                match reply {
                    Reply::Drop => drop(sock),
                    Reply::Hang => {
                        let _ = sock.read(&mut [0u8; 1]).await;
                    }
                    Reply::With(status, body) => {
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    }
                }
            });
        }
    });
    (url, seen)
}

async fn read_request(sock: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed early");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = head.lines().next().unwrap_or_default().to_owned();
    (line, String::from_utf8_lossy(&buf[head_end..]).to_string())
}

fn ok(content: Value) -> Reply {
    Reply::With(
        200,
        json!({"success": true, "content": content}).to_string(),
    )
}

fn client(url: &str) -> MemoryClient {
    MemoryClient::new(url)
        .unwrap()
        .with_retries(3, Duration::from_millis(5))
}

#[tokio::test]
async fn requests_have_the_upstream_shape() {
    let (url, seen) = scripted(vec![
        ok(json!([{"id":1,"content":"c","created_at":"t","updated_at":"t"}])),
        ok(json!({"id":2,"seq":2,"stored_at":"t"})),
        ok(json!([])),
    ])
    .await;
    let c = client(&url);
    let found = c
        .search(&SearchRequest {
            top_k: 3,
            ..SearchRequest::new("q w")
        })
        .await
        .unwrap();
    assert_eq!(found[0].id, 1);
    let stored = c.store(&StoreRequest::new("text", &["a"])).await.unwrap();
    assert_eq!((stored.id, stored.seq), (2, 2));
    c.list(&ListQuery {
        tags: "a b&c".into(),
        limit: 4,
        ..ListQuery::default()
    })
    .await
    .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "POST /search HTTP/1.1");
    assert_eq!(
        serde_json::from_str::<Value>(&seen[0].1).unwrap(),
        json!({"query":"q w","top_k":3})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&seen[1].1).unwrap(),
        json!({"content":"text","tags":["a"]})
    );
    assert_eq!(seen[2].0, "GET /list?tags=a+b%26c&limit=4 HTTP/1.1");
}

#[tokio::test]
async fn error_texts_match_the_upstream_runner() {
    let (url, _) = scripted(vec![
        Reply::With(500, "boom".into()),
        Reply::With(200, r#"{"success":false,"error":"disk full"}"#.into()),
        Reply::With(200, "not json".into()),
    ])
    .await;
    let c = client(&url);
    let e = c.search(&SearchRequest::new("x")).await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (MemoryErrorKind::Status, Some(500)));
    assert_eq!(e.to_string(), "Memory server returned 500: boom");
    let e = c.search(&SearchRequest::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), MemoryErrorKind::Server);
    assert_eq!(e.to_string(), "Memory error: disk full");
    let e = c.search(&SearchRequest::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), MemoryErrorKind::Decode);
}

#[tokio::test]
async fn transport_errors_are_retried_then_reported() {
    let (url, seen) = scripted(vec![Reply::Drop, Reply::Drop, ok(json!([]))]).await;
    let c = client(&url);
    assert!(c.search(&SearchRequest::new("x")).await.unwrap().is_empty());
    assert_eq!(seen.lock().unwrap().len(), 3);

    let (url, seen) = scripted(vec![Reply::Drop]).await;
    let e = client(&url)
        .search(&SearchRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), MemoryErrorKind::Transport);
    assert_eq!(seen.lock().unwrap().len(), 4, "one try and three retries");
    // Nothing listening at all.
    let e = client("http://127.0.0.1:9/").stats().await.unwrap_err();
    assert_eq!(e.kind(), MemoryErrorKind::Transport);
}

#[tokio::test]
async fn a_hanging_server_hits_the_deadline() {
    let (url, _) = scripted(vec![Reply::Hang]).await;
    let c = client(&url)
        .with_timeout(Duration::from_millis(200))
        .with_retries(0, Duration::ZERO);
    let started = std::time::Instant::now();
    let e = c.search(&SearchRequest::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), MemoryErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let big = json!([{"id":1,"content":"x".repeat(100_000),"created_at":"t","updated_at":"t"}]);
    let (url, _) = scripted(vec![ok(big)]).await;
    let e = client(&url)
        .search(&SearchRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), MemoryErrorKind::Decode);
    assert!(e.to_string().contains("65536"), "{e}");
}

#[tokio::test]
async fn an_upstream_server_has_no_extensions() {
    let plain_404 = Reply::With(404, "404 page not found\n".into());
    let (url, _) = scripted(vec![plain_404]).await;
    let c = client(&url);
    let caps = c.capabilities().await.unwrap();
    assert_eq!(caps, Capabilities::upstream());
    assert!(!caps.supports("update"));
    let e = c
        .update(&UpdateRequest {
            id: 1,
            content: "x".into(),
            ..UpdateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), MemoryErrorKind::Unsupported);
    assert_eq!(e.to_string(), "the memory server does not support /update");
}

#[test]
fn bad_urls_are_refused() {
    for bad in ["", "memory:8080", "ftp://x/"] {
        let e = MemoryClient::new(bad).unwrap_err();
        assert_eq!(e.kind(), MemoryErrorKind::Config, "{bad}");
    }
    let c = MemoryClient::new("http://agent-memory.ns.svc:8080").unwrap();
    assert_eq!(c.base_url().as_str(), "http://agent-memory.ns.svc:8080/");
}
