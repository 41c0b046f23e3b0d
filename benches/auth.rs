//! Accounts under load, run by hand (not in CI):
//!
//! ```sh
//! cargo bench --bench auth                  # BCRYPT_COST=12, 64 login clients, 10 s
//! BENCH_PIN=1 cargo bench --bench auth      # server on core 0, load on core 1 (taskset)
//! ```
//!
//! It starts the release server on a temp SQLite database, measures signup throughput,
//! then login throughput with 64 clients logging in as fast as they can while one probe
//! client calls `GET /api/auth/me` in a loop, and prints the probe's latency percentiles.
//! The last line is one JSON object with every figure.
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

mod common;

use common::{env_num, percentile, start_server};

#[tokio::main]
async fn main() {
    let cost = env_num("BCRYPT_COST", 12);
    let clients = env_num("BENCH_CLIENTS", 64);
    let signups = env_num("BENCH_SIGNUPS", 128);
    let seconds = env_num("BENCH_SECONDS", 10);
    let pin = std::env::var("BENCH_PIN").is_ok_and(|v| v == "1");
    let server = start_server(cost, pin, &[]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let addr = server.addr.clone();
    eprintln!("server at {addr}, BCRYPT_COST={cost}, {clients} clients, pinned={pin}");

    // Signups: `signups` accounts, `clients` at a time.
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, addr, next) = (client.clone(), addr.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= signups {
                    break;
                }
                let body = json!({"username": format!("bench{i}"), "email": format!("bench{i}@example.com"), "password": "bench-password"});
                let r = client.post(format!("{addr}/api/auth/signup")).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let signup_secs = started.elapsed().as_secs_f64();
    let signups_per_sec = signups as f64 / signup_secs;
    eprintln!("signups: {signups} in {signup_secs:.2} s = {signups_per_sec:.1}/s");

    // A token for the probe.
    let body: Value = client
        .post(format!("{addr}/api/auth/login"))
        .json(&json!({"username": "bench0", "password": "bench-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["data"]["token"].as_str().unwrap().to_owned();

    // Logins: `clients` loops for `seconds`, while a probe calls /me.
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, addr, stop, logins, failures) = (
            client.clone(),
            addr.clone(),
            stop.clone(),
            logins.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body =
                json!({"username": format!("bench{}", c % signups), "password": "bench-password"});
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(format!("{addr}/api/auth/login"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                // Only logins that finish inside the measured window count.
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if r.status() == 200 {
                    logins.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                let _ = r.bytes().await;
            }
        }));
    }
    let probe = {
        let (client, addr, stop) = (client.clone(), addr.clone(), stop.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            // Let the login storm fill the hashing pool first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = client
                    .get(format!("{addr}/api/auth/me"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await;
                samples.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            samples
        })
    };
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let login_secs = started.elapsed().as_secs_f64();
    let mut samples = probe.await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    samples.sort();
    let logins = logins.load(Ordering::Relaxed);
    let result = json!({
        "bench": "auth",
        "bcrypt_cost": cost,
        "clients": clients,
        "pinned": pin,
        "signups": signups,
        "signups_per_sec": (signups_per_sec * 10.0).round() / 10.0,
        "logins": logins,
        "login_failures": failures.load(Ordering::Relaxed),
        "logins_per_sec": ((logins as f64 / login_secs) * 10.0).round() / 10.0,
        "me_requests": samples.len(),
        "me_p50_ms": (percentile(&samples, 0.50) * 100.0).round() / 100.0,
        "me_p99_ms": (percentile(&samples, 0.99) * 100.0).round() / 100.0,
        "me_max_ms": (percentile(&samples, 1.0) * 100.0).round() / 100.0,
    });
    println!("{result}");
}
