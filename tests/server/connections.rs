//! Connection-level defences over raw TCP: slow or idle clients cannot hold connections (header-read, request
//! and idle timeouts, a connection cap), and a request body no handler reads cannot cost the next request on
//! the connection. Each test failed on `axum::serve` without limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN, Backend, ENV, TestServer};
use serde_json::Value;
use stepup_server::config::ConnectionLimits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Long enough that only the limit under test can close a connection.
const LONG_MS: u64 = 20_000;

async fn server_with(limits: ConnectionLimits) -> TestServer {
    TestServer::start_with(&Backend::Sqlite, |config| config.connections = limits).await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.server.addr()).await.unwrap()
}

/// An answer read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Value,
}

/// Reads one answer: its head, then `Content-Length` bytes of JSON body. `None` if the connection closed first.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Answer> {
    let head_end = loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap_or(0);
        if read == 0 {
            return None;
        }
        pending.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(pending[..head_end].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while pending.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap_or(0);
        if read == 0 {
            return None;
        }
        pending.extend_from_slice(&chunk[..read]);
    }
    let body = serde_json::from_slice(&pending[head_end..head_end + length]).unwrap_or(Value::Null);
    pending.drain(..head_end + length);
    Some(Answer { status, head, body })
}

/// Waits for the server to close `stream` without answering; the time it took.
async fn closed_unanswered(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
        .await
        .expect("the server closes the connection")
        .unwrap_or(0);
    assert_eq!(read, 0, "closed without an answer, got {:?}", String::from_utf8_lossy(&chunk[..read]));
    started.elapsed()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Slowloris: a client sends its headers a byte at a time and never finishes them. The header-read timeout
/// closes the connection, however steadily bytes arrive.
#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off() {
    let limits = ConnectionLimits {
        header_read_timeout_ms: 400,
        idle_timeout_ms: 400,
        request_timeout_ms: LONG_MS,
        ..ConnectionLimits::default()
    };
    let server = server_with(limits).await;
    let mut stream = connect(&server).await;
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".iter().cycle().take(200) {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !closed {
        closed_unanswered(&mut stream).await;
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "held for {took:?}");
}

/// A client sends its headers and half the body it announced, then nothing. The request timeout answers 408
/// `request_timeout` and closes the connection.
#[tokio::test]
async fn a_body_that_never_finishes_is_answered_408_and_closed() {
    let limits = ConnectionLimits {
        header_read_timeout_ms: LONG_MS,
        idle_timeout_ms: LONG_MS,
        request_timeout_ms: 400,
        ..ConnectionLimits::default()
    };
    let server = server_with(limits).await;
    let mut stream = connect(&server).await;
    let request = format!(
        "POST /sdk/{ENV}/emailVerifications/create HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"email\": \"half"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut stream, &mut Vec::new()))
        .await
        .expect("answered in time")
        .expect("answered, not just closed");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.body["code"], "request_timeout");
    assert!(answer.head.to_ascii_lowercase().contains("connection: close"), "{}", answer.head);
    closed_unanswered(&mut stream).await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A kept-alive connection with nothing to say is closed after the idle timeout.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let limits = ConnectionLimits {
        header_read_timeout_ms: LONG_MS,
        idle_timeout_ms: 400,
        request_timeout_ms: LONG_MS,
        ..ConnectionLimits::default()
    };
    let server = server_with(limits).await;
    let mut stream = connect(&server).await;
    let mut pending = Vec::new();
    stream.write_all(HEALTH).await.unwrap();
    assert_eq!(read_answer(&mut stream, &mut pending).await.unwrap().status, 200);
    // Still open a moment later: activity resets the clock.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(HEALTH).await.unwrap();
    assert_eq!(read_answer(&mut stream, &mut pending).await.unwrap().status, 200);
    let idle_for = closed_unanswered(&mut stream).await;
    assert!(idle_for < Duration::from_secs(5), "idle for {idle_for:?}");
}

/// The header-read clock runs from the previous answer, so it also closes a kept-alive connection that never
/// sends its next request.
#[tokio::test]
async fn the_header_read_timeout_also_bounds_keep_alive() {
    let limits =
        ConnectionLimits { header_read_timeout_ms: 400, idle_timeout_ms: 400, ..ConnectionLimits::default() };
    let server = server_with(limits).await;
    let mut stream = connect(&server).await;
    stream.write_all(HEALTH).await.unwrap();
    assert_eq!(read_answer(&mut stream, &mut Vec::new()).await.unwrap().status, 200);
    stream.write_all(b"GET /hea").await.unwrap();
    assert!(closed_unanswered(&mut stream).await < Duration::from_secs(5));
}

