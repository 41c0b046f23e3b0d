//! `fanout`: U users in C channels, one socket each, S senders emitting `send-message` with
//! acks; every delivery is checked against what was acknowledged. With `--storm-at`, every
//! socket that is not a sender drops without a goodbye at that second, reconnects, rejoins and
//! fetches what it missed with `GET …/messages?after=`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::args::Args;
use crate::client::{Api, Auth, Packet, Sio, call, error_code, micros_since, ok_ack};
use crate::stats::{ProcSample, Shards, per_second, progress, round2, summary, window};
use crate::{Common, run_id};

struct Opts {
    users: usize,
    channels: usize,
    senders: usize,
    window: u64,
    rate: f64,
    seconds: f64,
    messages: Option<u64>,
    connect_concurrency: usize,
    drain: f64,
    settle: f64,
    content_bytes: usize,
    storm_at: Option<f64>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Setup,
    Run,
    Drain,
    Done,
}

#[derive(Clone, Copy, Debug)]
struct State {
    phase: Phase,
    storm: bool,
}

#[derive(Default)]
struct Counters {
    issued: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    ack_errors: AtomicU64,
    deliveries: AtomicU64,
    unique: AtomicU64,
    covered: AtomicU64,
    duplicates: AtomicU64,
    foreign: AtomicU64,
    last_delivery: AtomicU64,
    ready: AtomicUsize,
    failed: AtomicUsize,
    settled: AtomicUsize,
    rejoined: AtomicUsize,
    last_rejoin: AtomicU64,
    recovered: AtomicU64,
}

struct Ctx {
    api: Api,
    tokens: Vec<String>,
    channels: Vec<String>,
    o: Opts,
    base: Instant,
    c: Counters,
    acked_per_channel: Vec<AtomicU64>,
    subscribed: Vec<AtomicU64>,
    latency: Shards,
    ack_latency: Shards,
    gate: Semaphore,
    first_error: std::sync::Mutex<Option<String>>,
    pad: String,
}

/// What one socket saw, per sender of its channel (local index = sender / channels).
struct Outcome {
    index: usize,
    channel: usize,
    live: Vec<Vec<u64>>,
    recovered: Vec<Vec<u64>>,
    sender: Option<(usize, Vec<u64>)>,
}

fn set(bits: &mut Vec<u64>, n: u64) -> bool {
    let (word, bit) = (usize::try_from(n / 64).unwrap_or(usize::MAX), n % 64);
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    let fresh = bits[word] & (1 << bit) == 0;
    bits[word] |= 1 << bit;
    fresh
}

fn has(bits: &[u64], n: u64) -> bool {
    usize::try_from(n / 64)
        .ok()
        .and_then(|w| bits.get(w))
        .is_some_and(|w| w & (1 << (n % 64)) != 0)
}

/// `b<sender>.<seq>.<micros>` at the start of a content.
fn stamp(content: &str) -> Option<(usize, u64, u64)> {
    let rest = content.strip_prefix('b')?;
    let mut parts = rest.splitn(3, '.');
    let s = parts.next()?.parse().ok()?;
    let n = parts.next()?.parse().ok()?;
    let t = parts.next()?;
    let t = t[..t.bytes().take_while(u8::is_ascii_digit).count()]
        .parse()
        .ok()?;
    Some((s, n, t))
}

/// Content of the message posted in every channel once all sockets are connected; it carries
/// no stamp, so it is never counted as a delivery.
const SETTLE_MARKER: &str = "settle";

fn is_settle_marker(frame: &str) -> bool {
    frame.starts_with("42[\"new-message\",")
        && frame.contains(&format!("\"content\":\"{SETTLE_MARKER}\""))
}

/// The stamp and message id of a `new-message` frame, read without a JSON parse.
fn delivery(frame: &str) -> Option<((usize, u64, u64), &str)> {
    let body = frame.strip_prefix("42[\"new-message\",")?;
    let id = body.strip_prefix("{\"id\":\"")?.get(..36)?;
    let (_, content) = body.split_once("\"content\":\"")?;
    Some((stamp(content)?, id))
}

