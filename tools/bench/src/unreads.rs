//! `unreads`: one reader in C channels, each with U messages they have not read (every
//! `--mention-every`th naming them), sent through the API by another user; then the
//! reader's whole joined-channel list (pages of 100) and `GET /unreads`, each timed and
//! checked: every channel shows `min(U, 1000)` unread and its mentions.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::args::Args;
use crate::client::{Api, micros_since};
use crate::stats::{ProcSample, Shards, per_second, progress, round2, summary, window};
use crate::{Common, run_id};

/// Counts stop here (docs/api.md, "Read markers and unread counts").
const MAX_COUNT: u64 = 1000;

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let channels: usize = args.get("channels", 500).map_err(anyhow::Error::msg)?;
    let unread: usize = args.get("unread", 10_000).map_err(anyhow::Error::msg)?;
    let mention_every: usize = args
        .get("mention-every", 1000)
        .map_err(anyhow::Error::msg)?;
    let requests: usize = args.get("requests", 100).map_err(anyhow::Error::msg)?;
    let concurrency: usize = args.get("concurrency", 64).map_err(anyhow::Error::msg)?;
    args.finish().map_err(anyhow::Error::msg)?;
    if channels == 0 || requests == 0 || concurrency == 0 || mention_every == 0 {
        bail!("--channels, --requests, --concurrency and --mention-every must be at least 1");
    }
    let started = Instant::now();
    let api = Api::new(&common.url, concurrency)?;
    let run = run_id();
    progress(
        started,
        &format!("signing up, creating {channels} channels"),
    );
    let (sender, reader) = api.signup_pair(&run).await?;
    let reader_name = format!("{run}u1");
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(channels);
    for i in 0..channels {
        let (api, gate, sender, reader) =
            (api.clone(), gate.clone(), sender.clone(), reader.clone());
        let name = format!("{run}-{i}");
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let id = api.create_channel(&sender, &name).await?;
            api.join(&reader, &id).await?;
            anyhow::Ok(id)
        }));
    }
    let mut ids = Vec::with_capacity(channels);
    for t in tasks {
        ids.push(t.await??);
    }

    let total = channels * unread;
    progress(
        started,
        &format!("sending {total} messages ({unread} a channel)"),
    );
    let seed_started = Instant::now();
    let mut tasks = Vec::with_capacity(total.min(1_000_000));
    let mut sent = 0usize;
    for n in 0..unread {
        for id in &ids {
            let (api, gate, sender, id) = (api.clone(), gate.clone(), sender.clone(), id.clone());
            let content = if n % mention_every == mention_every - 1 {
                format!("@{reader_name} message {n}")
            } else {
                format!("message {n}")
            };
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                api.post_message(&sender, &id, &content).await
            }));
        }
        if tasks.len() >= 100_000 || n + 1 == unread {
            for t in tasks.drain(..) {
                t.await??;
            }
            sent = (n + 1) * channels;
            progress(started, &format!("sent {sent}"));
        }
    }
    let seed_time = seed_started.elapsed();
    let expected_unread = (unread as u64).min(MAX_COUNT);
    let expected_mentions = ((unread / mention_every) as u64).min(MAX_COUNT);

    // The whole list, page by page, checked; then timed.
    let list = |api: Api, token: String| async move {
        let mut cursor: Option<String> = None;
        let mut seen = 0usize;
        loop {
            let mut url = api.url("/channels?joined=true&limit=100");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let d = crate::client::data(
                "GET /channels?joined=true",
                api.http().get(&url).bearer_auth(&token).send().await?,
            )
            .await?;
            for c in d["channels"].as_array().context("no channels array")? {
                let counts = (c["unreadCount"].as_u64(), c["mentionCount"].as_u64());
                if counts != (Some(expected_unread), Some(expected_mentions)) {
                    bail!(
                        "channel {} shows {counts:?}, not {expected_unread} and {expected_mentions}",
                        c["id"]
                    );
                }
                seen += 1;
            }
            match d["pagination"]["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return anyhow::Ok(seen),
            }
        }
    };
    let seen = list(api.clone(), reader.clone()).await?;
    if seen != channels {
        bail!("the list held {seen} channels, not {channels}");
    }
    progress(
        started,
        &format!("timing {requests} whole lists and {requests} GET /unreads"),
    );
    let lists = Shards::new(1);
    let server_start = ProcSample::server(common.server_pid);
    let base = Instant::now();
    for _ in 0..requests {
        let t = micros_since(base);
        list(api.clone(), reader.clone()).await?;
        lists.record(0, micros_since(base) - t);
    }
    let list_server = window(
        server_start,
        ProcSample::server(common.server_pid),
        0,
        requests as u64,
    );
    let list_time = base.elapsed();

    let unreads = Shards::new(1);
    let server_start = ProcSample::server(common.server_pid);
    let base = Instant::now();
    for _ in 0..requests {
        let t = micros_since(base);
        let d = crate::client::data(
            "GET /unreads",
            api.http()
                .get(api.url("/unreads"))
                .bearer_auth(&reader)
                .send()
                .await?,
        )
        .await?;
        unreads.record(0, micros_since(base) - t);
        let listed = d["channels"].as_array().map_or(0, Vec::len);
        if listed != channels
            || d["unreadCount"].as_u64() != Some(expected_unread * channels as u64)
        {
            bail!(
                "GET /unreads listed {listed} channels, {} unread",
                d["unreadCount"]
            );
        }
    }
    let unreads_server = window(
        server_start,
        ProcSample::server(common.server_pid),
        0,
        requests as u64,
    );
    let unreads_time = base.elapsed();

    Ok(json!({
        "scenario": "unreads",
        "channels": channels,
        "unread_per_channel": unread,
        "mentions_per_channel": unread / mention_every,
        "seed_s": round2(seed_time.as_secs_f64()),
        "seed_messages_per_s": per_second(sent as u64, seed_time),
        "list_pages": channels.div_ceil(100),
        "whole_list": summary(&lists.merged()),
        "whole_lists_per_s": per_second(requests as u64, list_time),
        "whole_list_server": list_server,
        "unreads": summary(&unreads.merged()),
        "unreads_per_s": per_second(requests as u64, unreads_time),
        "unreads_server": unreads_server,
    }))
}
