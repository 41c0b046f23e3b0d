//! `chai-tapri-bench`: the load tool that ships with the server. It drives any server that
//! speaks the Chai Tapri API over real connections and prints one JSON line of results.
//! The scenarios live in this library ([`run`]), so the server's integration tests run
//! them against a test server in-process; `main.rs` is the command line around it.
//!
//! ```text
//! chai-tapri-bench <fanout|connect|http|history|abuse|files|mix|unreads|search|loopback> [--url http://127.0.0.1:3000]
//!                  [--server-pid PID] [--threads N] [scenario options]
//! ```
//!
//! See `docs/performance.md` for every option and the numbers it measured.

mod abuse;
mod args;
mod client;
mod connect;
mod fanout;
mod files;
mod history;
mod http;
mod loopback;
mod mix;
mod search;
mod stats;
mod unreads;

use args::Args;

/// The command line's help text.
pub const USAGE: &str = "usage: chai-tapri-bench <scenario> [options]

scenarios:
  fanout   --users 1000 --channels 10 --senders 10 [--window 16 | --rate MSGS_PER_S]
           --seconds 10 [--messages N] --content-bytes 64 --connect-concurrency 200
           --drain 15 --settle 300 [--storm-at SECONDS]
           (--settle: longest wait, after connecting, for every socket to hear a marker
           message, i.e. for what the connections set off to be delivered)
  connect  --sockets 1000 [--users N] --concurrency 100 --hold 5
  http     --op get|post|channels|users --connections 64 --seconds 10 --seed 1000 --limit 50
           (--seed: messages, channels or users made first)
  history  --messages 100000 --concurrency 64 --pages 200 --limit 50 --depths 0,1000,10000,50000
  abuse    --idle 5000 --slow 1000 --from 127.0.0.2 --dribble-ms 1000 --calm 3 --settle 120
           (connections from one address that never become requests; a normal client's
           /health and login latency meanwhile; the server's descriptors with --server-pid)
  files    --op upload|download|oversize --kind png|txt --bytes 102400 --connections 8
           --seconds 10 [--count N]
           (uploads/s with thumbnails, downloads/s and MB/s, RSS around refused oversize bodies)
  mix      --users 1000 --kind message|reply|reaction [--window 4 | --rate OPS_PER_S]
           --seconds 10 --connect-concurrency 200
           (one channel; the channel owner keeps --window sends, replies or reaction
           changes in flight: deliveries/s and the server's CPU per delivery)
  unreads  --channels 500 --unread 10000 --mention-every 1000 --requests 100
           --concurrency 64
           (one reader in --channels channels with --unread messages each: the whole
           joined-channel list and GET /unreads, timed and checked)
  search   --messages 1000000 --channels 100 --rare 10 --requests 200 --page 20
           --concurrency 64 [--seeded true]
           (messages of made-up words with a common word, a rare one and a Chinese
           phrase; first pages of GET /search for each and for a two-letter term, timed
           and checked)
  loopback --sockets 1000 --rounds 30 --bytes 450 --pause-ms 100
           (no server: this machine's kernel CPU per single-frame send over 127.0.0.1)

common (every scenario but loopback):
  --url http://127.0.0.1:3000   the server (rate limits must be off: RATE_LIMIT_ENABLED=false)
  --server-pid PID              sample that process's CPU time and memory around the run
  --threads N                   worker threads of the tool (default: all cores)

Progress goes to stderr; the result is one JSON line on stdout.";

/// Options every scenario takes.
pub struct Common {
    pub url: String,
    pub server_pid: Option<u32>,
}

/// A short random tag, so that names of one run never collide with an earlier run's.
pub fn run_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("b{}", &id[..8])
}

/// Runs one scenario from its command-line arguments (without the program name); the
/// result line. Builds a Tokio runtime of its own: call it from outside any runtime.
///
/// # Errors
/// A refused option, an unreachable server, or a scenario that failed its checks.
pub fn run(raw: Vec<String>) -> anyhow::Result<serde_json::Value> {
    let mut args = Args::parse(raw).map_err(anyhow::Error::msg)?;
    if args.scenario == "loopback" {
        // No server, so none of the common options: `--url` and the rest are refused as
        // unknown. Plain threads and blocking sockets: no runtime between writer and kernel.
        return loopback::run(args);
    }
    let common = Common {
        url: args
            .get("url", "http://127.0.0.1:3000".to_owned())
            .map_err(anyhow::Error::msg)?,
        server_pid: args.opt("server-pid").map_err(anyhow::Error::msg)?,
    };
    let threads: usize = args.get("threads", 0).map_err(anyhow::Error::msg)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        rt.worker_threads(threads);
    }
    let rt = rt.enable_all().build()?;
    let scenario = args.scenario.clone();
    rt.block_on(async move {
        match scenario.as_str() {
            "fanout" => fanout::run(common, args).await,
            "connect" => connect::run(common, args).await,
            "http" => http::run(common, args).await,
            "history" => history::run(common, args).await,
            "abuse" => abuse::run(common, args).await,
            "files" => files::run(common, args).await,
            "mix" => mix::run(common, args).await,
            "unreads" => unreads::run(common, args).await,
            "search" => search::run(common, args).await,
            other => anyhow::bail!("unknown scenario `{other}`\n\n{USAGE}"),
        }
    })
}
