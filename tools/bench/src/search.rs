//! `search`: `--messages` messages in `--channels` public channels, sent through the API by
//! one user, of words drawn from a made-up vocabulary; among them a common word (`deploy`,
//! one message in 10), a rare one (`quetzal`, in `--rare` messages) and a Chinese phrase
//! (`新版本发布了…`, one message in 50). Then another user — a member of none of the
//! channels — searches for each, and for a term of two letters (which no trigram index can
//! look up), first pages of `--page` results, each search timed; the answers are checked:
//! every result holds its term, the rare word is found exactly `--rare` times.
//! `--seeded true` searches a database an earlier run of the same `--messages` and
//! `--rare` filled (public channels: anyone finds their messages), to time it again.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::args::Args;
use crate::client::{Api, micros_since};
use crate::stats::{ProcSample, Shards, per_second, progress, round2, summary, window};
use crate::{Common, run_id};

/// The common word: one message in [`COMMON_EVERY`].
const COMMON: &str = "deploy";
const COMMON_EVERY: usize = 10;
/// The rare word.
const RARE: &str = "quetzal";
/// The Chinese substring searched for: one message in [`CJK_EVERY`] holds it.
const CJK: &str = "版本发布";
const CJK_EVERY: usize = 50;
/// A term of two letters: the index cannot look it up, every candidate is judged.
const SHORT: &str = "qz";

/// A small deterministic generator (xorshift64*): the same messages on every run.
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or_default()
    }
}

/// 5,000 made-up words of 3 to 9 letters, none holding a searched term.
fn vocabulary(words: &mut Words) -> Vec<String> {
    const SOUNDS: [&str; 20] = [
        "ka", "ri", "mo", "ten", "sa", "lu", "vin", "o", "pe", "dra", "ne", "shi", "bo", "tu",
        "el", "ga", "fi", "un", "ha", "ye",
    ];
    let mut out = Vec::with_capacity(5000);
    while out.len() < 5000 {
        let mut w = String::new();
        while w.chars().count() < 3 + words.below(7) {
            w.push_str(SOUNDS[words.below(SOUNDS.len())]);
        }
        if ![COMMON, RARE, SHORT].iter().any(|t| w.contains(t)) {
            out.push(w);
        }
    }
    out
}

