//! The backend traits behave the same in memory and on Redis (when `TEST_REDIS_URL` is set),
//! and Redis presence is shared by nodes and forgets a node that died.

use std::sync::Arc;
use std::time::Duration;

use chai_tapri::backends::memory::{MemoryCounters, MemoryPresence, MemoryRevocations};
use chai_tapri::backends::redis::RedisBackends;
use chai_tapri::backends::{Counters, PresenceRegistry, Revocations};
use uuid::Uuid;

use crate::helpers::{require_redis_url, unique_name};

async fn redis_node(prefix: &str, ttl: Duration) -> RedisBackends {
    RedisBackends::connect_with_ttl(&require_redis_url(), prefix, ttl)
        .await
        .unwrap()
}

async fn presence_counts_users_not_sockets(p: Arc<dyn PresenceRegistry>) {
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    assert!(
        p.add_socket(alice, "s1").await.unwrap(),
        "first socket: online"
    );
    assert!(
        !p.add_socket(alice, "s2").await.unwrap(),
        "second socket: no change"
    );
    assert!(p.add_socket(bob, "s3").await.unwrap());
    assert!(p.is_online(alice).await.unwrap());
    let mut online = p.online_users().await.unwrap();
    online.sort();
    let mut expected = vec![alice, bob];
    expected.sort();
    assert_eq!(online, expected);
    assert!(
        !p.remove_socket(alice, "s1").await.unwrap(),
        "one socket left"
    );
    assert!(p.is_online(alice).await.unwrap());
    assert!(
        p.remove_socket(alice, "s2").await.unwrap(),
        "last socket: offline"
    );
    assert!(!p.is_online(alice).await.unwrap());
    assert_eq!(p.online_users().await.unwrap(), vec![bob]);
    assert!(
        !p.remove_socket(alice, "s2").await.unwrap(),
        "removing twice changes nothing"
    );
}

async fn counters_count_within_a_window_and_reset_after_it(c: Arc<dyn Counters>) {
    let key = unique_name();
    let window = Duration::from_millis(400);
    let mut reset_in = window;
    for expected in 1..=3 {
        let hit = c.hit(&key, window).await.unwrap();
        reset_in = hit.reset_in;
        assert_eq!(hit.count, expected);
        assert!(
            hit.reset_in <= window && hit.reset_in > Duration::ZERO,
            "{hit:?}"
        );
    }
    assert_eq!(
        c.hit(&format!("{key}-other"), window).await.unwrap().count,
        1
    );
    // Past the reset the counter itself announced.
    tokio::time::sleep(reset_in + Duration::from_millis(20)).await;
    assert_eq!(
        c.hit(&key, window).await.unwrap().count,
        1,
        "a new window starts from zero"
    );
}

async fn revocations_last_until_the_token_expires(r: Arc<dyn Revocations>) {
    let now = chrono::Utc::now().timestamp();
    let (live, expired, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    r.mark_restored().await.unwrap();
    r.revoke(live, now + 3600).await.unwrap();
    r.revoke(expired, now - 1).await.unwrap();
    assert_eq!(r.is_revoked(live).await.unwrap(), Some(true));
    assert_eq!(
        r.is_revoked(expired).await.unwrap(),
        Some(false),
        "an already-expired token needs no entry"
    );
    assert_eq!(r.is_revoked(other).await.unwrap(), Some(false));
}

#[tokio::test]
async fn memory_presence_counts_users_not_sockets() {
    presence_counts_users_not_sockets(Arc::new(MemoryPresence::default())).await;
}

#[tokio::test]
async fn memory_counters_count_within_a_window() {
    counters_count_within_a_window_and_reset_after_it(Arc::new(MemoryCounters::default())).await;
}

#[tokio::test]
async fn memory_revocations_last_until_the_token_expires() {
    revocations_last_until_the_token_expires(Arc::new(MemoryRevocations::default())).await;
}

#[tokio::test]
#[ignore = "needs Redis: run by the second pass (scripts/test.sh)"]
async fn redis_backends_behave_like_the_memory_ones() {
    let prefix = format!("chai:test:{}:", unique_name());
    let node = redis_node(&prefix, Duration::from_secs(30)).await;
    presence_counts_users_not_sockets(Arc::new(node.presence())).await;
    counters_count_within_a_window_and_reset_after_it(Arc::new(node.counters())).await;
    revocations_last_until_the_token_expires(Arc::new(node.revocations())).await;
}

#[tokio::test]
#[ignore = "needs Redis: run by the second pass (scripts/test.sh)"]
async fn redis_presence_is_shared_by_nodes_and_forgets_a_node_that_died() {
    let prefix = format!("chai:test:{}:", unique_name());
    let ttl = Duration::from_millis(1500);
    let (a, b) = (
        redis_node(&prefix, ttl).await,
        redis_node(&prefix, ttl).await,
    );
    let (pa, pb) = (a.presence(), b.presence());
    let user = Uuid::now_v7();
    assert!(pa.add_socket(user, "a1").await.unwrap(), "first anywhere");
    assert!(
        !pb.add_socket(user, "b1").await.unwrap(),
        "already online on node a"
    );
    assert!(pb.is_online(user).await.unwrap());
    assert!(
        !pa.remove_socket(user, "a1").await.unwrap(),
        "still online on node b"
    );
    assert!(
        pb.remove_socket(user, "b1").await.unwrap(),
        "last socket anywhere"
    );
    assert!(!pa.is_online(user).await.unwrap());

    // Node a takes sockets and then dies: no heartbeat, no goodbye. One of its users also
    // has a socket on node b.
    let ghost = Uuid::now_v7();
    let both = Uuid::now_v7();
    assert!(pa.add_socket(ghost, "a2").await.unwrap());
    assert!(pa.add_socket(both, "a3").await.unwrap());
    assert!(!pb.add_socket(both, "b3").await.unwrap());
    assert!(pb.is_online(ghost).await.unwrap());
    assert_eq!(
        b.sweep().await.unwrap(),
        Vec::<Uuid>::new(),
        "node a is alive"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        b.heartbeat().await.unwrap();
        if !pb.is_online(ghost).await.unwrap() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a dead node's users never went offline"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The sweep claims node a once: its user connected nowhere else goes offline, the one
    // still on node b does not; a second sweep (another node's, say) finds nothing.
    assert_eq!(b.sweep().await.unwrap(), vec![ghost]);
    assert_eq!(b.sweep().await.unwrap(), Vec::<Uuid>::new());
    assert!(pb.is_online(both).await.unwrap());
    assert!(
        pb.add_socket(ghost, "b2").await.unwrap(),
        "back online through node b"
    );
}
