//! `http`: K keep-alive connections doing one request for a while — `GET …/messages` (a page
//! of history), `POST …/messages`, `GET /channels` (the channel list) or `GET
//! /users?search=` (the directory) — over `--seed` messages, channels or users; requests/s,
//! latency percentiles and status counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::args::Args;
use crate::client::{Api, micros_since};
use crate::stats::{ProcSample, Shards, per_second, progress, round2, summary, window};
use crate::{Common, run_id};

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let op: String = args
        .get("op", "get".to_owned())
        .map_err(anyhow::Error::msg)?;
    let connections: usize = args.get("connections", 64).map_err(anyhow::Error::msg)?;
    let seconds: f64 = args.get("seconds", 10.0).map_err(anyhow::Error::msg)?;
    let seed: usize = args.get("seed", 1000).map_err(anyhow::Error::msg)?;
    let limit: usize = args.get("limit", 50).map_err(anyhow::Error::msg)?;
    args.finish().map_err(anyhow::Error::msg)?;
    let post = op == "post";
    if !matches!(op.as_str(), "get" | "post" | "channels" | "users") {
        bail!("--op must be get, post, channels or users, not `{op}`");
    }
    if connections == 0 {
        bail!("--connections must be at least 1");
    }
    let started = Instant::now();
    let api = Api::new(&common.url, connections)?;
    progress(started, &format!("signing up {connections} users"));
    let run = run_id();
    let (tokens, channel) = api.channel_of(&run, connections).await?;
    if op == "channels" {
        progress(started, &format!("seeding {seed} channels"));
        seed_channels(&api, &tokens, &run, seed).await?;
    } else if op == "users" {
        progress(started, &format!("seeding {seed} users"));
        api.signup_many(&format!("{run}s"), seed, 32).await?;
    } else if !post {
        progress(started, &format!("seeding {seed} messages"));
        for i in 0..seed {
            api.post_message(
                &tokens[i % tokens.len()],
                &channel,
                &format!("seed message {i}"),
            )
            .await?;
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Shards::new(16));
    let base = Instant::now();
    let (label, url) = match op.as_str() {
        "post" => (
            "POST /api/channels/:id/messages",
            api.url(&format!("/channels/{channel}/messages")),
        ),
        "channels" => (
            "GET /api/channels",
            api.url(&format!("/channels?limit={limit}")),
        ),
        "users" => (
            "GET /api/users?search=",
            api.url(&format!("/users?search={run}s&limit={limit}")),
        ),
        _ => (
            "GET /api/channels/:id/messages",
            api.url(&format!("/channels/{channel}/messages?limit={limit}")),
        ),
    };
    let server_start = ProcSample::server(common.server_pid);
    let tool_start = ProcSample::tool();
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|w| {
            let (client, url, token) = (api.http().clone(), url.clone(), tokens[w].clone());
            let (stop, count, latency) = (stop.clone(), count.clone(), latency.clone());
            tokio::spawn(async move {
                let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    let t = micros_since(base);
                    let request = if post {
                        client.post(&url).json(&json!({
                            "content": format!("load message {n} from connection {w}"),
                            "nonce": format!("h{w}.{n}"),
                        }))
                    } else {
                        client.get(&url)
                    };
                    let key = match request.bearer_auth(&token).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            match r.bytes().await {
                                Ok(_) => status.to_string(),
                                Err(_) => "body error".to_owned(),
                            }
                        }
                        Err(e) if e.is_timeout() => "timeout".to_owned(),
                        Err(_) => "connection error".to_owned(),
                    };
                    latency.record(w, micros_since(base) - t);
                    *statuses.entry(key).or_default() += 1;
                    count.fetch_add(1, Relaxed);
                    n += 1;
                }
                statuses
            })
        })
        .collect();
    let mut peak = 0;
    let mut last = (0, Instant::now());
    while t0.elapsed().as_secs_f64() < seconds {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(s) = ProcSample::server(common.server_pid) {
            peak = peak.max(s.rss_kib);
        }
        if last.1.elapsed() >= Duration::from_secs(1) {
            let n = count.load(Relaxed);
            progress(
                started,
                &format!(
                    "{n} requests ({}/s)",
                    per_second(n - last.0, last.1.elapsed())
                ),
            );
            last = (n, Instant::now());
        }
    }
    stop.store(true, Relaxed);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        for (k, v) in t.await? {
            *statuses.entry(k).or_default() += v;
        }
    }
    let elapsed = t0.elapsed();
    let server_end = ProcSample::server(common.server_pid);
    let tool_end = ProcSample::tool();
    let total = count.load(Relaxed);
    Ok(json!({
        "scenario": "http",
        "op": label,
        "seeded": if post { 0 } else { seed },
        "connections": connections,
        "limit": if post { Value::Null } else { json!(limit) },
        "seconds": round2(elapsed.as_secs_f64()),
        "requests": total,
        "requests_per_s": per_second(total, elapsed),
        "statuses": statuses,
        "latency": summary(&latency.merged()),
        "server": window(server_start, server_end, peak, total),
        "tool": window(tool_start, tool_end, 0, total),
    }))
}

/// `n` public channels named `<run>-<i>`, created by the connections' users in turn, 32 at a
/// time.
async fn seed_channels(api: &Api, tokens: &[String], run: &str, n: usize) -> anyhow::Result<()> {
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (api, gate) = (api.clone(), gate.clone());
        let (token, name) = (tokens[i % tokens.len()].clone(), format!("{run}-{i}"));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            api.create_channel(&token, &name).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}
