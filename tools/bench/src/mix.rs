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
//! With `--rate`, operations start at that rate instead (open loop), so that kinds compare
//! at the same load: at a full closed loop, a run of messages is written in one group
//! commit and its frames leave each socket together, which a run of HTTP requests is not.
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
    settled: AtomicUsize,
}

/// The content of the message that ends the setup: a socket that heard it has heard
/// everything the connections set off before it (presence, above all).
const SETTLE: &str = "mix settle marker";

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
    let rate: f64 = args.get("rate", 0.0).map_err(anyhow::Error::msg)?;
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
    if users == 0 || window_size == 0 || window_size > 20 || seconds <= 0.0 || rate < 0.0 {
        bail!(
            "need --users >= 1, --window 1 to 20 (a message takes 20 emoji), --seconds > 0 \
             and --rate >= 0"
        );
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
        settled: AtomicUsize::new(0),
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
                        Some(Packet::Event(t)) if t.contains(SETTLE) => {
                            shared.settled.fetch_add(1, Relaxed);
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
    let pace = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
    let operations = match kind {
        Kind::Message | Kind::Reply => {
            let reply_to = (kind == Kind::Reply).then_some(root.as_str());
            drive_sends(
                &api,
                &tokens[0],
                &channel,
                reply_to,
                window_size,
                pace,
                until,
            )
            .await?
        }
        Kind::Reaction => {
            drive_reactions(&api, &tokens[0], &root, window_size, pace, until).await?
        }
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
        "window": if rate > 0.0 { Value::Null } else { json!(window_size) },
        "rate": if rate > 0.0 { json!(rate) } else { Value::Null },
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

/// `send-message` (a reply to `reply_to` when given) until `until`: `window` acks
/// outstanding (closed loop), or one every `pace` (open loop, `window` unused); the
/// messages acknowledged.
async fn drive_sends(
    api: &Api,
    token: &str,
    channel: &str,
    reply_to: Option<&str>,
    window: usize,
    pace: Option<Duration>,
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
    let mut tick = tokio::time::interval(pace.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    if pace.is_none() {
        for _ in 0..window {
            sio.emit(Some(seq), "send-message", &payload(seq)).await?;
            seq += 1;
            in_flight += 1;
        }
    }
    let mut acked = 0;
    loop {
        let open = Instant::now() < until;
        if !open && in_flight == 0 {
            return Ok(acked);
        }
        tokio::select! {
            _ = tick.tick(), if open && pace.is_some() => {
                sio.emit(Some(seq), "send-message", &payload(seq)).await?;
                seq += 1;
                in_flight += 1;
            }
            packet = sio.next() => match packet? {
                Some(Packet::Ack(_, frame)) => {
                    in_flight -= 1;
                    if !ok_ack(&frame) {
                        bail!("send-message: {}", error_code(&frame));
                    }
                    acked += 1;
                    if pace.is_none() && Instant::now() < until {
                        sio.emit(Some(seq), "send-message", &payload(seq)).await?;
                        seq += 1;
                        in_flight += 1;
                    }
                }
                Some(Packet::Disconnect) | None => bail!("the sending socket was closed"),
                Some(_) => {}
            },
        }
    }
}

/// Reaction changes on `root` until `until`: `window` loops (closed loop), or one started
/// every `pace` (open loop) — each on one of 20 emoji in turn, adding it where it is absent
/// and removing it where it is there, so every request changes something; the requests
/// answered.
async fn drive_reactions(
    api: &Api,
    token: &str,
    root: &str,
    window: usize,
    pace: Option<Duration>,
    until: Instant,
) -> anyhow::Result<u64> {
    // One lock per emoji: its adds and removes never overlap.
    let slots: Arc<Vec<tokio::sync::Mutex<bool>>> =
        Arc::new((0..20).map(|_| tokio::sync::Mutex::new(false)).collect());
    let change = {
        let (api, token, root) = (api.clone(), token.to_owned(), root.to_owned());
        move |slot: usize, slots: Arc<Vec<tokio::sync::Mutex<bool>>>| {
            let (api, token, root) = (api.clone(), token.clone(), root.clone());
            async move {
                let mut present = slots[slot].lock().await;
                let url = api.url(&format!("/messages/{root}/reactions/%3Amix{slot}%3A"));
                let request = if *present {
                    api.http().delete(&url)
                } else {
                    api.http().put(&url)
                };
                let r = request.bearer_auth(&token).send().await?;
                if !r.status().is_success() {
                    bail!("reaction: {}", r.status());
                }
                r.bytes().await.context("reaction answer")?;
                *present = !*present;
                Ok::<_, anyhow::Error>(())
            }
        }
    };
    let mut tasks = Vec::new();
    match pace {
        None => {
            for slot in 0..window {
                let (change, slots) = (change.clone(), slots.clone());
                tasks.push(tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < until {
                        change(slot, slots.clone()).await?;
                        done += 1;
                    }
                    Ok::<_, anyhow::Error>(done)
                }));
            }
        }
        Some(pace) => {
            let mut tick = tokio::time::interval(pace);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = 0;
            while Instant::now() < until {
                tick.tick().await;
                let (change, slots) = (change.clone(), slots.clone());
                let slot = n % 20;
                n += 1;
                tasks.push(tokio::spawn(async move {
                    change(slot, slots).await?;
                    Ok(1)
                }));
            }
        }
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total)
}
