//! `mix`: what a reply or a reaction costs to deliver next to a plain message. U users in
//! one channel, one socket each subscribed to it; one more socket of the channel's owner
//! (not subscribed) keeps `--window` operations in flight for `--seconds`, all of one
//! `--kind`:
//!
//! - `message`: `send-message` (every socket hears `new-message`);
//! - `reply`: `send-message` with `parentId` of one root (`new-message`, then
//!   `thread-updated`);
//! - `reaction`: `PUT` then `DELETE /api/messages/{root}/reactions/{emoji}` over HTTP, one
//!   emoji per slot of the window, so every request changes something
//!   (`reaction-added` / `reaction-removed`).
//!
//! The result: operations and deliveries per second, and the server's CPU per delivery and
//! per operation and socket (`--server-pid`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::args::Args;
use crate::client::{Api, Auth, Packet, Sio, call, error_code, ok_ack};
use crate::stats::{ProcSample, per_second, progress, round2, window};
use crate::{Common, run_id};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message,
    Reply,
    Reaction,
}

/// The events the subscribed sockets count.
const EVENTS: [&str; 4] = [
    "new-message",
    "thread-updated",
    "reaction-added",
    "reaction-removed",
];

struct Shared {
    counting: AtomicBool,
    heard: [AtomicU64; 4],
    ready: AtomicUsize,
}

