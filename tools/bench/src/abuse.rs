//! `abuse`: one address opens many connections that never become requests — some send
//! nothing, some dribble a request head a byte at a time — and never closes them, while a
//! normal client on another address keeps asking `/health` and logging in. Measures the
//! normal client's latency before and during the attack, how the server disposed of every
//! attacking connection (answered 503 at the door, or closed by its timers), and the
//! server's open descriptors idle, at the peak and after.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use crate::args::Args;
use crate::client::{Api, micros_since};
use crate::stats::{ProcSample, histogram, progress, summary, window};
use crate::{Common, run_id};

/// Open descriptors of a process (Linux).
fn open_fds(pid: Option<u32>) -> Option<u64> {
    let n = std::fs::read_dir(format!("/proc/{}/fd", pid?))
        .ok()?
        .count();
    u64::try_from(n).ok()
}

/// How the server disposed of one attacking connection.
#[derive(Default)]
struct Tally {
    connect_failed: AtomicUsize,
    refused: AtomicUsize,
    closed: AtomicUsize,
    open: AtomicUsize,
}

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let idle: usize = args.get("idle", 5000).map_err(anyhow::Error::msg)?;
    let slow: usize = args.get("slow", 1000).map_err(anyhow::Error::msg)?;
    let from: IpAddr = args
        .get("from", IpAddr::from([127, 0, 0, 2]))
        .map_err(anyhow::Error::msg)?;
    let dribble = Duration::from_millis(args.get("dribble-ms", 1000).map_err(anyhow::Error::msg)?);
    let calm = Duration::from_secs_f64(args.get("calm", 3.0).map_err(anyhow::Error::msg)?);
    let settle = Duration::from_secs_f64(args.get("settle", 120.0).map_err(anyhow::Error::msg)?);
    args.finish().map_err(anyhow::Error::msg)?;
    if idle + slow == 0 {
        bail!("--idle and --slow cannot both be 0");
    }
    let started = Instant::now();
    let api = Api::new(&common.url, 4)?;
    let target: SocketAddr = {
        let authority = common
            .url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        tokio::net::lookup_host(&authority)
            .await?
            .next()
            .with_context(|| format!("cannot resolve {authority}"))?
    };
    let name = run_id();
    api.signup(&name).await?;
    let login = json!({ "username": name, "password": "bench-password" });

    // The normal client: /health and a login, in turn, as fast as answers come.
    let attacking = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (api, login, attacking, stop) =
            (api.clone(), login.clone(), attacking.clone(), stop.clone());
        tokio::spawn(async move {
            let mut calm = [histogram(), histogram()];
            let mut attack = [histogram(), histogram()];
            let mut errors = 0u64;
            let base = Instant::now();
            let health = format!("{}/health", api.base);
            let mut n = 0usize;
            while !stop.load(Relaxed) {
                let kind = n % 2;
                n += 1;
                let t = micros_since(base);
                let request = if kind == 0 {
                    api.http().get(&health)
                } else {
                    api.http().post(api.url("/auth/login")).json(&login)
                };
                let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
                let took = micros_since(base).saturating_sub(t).max(1);
                if !ok {
                    errors += 1;
                }
                let into = if attacking.load(Relaxed) {
                    &mut attack
                } else {
                    &mut calm
                };
                into[kind].record(took).ok();
            }
            (calm, attack, errors)
        })
    };

    progress(started, &format!("{:.0} s of calm", calm.as_secs_f64()));
    let fds_idle = open_fds(common.server_pid);
    tokio::time::sleep(calm).await;

    progress(
        started,
        &format!("attack from {from}: {idle} silent and {slow} slow-header connections"),
    );
    attacking.store(true, Relaxed);
    let server_start = ProcSample::server(common.server_pid);
    let tally = Arc::new(Tally::default());
    let closed_after = Arc::new(std::sync::Mutex::new(histogram()));
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(Semaphore::new(256));
    let attack_start = Instant::now();
    let mut attackers = Vec::with_capacity(idle + slow);
    for i in 0..idle + slow {
        let dribbles = i >= idle;
        let (tally, closed_after, release, gate) = (
            tally.clone(),
            closed_after.clone(),
            release.clone(),
            gate.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let Some(mut conn) = ({
                let _permit = gate.acquire_owned().await.ok();
                connect_from(from, target).await
            }) else {
                tally.connect_failed.fetch_add(1, Relaxed);
                return;
            };
            tally.open.fetch_add(1, Relaxed);
            let opened = Instant::now();
            let outcome = tokio::select! {
                outcome = hold(&mut conn, dribbles, dribble) => outcome,
                () = release.notified() => Held::StillOpen,
            };
            tally.open.fetch_sub(1, Relaxed);
            match outcome {
                Held::Refused => tally.refused.fetch_add(1, Relaxed),
                Held::Closed => {
                    let ms = u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX);
                    if let Ok(mut h) = closed_after.lock() {
                        h.record(ms.max(1) * 1000).ok();
                    }
                    tally.closed.fetch_add(1, Relaxed)
                }
                // The run is over: nothing more to hold it for.
                Held::StillOpen => return,
            };
            // Held, never closed by this side, until the run ends.
            release.notified().await;
            drop(conn);
        }));
    }

    // Until the server has disposed of every attacking connection, or `--settle` passes.
    let mut fds_peak = fds_idle.unwrap_or(0);
    let disposed = |t: &Tally| {
        t.connect_failed.load(Relaxed) + t.refused.load(Relaxed) + t.closed.load(Relaxed)
    };
    let mut last_report = Instant::now();
    while disposed(&tally) < idle + slow && attack_start.elapsed() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(n) = open_fds(common.server_pid) {
            fds_peak = fds_peak.max(n);
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            progress(
                started,
                &format!(
                    "attack: {} held open, {} refused, {} closed by the server",
                    tally.open.load(Relaxed),
                    tally.refused.load(Relaxed),
                    tally.closed.load(Relaxed)
                ),
            );
        }
    }
    let attack_secs = attack_start.elapsed().as_secs_f64();
    let server_end = ProcSample::server(common.server_pid);
    stop.store(true, Relaxed);
    let (calm_h, attack_h, errors) = prober.await?;
    // The attacker still holds its ends: what the server counts now is what it kept.
    let fds_after = open_fds(common.server_pid);
    let still_open = tally.open.load(Relaxed);
    release.notify_waiters();
    for a in attackers {
        let _ = a.await;
    }
    let closed_after = closed_after
        .lock()
        .map(|h| summary(&h))
        .unwrap_or(Value::Null);
    Ok(json!({
        "scenario": "abuse",
        "attack": {
            "from": from.to_string(),
            "silent": idle,
            "slow_header": slow,
            "seconds": (attack_secs * 10.0).round() / 10.0,
            "connect_failed": tally.connect_failed.load(Relaxed),
            "refused_503": tally.refused.load(Relaxed),
            "closed_by_server": tally.closed.load(Relaxed),
            "still_open": still_open,
            "closed_after": closed_after,
        },
        "normal_client": {
            "errors": errors,
            "calm": { "health": summary(&calm_h[0]), "login": summary(&calm_h[1]) },
            "attack": { "health": summary(&attack_h[0]), "login": summary(&attack_h[1]) },
        },
        "server_fds": { "idle": fds_idle, "peak": fds_peak, "after": fds_after },
        "server": window(server_start, server_end, 0, 0),
    }))
}

async fn connect_from(from: IpAddr, target: SocketAddr) -> Option<TcpStream> {
    let socket = if from.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .ok()?;
    socket.bind(SocketAddr::new(from, 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(10), socket.connect(target))
        .await
        .ok()?
        .ok()
}

enum Held {
    /// Answered 503 (or reset) at once: over a connection cap.
    Refused,
    /// Closed by the server later: one of its timers.
    Closed,
    /// Still open when the run ended (or never accepted: a connection the kernel dropped
    /// from a full listen queue looks established to the client alone).
    StillOpen,
}

/// Keeps a connection open — silent, or dribbling a request head — until the server ends it.
async fn hold(conn: &mut TcpStream, dribbles: bool, every: Duration) -> Held {
    let opened = Instant::now();
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    if dribbles
        && conn
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .is_err()
    {
        return Held::Refused;
    }
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            read = conn.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let refused = got.starts_with(b"HTTP/1.1 503")
                        || (got.is_empty() && opened.elapsed() < Duration::from_millis(500));
                    return if refused { Held::Refused } else { Held::Closed };
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
            },
            _ = tick.tick(), if dribbles => {
                if conn.write_all(b"x").await.is_err() {
                    return Held::Closed;
                }
            }
        }
    }
}
