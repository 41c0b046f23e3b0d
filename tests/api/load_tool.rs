//! The load tool that ships with the server (`chai-tapri-bench`), run briefly against a test
//! server in every scenario: it must finish, and what it checked must hold. The tool's
//! command line (refusals, the server-less `loopback`) is tested in its own crate.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::TestApp;

/// Runs a scenario against the in-process test server (this process's CPU and memory are
/// the server's), with one tool thread.
async fn bench(app: &TestApp, args: &[&str]) -> Value {
    let pid = std::process::id().to_string();
    let mut all = args.to_vec();
    all.extend([
        "--url",
        &app.address,
        "--server-pid",
        &pid,
        "--threads",
        "1",
    ]);
    run_tool(&all, Duration::from_secs(90)).await
}

/// Runs the tool with `args` on a thread of its own (off the runtime that serves a test
/// server, as the tool builds its own runtime); its result, which must come within `limit`.
pub(crate) async fn run_tool(args: &[&str], limit: Duration) -> Value {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(chai_tapri_bench::run(args).map_err(|e| format!("{e:#}")));
    });
    tokio::time::timeout(limit, rx)
        .await
        .expect("the tool stops by itself")
        .expect("the tool's thread finished")
        .unwrap_or_else(|e| panic!("the scenario failed: {e}"))
}

