//! `files`: uploads and downloads over keep-alive connections.
//!
//! - `--op upload`: K connections upload a PNG of noise (`--kind png`, about `--bytes`, with
//!   its thumbnail made by the server) or a text file (`--kind txt`) for `--seconds`, or
//!   exactly `--count` uploads in all; uploads/s, latency, server CPU per upload and peak RSS.
//! - `--op download`: one file of `--bytes` uploaded, then K connections `GET` it for
//!   `--seconds`; requests/s, MB/s, server CPU per request.
//! - `--op oversize`: `--count` uploads of `--bytes` each, one at a time, that the server must
//!   refuse (413) once they pass its `MAX_FILE_SIZE`; the server's RSS before and after, to
//!   show that a refused body is neither read to its end nor held.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::Args;
use crate::client::{Api, micros_since};
use crate::stats::{ProcSample, Shards, per_second, progress, round2, summary, window};
use crate::{Common, run_id};

const BOUNDARY: &str = "chai-bench-boundary-4f1c9a";

pub async fn run(common: Common, mut args: Args) -> anyhow::Result<Value> {
    let op: String = args
        .get("op", "upload".to_owned())
        .map_err(anyhow::Error::msg)?;
    let kind: String = args
        .get("kind", "png".to_owned())
        .map_err(anyhow::Error::msg)?;
    let bytes: usize = args.get("bytes", 100 * 1024).map_err(anyhow::Error::msg)?;
    let connections: usize = args.get("connections", 8).map_err(anyhow::Error::msg)?;
    let seconds: f64 = args.get("seconds", 10.0).map_err(anyhow::Error::msg)?;
    let count: Option<u64> = args.opt("count").map_err(anyhow::Error::msg)?;
    args.finish().map_err(anyhow::Error::msg)?;
    if connections == 0 || bytes == 0 {
        bail!("--connections and --bytes must be at least 1");
    }
    let started = Instant::now();
    let api = Api::new(&common.url, connections)?;
    let token = api.signup(&format!("{}files", run_id())).await?.token;
    match op.as_str() {
        "upload" => {
            let (name, file) = match kind.as_str() {
                "png" => ("noise.png", png_of(bytes)?),
                "txt" => ("words.txt", text_of(bytes)),
                other => bail!("--kind must be png or txt, not `{other}`"),
            };
            progress(
                started,
                &format!("uploading {} bytes of {kind}", file.len()),
            );
            let body = Arc::new(multipart(name, &file));
            let url = api.url("/upload");
            let load = Load {
                common,
                connections,
                seconds,
                count,
            };
            let result = load
                .run(started, &api, move |client: &reqwest::Client| {
                    client
                        .post(&url)
                        .bearer_auth(&token)
                        .header(
                            "content-type",
                            format!("multipart/form-data; boundary={BOUNDARY}"),
                        )
                        .body(body.as_ref().clone())
                })
                .await?;
            Ok(json!({
                "scenario": "files",
                "op": "POST /api/upload",
                "kind": kind,
                "file_bytes": file.len(),
                "connections": connections,
                "result": result,
            }))
        }
        "download" => {
            let file = text_of(bytes);
            let response = api
                .http()
                .post(api.url("/upload"))
                .bearer_auth(&token)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(multipart("big.txt", &file))
                .send()
                .await?;
            let uploaded: Value = response.json().await?;
            let path = uploaded["data"]["file"]["fileUrl"]
                .as_str()
                .with_context(|| format!("upload refused: {uploaded}"))?
                .to_owned();
            let url = format!("{}{path}", common.url.trim_end_matches('/'));
            progress(started, &format!("downloading {url} ({bytes} bytes)"));
            let load = Load {
                common,
                connections,
                seconds,
                count,
            };
            let result = load
                .run(started, &api, move |client: &reqwest::Client| {
                    client.get(&url).bearer_auth(&token)
                })
                .await?;
            let requests = result["requests"].as_u64().unwrap_or(0);
            let secs = result["seconds"].as_f64().unwrap_or(0.0);
            #[allow(clippy::cast_precision_loss)]
            let mb_per_s = if secs > 0.0 {
                round2(requests as f64 * bytes as f64 / secs / 1e6)
            } else {
                0.0
            };
            Ok(json!({
                "scenario": "files",
                "op": "GET /api/files/:key",
                "file_bytes": bytes,
                "connections": connections,
                "mb_per_s": mb_per_s,
                "result": result,
            }))
        }
        "oversize" => oversize(common, started, &token, bytes, count.unwrap_or(3)).await,
        other => bail!("--op must be upload, download or oversize, not `{other}`"),
    }
}

/// Requests of one kind over K connections, for a time or a count.
struct Load {
    common: Common,
    connections: usize,
    seconds: f64,
    count: Option<u64>,
}

