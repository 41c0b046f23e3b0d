//! Connections a client leaves hanging are closed by the server's timers, and one address
//! cannot take all the server's connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::TestApp;

/// A connection to the test server from `source` (any 127.x.y.z is this machine).
async fn connect_from(app: &TestApp, source: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("loopback source addresses can be bound");
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], app.port)))
        .await
        .expect("connected")
}

/// Reads until the server closes the connection; what it sent and when it closed. Panics
/// if the connection is still open after `deadline`.
async fn until_closed(stream: &mut TcpStream, deadline: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline
            .checked_sub(started.elapsed())
            .unwrap_or_else(|| panic!("still open after {deadline:?}"));
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "still open after {deadline:?}; received {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0) | Err(_)) => return (got, started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn with_timeouts(vars: &[(&str, &str)]) -> TestApp {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    TestApp::spawn_with(move |map| map.extend(vars)).await
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let app = with_timeouts(&[("HEADER_TIMEOUT", "1s"), ("KEEPALIVE_TIMEOUT", "30s")]).await;
    let mut idle = connect_from(&app, [127, 0, 0, 1]).await;
    let (got, after) = until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );
    // It is gone from the server's count too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.open_connections() > 0 {
        assert!(Instant::now() < deadline, "the server still counts it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_request_head_dribbled_a_byte_at_a_time_is_cut_at_the_header_timeout() {
    let app = with_timeouts(&[("HEADER_TIMEOUT", "1s")]).await;
    let mut slow = connect_from(&app, [127, 0, 0, 1]).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut sent = 0;
    // One header byte every 100 ms, far beyond the 1 s the head may take.
    let cut = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still writing after 10 s: never cut"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        if slow.write_all(b"X").await.is_err() {
            break started.elapsed();
        }
        sent += 1;
        let mut probe = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            break started.elapsed();
        }
    };
    assert!(sent >= 5, "cut after {sent} bytes ({cut:?}): too soon");
}

#[tokio::test]
async fn a_kept_alive_connection_with_no_next_request_is_closed_after_the_keepalive_timeout() {
    let app = with_timeouts(&[("HEADER_TIMEOUT", "20s"), ("KEEPALIVE_TIMEOUT", "1s")]).await;
    let mut conn = connect_from(&app, [127, 0, 0, 1]).await;
    for _ in 0..2 {
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    }
    // Well before the 20 s header timeout: the keep-alive timer closes it.
    let (_, after) = until_closed(&mut conn, Duration::from_secs(10)).await;
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );
}

