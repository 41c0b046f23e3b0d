//! Durable message sends and history pages, run by hand (not in CI):
//!
//! ```sh
//! BENCH_PIN=1 taskset -c 1 cargo bench --bench messages   # server on core 0, load on core 1
//! ```
//!
//! 1. `sends`: 64 senders (each its own user, all in one channel) post messages closed-loop
//!    for `BENCH_SECONDS`; acknowledged sends per second and latency percentiles. Run once
//!    with the group-commit writer and once without (`MESSAGE_GROUP_COMMIT=false`).
//! 2. `history`: a channel seeded with `BENCH_HISTORY` messages (200,000) through the API,
//!    then `GET …/messages?limit=50` at depth 0 (newest page) and at depth 100,000
//!    (`before=` the id 100,000 from the end), `BENCH_PAGES` times each.
//!
//! Every phase prints a JSON line; the server runs on SQLite with `synchronous=FULL`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

mod common;

use common::{env_num, start_server, summary};

struct Setup {
    addr: String,
    tokens: Vec<String>,
    channel: String,
}

async fn setup(client: &reqwest::Client, addr: &str, users: u64) -> Setup {
    let mut tokens = Vec::new();
    for i in 0..users {
        let body = json!({"username": format!("sender{i}"), "email": format!("sender{i}@example.com"), "password": "bench-password"});
        let r: Value = client
            .post(format!("{addr}/api/auth/signup"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(r["data"]["token"].as_str().unwrap().to_owned());
    }
    let r: Value = client
        .post(format!("{addr}/api/channels"))
        .bearer_auth(&tokens[0])
        .json(&json!({"name": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let channel = r["data"]["channel"]["id"].as_str().unwrap().to_owned();
    for token in &tokens[1..] {
        let r = client
            .post(format!("{addr}/api/channels/{channel}/join"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    Setup {
        addr: addr.to_owned(),
        tokens,
        channel,
    }
}

/// Closed-loop sends: each sender posts, waits for the 201, posts again.
async fn sends(
    client: &reqwest::Client,
    s: &Setup,
    seconds: u64,
    limit: Option<u64>,
) -> (u64, f64, Vec<Duration>, Vec<String>) {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    let started = Instant::now();
    for (n, token) in s.tokens.iter().enumerate() {
        let (client, token, stop, sent, ids) = (
            client.clone(),
            token.clone(),
            stop.clone(),
            sent.clone(),
            ids.clone(),
        );
        let url = format!("{}/api/channels/{}/messages", s.addr, s.channel);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut mine = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if limit.is_some_and(|l| sent.load(Ordering::Relaxed) >= l) {
                    break;
                }
                let body = json!({"content": format!("message {i} from sender {n}: the quick brown fox"), "nonce": format!("{n}-{i}")});
                let t = Instant::now();
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 201);
                let v: Value = r.json().await.unwrap();
                samples.push(t.elapsed());
                mine.push(v["data"]["message"]["id"].as_str().unwrap().to_owned());
                sent.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            ids.lock().await.extend(mine);
            samples
        }));
    }
    if limit.is_none() {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ids = std::mem::take(&mut *ids.lock().await);
    (sent.load(Ordering::Relaxed), elapsed, samples, ids)
}

async fn pages(client: &reqwest::Client, s: &Setup, query: &str, n: u64) -> Vec<Duration> {
    let url = format!(
        "{}/api/channels/{}/messages?limit=50{query}",
        s.addr, s.channel
    );
    let mut samples = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = client
            .get(&url)
            .bearer_auth(&s.tokens[0])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["data"]["messages"].as_array().unwrap().len(), 50);
        samples.push(t.elapsed());
    }
    samples
}

#[tokio::main]
async fn main() {
    let seconds = env_num("BENCH_SECONDS", 10);
    let senders = env_num("BENCH_SENDERS", 64);
    let history = env_num("BENCH_HISTORY", 200_000);
    let page_runs = env_num("BENCH_PAGES", 300);
    let pin = std::env::var("BENCH_PIN").is_ok_and(|v| v == "1");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();

    for group in ["true", "false"] {
        let server = start_server(4, pin, &[("MESSAGE_GROUP_COMMIT", group)]);
        let s = setup(&client, &server.addr, senders).await;
        let (sent, elapsed, mut samples, _) = sends(&client, &s, seconds, None).await;
        let line = json!({
            "bench": "sends",
            "group_commit": group == "true",
            "senders": senders,
            "pinned": pin,
            "acked": sent,
            "seconds": (elapsed * 100.0).round() / 100.0,
            "acked_per_sec": (sent as f64 / elapsed).round(),
            "latency": summary(&mut samples),
        });
        println!("{line}");
        drop(server);
    }

    let server = start_server(4, pin, &[]);
    let s = setup(&client, &server.addr, senders).await;
    let seed_started = Instant::now();
    let (seeded, _, _, mut ids) = sends(&client, &s, 0, Some(history)).await;
    eprintln!(
        "seeded {seeded} messages in {:.1} s",
        seed_started.elapsed().as_secs_f64()
    );
    ids.sort();
    let depth = 100_000.min(ids.len().saturating_sub(51));
    let anchor = ids[ids.len() - depth].clone();
    // Warm both paths once, then measure.
    pages(&client, &s, "", 10).await;
    pages(&client, &s, &format!("&before={anchor}"), 10).await;
    let mut top = pages(&client, &s, "", page_runs).await;
    let mut deep = pages(&client, &s, &format!("&before={anchor}"), page_runs).await;
    let line = json!({
        "bench": "history",
        "messages": seeded,
        "depth_0": summary(&mut top),
        "depth": depth,
        "depth_n": summary(&mut deep),
    });
    println!("{line}");
}