struct Conn {
    i: usize,
    channel: usize,
    sio: Sio,
    live: Vec<Vec<u64>>,
    recovered: Vec<Vec<u64>>,
    last_id: Option<String>,
    sender: Option<Sender>,
    settled: bool,
}

struct Sender {
    index: usize,
    seq: u64,
    sent_at: Vec<u64>,
    acked: Vec<u64>,
    in_flight: u64,
}

impl Conn {
    fn record(&mut self, ctx: &Ctx, frame: &str) {
        let Some(((s, n, t), id)) = delivery(frame) else {
            return;
        };
        let c = &ctx.c;
        c.deliveries.fetch_add(1, Relaxed);
        let now = micros_since(ctx.base);
        c.last_delivery.fetch_max(now, Relaxed);
        if s >= ctx.o.senders || s % ctx.o.channels != self.channel {
            c.foreign.fetch_add(1, Relaxed);
            return;
        }
        let local = s / ctx.o.channels;
        if local >= self.live.len() {
            self.live.resize(local + 1, Vec::new());
        }
        if set(&mut self.live[local], n) {
            c.unique.fetch_add(1, Relaxed);
            if !self.recovered.get(local).is_some_and(|r| has(r, n)) {
                c.covered.fetch_add(1, Relaxed);
            }
            ctx.latency.record(self.i, now.saturating_sub(t));
        } else {
            c.duplicates.fetch_add(1, Relaxed);
        }
        self.last_id = Some(id.to_owned());
    }

    async fn send_next(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let Some(s) = self.sender.as_mut() else {
            return Ok(());
        };
        if let Some(cap) = ctx.o.messages
            && ctx.c.issued.fetch_add(1, Relaxed) >= cap
        {
            return Ok(());
        }
        let now = micros_since(ctx.base);
        let seq = s.seq;
        s.seq += 1;
        s.sent_at.push(now);
        s.in_flight += 1;
        let payload = json!({
            "channelId": ctx.channels[self.channel],
            "content": format!("b{}.{seq}.{now} {}", s.index, ctx.pad),
            "nonce": format!("n{}.{seq}", s.index),
        });
        ctx.c.sent.fetch_add(1, Relaxed);
        Ok(self.sio.emit(Some(seq), "send-message", &payload).await?)
    }

    async fn on_ack(
        &mut self,
        ctx: &Ctx,
        id: u64,
        frame: &str,
        sending: bool,
    ) -> anyhow::Result<()> {
        let Some(s) = self.sender.as_mut() else {
            return Ok(());
        };
        let Some(&at) = usize::try_from(id).ok().and_then(|i| s.sent_at.get(i)) else {
            return Ok(());
        };
        s.in_flight = s.in_flight.saturating_sub(1);
        if ok_ack(frame) {
            set(&mut s.acked, id);
            ctx.c.acked.fetch_add(1, Relaxed);
            ctx.acked_per_channel[self.channel].fetch_add(1, Relaxed);
            ctx.ack_latency
                .record(self.i, micros_since(ctx.base).saturating_sub(at));
        } else {
            ctx.c.ack_errors.fetch_add(1, Relaxed);
            note(ctx, format!("send-message: {}", error_code(frame)));
        }
        if sending && ctx.o.rate <= 0.0 {
            self.send_next(ctx).await?;
        }
        Ok(())
    }

