//! `loopback`: what this machine's kernel charges for a single-frame delivery, with no server
//! at all. N TCP connections over 127.0.0.1; one thread writes one frame of B bytes to each
//! connection in turn (what a broadcast to a room of N does when each socket gets one frame),
//! pauses, and repeats; another thread reads everything without ever sleeping, so the writer
//! never pays to wake it. The writing thread's CPU per send is the floor under any server's
//! CPU per delivery on this machine when its clients are on loopback.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::args::Args;
use crate::stats::{ProcSample, progress, round2};

pub fn run(mut args: Args) -> anyhow::Result<Value> {
    let sockets: usize = args.get("sockets", 1000).map_err(anyhow::Error::msg)?;
    let rounds: usize = args.get("rounds", 30).map_err(anyhow::Error::msg)?;
    let bytes: usize = args.get("bytes", 450).map_err(anyhow::Error::msg)?;
    let pause = Duration::from_millis(args.get("pause-ms", 100).map_err(anyhow::Error::msg)?);
    args.finish().map_err(anyhow::Error::msg)?;
    if sockets == 0 || rounds == 0 || bytes == 0 {
        bail!("--sockets, --rounds and --bytes must be at least 1");
    }
    let started = Instant::now();
    progress(started, &format!("opening {sockets} loopback connections"));
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let mut writers = Vec::with_capacity(sockets);
    let mut readers = Vec::with_capacity(sockets);
    for i in 0..sockets {
        let client = TcpStream::connect(addr)
            .with_context(|| format!("connection {i} (raise `ulimit -n` for many sockets)"))?;
        let (accepted, _) = listener.accept()?;
        accepted.set_nodelay(true)?;
        client.set_nonblocking(true)?;
        writers.push(accepted);
        readers.push(client);
    }

    let expected = (sockets * rounds * bytes) as u64;
    let deadline = Instant::now() + pause * u32::try_from(rounds)? + Duration::from_secs(60);
    let reader = std::thread::spawn(move || -> anyhow::Result<u64> {
        let mut buf = [0u8; 4096];
        let mut total = 0u64;
        while total < expected {
            if Instant::now() > deadline {
                bail!("received {total} of {expected} bytes before the deadline");
            }
            for r in &mut readers {
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => bail!("a connection closed early"),
                        Ok(n) => total += n as u64,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(total)
    });

    progress(
        started,
        &format!("writing {rounds} rounds of {sockets} frames"),
    );
    let frame = vec![b'x'; bytes];
    let before = ProcSample::thread().context("cannot read /proc/thread-self/stat")?;
    let mut busy = Duration::ZERO;
    for _ in 0..rounds {
        let round = Instant::now();
        for w in &mut writers {
            w.write_all(&frame)?;
        }
        busy += round.elapsed();
        std::thread::sleep(pause);
    }
    let after = ProcSample::thread().context("cannot read /proc/thread-self/stat")?;
    let received = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reading thread panicked"))??;

    let sends = (sockets * rounds) as f64;
    let cpu = after.cpu.saturating_sub(before.cpu).as_secs_f64();
    Ok(json!({
        "scenario": "loopback",
        "sockets": sockets,
        "rounds": rounds,
        "bytes_per_frame": bytes,
        "sends": sockets * rounds,
        "bytes_received": received,
        "writer_cpu_s": round2(cpu),
        "writer_cpu_us_per_send": round2(cpu * 1e6 / sends),
        "wall_us_per_send": round2(busy.as_secs_f64() * 1e6 / sends),
        "sends_per_cpu_second": if cpu > 0.0 { (sends / cpu).round() } else { 0.0 },
    }))
}
