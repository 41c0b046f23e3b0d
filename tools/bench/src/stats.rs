//! Latency histograms, process CPU/RSS samples, progress lines and the result line.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Microsecond histogram from 1 µs to 10 minutes, three significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Histograms many tasks record into, split so that tasks rarely wait for each other.
pub struct Shards(Vec<Mutex<Histogram<u64>>>);

impl Shards {
    pub fn new(n: usize) -> Self {
        Self((0..n.max(1)).map(|_| Mutex::new(histogram())).collect())
    }

    pub fn record(&self, shard: usize, micros: u64) {
        let mut h = self.0[shard % self.0.len()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        h.saturating_record(micros.max(1));
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.0 {
            let h = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.add(&*h).expect("same bounds");
        }
        all
    }
}

fn ms(micros: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let v = micros as f64 / 1000.0;
    (v * 1000.0).round() / 1000.0
}

/// `{count, p50_ms, p90_ms, p99_ms, p999_ms, max_ms}`.
pub fn summary(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p90_ms": ms(h.value_at_quantile(0.9)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[allow(clippy::cast_precision_loss)]
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (count as f64 / secs).round()
    } else {
        0.0
    }
}

/// CPU time and resident memory of one process, read from `/proc` (Linux).
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    pub at: Instant,
    pub cpu: Duration,
    pub rss_kib: u64,
}

impl ProcSample {
    /// The server's sample, when `--server-pid` was given.
    pub fn server(pid: Option<u32>) -> Option<Self> {
        Self::read(&format!("/proc/{}", pid?))
    }

    /// This tool's own sample.
    pub fn tool() -> Option<Self> {
        Self::read("/proc/self")
    }

    /// The calling thread's sample (its CPU time; the RSS is the whole process's).
    pub fn thread() -> Option<Self> {
        Self::read("/proc/thread-self")
    }

    fn read(dir: &str) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let cpu = Duration::from_micros((utime + stime) * 1_000_000 / USER_HZ);
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())?;
        Some(Self {
            at: Instant::now(),
            cpu,
            rss_kib,
        })
    }
}

/// Kernel clock ticks per second in `/proc/<pid>/stat`: 100 on every mainstream Linux build.
const USER_HZ: u64 = 100;

/// CPU and memory of a process over a window; `units` (deliveries, requests) gives the CPU per unit.
#[allow(clippy::cast_precision_loss)]
pub fn window(
    start: Option<ProcSample>,
    end: Option<ProcSample>,
    peak_kib: u64,
    units: u64,
) -> Value {
    let (Some(a), Some(b)) = (start, end) else {
        return Value::Null;
    };
    let cpu = b.cpu.saturating_sub(a.cpu);
    let wall = b.at.duration_since(a.at).as_secs_f64();
    let per_unit = if units > 0 {
        cpu.as_secs_f64() * 1e6 / units as f64
    } else {
        0.0
    };
    json!({
        "cpu_s": round2(cpu.as_secs_f64()),
        "cpu_percent": if wall > 0.0 { round2(cpu.as_secs_f64() / wall * 100.0) } else { 0.0 },
        "cpu_us_per_unit": round2(per_unit),
        "units_per_cpu_second": if per_unit > 0.0 { (1e6 / per_unit).round() } else { 0.0 },
        "rss_mib_start": round2(a.rss_kib as f64 / 1024.0),
        "rss_mib_end": round2(b.rss_kib as f64 / 1024.0),
        "rss_mib_peak": round2(peak_kib.max(b.rss_kib) as f64 / 1024.0),
    })
}

/// One progress line on stderr, so stdout holds only the result line.
pub fn progress(started: Instant, line: &str) {
    eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
}