/// Sends a head announcing 100 bytes of body and then only 10 of them.
async fn stalled_post(app: &TestApp, path: &str) -> (String, Duration) {
    let mut conn = connect_from(app, [127, 0, 0, 1]).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"email\":"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (got, after) = until_closed(&mut conn, Duration::from_secs(10)).await;
    (String::from_utf8_lossy(&got).into_owned(), after)
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_fails_at_the_body_timeout_on_every_route() {
    let app = with_timeouts(&[("BODY_TIMEOUT", "1s"), ("REQUEST_TIMEOUT", "30s")]).await;
    let (answer, after) = stalled_post(&app, "/api/auth/login").await;
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"REQUEST_TIMEOUT""#), "{answer}");

    // A Socket.IO long-polling POST of an open Engine.IO session: the same timer.
    let open = app
        .client
        .get(app.url("/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let handshake: serde_json::Value =
        serde_json::from_str(open.trim_start_matches('0')).expect("an Engine.IO open packet");
    let sid = handshake["sid"]
        .as_str()
        .unwrap()
        .replace('+', "%2B")
        .replace('/', "%2F");
    let (answer, after) = stalled_post(
        &app,
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
    )
    .await;
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}: {answer:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_its_responses_is_cut_at_the_send_timeout() {
    let app = with_timeouts(&[
        ("SEND_TIMEOUT", "1s"),
        ("HEADER_TIMEOUT", "60s"),
        ("KEEPALIVE_TIMEOUT", "60s"),
    ])
    .await;
    let conn = connect_from(&app, [127, 0, 0, 1]).await;
    let (mut reader, mut writer) = conn.into_split();
    // Pipelined requests whose answers (~15 MB) are never read: the server's writes stall.
    let flood = tokio::spawn(async move {
        let request = b"GET /api/nowhere HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
        for _ in 0..100 {
            writer.write_all(&request).await?;
        }
        std::future::pending::<()>().await;
        Ok::<_, std::io::Error>(())
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.open_connections() == 0 {
        assert!(Instant::now() < deadline, "never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    while app.open_connections() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server still holds the connection of a client that reads nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    flood.abort();
    // What had been sent before the cut is still there to read, then the end.
    let mut buf = vec![0u8; 65536];
    let n = reader.read(&mut buf).await.unwrap_or(0);
    assert!(n == 0 || buf.starts_with(b"HTTP/1.1 404"));
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_and_a_trusted_proxy_is_exempt() {
    let app = with_timeouts(&[
        ("MAX_CONNECTIONS_PER_IP", "5"),
        ("TRUSTED_PROXIES", "127.0.0.3"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from(&app, [127, 0, 0, 2]).await);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.open_connections() < 5 {
        assert!(Instant::now() < deadline, "5 connections were not admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The sixth from that address is answered 503 and closed at once.
    let mut sixth = connect_from(&app, [127, 0, 0, 2]).await;
    let (got, _) = until_closed(&mut sixth, Duration::from_secs(5)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    assert!(got.contains("SERVICE_UNAVAILABLE"), "{got}");
    assert!(
        got.contains("too many open connections from this address"),
        "{got}"
    );

    // Everyone else is served meanwhile, a proxy that carries many clients included.
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    let mut behind_proxy = Vec::new();
    for _ in 0..8 {
        behind_proxy.push(connect_from(&app, [127, 0, 0, 3]).await);
    }
    let mut last = behind_proxy.pop().unwrap();
    last.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = until_closed(&mut last, Duration::from_secs(5)).await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // A connection closed frees its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = connect_from(&app, [127, 0, 0, 2]).await;
        again
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (got, _) = until_closed(&mut again, Duration::from_secs(5)).await;
        if got.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was never given again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn accepted_connections_carry_tcp_keepalive_so_a_vanished_peer_is_found() {
    let app = with_timeouts(&[("TCP_KEEPALIVE", "45s")]).await;
    let conn = connect_from(&app, [127, 0, 0, 1]).await;
    let client_port = conn.local_addr().unwrap().port();
    // `ss` shows the server side's timer: keepalive, first probe within 45 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = std::process::Command::new("ss")
            .args(["-tnoH", "state", "established"])
            .arg(format!(
                "( sport = :{} and dport = :{client_port} )",
                app.port
            ))
            .output()
            .expect("ss runs");
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.contains("timer:(keepalive,") {
            break;
        }
        assert!(Instant::now() < deadline, "no keepalive timer: {out:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the load tool's `abuse` scenario against the binary at `addr`.
async fn abuse(addr: &str, pid: u32, extra: &[&str]) -> serde_json::Value {
    let pid = pid.to_string();
    let mut args = vec![
        "abuse",
        "--url",
        addr,
        "--server-pid",
        &pid,
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    crate::load_tool::run_tool(&args, Duration::from_secs(120)).await
}

#[tokio::test]
async fn six_thousand_connections_that_never_become_requests_are_closed_and_others_are_served() {
    let dir = crate::helpers::TempDir::new();
    let (mut child, addr) = crate::process::start(
        &dir.0,
        &[
            ("HEADER_TIMEOUT", "2s"),
            ("MAX_CONNECTIONS_PER_IP", "10000"),
            ("RATE_LIMIT_ENABLED", "false"),
            ("BCRYPT_COST", "4"),
        ],
    );
    let r = abuse(
        &addr,
        child.id(),
        &[
            "--idle",
            "5000",
            "--slow",
            "1000",
            "--dribble-ms",
            "200",
            "--calm",
            "1",
            "--settle",
            "60",
        ],
    )
    .await;
    crate::process::terminate(&child);
    crate::process::wait_with_deadline(&mut child, Duration::from_secs(10));
    let attack = &r["attack"];
    // Every attacking connection was accepted and then closed by the header timer, while
    // the attacker never closed one.
    assert_eq!(attack["connect_failed"], 0, "{r}");
    assert_eq!(attack["refused_503"], 0, "{r}");
    assert_eq!(attack["still_open"], 0, "{r}");
    assert_eq!(attack["closed_by_server"], 6000, "{r}");
    // The normal client was answered every time, and was measured during the attack.
    assert_eq!(r["normal_client"]["errors"], 0, "{r}");
    assert!(
        r["normal_client"]["attack"]["health"]["count"]
            .as_u64()
            .unwrap()
            > 0,
        "{r}"
    );
    assert!(
        r["normal_client"]["attack"]["login"]["count"]
            .as_u64()
            .unwrap()
            > 0,
        "{r}"
    );
    // The server held the connections (its descriptors rose by thousands) and let them go.
    let fds = &r["server_fds"];
    let (idle, peak, after) = (
        fds["idle"].as_u64().unwrap(),
        fds["peak"].as_u64().unwrap(),
        fds["after"].as_u64().unwrap(),
    );
    assert!(peak > idle + 1000, "{r}");
    assert!(after <= idle + 5, "{r}");
}

#[tokio::test]
async fn out_of_descriptors_the_server_pauses_accepting_and_recovers_without_spinning() {
    let dir = crate::helpers::TempDir::new();
    let (mut child, addr) = crate::process::start_limited(
        &dir.0,
        &[
            ("HEADER_TIMEOUT", "2s"),
            ("MAX_CONNECTIONS", "100000"),
            ("MAX_CONNECTIONS_PER_IP", "100000"),
        ],
        Some(256),
    );
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let cpu = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<u64> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // utime + stime, in clock ticks of 10 ms.
        Duration::from_millis((fields[10] + fields[11]) * 10)
    };
    // More connections than the server has descriptors; none of them says anything.
    let mut held = Vec::new();
    for _ in 0..400 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
        held.push(socket.connect(target).await.expect("the backlog takes it"));
    }
    let log = dir.0.join("logs/combined.log");
    let paused = |log: &std::path::Path| {
        crate::process::json_lines(log)
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .or(l["message"].as_str())
                    .is_some_and(|m| m.starts_with("cannot accept connections: out of descriptors"))
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while paused(&log) == 0 {
        assert!(Instant::now() < deadline, "no pause was logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // While out of descriptors it waits rather than retrying in a loop.
    let (cpu_before, wall) = (cpu(child.id()), Instant::now());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let used = cpu(child.id()) - cpu_before;
    assert!(
        used < wall.elapsed() / 2,
        "{used:?} of CPU in {:?}: the accept loop spins",
        wall.elapsed()
    );
    // The header timer frees descriptors; every queued connection is served and closed in
    // turn, and a normal client is answered again.
    let client = crate::helpers::http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = client
            .get(format!("{addr}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "/health never answered again");
    }
    assert!(paused(&log) < 10, "the pause is logged at most every 5 s");
    drop(held);
    crate::process::terminate(&child);
    crate::process::wait_with_deadline(&mut child, Duration::from_secs(10));
}
