//! `GET /metrics` on `METRICS_ADDR`: read with a Prometheus text parser, the counters move
//! as traffic is sent.

use std::time::Duration;

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue as PromValue};
use serde_json::json;

use crate::helpers::{TestApp, http_client};

type Scrape = MetricsExposition<PrometheusType, PromValue>;

async fn scrape(app: &TestApp) -> Scrape {
    let base = app.metrics_address.as_deref().expect("METRICS_ADDR is set");
    let response = http_client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    parse_prometheus(&text).unwrap_or_else(|e| panic!("not Prometheus text ({e:?}):\n{text}"))
}

/// The sum over the samples of `metric` whose labels include all of `labels`: a counter's
/// or a gauge's value, a histogram's count.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = scrape.families.get(metric) else {
        return 0.0;
    };
    family
        .iter_samples()
        .filter(|s| {
            let set = s.get_labelset().expect("labels parse");
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            PromValue::Counter(c) => c.value.as_f64(),
            PromValue::Gauge(n) | PromValue::Unknown(n) => n.as_f64(),
            PromValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PromValue::Summary(_) => f64::NAN,
        })
        .sum()
}

async fn metrics_app() -> TestApp {
    TestApp::spawn_with(|vars| {
        vars.insert("METRICS_ADDR".into(), "127.0.0.1:0".into());
        vars.insert("RATE_LIMIT_ENABLED".into(), "true".into());
        vars.insert("RATE_LIMIT_AUTH".into(), "3/15m".into());
    })
    .await
}

#[tokio::test]
async fn counters_move_as_requests_messages_and_deliveries_happen() {
    let app = metrics_app().await;
    let before = scrape(&app).await;
    assert_eq!(
        value(
            &before,
            "chai_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(value(&before, "chai_messages_sent_total", &[]), 0.0);
    assert!(value(&before, "process_resident_memory_bytes", &[]) > 1_000_000.0);
    assert!(value(&before, "process_open_fds", &[]) >= 3.0);
    assert!(value(&before, "chai_db_pool_max_connections", &[]) >= 1.0);

    let alice = app.signup("metrics_alice").await;
    let bob = app.signup("metrics_bob").await;
    let channel = app.create_channel(&alice, "metrics", false).await;
    let mut alice_socket = app.socket(&alice).await;
    let mut bob_socket = app.socket(&bob).await;
    for s in [&mut alice_socket, &mut bob_socket] {
        let ack = s
            .call("join-channel", &json!({ "channelId": channel }))
            .await;
        assert_eq!(ack["success"], true, "{ack}");
    }
    for n in 0..3 {
        app.send_message(&alice, &channel, &format!("counted {n}"))
            .await;
    }
    for s in [&mut alice_socket, &mut bob_socket] {
        for _ in 0..3 {
            s.event("new-message", Duration::from_secs(5))
                .await
                .expect("each socket hears each message");
        }
    }
    // Auth allows 3 per 15 minutes here: the two signups and one login pass, the next is
    // refused.
    for expected in [401, 429] {
        let r = app
            .post_json(
                "/api/auth/login",
                &json!({ "email": "nobody@example.com", "password": "wrong-password" }),
            )
            .await;
        assert_eq!(r.status().as_u16(), expected);
    }
    let r = app
        .get_as(&alice.token, &format!("/api/channels/{channel}/messages"))
        .await;
    assert_eq!(r.status(), 200);

    let after = scrape(&app).await;
    assert_eq!(value(&after, "chai_messages_sent_total", &[]), 3.0);
    assert_eq!(
        value(
            &after,
            "chai_socket_deliveries_total",
            &[("event", "new-message")]
        ),
        6.0,
        "three messages to two sockets"
    );
    assert_eq!(value(&after, "chai_socket_connections", &[]), 2.0);
    assert!(value(&after, "chai_socket_rooms", &[]) >= 5.0);
    assert!(value(&after, "chai_presence_online_users", &[]) >= 2.0);
    assert_eq!(
        value(
            &after,
            "chai_rate_limit_refusals_total",
            &[("limit", "auth")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "chai_http_requests_total",
            &[
                ("route", "/api/auth/signup"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "chai_http_requests_total",
            &[("route", "/api/auth/login"), ("status", "429")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "chai_http_request_duration_seconds",
            &[("route", "/api/channels/{id}/messages"), ("method", "GET")]
        ),
        1.0
    );
    // Histograms read as the count of their `+Inf` bucket: one batch or more for 3 sends.
    let batches = value(&after, "chai_message_batch_size", &[]);
    assert!((1.0..=3.0).contains(&batches), "{batches}");
    assert_eq!(
        value(&after, "chai_message_batch_write_seconds", &[]),
        batches
    );
    assert!(value(&after, "chai_db_pool_connections", &[("state", "idle")]) >= 0.0);
    assert_eq!(value(&after, "chai_redis_errors_total", &[]), 0.0);

    drop(bob_socket);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = scrape(&app).await;
        if value(&now, "chai_socket_connections", &[]) == 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed socket leaves the count"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_are_served_only_on_their_own_listener_and_only_there() {
    let app = metrics_app().await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 404, "never on the API's port");
    let base = app.metrics_address.clone().unwrap();
    let other = http_client()
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404, "nothing else on the metrics port");

    let plain = TestApp::spawn().await;
    assert!(plain.metrics_address.is_none(), "unset: not served");
    assert_eq!(plain.get("/metrics").await.status(), 404);
}
