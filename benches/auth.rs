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
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_chai-tapri");

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    addr: String,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server(cost: u64, pin: bool) -> Server {
    let dir = std::env::temp_dir().join(format!("chai-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    cmd.current_dir(&dir)
        .env_clear()
        .envs([
            ("PORT", "0"),
            ("LOG_FORMAT", "json"),
            ("LOG_LEVEL", "warn"),
            ("RATE_LIMIT_ENABLED", "false"),
            ("JWT_SECRET", "bench-secret-bench-secret-bench-secret"),
        ])
        .env("BCRYPT_COST", cost.to_string())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // LOG_LEVEL=warn hides the "listening" line, so ask the OS which port the child bound.
    let pid = child.id();
    let addr = loop {
        if let Some(port) = listening_port(pid) {
            break format!("http://127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::spawn(move || while let Some(Ok(_)) = lines.next() {});
    Server { child, addr, dir }
}

/// The TCP port a process listens on, read from /proc (Linux).
fn listening_port(pid: u32) -> Option<u16> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let inodes: Vec<String> = fds
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(3) == Some(&"0A") && inodes.iter().any(|i| Some(&i.as_str()) == cols.get(9)))
            .then(|| u16::from_str_radix(cols[1].rsplit(':').next()?, 16).ok())
            .flatten()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let cost = env_num("BCRYPT_COST", 12);
    let clients = env_num("BENCH_CLIENTS", 64);
    let signups = env_num("BENCH_SIGNUPS", 128);
    let seconds = env_num("BENCH_SECONDS", 10);
    let pin = std::env::var("BENCH_PIN").is_ok_and(|v| v == "1");
    let server = start_server(cost, pin);
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
