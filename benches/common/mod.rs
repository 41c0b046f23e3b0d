//! Shared by the hand-run benchmarks: start the release server, read percentiles.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_chai-tapri");

pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn start_server(cost: u64, pin: bool, extra: &[(&str, &str)]) -> Server {
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
        .envs(extra.iter().copied())
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

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

/// `{p50, p90, p99, p999, max}` in milliseconds, two decimals.
pub fn summary(samples: &mut [Duration]) -> serde_json::Value {
    samples.sort();
    let r = |p: f64| (percentile(samples, p) * 100.0).round() / 100.0;
    serde_json::json!({"p50_ms": r(0.5), "p90_ms": r(0.9), "p99_ms": r(0.99), "p999_ms": r(0.999), "max_ms": r(1.0), "count": samples.len()})
}
