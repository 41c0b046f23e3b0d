//! `history`: seed one channel with M messages through the API (many concurrent posts), then
//! time pages of history at several depths.

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::args::Args;
use crate::client::{Api, micros_since};
use crate::stats::{Shards, per_second, progress, round2, summary};
use crate::{Common, run_id};

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let messages: usize = args.get("messages", 100_000).map_err(anyhow::Error::msg)?;
    let concurrency: usize = args.get("concurrency", 64).map_err(anyhow::Error::msg)?;
    let pages: usize = args.get("pages", 200).map_err(anyhow::Error::msg)?;
    let limit: usize = args.get("limit", 50).map_err(anyhow::Error::msg)?;
    let depths: String = args
        .get("depths", "0,1000,10000,50000".to_owned())
        .map_err(anyhow::Error::msg)?;
    args.finish().map_err(anyhow::Error::msg)?;
    let depths: Vec<usize> = depths
        .split(',')
        .map(|d| d.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("--depths: a comma-separated list of numbers"))?;
    if messages < limit || concurrency == 0 {
        bail!("need --messages >= --limit and --concurrency >= 1");
    }
    let started = Instant::now();
    let api = Api::new(&common.url, concurrency)?;
    let (tokens, channel) = api.channel_of(&run_id(), concurrency).await?;

    progress(
        started,
        &format!("seeding {messages} messages with {concurrency} concurrent posts"),
    );
    let seed_started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(messages);
    for i in 0..messages {
        let (api, gate, token, channel) = (
            api.clone(),
            gate.clone(),
            tokens[i % concurrency].clone(),
            channel.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            api.post_message(&token, &channel, &format!("history message {i}"))
                .await
        }));
    }
    let mut ids = Vec::with_capacity(messages);
    for (n, t) in tasks.into_iter().enumerate() {
        ids.push(t.await??);
        if n % 20_000 == 19_999 {
            progress(started, &format!("seeded {}", n + 1));
        }
    }
    let seed_time = seed_started.elapsed();
    // Message ids are UUIDv7: their text order is the order history pages follow.
    ids.sort();

    let mut results = serde_json::Map::new();
    for depth in depths {
        if depth + limit > ids.len() {
            continue;
        }
        let query = if depth == 0 {
            format!("limit={limit}")
        } else {
            format!("limit={limit}&before={}", ids[ids.len() - depth])
        };
        // One warm-up page, then the measured ones.
        api.messages(&tokens[0], &channel, &query).await?;
        let h = Shards::new(1);
        let base = Instant::now();
        for _ in 0..pages {
            let t = micros_since(base);
            let page = api.messages(&tokens[0], &channel, &query).await?;
            h.record(0, micros_since(base) - t);
            if page.len() != limit {
                bail!(
                    "a page at depth {depth} held {} messages, not {limit}",
                    page.len()
                );
            }
        }
        results.insert(format!("depth_{depth}"), summary(&h.merged()));
    }
    Ok(json!({
        "scenario": "history",
        "messages": ids.len(),
        "seed_concurrency": concurrency,
        "seed_s": round2(seed_time.as_secs_f64()),
        "seed_messages_per_s": per_second(ids.len() as u64, seed_time),
        "limit": limit,
        "pages_per_depth": pages,
        "pages": results,
    }))
}