    /// Drops the socket, reconnects, rejoins, then pages `after=` the last message seen.
    async fn storm(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let token = &ctx.tokens[self.i];
        let channel = &ctx.channels[self.channel];
        self.sio.hang_up().await;
        let fresh = {
            let _permit = ctx.gate.acquire().await?;
            let mut attempt = 0;
            loop {
                match Sio::connect(&ctx.api.base, Auth::Payload(token)).await {
                    Ok(mut sio) => match call(
                        &mut sio,
                        0,
                        "join-channel",
                        &json!({ "channelId": channel }),
                    )
                    .await
                    {
                        Ok(()) => break sio,
                        Err(e) if attempt >= 5 => return Err(e),
                        Err(_) => {}
                    },
                    Err(e) if attempt >= 5 => return Err(e.into()),
                    Err(_) => {}
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        };
        self.sio = fresh;
        ctx.c.rejoined.fetch_add(1, Relaxed);
        ctx.c.last_rejoin.fetch_max(micros_since(ctx.base), Relaxed);
        let Some(mut after) = self.last_id.clone() else {
            return Ok(());
        };
        loop {
            let page = ctx
                .api
                .messages(token, channel, &format!("after={after}&limit=100"))
                .await?;
            for m in &page {
                let Some((s, n, _)) = m["content"].as_str().and_then(stamp) else {
                    continue;
                };
                if s >= ctx.o.senders || s % ctx.o.channels != self.channel {
                    continue;
                }
                let local = s / ctx.o.channels;
                if local >= self.recovered.len() {
                    self.recovered.resize(local + 1, Vec::new());
                }
                let seen = self.live.get(local).is_some_and(|l| has(l, n));
                if set(&mut self.recovered[local], n) && !seen {
                    ctx.c.recovered.fetch_add(1, Relaxed);
                    ctx.c.covered.fetch_add(1, Relaxed);
                }
            }
            match page.last().and_then(|m| m["id"].as_str()) {
                Some(id) if page.len() == 100 => after = id.to_owned(),
                _ => return Ok(()),
            }
        }
    }
}

fn note(ctx: &Ctx, error: String) {
    let mut first = ctx
        .first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    first.get_or_insert(error);
}

async fn open(ctx: &Ctx, i: usize) -> anyhow::Result<Sio> {
    let _permit = ctx.gate.acquire().await?;
    let mut sio = Sio::connect(&ctx.api.base, Auth::Payload(&ctx.tokens[i])).await?;
    let channel = &ctx.channels[i % ctx.o.channels];
    call(
        &mut sio,
        0,
        "join-channel",
        &json!({ "channelId": channel }),
    )
    .await?;
    Ok(sio)
}

async fn connection(
    ctx: Arc<Ctx>,
    i: usize,
    mut rx: watch::Receiver<State>,
) -> anyhow::Result<Outcome> {
    let channel = i % ctx.o.channels;
    let sio = match open(&ctx, i).await {
        Ok(sio) => sio,
        Err(e) => {
            ctx.c.failed.fetch_add(1, Relaxed);
            note(&ctx, format!("connect: {e:#}"));
            return Err(e);
        }
    };
    ctx.subscribed[channel].fetch_add(1, Relaxed);
    ctx.c.ready.fetch_add(1, Relaxed);
    let sender = (i < ctx.o.senders).then(|| Sender {
        index: i,
        seq: 1,
        sent_at: vec![0],
        acked: Vec::new(),
        in_flight: 0,
    });
    let mut conn = Conn {
        i,
        channel,
        sio,
        live: Vec::new(),
        recovered: Vec::new(),
        last_id: None,
        sender,
        settled: false,
    };
    let mut state = *rx.borrow_and_update();
    while state.phase == Phase::Setup {
        tokio::select! {
            changed = rx.changed() => { changed?; state = *rx.borrow_and_update(); }
            // A fast sender's first messages may arrive before this task saw the start.
            packet = conn.sio.next() => match packet? {
                Some(Packet::Event(t)) if !conn.settled && is_settle_marker(&t) => {
                    conn.settled = true;
                    ctx.c.settled.fetch_add(1, Relaxed);
                }
                Some(Packet::Event(t)) => conn.record(&ctx, &t),
                Some(_) => {}
                None => bail!("closed by the server"),
            },
        }
    }
    let is_sender = conn.sender.is_some();
    let period = if ctx.o.rate > 0.0 {
        #[allow(clippy::cast_precision_loss)]
        Duration::from_secs_f64(ctx.o.senders as f64 / ctx.o.rate)
    } else {
        Duration::from_secs(3600)
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    if is_sender && ctx.o.rate <= 0.0 {
        for _ in 0..ctx.o.window {
            conn.send_next(&ctx).await?;
        }
    }
    let mut stormed = false;
    loop {
        let sending = state.phase == Phase::Run;
        tokio::select! {
            changed = rx.changed() => {
                changed?;
                state = *rx.borrow_and_update();
                if state.phase == Phase::Done {
                    break;
                }
                if state.storm && !stormed && !is_sender {
                    stormed = true;
                    conn.storm(&ctx).await.inspect_err(|e| note(&ctx, format!("storm: {e:#}")))?;
                }
            }
            _ = tick.tick(), if is_sender && sending && ctx.o.rate > 0.0 => conn.send_next(&ctx).await?,
            packet = conn.sio.next() => match packet? {
                Some(Packet::Event(t)) => conn.record(&ctx, &t),
                Some(Packet::Ack(id, t)) => conn.on_ack(&ctx, id, &t, sending).await?,
                Some(Packet::Other(_)) => {}
                Some(Packet::Disconnect) | None => bail!("closed by the server"),
            },
        }
    }
    Ok(Outcome {
        index: i,
        channel,
        live: conn.live,
        recovered: conn.recovered,
        sender: conn.sender.map(|s| (s.index, s.acked)),
    })
}

/// Waits until every connected socket has heard a marker message posted in its channel.
/// The server delivers events in the order they were emitted, so by then whatever the
/// connections set off (each `user:online` reaches every socket under
/// `PRESENCE_BROADCAST=all`: 50 million deliveries for 10,000 sockets) has been delivered,
/// and the run measures messages rather than the tail of that storm.
async fn settle(ctx: &Ctx, started: Instant) -> anyhow::Result<()> {
    let since = Instant::now();
    for (k, channel) in ctx.channels.iter().enumerate() {
        ctx.api
            .post_message(&ctx.tokens[k], channel, SETTLE_MARKER)
            .await
            .context("posting the settle marker")?;
    }
    let mut last = Instant::now();
    loop {
        let (settled, ready) = (ctx.c.settled.load(Relaxed), ctx.c.ready.load(Relaxed));
        if settled >= ready {
            progress(
                started,
                &format!(
                    "settled: every socket heard the marker after {:.1} s",
                    since.elapsed().as_secs_f64()
                ),
            );
            return Ok(());
        }
        if since.elapsed().as_secs_f64() >= ctx.o.settle {
            bail!(
                "the server did not settle within {} s: {settled} of {ready} sockets heard the marker",
                ctx.o.settle
            );
        }
        if last.elapsed() >= Duration::from_secs(1) {
            progress(
                started,
                &format!("settling: {settled}/{ready} sockets heard the marker"),
            );
            last = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let o = Opts {
        users: args.get("users", 1000).map_err(anyhow::Error::msg)?,
        channels: args.get("channels", 10).map_err(anyhow::Error::msg)?,
        senders: args.get("senders", 10).map_err(anyhow::Error::msg)?,
        window: args.get("window", 16).map_err(anyhow::Error::msg)?,
        rate: args.get("rate", 0.0).map_err(anyhow::Error::msg)?,
        seconds: args.get("seconds", 10.0).map_err(anyhow::Error::msg)?,
        messages: args.opt("messages").map_err(anyhow::Error::msg)?,
        connect_concurrency: args
            .get("connect-concurrency", 200)
            .map_err(anyhow::Error::msg)?,
        drain: args.get("drain", 15.0).map_err(anyhow::Error::msg)?,
        settle: args.get("settle", 300.0).map_err(anyhow::Error::msg)?,
        content_bytes: args.get("content-bytes", 64).map_err(anyhow::Error::msg)?,
        storm_at: args.opt("storm-at").map_err(anyhow::Error::msg)?,
    };
    args.finish().map_err(anyhow::Error::msg)?;
    if o.channels == 0 || o.users < o.channels || o.senders == 0 || o.senders > o.users {
        bail!("need 1 <= channels <= users and 1 <= senders <= users");
    }
    if o.rate <= 0.0 && o.window == 0 {
        bail!("--window must be at least 1 for a closed loop (or give --rate)");
    }
    let started = Instant::now();
    let prefix = run_id();
    let api = Api::new(&common.url, 64)?;
    progress(started, &format!("signing up {} users", o.users));
    let accounts = api.signup_many(&prefix, o.users, 32).await?;
    let mut channels = Vec::with_capacity(o.channels);
    for (c, account) in accounts.iter().take(o.channels).enumerate() {
        channels.push(
            api.create_channel(&account.token, &format!("{prefix}c{c}"))
                .await?,
        );
    }
    let pairs = (o.channels..o.users)
        .map(|i| (accounts[i].token.clone(), channels[i % o.channels].clone()))
        .collect();
    progress(started, "joining channels");
    api.join_many(pairs, 64).await?;

    let (tx, rx) = watch::channel(State {
        phase: Phase::Setup,
        storm: false,
    });
    let ctx = Arc::new(Ctx {
        api,
        tokens: accounts.into_iter().map(|a| a.token).collect(),
        channels,
        gate: Semaphore::new(o.connect_concurrency.max(1)),
        pad: "x".repeat(o.content_bytes.saturating_sub(24)),
        acked_per_channel: (0..o.channels).map(|_| AtomicU64::new(0)).collect(),
        subscribed: (0..o.channels).map(|_| AtomicU64::new(0)).collect(),
        latency: Shards::new(64),
        ack_latency: Shards::new(8),
        base: Instant::now(),
        c: Counters::default(),
        first_error: std::sync::Mutex::new(None),
        o,
    });
    let o = &ctx.o;
    let c = &ctx.c;
    let connect_started = Instant::now();
    let tasks: Vec<_> = (0..o.users)
        .map(|i| tokio::spawn(connection(ctx.clone(), i, rx.clone())))
        .collect();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (ready, failed) = (c.ready.load(Relaxed), c.failed.load(Relaxed));
        progress(
            started,
            &format!(
                "sockets connected and joined {ready}/{} (failed {failed})",
                o.users
            ),
        );
        if ready + failed >= o.users {
            break;
        }
    }
    let connect_time = connect_started.elapsed();
    if c.ready.load(Relaxed) < o.senders {
        bail!(
            "too few sockets connected: {:?}",
            ctx.first_error.lock().ok().and_then(|e| e.clone())
        );
    }

    settle(&ctx, started).await?;
    let server_start = ProcSample::server(common.server_pid);
    let tool_start = ProcSample::tool();
    let run_started = micros_since(ctx.base);
    let t0 = Instant::now();
    tx.send_replace(State {
        phase: Phase::Run,
        storm: false,
    });
    let mut peak = 0;
    let mut last = (0, Instant::now());
    let mut storm_started = None;
    let mut storm_done = None;
    let expected = |ctx: &Ctx| -> u64 {
        (0..ctx.o.channels)
            .map(|k| ctx.acked_per_channel[k].load(Relaxed) * ctx.subscribed[k].load(Relaxed))
            .sum()
    };
    let receivers = c.ready.load(Relaxed).saturating_sub(o.senders);
    let mut draining_since = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(s) = ProcSample::server(common.server_pid) {
            peak = peak.max(s.rss_kib);
        }
        let elapsed = t0.elapsed().as_secs_f64();
        if let Some(at) = o.storm_at
            && storm_started.is_none()
            && elapsed >= at
        {
            progress(started, &format!("storm: dropping {receivers} sockets"));
            storm_started = Some(micros_since(ctx.base));
            tx.send_modify(|s| s.storm = true);
        }
        if let Some(st) = storm_started
            && storm_done.is_none()
            && c.rejoined.load(Relaxed) >= receivers
        {
            let took = Duration::from_micros(c.last_rejoin.load(Relaxed).saturating_sub(st));
            storm_done = Some(took);
            progress(
                started,
                &format!(
                    "storm: all {receivers} back and rejoined in {:.3} s",
                    took.as_secs_f64()
                ),
            );
        }
        let budget_spent = o
            .messages
            .is_some_and(|m| c.acked.load(Relaxed) + c.ack_errors.load(Relaxed) >= m);
        if draining_since.is_none() && (elapsed >= o.seconds || budget_spent) {
            tx.send_modify(|s| s.phase = Phase::Drain);
            draining_since = Some(Instant::now());
        }
        let d = c.deliveries.load(Relaxed);
        if last.1.elapsed() >= Duration::from_secs(1) {
            progress(
                started,
                &format!(
                    "sent {} acked {} deliveries {d} ({}/s)",
                    c.sent.load(Relaxed),
                    c.acked.load(Relaxed),
                    per_second(d - last.0, last.1.elapsed()),
                ),
            );
            last = (d, Instant::now());
        }
        if let Some(since) = draining_since {
            let in_flight =
                c.sent.load(Relaxed) - c.acked.load(Relaxed) - c.ack_errors.load(Relaxed);
            let storm_pending = storm_started.is_some() && storm_done.is_none();
            let complete =
                in_flight == 0 && c.covered.load(Relaxed) >= expected(&ctx) && !storm_pending;
            if complete || since.elapsed().as_secs_f64() >= o.drain {
                break;
            }
        }
    }
    let end = micros_since(ctx.base).min(c.last_delivery.load(Relaxed).max(run_started + 1));
    let server_end = ProcSample::server(common.server_pid);
    let tool_end = ProcSample::tool();
    tx.send_modify(|s| s.phase = Phase::Done);

    let mut outcomes = Vec::new();
    let mut task_errors = 0;
    for t in tasks {
        match t.await.context("connection task")? {
            Ok(o) => outcomes.push(o),
            Err(_) => task_errors += 1,
        }
    }
    // Exact accounting: every acknowledged message against every socket of its channel.
    let mut acked_bits: Vec<Vec<u64>> = vec![Vec::new(); o.senders];
    for out in &outcomes {
        if let Some((s, bits)) = &out.sender {
            acked_bits[*s].clone_from(bits);
        }
    }
    let (mut expected_total, mut got, mut lost_live) = (0u64, 0u64, 0u64);
    let mut samples = Vec::new();
    for out in &outcomes {
        for s in (out.channel..o.senders).step_by(o.channels) {
            let local = s / o.channels;
            let empty = Vec::new();
            let live = out.live.get(local).unwrap_or(&empty);
            let rec = out.recovered.get(local).unwrap_or(&empty);
            for (w, acked) in acked_bits[s].iter().enumerate() {
                let l = live.get(w).copied().unwrap_or(0);
                let r = rec.get(w).copied().unwrap_or(0);
                expected_total += u64::from(acked.count_ones());
                got += u64::from((acked & (l | r)).count_ones());
                let missing = acked & !(l | r);
                if missing != 0 && samples.len() < 10 {
                    let seq = w as u64 * 64 + u64::from(missing.trailing_zeros());
                    samples.push(format!("socket {} missed b{s}.{seq}", out.index));
                }
                lost_live += u64::from((acked & !l).count_ones());
            }
        }
    }
    for line in &samples {
        progress(started, line);
    }
    let unique = c.unique.load(Relaxed);
    let window_us = end - run_started;
    let window_d = Duration::from_micros(window_us);
    let first_error = ctx.first_error.lock().ok().and_then(|e| e.clone());
    Ok(json!({
        "scenario": "fanout",
        "users": o.users,
        "channels": o.channels,
        "members_per_channel": o.users / o.channels,
        "senders": o.senders,
        "mode": if o.rate > 0.0 { json!({"open_loop_rate": o.rate}) } else { json!({"closed_loop_window": o.window}) },
        "content_bytes": o.content_bytes,
        "sockets": c.ready.load(Relaxed),
        "connect_failures": c.failed.load(Relaxed),
        "connect_s": round2(connect_time.as_secs_f64()),
        "seconds": round2(window_d.as_secs_f64()),
        "sent": c.sent.load(Relaxed),
        "acked": c.acked.load(Relaxed),
        "ack_errors": c.ack_errors.load(Relaxed),
        "deliveries": c.deliveries.load(Relaxed),
        "expected_deliveries": expected_total,
        "lost": expected_total - got,
        "duplicated": c.duplicates.load(Relaxed),
        "foreign": c.foreign.load(Relaxed),
        "deliveries_per_s": per_second(unique, window_d),
        "acked_per_s": per_second(c.acked.load(Relaxed), window_d),
        "delivery_latency": summary(&ctx.latency.merged()),
        "ack_latency": summary(&ctx.ack_latency.merged()),
        "storm": storm_started.map(|_| json!({
            "sockets": receivers,
            "all_rejoined_s": storm_done.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
            "missed_live": lost_live,
            "recovered_by_after": c.recovered.load(Relaxed),
        })),
        "task_errors": task_errors,
        "first_error": first_error,
        "server": window(server_start, server_end, peak, unique),
        "tool": window(tool_start, tool_end, 0, unique),
    }))
}
