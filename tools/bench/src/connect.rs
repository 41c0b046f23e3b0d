//! `connect`: open N authenticated sockets at concurrency K, hold them, and report connects/s,
//! connect latency, failures and the server's memory per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::args::Args;
use crate::client::{Api, Auth, Sio, micros_since};
use crate::stats::{ProcSample, Shards, per_second, progress, round2, summary, window};
use crate::{Common, run_id};

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let sockets: usize = args.get("sockets", 1000).map_err(anyhow::Error::msg)?;
    let users: usize = args.get("users", sockets).map_err(anyhow::Error::msg)?;
    let concurrency: usize = args.get("concurrency", 100).map_err(anyhow::Error::msg)?;
    let hold: f64 = args.get("hold", 5.0).map_err(anyhow::Error::msg)?;
    args.finish().map_err(anyhow::Error::msg)?;
    if users == 0 || sockets == 0 {
        bail!("--sockets and --users must be at least 1");
    }
    let started = Instant::now();
    let api = Api::new(&common.url, 64)?;
    progress(started, &format!("signing up {users} users"));
    let tokens: Arc<Vec<String>> = Arc::new(
        api.signup_many(&run_id(), users, 32)
            .await?
            .into_iter()
            .map(|a| a.token)
            .collect(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = ProcSample::server(common.server_pid);
    let tool_before = ProcSample::tool();

    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let latency = Arc::new(Shards::new(16));
    let (ok, failed, dropped) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let (stop_tx, stop_rx) = watch::channel(false);
    let base = Instant::now();
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..sockets)
        .map(|i| {
            let (gate, latency, ok, failed, dropped, first_error, tokens, url, mut stop) = (
                gate.clone(),
                latency.clone(),
                ok.clone(),
                failed.clone(),
                dropped.clone(),
                first_error.clone(),
                tokens.clone(),
                common.url.clone(),
                stop_rx.clone(),
            );
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let t = micros_since(base);
                let mut sio =
                    match Sio::connect(&url, Auth::Payload(&tokens[i % tokens.len()])).await {
                        Ok(sio) => sio,
                        Err(e) => {
                            failed.fetch_add(1, Relaxed);
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert(format!("{e:#}"));
                            }
                            return;
                        }
                    };
                latency.record(i, micros_since(base) - t);
                ok.fetch_add(1, Relaxed);
                drop(permit);
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        packet = sio.next() => match packet {
                            Ok(Some(_)) => {}
                            _ => { dropped.fetch_add(1, Relaxed); return; }
                        },
                    }
                }
            })
        })
        .collect();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (o, f) = (ok.load(Relaxed), failed.load(Relaxed));
        progress(started, &format!("connected {o}/{sockets} (failed {f})"));
        if o + f >= sockets {
            break;
        }
    }
    let connect_time = t0.elapsed();
    let connected = ok.load(Relaxed);
    // Let the server settle (buffers, presence writes) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = ProcSample::server(common.server_pid);
    let tool_after = ProcSample::tool();
    let held = Instant::now();
    while held.elapsed().as_secs_f64() < hold {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let still_open = connected.saturating_sub(dropped.load(Relaxed));
    stop_tx.send_replace(true);
    for t in tasks {
        let _ = t.await;
    }
    #[allow(clippy::cast_precision_loss)]
    let per_socket = |before: Option<ProcSample>, after: Option<ProcSample>| match (before, after) {
        (Some(b), Some(a)) if connected > 0 => {
            json!(round2(
                (a.rss_kib as f64 - b.rss_kib as f64) / connected as f64
            ))
        }
        _ => Value::Null,
    };
    let tool_per_socket = per_socket(tool_before, tool_after);
    let per_socket = per_socket(before, after);
    let first_error = first_error.lock().ok().and_then(|e| e.clone());
    Ok(json!({
        "scenario": "connect",
        "sockets": sockets,
        "users": users,
        "concurrency": concurrency,
        "connected": connected,
        "failures": sockets - connected,
        "still_open_after_hold": still_open,
        "first_error": first_error,
        "connect_s": round2(connect_time.as_secs_f64()),
        "connects_per_s": per_second(connected as u64, connect_time),
        "connect_latency": summary(&latency.merged()),
        "server_rss_kib_per_socket": per_socket,
        "tool_rss_kib_per_socket": tool_per_socket,
        "server": window(before, after, 0, connected as u64),
    }))
}