/// With the cap reached, a new client waits (in the listen backlog) and is served as soon as a connection
/// closes.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let limits = ConnectionLimits {
        max_connections: 2,
        header_read_timeout_ms: LONG_MS,
        idle_timeout_ms: LONG_MS,
        request_timeout_ms: LONG_MS,
    };
    let server = server_with(limits).await;
    let first = connect(&server).await;
    let mut second = connect(&server).await;
    // The second is served (the cap is two)...
    second.write_all(HEALTH).await.unwrap();
    assert_eq!(read_answer(&mut second, &mut Vec::new()).await.unwrap().status, 200);
    // ...the third is not while both are open...
    let mut third = connect(&server).await;
    third.write_all(HEALTH).await.unwrap();
    let mut pending = Vec::new();
    let waited =
        tokio::time::timeout(Duration::from_millis(500), read_answer(&mut third, &mut pending)).await;
    assert!(waited.is_err(), "answered beyond the cap: {waited:?}");
    // ...and is once one closes.
    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut third, &mut pending))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert_eq!(answer.status, 200);
}

/// Shutting down does not wait for idle clients: open keep-alive connections are closed and `shutdown`
/// returns at once.
#[tokio::test]
async fn shutdown_closes_idle_connections() {
    let limits = ConnectionLimits {
        header_read_timeout_ms: LONG_MS,
        idle_timeout_ms: LONG_MS,
        request_timeout_ms: LONG_MS,
        ..ConnectionLimits::default()
    };
    let server = server_with(limits).await;
    let mut idle = connect(&server).await;
    idle.write_all(HEALTH).await.unwrap();
    assert_eq!(read_answer(&mut idle, &mut Vec::new()).await.unwrap().status, 200);
    let _silent = connect(&server).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await.expect("shutdown does not hang");
    assert!(started.elapsed() < Duration::from_secs(5));
    closed_unanswered(&mut idle).await;
}

/// Shutting down lets a request in progress finish: its answer goes out, then the connection closes.
#[tokio::test]
async fn shutdown_answers_the_request_in_progress() {
    let limits = ConnectionLimits {
        header_read_timeout_ms: LONG_MS,
        idle_timeout_ms: LONG_MS,
        request_timeout_ms: LONG_MS,
        ..ConnectionLimits::default()
    };
    let server = server_with(limits).await;
    let mut stream = connect(&server).await;
    let body = br#"{"email": "in-progress@example.com"}"#;
    let head = format!(
        "POST /sdk/{ENV}/emailVerifications/create HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shutting_down = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!shutting_down.is_finished(), "shutdown waits for the request in progress");
    stream.write_all(&body[10..]).await.unwrap();
    let answer = read_answer(&mut stream, &mut Vec::new()).await.expect("answered");
    assert_eq!(answer.status, 200, "{answer:?}");
    closed_unanswered(&mut stream).await;
    tokio::time::timeout(Duration::from_secs(5), shutting_down).await.expect("shutdown ends").unwrap();
}

/// The review's keep-alive drop: a body sent to a handler that reads none (`POST .../sessions` with `{}`, as the
/// README has it) arrived after the answer; hyper found it unread, gave the connection up and closed it after
/// answering — and the next request, already written, was lost. The body is now read for every route first.
#[tokio::test]
async fn a_request_after_an_unread_body_is_answered() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let user = server.create_user("keepalive@example.com", None).await;
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /admin/environments/{ENV}/users/{}/sessions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \
         {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
        user.id
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The body and the next request follow a moment later, as two segments of a busy client would.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut rest = b"{}".to_vec();
    rest.extend_from_slice(HEALTH);
    stream.write_all(&rest).await.unwrap();
    let mut pending = Vec::new();
    let session = read_answer(&mut stream, &mut pending).await.expect("the session call is answered");
    assert_eq!(session.status, 200, "{session:?}");
    let health = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut stream, &mut pending))
        .await
        .expect("in time")
        .expect("the next request on the connection is answered");
    assert_eq!(health.status, 200, "{health:?}");
}

/// A body larger than the limit is refused 413 `payload_too_large` on every route, read or not.
#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let mut stream = connect(&server).await;
    let body = vec![b' '; 70 * 1024];
    let head = format!("POST /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(&body).await;
    let answer = read_answer(&mut stream, &mut Vec::new()).await.expect("answered");
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.body["code"], "payload_too_large");
}

/// hyper answers a request it cannot parse itself, before any route runs: too many or too large headers are a
/// 431 with an empty body, and the connection closes. That answer cannot be JSON (hyper writes it); it is
/// documented in docs/wire-protocol.md, and this test keeps the documentation true.
#[tokio::test]
async fn oversized_headers_get_hypers_own_431() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let mut stream = connect(&server).await;
    let mut request = String::from("GET /health HTTP/1.1\r\nHost: localhost\r\n");
    for n in 0..120 {
        request.push_str(&format!("X-Filler-{n}: x\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let answer = read_answer(&mut stream, &mut pending).await.expect("answered");
    assert_eq!(answer.status, 431, "{answer:?}");
    assert_eq!(answer.body, Value::Null, "hyper's answer has no body");
    assert!(read_answer(&mut stream, &mut pending).await.is_none(), "and the connection is closed");
}