#[tokio::test]
async fn fanout_checks_every_delivery_of_every_acknowledged_message() {
    let app = TestApp::spawn().await;
    let r = bench(
        &app,
        &[
            "fanout",
            "--users",
            "24",
            "--channels",
            "4",
            "--senders",
            "4",
            "--window",
            "4",
            "--seconds",
            "1",
        ],
    )
    .await;
    assert_eq!(r["sockets"], 24, "{r}");
    assert!(r["acked"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["ack_errors"], 0, "{r}");
    // Each acknowledged message reaches the 6 sockets of its channel, the sender's included.
    assert_eq!(
        r["expected_deliveries"],
        r["acked"].as_u64().unwrap() * 6,
        "{r}"
    );
    assert_eq!(r["deliveries"], r["expected_deliveries"], "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["duplicated"], 0, "{r}");
    assert_eq!(r["foreign"], 0, "{r}");
    assert!(
        r["delivery_latency"]["p99_ms"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert!(
        r["server"]["cpu_s"].is_number() && r["tool"]["cpu_us_per_unit"].is_number(),
        "{r}"
    );
}

#[tokio::test]
async fn after_a_reconnect_storm_what_was_missed_live_is_recovered_with_after() {
    let app = TestApp::spawn().await;
    let r = bench(
        &app,
        &[
            "fanout",
            "--users",
            "30",
            "--channels",
            "3",
            "--senders",
            "3",
            "--rate",
            "300",
            "--seconds",
            "2",
            "--storm-at",
            "0.6",
        ],
    )
    .await;
    let storm = &r["storm"];
    assert_eq!(storm["sockets"], 27, "{r}");
    assert!(storm["all_rejoined_s"].is_number(), "{r}");
    assert_eq!(
        r["lost"], 0,
        "live or recovered, every acknowledged message: {r}"
    );
    assert_eq!(r["duplicated"], 0, "{r}");
}

#[tokio::test]
async fn connect_holds_every_socket_and_reports_memory_per_socket() {
    let app = TestApp::spawn().await;
    let r = bench(
        &app,
        &[
            "connect",
            "--sockets",
            "40",
            "--users",
            "10",
            "--concurrency",
            "8",
            "--hold",
            "0.5",
        ],
    )
    .await;
    assert_eq!(r["connected"], 40, "{r}");
    assert_eq!(r["failures"], 0, "{r}");
    assert_eq!(r["still_open_after_hold"], 40, "{r}");
    assert!(r["server_rss_kib_per_socket"].is_number(), "{r}");
}

#[tokio::test]
async fn http_and_history_count_statuses_and_time_pages_at_each_depth() {
    let app = TestApp::spawn().await;
    let r = bench(
        &app,
        &[
            "http",
            "--op",
            "get",
            "--connections",
            "4",
            "--seconds",
            "0.5",
            "--seed",
            "60",
        ],
    )
    .await;
    let ok = r["statuses"]["200"].as_u64().unwrap();
    assert!(ok > 0 && ok == r["requests"].as_u64().unwrap(), "{r}");
    let r = bench(
        &app,
        &[
            "http",
            "--op",
            "post",
            "--connections",
            "4",
            "--seconds",
            "0.5",
        ],
    )
    .await;
    assert!(r["statuses"]["201"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["statuses"].as_object().unwrap().len(), 1, "{r}");

    let r = bench(
        &app,
        &[
            "history",
            "--messages",
            "300",
            "--concurrency",
            "8",
            "--pages",
            "5",
            "--depths",
            "0,200,5000",
        ],
    )
    .await;
    assert_eq!(r["messages"], 300, "{r}");
    assert_eq!(r["pages"]["depth_0"]["count"], 5, "{r}");
    assert_eq!(r["pages"]["depth_200"]["count"], 5, "{r}");
    assert!(
        r["pages"].get("depth_5000").is_none(),
        "deeper than the channel: skipped: {r}"
    );
}

#[tokio::test]
async fn mix_delivers_every_message_reply_and_reaction_to_every_socket() {
    let app = TestApp::spawn().await;
    for (kind, events) in [
        ("message", &["new-message"][..]),
        ("reply", &["new-message", "thread-updated"][..]),
        ("reaction", &["reaction-added", "reaction-removed"][..]),
    ] {
        let r = bench(
            &app,
            &[
                "mix",
                "--users",
                "12",
                "--kind",
                kind,
                "--window",
                "3",
                "--seconds",
                "0.5",
            ],
        )
        .await;
        let operations = r["operations"].as_u64().unwrap();
        assert!(operations > 0, "{r}");
        assert_eq!(r["deliveries"], r["deliveries_expected"], "{kind}: {r}");
        let heard: u64 = events.iter().map(|e| r["heard"][e].as_u64().unwrap()).sum();
        assert_eq!(
            heard,
            r["deliveries"].as_u64().unwrap(),
            "{kind}: only its events: {r}"
        );
        assert!(r["server"]["cpu_us_per_unit"].is_number(), "{r}");
    }
}

#[tokio::test]
async fn unreads_checks_every_channel_shows_its_capped_counts() {
    let app = TestApp::spawn().await;
    // 1,005 unread in one channel: counts shown capped at 1,000; 150 channels: two pages.
    let r = bench(
        &app,
        &[
            "unreads",
            "--channels",
            "150",
            "--unread",
            "7",
            "--mention-every",
            "3",
            "--requests",
            "3",
        ],
    )
    .await;
    assert_eq!(r["list_pages"], 2, "{r}");
    assert_eq!(r["mentions_per_channel"], 2, "{r}");
    assert_eq!(r["whole_list"]["count"], 3, "{r}");
    assert_eq!(r["unreads"]["count"], 3, "{r}");
    let r = bench(
        &app,
        &[
            "unreads",
            "--channels",
            "1",
            "--unread",
            "1005",
            "--requests",
            "1",
        ],
    )
    .await;
    assert_eq!(r["unread_per_channel"], 1005, "{r}");
}

#[tokio::test]
async fn search_checks_what_each_query_finds() {
    let app = TestApp::spawn().await;
    let r = bench(
        &app,
        &[
            "search",
            "--messages",
            "600",
            "--channels",
            "3",
            "--rare",
            "4",
            "--requests",
            "2",
            "--page",
            "5",
        ],
    )
    .await;
    for query in ["common", "rare", "cjk", "short"] {
        assert_eq!(r[query]["latency"]["count"], 2, "{query}: {r}");
    }
    assert_eq!(r["rare"]["matching_messages"], 4, "{r}");
    assert_eq!(r["cjk"]["matching_messages"], 12, "{r}");
}