/// The event name of a `42[...]` frame.
fn event_name(frame: &str) -> Option<&str> {
    let rest = &frame[frame.find("[\"")? + 2..];
    Some(&rest[..rest.find('"')?])
}

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let users: usize = args.get("users", 1000).map_err(anyhow::Error::msg)?;
    let kind: String = args
        .get("kind", "message".to_owned())
        .map_err(anyhow::Error::msg)?;
    let window_size: usize = args.get("window", 4).map_err(anyhow::Error::msg)?;
    let seconds: f64 = args.get("seconds", 10.0).map_err(anyhow::Error::msg)?;
    let concurrency: usize = args
        .get("connect-concurrency", 200)
        .map_err(anyhow::Error::msg)?;
    args.finish().map_err(anyhow::Error::msg)?;
    let kind = match kind.as_str() {
        "message" => Kind::Message,
        "reply" => Kind::Reply,
        "reaction" => Kind::Reaction,
        other => bail!("--kind: message, reply or reaction, not `{other}`"),
    };
    if users == 0 || window_size == 0 || window_size > 20 || seconds <= 0.0 {
        bail!("need --users >= 1, --window 1 to 20 (a message takes 20 emoji) and --seconds > 0");
    }
    let started = Instant::now();
    let api = Api::new(&common.url, window_size.max(8))?;
    progress(started, &format!("{users} users in one channel"));
    let (tokens, channel) = api.channel_of(&run_id(), users).await?;
    let root = api.post_message(&tokens[0], &channel, "the root").await?;

    let shared = Arc::new(Shared {
        counting: AtomicBool::new(false),
        heard: Default::default(),
        ready: AtomicUsize::new(0),
    });
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut listeners = Vec::with_capacity(users);
    for token in &tokens {
        let token = token.clone();
        let (shared, gate, base, channel, mut stop) = (
            shared.clone(),
            gate.clone(),
            api.base.clone(),
            channel.clone(),
            stop_rx.clone(),
        );
        listeners.push(tokio::spawn(async move {
            let mut sio = {
                let _permit = gate.acquire().await?;
                let mut sio = Sio::connect(&base, Auth::Payload(&token)).await?;
                call(&mut sio, 0, "join-channel", &json!({ "channelId": channel })).await?;
                sio
            };
            shared.ready.fetch_add(1, Relaxed);
            loop {
                tokio::select! {
                    _ = stop.changed() => return Ok::<_, anyhow::Error>(()),
                    packet = sio.next() => match packet? {
                        Some(Packet::Event(t)) if shared.counting.load(Relaxed) => {
                            if let Some(i) = event_name(&t).and_then(|n| EVENTS.iter().position(|e| *e == n)) {
                                shared.heard[i].fetch_add(1, Relaxed);
                            }
                        }
                        Some(Packet::Disconnect) | None => bail!("closed by the server"),
                        Some(_) => {}
                    },
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while shared.ready.load(Relaxed) < users {
        if Instant::now() > deadline {
            bail!(
                "only {} of {users} sockets joined within 300 s",
                shared.ready.load(Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress(
        started,
        &format!("{users} sockets joined; {seconds} s of {window_size} in flight"),
    );

    let server_start = ProcSample::server(common.server_pid);
    shared.counting.store(true, Relaxed);
    let run_started = Instant::now();
    let until = run_started + Duration::from_secs_f64(seconds);
    let operations = match kind {
        Kind::Message | Kind::Reply => {
            let reply_to = (kind == Kind::Reply).then_some(root.as_str());
            drive_sends(&api, &tokens[0], &channel, reply_to, window_size, until).await?
        }
        Kind::Reaction => drive_reactions(&api, &tokens[0], &root, window_size, until).await?,
    };
    let elapsed = run_started.elapsed();
    // Every answered operation reaches every socket: wait for all of it (with a deadline).
    let per_operation = if kind == Kind::Reply { 2 } else { 1 };
    let expected = operations * users as u64 * per_operation;
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while shared.heard.iter().map(|h| h.load(Relaxed)).sum::<u64>() < expected
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server_end = ProcSample::server(common.server_pid);
    shared.counting.store(false, Relaxed);
    let _ = stop_tx.send(true);
    for l in listeners {
        l.await??;
    }
    let heard: Vec<u64> = shared.heard.iter().map(|h| h.load(Relaxed)).collect();
    let deliveries: u64 = heard.iter().sum();
    let per_op_socket = operations * users as u64;
    let server = window(server_start, server_end, 0, deliveries);
    let cpu_per_op_socket = server["cpu_s"].as_f64().map_or(0.0, |cpu| {
        if per_op_socket > 0 {
            #[allow(clippy::cast_precision_loss)]
            let n = per_op_socket as f64;
            round2(cpu * 1e6 / n)
        } else {
            0.0
        }
    });
    Ok(json!({
        "scenario": "mix",
        "kind": match kind { Kind::Message => "message", Kind::Reply => "reply", Kind::Reaction => "reaction" },
        "users": users,
        "window": window_size,
        "seconds": round2(elapsed.as_secs_f64()),
        "operations": operations,
        "operations_per_s": per_second(operations, elapsed),
        "deliveries": deliveries,
        "deliveries_expected": expected,
        "deliveries_per_s": per_second(deliveries, elapsed),
        "heard": EVENTS.iter().zip(&heard).map(|(e, n)| (e.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "server": server,
        "server_cpu_us_per_operation_and_socket": cpu_per_op_socket,
    }))
}

/// `send-message` (a reply to `reply_to` when given) with `window` acks outstanding until
/// `until`; the messages acknowledged.
async fn drive_sends(
    api: &Api,
    token: &str,
    channel: &str,
    reply_to: Option<&str>,
    window: usize,
    until: Instant,
) -> anyhow::Result<u64> {
    let mut sio = Sio::connect(&api.base, Auth::Payload(token)).await?;
    let payload = |seq: u64| {
        let mut p = json!({ "channelId": channel, "content": format!("mix {seq}") });
        if let Some(root) = reply_to {
            p["parentId"] = json!(root);
        }
        p
    };
    let mut seq = 1;
    let mut in_flight = 0;
    for _ in 0..window {
        sio.emit(Some(seq), "send-message", &payload(seq)).await?;
        seq += 1;
        in_flight += 1;
    }
    let mut acked = 0;
    while in_flight > 0 {
        match sio.next().await? {
            Some(Packet::Ack(_, frame)) => {
                in_flight -= 1;
                if !ok_ack(&frame) {
                    bail!("send-message: {}", error_code(&frame));
                }
                acked += 1;
                if Instant::now() < until {
                    sio.emit(Some(seq), "send-message", &payload(seq)).await?;
                    seq += 1;
                    in_flight += 1;
                }
            }
            Some(Packet::Disconnect) | None => bail!("the sending socket was closed"),
            Some(_) => {}
        }
    }
    Ok(acked)
}

/// `window` loops, each adding then removing its own emoji on `root` until `until`; the
/// requests answered.
async fn drive_reactions(
    api: &Api,
    token: &str,
    root: &str,
    window: usize,
    until: Instant,
) -> anyhow::Result<u64> {
    let mut loops = Vec::with_capacity(window);
    for slot in 0..window {
        let (api, token, url) = (
            api.clone(),
            token.to_owned(),
            api.url(&format!("/messages/{root}/reactions/%3Amix{slot}%3A")),
        );
        loops.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut add = true;
            while Instant::now() < until {
                let request = if add {
                    api.http().put(&url)
                } else {
                    api.http().delete(&url)
                };
                let r = request.bearer_auth(&token).send().await?;
                if !r.status().is_success() {
                    bail!("reaction: {}", r.status());
                }
                r.bytes().await.context("reaction answer")?;
                done += 1;
                add = !add;
            }
            Ok::<_, anyhow::Error>(done)
        }));
    }
    let mut total = 0;
    for l in loops {
        total += l.await??;
    }
    Ok(total)
}