/// Message `n` of `total`, `rare` of which hold the rare word.
fn content(
    n: usize,
    total: usize,
    rare: usize,
    vocabulary: &[String],
    words: &mut Words,
) -> String {
    let step = (total / rare.max(1)).max(1);
    let is_rare = rare > 0 && n % step == 1 % step && n / step < rare;
    if n % CJK_EVERY == CJK_EVERY - 1 && !is_rare {
        return format!("新版本发布了第{n}号构建，请大家测试");
    }
    let mut text: Vec<&str> = (0..6 + words.below(9))
        .map(|_| vocabulary[words.below(vocabulary.len())].as_str())
        .collect();
    if n.is_multiple_of(COMMON_EVERY) {
        let at = words.below(text.len());
        text.insert(at, COMMON);
    }
    if is_rare {
        text.push(RARE);
    }
    text.join(" ")
}

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let messages: usize = args
        .get("messages", 1_000_000)
        .map_err(anyhow::Error::msg)?;
    let channels: usize = args.get("channels", 100).map_err(anyhow::Error::msg)?;
    let rare: usize = args.get("rare", 10).map_err(anyhow::Error::msg)?;
    let requests: usize = args.get("requests", 200).map_err(anyhow::Error::msg)?;
    let page: usize = args.get("page", 20).map_err(anyhow::Error::msg)?;
    let concurrency: usize = args.get("concurrency", 64).map_err(anyhow::Error::msg)?;
    let seeded: bool = args.get("seeded", false).map_err(anyhow::Error::msg)?;
    args.finish().map_err(anyhow::Error::msg)?;
    if channels == 0 || requests == 0 || concurrency == 0 || page == 0 || rare > messages {
        bail!(
            "--channels, --requests, --concurrency and --page must be at least 1, --rare at most --messages"
        );
    }
    let started = Instant::now();
    let api = Api::new(&common.url, concurrency)?;
    let run = run_id();
    progress(
        started,
        &format!("signing up, creating {channels} channels"),
    );
    let (sender, searcher) = api.signup_pair(&run).await?;
    let mut ids = Vec::with_capacity(channels);
    for i in 0..channels {
        if seeded {
            break;
        }
        ids.push(api.create_channel(&sender, &format!("{run}-{i}")).await?);
    }

    let seed_started = Instant::now();
    let messages_to_send = if seeded {
        progress(started, "seeded by an earlier run: searching what is there");
        0
    } else {
        progress(started, &format!("sending {messages} messages"));
        messages
    };
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut words = Words(0x9E37_79B9_7F4A_7C15);
    let vocabulary = vocabulary(&mut words);
    let mut tasks = Vec::with_capacity(messages.min(100_000));
    for n in 0..messages_to_send {
        let text = content(n, messages, rare, &vocabulary, &mut words);
        let (api, gate, sender, id) = (
            api.clone(),
            gate.clone(),
            sender.clone(),
            ids[n % channels].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            api.post_message(&sender, &id, &text).await
        }));
        if tasks.len() >= 100_000 || n + 1 == messages {
            for t in tasks.drain(..) {
                t.await??;
            }
            progress(started, &format!("sent {}", n + 1));
        }
    }
    let seed_time = seed_started.elapsed();

    let search = |query: String| {
        let (api, searcher) = (api.clone(), searcher.clone());
        async move {
            let url = format!("{}&limit={page}", api.url(&format!("/search?q={query}")));
            crate::client::data(
                "GET /search",
                api.http().get(&url).bearer_auth(&searcher).send().await?,
            )
            .await
        }
    };
    let check = |d: &Value, term: &str| -> anyhow::Result<usize> {
        let results = d["results"].as_array().context("no results array")?;
        for r in results {
            let text = r["message"]["content"].as_str().unwrap_or_default();
            if !text.to_lowercase().contains(term)
                || r["matches"].as_array().is_none_or(Vec::is_empty)
            {
                bail!("a result for {term:?} does not hold it: {text:?}");
            }
        }
        Ok(results.len())
    };
    // The rare word: every page, found exactly `rare` times.
    let mut found = 0;
    let mut cursor = String::new();
    loop {
        let d = search(format!("{RARE}{cursor}")).await?;
        found += check(&d, RARE)?;
        match d["pagination"]["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    if found != rare {
        bail!("{RARE:?} found {found} times, not {rare}");
    }

    let mut out = json!({
        "scenario": "search",
        "messages": messages,
        "channels": channels,
        "seeded_before": seeded,
        "seed_s": round2(seed_time.as_secs_f64()),
        "seed_messages_per_s": per_second(messages as u64, seed_time),
        "page": page,
    });
    let queries = [
        ("common", COMMON, messages / COMMON_EVERY),
        ("rare", RARE, rare),
        ("cjk", CJK, messages / CJK_EVERY),
        ("short", SHORT, 0),
    ];
    for (name, term, expected) in queries {
        progress(started, &format!("timing {requests} searches for {term:?}"));
        let encoded: String = url_encode(term);
        let times = Shards::new(1);
        let server_start = ProcSample::server(common.server_pid);
        let base = Instant::now();
        let mut shown = 0;
        for _ in 0..requests {
            let t = micros_since(base);
            let d = search(encoded.clone()).await?;
            times.record(0, micros_since(base) - t);
            shown = check(&d, term)?;
        }
        if shown != expected.min(page) {
            bail!(
                "{term:?}: a first page of {shown}, not {}",
                expected.min(page)
            );
        }
        let server = window(
            server_start,
            ProcSample::server(common.server_pid),
            0,
            requests as u64,
        );
        out[name] = json!({
            "q": term,
            "matching_messages": expected,
            "latency": summary(&times.merged()),
            "per_s": per_second(requests as u64, base.elapsed()),
            "server": server,
        });
    }
    Ok(out)
}

/// `term` as a query-string value.
fn url_encode(term: &str) -> String {
    term.bytes().map(|b| format!("%{b:02X}")).collect()
}