impl Load {
    async fn run(
        self,
        started: Instant,
        api: &Api,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
    ) -> anyhow::Result<Value> {
        let request = Arc::new(request);
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let latency = Arc::new(Shards::new(self.connections));
        let base = Instant::now();
        let server_start = ProcSample::server(self.common.server_pid);
        let t0 = Instant::now();
        let limit = self.count;
        let tasks: Vec<_> = (0..self.connections)
            .map(|w| {
                let (client, request) = (api.http().clone(), request.clone());
                let (stop, issued, done, latency) =
                    (stop.clone(), issued.clone(), done.clone(), latency.clone());
                tokio::spawn(async move {
                    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
                    while !stop.load(Relaxed) {
                        if limit.is_some_and(|l| issued.fetch_add(1, Relaxed) >= l) {
                            break;
                        }
                        let t = micros_since(base);
                        let key = match request(&client).send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                match r.bytes().await {
                                    Ok(_) => status.to_string(),
                                    Err(_) => "body error".to_owned(),
                                }
                            }
                            Err(_) => "connection error".to_owned(),
                        };
                        latency.record(w, micros_since(base) - t);
                        *statuses.entry(key).or_default() += 1;
                        done.fetch_add(1, Relaxed);
                    }
                    statuses
                })
            })
            .collect();
        let mut peak = 0;
        let mut last = (0, Instant::now());
        loop {
            let finished = tasks.iter().all(tokio::task::JoinHandle::is_finished);
            if finished || (limit.is_none() && t0.elapsed().as_secs_f64() >= self.seconds) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(s) = ProcSample::server(self.common.server_pid) {
                peak = peak.max(s.rss_kib);
            }
            if last.1.elapsed() >= Duration::from_secs(1) {
                let n = done.load(Relaxed);
                progress(
                    started,
                    &format!(
                        "{n} requests ({}/s)",
                        per_second(n - last.0, last.1.elapsed())
                    ),
                );
                last = (n, Instant::now());
            }
        }
        stop.store(true, Relaxed);
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        for t in tasks {
            for (k, v) in t.await? {
                *statuses.entry(k).or_default() += v;
            }
        }
        let elapsed = t0.elapsed();
        let total = done.load(Relaxed);
        Ok(json!({
            "seconds": round2(elapsed.as_secs_f64()),
            "requests": total,
            "requests_per_s": per_second(total, elapsed),
            "statuses": statuses,
            "latency": summary(&latency.merged()),
            "server": window(server_start, ProcSample::server(self.common.server_pid), peak, total),
        }))
    }
}

/// Uploads of `bytes` each over a raw connection, one at a time, each refused once past the
/// limit; the server's RSS around them.
async fn oversize(
    common: Common,
    started: Instant,
    token: &str,
    bytes: usize,
    count: u64,
) -> anyhow::Result<Value> {
    let address = common
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let before = ProcSample::server(common.server_pid);
    let mut refusals = Vec::new();
    let mut peak = 0;
    for i in 0..count {
        let mut conn = tokio::net::TcpStream::connect(&address).await?;
        let head = format!(
            "POST /api/upload HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).await?;
        let (mut read, mut write) = conn.into_split();
        let writer = tokio::spawn(async move {
            let opening = format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.txt\"\r\n\r\n"
            );
            let chunk = vec![b'x'; 256 * 1024];
            let mut sent = 0usize;
            let mut first = true;
            while sent < bytes {
                let data: Vec<u8> = if first {
                    first = false;
                    [opening.as_bytes(), &chunk].concat()
                } else {
                    chunk.clone()
                };
                let framed = [format!("{:x}\r\n", data.len()).as_bytes(), &data, b"\r\n"].concat();
                if write.write_all(&framed).await.is_err() {
                    break;
                }
                sent += data.len();
            }
            sent
        });
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(Duration::from_secs(60), read.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => bail!("reading the answer: {e}"),
            }
        }
        drop(read);
        let sent = writer.await.unwrap_or(0);
        let status = String::from_utf8_lossy(&answer)
            .split(' ')
            .nth(1)
            .unwrap_or("none")
            .to_owned();
        if let Some(s) = ProcSample::server(common.server_pid) {
            peak = peak.max(s.rss_kib);
        }
        progress(
            started,
            &format!("upload {i}: {status} after {sent} bytes sent"),
        );
        refusals.push(json!({ "status": status, "bytes_sent_before_answer": sent }));
    }
    let after = ProcSample::server(common.server_pid);
    Ok(json!({
        "scenario": "files",
        "op": "oversize POST /api/upload",
        "body_bytes": bytes,
        "uploads": refusals,
        "server": window(before, after, peak, count),
    }))
}

/// A `multipart/form-data` body of one part named `file`.
fn multipart(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A PNG of noise (which does not compress) of at most `bytes`.
fn png_of(bytes: usize) -> anyhow::Result<Vec<u8>> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    // The largest square whose raw pixels fit: side = ⌊√(bytes / 3)⌋.
    let mut side = u32::try_from((bytes / 3).isqrt()).unwrap_or(u32::MAX);
    loop {
        let image = image::RgbImage::from_fn(side, side, |_, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let b = state.to_le_bytes();
            image::Rgb([b[0], b[1], b[2]])
        });
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Png)?;
        let png = out.into_inner();
        if png.len() <= bytes || side < 2 {
            return Ok(png);
        }
        side = side * 98 / 100;
    }
}

/// `bytes` of letters (valid UTF-8 text).
fn text_of(bytes: usize) -> Vec<u8> {
    (0..bytes)
        .map(|i| {
            if i % 80 == 79 {
                b'\n'
            } else {
                b'a' + (i % 26).to_le_bytes()[0]
            }
        })
        .collect()
}
