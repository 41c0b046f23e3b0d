//! The store conformance suite: every `Store` method called directly, with the edges the
//! HTTP tests reach only indirectly. It runs on SQLite in the first pass of the suite and on
//! PostgreSQL in the second (`TEST_DATABASE_URL`), so both implementations answer alike.

use std::sync::Arc;

use chai_tapri::Config;
use chai_tapri::models::audit::{Action, Actor, AuditQuery, NewAudit};
use chai_tapri::models::channel::{ChannelName, NewChannel, Role};
use chai_tapri::models::dm::DmMembers;
use chai_tapri::models::file::{FileKey, FileRow};
use chai_tapri::models::file_type::FileType;
use chai_tapri::models::message::{Anchor, MessageContent, NewMessage, Nonce, SenderView};
use chai_tapri::models::user::{DisplayName, Email, NewUser, ProfilePatch, UserRow, Username};
use chai_tapri::store::{
    self, ChannelQuery, ExtrasOf, Joined, Left, Reacted, Store, StoreError, UserQuery,
};
use chrono::{Duration as Span, Utc};
use uuid::Uuid;

use crate::helpers::{TempDir, test_database_url, test_vars};

/// A fresh, migrated store of the pass's database (its folder or schema is the test's own).
async fn open() -> (Arc<dyn Store>, TempDir) {
    let dir = TempDir::new();
    let config = Config::from_map(&test_vars(&dir)).unwrap();
    let store = store::connect(&config).await.unwrap();
    let expected = if test_database_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(store.kind(), expected);
    store.ping().await.unwrap();
    store.probe_write(Utc::now()).await.unwrap();
    (store, dir)
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: Uuid::now_v7(),
        username: Username::parse(name).unwrap(),
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        password_hash: "not-a-real-hash".to_owned(),
        display_name: DisplayName::parse(name).unwrap(),
        created_at: Utc::now(),
    }
}

async fn user(store: &dyn Store, name: &str) -> UserRow {
    store.insert_user(&new_user(name)).await.unwrap()
}

/// Creates a channel owned by `owner` with `members`; returns its id.
async fn channel(
    store: &dyn Store,
    owner: Uuid,
    name: &str,
    private: bool,
    members: &[Uuid],
) -> Uuid {
    let id = Uuid::now_v7();
    store
        .insert_channel(
            &NewChannel {
                id,
                name: ChannelName::parse(name).unwrap(),
                description: Some(format!("about {name}")),
                is_private: private,
                created_by: owner,
                created_at: Utc::now(),
            },
            members,
            None,
        )
        .await
        .unwrap();
    id
}

fn message(channel: Uuid, sender: &UserRow, content: &str, nonce: Option<&str>) -> NewMessage {
    NewMessage {
        channel_id: channel,
        sender: SenderView::from(sender),
        content: MessageContent::parse(content).unwrap(),
        attachments: "[]".to_owned(),
        attachment_ids: Vec::new(),
        parent_id: None,
        nonce: nonce.map(|n| Nonce::parse(n).unwrap()),
        mentions: Default::default(),
    }
}

/// Sends one message; its id.
async fn send(store: &dyn Store, channel: Uuid, sender: &UserRow, content: &str) -> Uuid {
    let mut results = store
        .insert_messages(&[message(channel, sender, content, None)])
        .await
        .unwrap();
    results.remove(0).unwrap().message.id
}

/// A reaction's channel and whether it changed anything; `None` when refused.
fn done(reacted: Reacted) -> Option<(Uuid, bool)> {
    match reacted {
        Reacted::Done {
            message, changed, ..
        } => Some((message.channel_id, changed)),
        Reacted::Refused => None,
    }
}

async fn role(store: &dyn Store, channel: Uuid, user: Uuid) -> Option<Role> {
    store
        .fetch_member(channel, user)
        .await
        .unwrap()
        .map(|m| Role::from_db(&m.role))
}

#[tokio::test]
async fn users_are_unique_whatever_the_case_and_found_by_any_key() {
    let (store, _dir) = open().await;
    let alice = user(&*store, "Alice").await;
    let mut twin = new_user("ALICE");
    twin.email = Email::parse("other@example.com").unwrap();
    assert!(matches!(
        store.insert_user(&twin).await,
        Err(StoreError::Conflict)
    ));
    let mut same_mail = new_user("alice2");
    same_mail.email = Email::parse("ALICE@example.com").unwrap();
    assert!(matches!(
        store.insert_user(&same_mail).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.fetch_user(alice.id).await.unwrap().unwrap().username,
        "Alice"
    );
    assert_eq!(
        store
            .fetch_user_by_username("aLiCe")
            .await
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    assert_eq!(
        store
            .fetch_user_by_email("alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    assert!(store.fetch_user(Uuid::now_v7()).await.unwrap().is_none());
    assert!(
        store
            .fetch_user_by_username("nobody")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_user_directory_pages_by_username_and_filters_by_prefix() {
    let (store, _dir) = open().await;
    for name in ["carol", "bob", "Bobby", "dave", "b_x"] {
        user(&*store, name).await;
    }
    let names = |rows: Vec<UserRow>| rows.into_iter().map(|u| u.username).collect::<Vec<_>>();
    let first = store
        .list_users(&UserQuery {
            prefix: None,
            after_username: None,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(names(first), ["b_x", "bob"]);
    let next = store
        .list_users(&UserQuery {
            prefix: None,
            after_username: Some("bob".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(names(next), ["Bobby", "carol", "dave"]);
    // `_` is a literal in a prefix, not a LIKE wildcard.
    let prefixed = store
        .list_users(&UserQuery {
            prefix: Some("b_".into()),
            after_username: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(names(prefixed), ["b_x"]);
    let bobs = store
        .list_users(&UserQuery {
            prefix: Some("bob".into()),
            after_username: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(names(bobs), ["bob", "Bobby"]);
    let dave = store.fetch_user_by_username("dave").await.unwrap().unwrap();
    let bob = store.fetch_user_by_username("bob").await.unwrap().unwrap();
    let by_ids = store
        .list_users_by_ids(&[dave.id, Uuid::now_v7(), bob.id])
        .await
        .unwrap();
    assert_eq!(names(by_ids), ["bob", "dave"], "unknown ids are skipped");
}

#[tokio::test]
async fn profiles_change_and_last_seen_is_written_in_one_go() {
    let (store, _dir) = open().await;
    let u = user(&*store, "profiled").await;
    let v = user(&*store, "seen").await;
    let now = Utc::now();
    let patch = ProfilePatch {
        display_name: Some(DisplayName::parse("New Name").unwrap()),
        avatar_url: Some(Some("https://example.com/a.png".into())),
        status: Some(Some("away".into())),
    };
    let changed = store
        .update_user_profile(u.id, &patch, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.display_name, "New Name");
    assert_eq!(
        changed.avatar_url.as_deref(),
        Some("https://example.com/a.png")
    );
    let cleared = store
        .update_user_profile(
            u.id,
            &ProfilePatch {
                display_name: None,
                avatar_url: Some(None),
                status: Some(None),
            },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cleared.display_name, "New Name",
        "absent fields are left alone"
    );
    assert_eq!(cleared.avatar_url, None);
    assert_eq!(cleared.status, None);
    assert!(
        store
            .update_user_profile(Uuid::now_v7(), &patch, now)
            .await
            .unwrap()
            .is_none()
    );
    let (t1, t2) = (now - Span::seconds(5), now - Span::seconds(1));
    store
        .update_last_seen(&[(u.id, t1), (v.id, t2)])
        .await
        .unwrap();
    let seen = |row: UserRow| row.last_seen.map(|t| t.timestamp_millis());
    assert_eq!(
        seen(store.fetch_user(u.id).await.unwrap().unwrap()),
        Some(t1.timestamp_millis())
    );
    assert_eq!(
        seen(store.fetch_user(v.id).await.unwrap().unwrap()),
        Some(t2.timestamp_millis())
    );
    store.update_last_seen(&[]).await.unwrap();
}

#[tokio::test]
async fn revocations_last_until_they_expire_and_are_purged_after() {
    let (store, _dir) = open().await;
    let (live, dead) = (Uuid::now_v7(), Uuid::now_v7());
    store.insert_revocation(live, 2_000, None).await.unwrap();
    store.insert_revocation(live, 2_000, None).await.unwrap();
    store.insert_revocation(dead, 1_000, None).await.unwrap();
    let mut listed = store.list_revocations(1_500).await.unwrap();
    listed.sort();
    assert_eq!(listed, [(live, 2_000)]);
    assert_eq!(store.delete_expired_revocations(1_500).await.unwrap(), 1);
    assert_eq!(store.delete_expired_revocations(1_500).await.unwrap(), 0);
    assert_eq!(store.list_revocations(0).await.unwrap(), [(live, 2_000)]);
}

#[tokio::test]
async fn channels_are_seen_as_each_viewer_sees_them() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "chowner").await;
    let member = user(&*store, "chmember").await;
    let stranger = user(&*store, "chstranger").await;
    let public = channel(&*store, owner.id, "alpha", false, &[]).await;
    let private = channel(&*store, owner.id, "beta", true, &[member.id]).await;
    let other = channel(&*store, member.id, "gamma", false, &[]).await;
    assert!(matches!(
        store
            .insert_channel(
                &NewChannel {
                    id: Uuid::now_v7(),
                    name: ChannelName::parse("alpha").unwrap(),
                    description: None,
                    is_private: false,
                    created_by: member.id,
                    created_at: Utc::now(),
                },
                &[],
                None,
            )
            .await,
        Err(StoreError::Conflict)
    ));

    let seen = store
        .fetch_channel(private, member.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.member_count, 2);
    assert_eq!(seen.my_role.as_deref(), Some("member"));
    assert!(!seen.starred);
    let by_stranger = store
        .fetch_channel(private, stranger.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_stranger.my_role, None);
    assert!(
        store
            .fetch_channel(Uuid::now_v7(), owner.id)
            .await
            .unwrap()
            .is_none()
    );

    let list = |viewer: Uuid, search: Option<&str>, joined_only: bool, after: Option<&str>| {
        let store = store.clone();
        let query = ChannelQuery {
            viewer,
            search: search.map(str::to_owned),
            joined_only,
            after_name: after.map(str::to_owned),
            limit: 10,
        };
        async move {
            store
                .list_channels(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(stranger.id, None, false, None).await,
        ["alpha", "gamma"]
    );
    assert_eq!(
        list(member.id, None, false, None).await,
        ["alpha", "beta", "gamma"]
    );
    assert_eq!(list(member.id, None, true, None).await, ["beta", "gamma"]);
    assert_eq!(list(member.id, Some("mm"), false, None).await, ["gamma"]);
    assert_eq!(
        list(member.id, None, false, Some("alpha")).await,
        ["beta", "gamma"]
    );

    store
        .insert_star(member.id, other, Utc::now())
        .await
        .unwrap();
    store
        .insert_star(member.id, other, Utc::now())
        .await
        .unwrap();
    store
        .insert_star(member.id, private, Utc::now())
        .await
        .unwrap();
    let starred: Vec<String> = store
        .list_starred_channels(member.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(starred, ["beta", "gamma"]);
    assert!(
        store
            .fetch_channel(other, member.id)
            .await
            .unwrap()
            .unwrap()
            .starred
    );
    // A star on a private channel the user left is no longer listed.
    store.delete_member(private, member.id, None).await.unwrap();
    let starred: Vec<String> = store
        .list_starred_channels(member.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(starred, ["gamma"]);
    store.delete_star(member.id, other).await.unwrap();
    store.delete_star(member.id, other).await.unwrap();
    assert!(
        store
            .list_starred_channels(member.id)
            .await
            .unwrap()
            .is_empty()
    );

    store
        .update_channel(public, Some("alpha2"), Some(None), Utc::now(), None)
        .await
        .unwrap();
    let renamed = store
        .fetch_channel(public, owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.name, "alpha2");
    assert_eq!(renamed.description, None);
    assert!(matches!(
        store
            .update_channel(public, Some("gamma"), None, Utc::now(), None)
            .await,
        Err(StoreError::Conflict)
    ));
    store
        .update_channel(public, None, Some(Some("kept")), Utc::now(), None)
        .await
        .unwrap();
    let described = store
        .fetch_channel(public, owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (described.name.as_str(), described.description.as_deref()),
        ("alpha2", Some("kept"))
    );
}

#[tokio::test]
async fn ownership_goes_to_the_oldest_admin_else_the_oldest_member_and_may_lapse() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "firstowner").await;
    let old_member = user(&*store, "oldmember").await;
    let admin = user(&*store, "theadmin").await;
    let young_member = user(&*store, "youngmember").await;
    let id = channel(&*store, owner.id, "handover", false, &[]).await;
    let t0 = Utc::now();
    for (i, u) in [&old_member, &admin, &young_member].into_iter().enumerate() {
        let at = t0 + Span::seconds(i64::try_from(i).unwrap() + 1);
        assert_eq!(
            store.insert_member(id, u.id, true, at, None).await.unwrap(),
            Joined::Added(Role::Member)
        );
    }
    assert_eq!(
        store
            .insert_member(id, admin.id, true, t0, None)
            .await
            .unwrap(),
        Joined::Already(Role::Member)
    );
    assert!(
        !store
            .upsert_member(id, admin.id, Role::Admin, t0, None)
            .await
            .unwrap()
    );
    assert_eq!(role(&*store, id, admin.id).await, Some(Role::Admin));

    // The owner leaves: the admin (younger than the oldest member) takes over.
    assert_eq!(
        store.delete_member(id, owner.id, None).await.unwrap(),
        Left::Left {
            new_owner: Some(admin.id)
        }
    );
    assert_eq!(role(&*store, id, admin.id).await, Some(Role::Owner));
    // The new owner leaves: no admin is left, so the oldest member.
    assert_eq!(
        store.delete_member(id, admin.id, None).await.unwrap(),
        Left::Left {
            new_owner: Some(old_member.id)
        }
    );
    // A member who is not the owner leaves: nobody takes over anything.
    assert_eq!(
        store
            .delete_member(id, young_member.id, None)
            .await
            .unwrap(),
        Left::Left { new_owner: None }
    );
    assert_eq!(
        store
            .delete_member(id, young_member.id, None)
            .await
            .unwrap(),
        Left::NotMember
    );
    // The last member leaves: the channel is ownerless, and the first to join claims it.
    assert_eq!(
        store.delete_member(id, old_member.id, None).await.unwrap(),
        Left::Left { new_owner: None }
    );
    assert_eq!(
        store
            .fetch_channel(id, owner.id)
            .await
            .unwrap()
            .unwrap()
            .member_count,
        0
    );
    assert_eq!(
        store
            .insert_member(id, young_member.id, false, Utc::now(), None)
            .await
            .unwrap(),
        Joined::Added(Role::Member),
        "without claiming, a join is a plain membership"
    );
    assert_eq!(
        store
            .insert_member(id, admin.id, true, Utc::now(), None)
            .await
            .unwrap(),
        Joined::Added(Role::Owner)
    );
    assert!(
        store
            .upsert_member(id, owner.id, Role::Admin, Utc::now(), None)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn members_page_by_join_time_and_co_members_span_channels() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "pageowner").await;
    let others: Vec<UserRow> = futures_util::future::join_all((0..4).map(|i| {
        let store = store.clone();
        async move { user(&*store, &format!("pagemember{i}")).await }
    }))
    .await;
    let loner = user(&*store, "loner").await;
    let id = channel(&*store, owner.id, "paged", false, &[]).await;
    let t0 = Utc::now();
    for (i, u) in others.iter().enumerate() {
        // Two share a join time: the user id breaks the tie.
        let secs = i64::try_from(i / 2 * 2).unwrap() + 1;
        store
            .insert_member(id, u.id, false, t0 + Span::seconds(secs), None)
            .await
            .unwrap();
    }
    let first = store.list_members(id, None, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first[0].user_id, owner.id, "the creator joined first");
    let last = first.last().unwrap();
    let rest = store
        .list_members(id, Some((last.joined_at, last.user_id)), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    let mut seen: Vec<Uuid> = first.iter().chain(&rest).map(|m| m.user_id).collect();
    let keys: Vec<_> = first
        .iter()
        .chain(&rest)
        .map(|m| (m.joined_at, m.user_id))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "by joined_at, then user id");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "no one twice, no one missed");

    let second = channel(&*store, loner.id, "elsewhere", true, &[others[0].id]).await;
    let mut co = store.list_co_member_ids(others[0].id).await.unwrap();
    co.sort();
    let mut expected: Vec<Uuid> = others
        .iter()
        .map(|u| u.id)
        .chain([owner.id, loner.id])
        .collect();
    expected.sort();
    assert_eq!(co, expected, "both channels, the user included");
    assert_eq!(store.list_co_member_ids(loner.id).await.unwrap().len(), 2);
    store.delete_channel(second, None).await.unwrap();
    assert_eq!(
        store.list_co_member_ids(loner.id).await.unwrap(),
        Vec::<Uuid>::new()
    );
}

#[tokio::test]
async fn a_batch_writes_members_refuses_strangers_and_survives_one_failing_insert() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "batchowner").await;
    let stranger = user(&*store, "batchstranger").await;
    let a = channel(&*store, owner.id, "batch-a", false, &[]).await;
    let b = channel(&*store, owner.id, "batch-b", false, &[]).await;
    let results = store
        .insert_messages(&[
            message(a, &owner, "one", None),
            message(b, &owner, "two", None),
            message(a, &stranger, "not a member", None),
            message(Uuid::now_v7(), &owner, "no such channel", None),
            message(a, &owner, "three", Some("n")),
        ])
        .await
        .unwrap();
    assert!(
        matches!(results[2], Err(StoreError::NotMember)),
        "{:?}",
        results[2]
    );
    assert!(results[3].is_err(), "{:?}", results[3]);
    let ok: Vec<_> = [0, 1, 4]
        .iter()
        .map(|&i| results[i].as_ref().unwrap())
        .collect();
    assert!(ok.iter().all(|i| i.created));
    // Each committed, and ids follow the batch's order within a channel.
    for inserted in &ok {
        assert_eq!(
            store
                .fetch_message(inserted.message.id)
                .await
                .unwrap()
                .unwrap()
                .content,
            inserted.message.content
        );
    }
    assert!(ok[0].message.id < ok[2].message.id);
    let page = store
        .list_messages(a, owner.id, Anchor::After(Uuid::nil()), 10)
        .await
        .unwrap();
    let contents: Vec<&str> = page.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["one", "three"]);
    assert_eq!(
        store
            .fetch_message_by_nonce(a, owner.id, "n")
            .await
            .unwrap()
            .unwrap()
            .id,
        ok[2].message.id
    );
    assert!(
        store
            .fetch_message_by_nonce(b, owner.id, "n")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .fetch_message_by_nonce(a, stranger.id, "n")
            .await
            .unwrap()
            .is_none()
    );
    // Every written message is in the search index when its batch commits, also when the
    // batch was written message by message after its failure.
    for (text, found) in [("one", 1), ("two", 1), ("three", 1), ("not", 0)] {
        assert_eq!(searched(&*store, owner.id, text).await, found, "{text}");
    }
    // A batch with nothing that fails it as a whole: the stranger is refused alone.
    let results = store
        .insert_messages(&[
            message(a, &stranger, "still not", None),
            message(a, &owner, "four", None),
        ])
        .await
        .unwrap();
    assert!(matches!(results[0], Err(StoreError::NotMember)));
    let four = results[1].as_ref().unwrap();
    assert!(four.created && four.message.id > ok[2].message.id);
    assert_eq!(searched(&*store, owner.id, "four").await, 1);
    assert_eq!(searched(&*store, owner.id, "not").await, 0);
}

/// How many messages `reader` finds holding `text` (through the index).
async fn searched(store: &dyn Store, reader: Uuid, text: &str) -> usize {
    let scan = chai_tapri::store::SearchScan {
        reader,
        texts: vec![text.to_owned()],
        limit: 10,
        ..Default::default()
    };
    store.search_messages(&scan).await.unwrap().len()
}

#[tokio::test]
async fn concurrent_sends_of_one_nonce_write_one_message() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "noncer").await;
    let id = channel(&*store, owner.id, "nonces", false, &[]).await;
    let attempts = futures_util::future::join_all((0..8).map(|_| {
        let (store, owner) = (store.clone(), owner.clone());
        async move {
            store
                .insert_messages(&[message(id, &owner, "once", Some("same"))])
                .await
                .unwrap()
                .remove(0)
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        attempts.iter().filter(|i| i.created).count(),
        1,
        "{attempts:?}"
    );
    assert!(
        attempts
            .iter()
            .all(|i| i.message.id == attempts[0].message.id)
    );
    // Within one batch too.
    let twice = store
        .insert_messages(&[
            message(id, &owner, "again", Some("other")),
            message(id, &owner, "again", Some("other")),
        ])
        .await
        .unwrap();
    let twice: Vec<_> = twice.into_iter().map(Result::unwrap).collect();
    assert!(twice[0].created && !twice[1].created);
    assert_eq!(twice[0].message.id, twice[1].message.id);
    assert_eq!(
        store
            .list_messages(id, owner.id, Anchor::Latest, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn history_pages_by_keyset_at_both_ends_and_around_deleted_anchors() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "historian").await;
    let id = channel(&*store, owner.id, "history", false, &[]).await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(send(&*store, id, &owner, &format!("m{i}")).await);
    }
    let contents = |rows: Vec<chai_tapri::models::message::MessageRow>| {
        rows.into_iter().map(|m| m.content).collect::<Vec<_>>()
    };
    let page = |anchor, limit| {
        let store = store.clone();
        async move {
            contents(
                store
                    .list_messages(id, owner.id, anchor, limit)
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(page(Anchor::Latest, 2).await, ["m5", "m4"], "newest first");
    assert_eq!(page(Anchor::Before(ids[0]), 10).await, Vec::<String>::new());
    assert_eq!(page(Anchor::After(ids[4]), 10).await, Vec::<String>::new());
    assert_eq!(
        page(Anchor::After(ids[0]), 2).await,
        ["m2", "m3"],
        "oldest first"
    );
    assert_eq!(
        page(Anchor::Before(ids[4]), 10).await,
        ["m4", "m3", "m2", "m1"]
    );
    // A deleted anchor still marks its place.
    let deleted = store
        .delete_message(ids[2], Utc::now(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(deleted.file_keys.is_empty() && !deleted.tombstone);
    assert!(
        store
            .delete_message(ids[2], Utc::now(), None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.fetch_message(ids[2]).await.unwrap().is_none());
    assert_eq!(page(Anchor::Before(ids[2]), 10).await, ["m2", "m1"]);
    assert_eq!(page(Anchor::After(ids[2]), 10).await, ["m4", "m5"]);
    // An edit keeps the place and marks the time.
    let at = Utc::now();
    let edited = store
        .update_message(ids[1], "m2 edited", at, &Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.content, "m2 edited");
    assert_eq!(
        edited.edited_at.map(|t| t.timestamp_millis()),
        Some(at.timestamp_millis())
    );
    assert_eq!(page(Anchor::After(ids[0]), 1).await, ["m2 edited"]);
    assert!(
        store
            .update_message(ids[2], "gone", at, &Default::default())
            .await
            .unwrap()
            .is_none()
    );
    // A new message after deletions still sorts last.
    let newest = send(&*store, id, &owner, "m6").await;
    assert!(newest > ids[4]);
    assert_eq!(page(Anchor::Latest, 1).await, ["m6"]);

    // Pages come only to readers: anyone for a public channel, members for a private one,
    // nobody for a channel that does not exist.
    let stranger = user(&*store, "historystranger").await;
    let secret = channel(&*store, owner.id, "history-secret", true, &[]).await;
    send(&*store, secret, &owner, "hush").await;
    let count = |channel, reader| {
        let store = store.clone();
        async move {
            store
                .list_messages(channel, reader, Anchor::Latest, 10)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(count(id, stranger.id).await, 5, "public: anyone reads");
    assert_eq!(count(secret, owner.id).await, 1, "private: a member reads");
    assert_eq!(count(secret, stranger.id).await, 0, "private: nobody else");
    assert_eq!(count(Uuid::now_v7(), owner.id).await, 0, "no such channel");
}

#[tokio::test]
async fn deleting_a_channel_takes_its_messages_members_and_stars_along() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "doomowner").await;
    let member = user(&*store, "doommember").await;
    let id = channel(&*store, owner.id, "doomed", false, &[member.id]).await;
    let kept = channel(&*store, owner.id, "kept", false, &[]).await;
    let gone = send(&*store, id, &member, "soon gone").await;
    let stays = send(&*store, kept, &owner, "stays").await;
    store.insert_star(member.id, id, Utc::now()).await.unwrap();
    let mut members = store.delete_channel(id, None).await.unwrap().members;
    members.sort();
    let mut expected = vec![owner.id, member.id];
    expected.sort();
    assert_eq!(members, expected, "who were members, to tell them");
    assert!(store.fetch_channel(id, owner.id).await.unwrap().is_none());
    assert!(store.fetch_message(gone).await.unwrap().is_none());
    assert!(store.fetch_message(stays).await.unwrap().is_some());
    assert!(store.fetch_member(id, member.id).await.unwrap().is_none());
    assert!(
        store
            .list_starred_channels(member.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_messages(id, owner.id, Anchor::Latest, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .delete_channel(id, None)
            .await
            .unwrap()
            .members
            .is_empty()
    );
    // Writing to it now fails alone.
    let results = store
        .insert_messages(&[
            message(id, &owner, "too late", None),
            message(kept, &owner, "fine", None),
        ])
        .await
        .unwrap();
    assert!(results[0].is_err());
    assert!(results[1].as_ref().unwrap().created);
}

/// A `pending` row of an upload by `uploader`, created `age` ago.
fn file_row(uploader: Uuid, ty: FileType, age: Span) -> FileRow {
    let key = FileKey::mint(ty);
    FileRow {
        id: key.id(),
        key: key.to_string(),
        thumbnail_key: ty
            .is_image()
            .then(|| key.thumbnail(FileType::Jpeg).to_string()),
        uploader_id: uploader,
        file_name: format!("name.{}", ty.extension()),
        file_type: ty.mime().to_owned(),
        file_size: 1234,
        state: FileRow::PENDING.to_owned(),
        message_id: None,
        channel_id: None,
        created_at: Utc::now() - age,
    }
}

#[tokio::test]
async fn files_go_pending_to_ready_attach_to_one_message_and_leave_with_it() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "fileowner").await;
    let other = user(&*store, "fileother").await;
    let room = channel(&*store, owner.id, "files", false, &[other.id]).await;
    let png = file_row(owner.id, FileType::Png, Span::zero());
    let pdf = file_row(owner.id, FileType::Pdf, Span::zero());
    let theirs = file_row(other.id, FileType::Txt, Span::zero());
    for f in [&png, &pdf, &theirs] {
        store.insert_file(f).await.unwrap();
    }
    // Pending rows cannot be attached.
    let mut m = message(room, &owner, "with files", None);
    m.attachment_ids = vec![png.id];
    let results = store.insert_messages(&[m.clone()]).await.unwrap();
    assert!(matches!(results[0], Err(StoreError::Unattachable)));
    for f in [&png, &pdf, &theirs] {
        assert!(store.mark_file_ready(f.id).await.unwrap());
    }
    assert!(!store.mark_file_ready(png.id).await.unwrap(), "only once");
    let fetched = store.fetch_file(png.id).await.unwrap().unwrap();
    assert!(fetched.is_ready());
    assert_eq!(fetched.thumbnail_key, png.thumbnail_key);
    assert_eq!((fetched.message_id, fetched.channel_id), (None, None));
    // Someone else's file fails that message alone; the other message of the batch goes in.
    let mut stolen = message(room, &owner, "not mine", None);
    stolen.attachment_ids = vec![theirs.id];
    m.attachment_ids = vec![png.id, pdf.id];
    let results = store.insert_messages(&[stolen, m.clone()]).await.unwrap();
    assert!(matches!(results[0], Err(StoreError::Unattachable)));
    let sent = results[1].as_ref().unwrap().message.id;
    let attached = store.fetch_file(pdf.id).await.unwrap().unwrap();
    assert_eq!(attached.message_id, Some(sent));
    assert_eq!(
        attached.channel_id,
        Some(room),
        "the channel comes with the row"
    );
    // A file is attached to one message only.
    let mut again = message(room, &owner, "again", None);
    again.attachment_ids = vec![png.id];
    let results = store.insert_messages(&[again]).await.unwrap();
    assert!(matches!(results[0], Err(StoreError::Unattachable)));
    assert!(!store.delete_unattached_file(png.id).await.unwrap());
    let mut listed: Vec<Uuid> = store
        .list_files_by_ids(&[png.id, theirs.id, Uuid::now_v7()])
        .await
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    listed.sort();
    let mut expected = vec![png.id, theirs.id];
    expected.sort();
    assert_eq!(listed, expected);
    // Deleting the message takes the rows and gives back every key to remove.
    let mut keys = store
        .delete_message(sent, Utc::now(), None)
        .await
        .unwrap()
        .unwrap()
        .file_keys;
    keys.sort();
    let mut expected = [png.storage_keys(), pdf.storage_keys()].concat();
    expected.sort();
    assert_eq!(keys, expected);
    assert!(store.fetch_file(png.id).await.unwrap().is_none());
    // An unattached file is deleted on its own.
    assert!(store.delete_unattached_file(theirs.id).await.unwrap());
    assert!(!store.delete_unattached_file(theirs.id).await.unwrap());
}

#[tokio::test]
async fn the_sweep_takes_old_pending_rows_only_and_a_channel_takes_its_files() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "sweepowner").await;
    let room = channel(&*store, owner.id, "sweep", false, &[]).await;
    let crashed = file_row(owner.id, FileType::Pdf, Span::hours(2));
    let uploading = file_row(owner.id, FileType::Pdf, Span::minutes(1));
    let old_but_ready = file_row(owner.id, FileType::Gif, Span::hours(3));
    for f in [&crashed, &uploading, &old_but_ready] {
        store.insert_file(f).await.unwrap();
    }
    assert!(store.mark_file_ready(old_but_ready.id).await.unwrap());
    let swept = store
        .delete_stale_files(Utc::now() - Span::hours(1))
        .await
        .unwrap();
    assert_eq!(swept.iter().map(|f| f.id).collect::<Vec<_>>(), [crashed.id]);
    assert!(store.fetch_file(uploading.id).await.unwrap().is_some());
    assert!(!store.mark_file_ready(crashed.id).await.unwrap(), "gone");
    // A channel's deletion removes the rows of its messages' files and names their keys.
    let mut m = message(room, &owner, "gif", None);
    m.attachment_ids = vec![old_but_ready.id];
    store.insert_messages(&[m]).await.unwrap()[0]
        .as_ref()
        .unwrap();
    let deleted = store.delete_channel(room, None).await.unwrap();
    assert_eq!(deleted.file_keys, old_but_ready.storage_keys());
    assert!(store.fetch_file(old_but_ready.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_direct_conversation_is_one_per_set_of_people_and_listed_by_activity() {
    let (store, _dir) = open().await;
    let (a, b, c) = (
        user(&*store, "dma").await,
        user(&*store, "dmb").await,
        user(&*store, "dmc").await,
    );
    let pair = DmMembers::new(a.id, &[b.id]).unwrap();
    let (one, created) = store
        .open_dm(Uuid::now_v7(), &pair, a.id, Utc::now())
        .await
        .unwrap();
    assert!(created);
    let (again, created) = store
        .open_dm(
            Uuid::now_v7(),
            &DmMembers::new(b.id, &[a.id]).unwrap(),
            b.id,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!((again, created), (one, false));
    let trio = DmMembers::new(c.id, &[a.id, b.id]).unwrap();
    let (group, _) = store
        .open_dm(Uuid::now_v7(), &trio, c.id, Utc::now())
        .await
        .unwrap();

    // Members, private, and never a channel of any list.
    let row = store.fetch_channel(one, a.id).await.unwrap().unwrap();
    assert!(row.is_dm() && row.is_private);
    assert_eq!(row.role(), Some(Role::Member));
    assert_eq!(row.member_count, 2);
    assert_eq!(
        DmMembers::from_key(row.dm_key.as_deref().unwrap()).unwrap(),
        pair
    );
    let listed = store
        .list_channels(&ChannelQuery {
            viewer: a.id,
            search: None,
            joined_only: false,
            after_name: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(store.list_co_member_ids(c.id).await.unwrap().len(), 3);

    // By activity: the newest conversation first, until the older one gets a message.
    let order = |rows: Vec<chai_tapri::models::dm::DmRow>| -> Vec<Uuid> {
        rows.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(
        order(store.list_dms(a.id, None, 10).await.unwrap()),
        [group, one]
    );
    let sent = send(&*store, one, &b, "hi").await;
    let rows = store.list_dms(a.id, None, 10).await.unwrap();
    assert_eq!(rows[0].last_message_id, Some(sent));
    assert_eq!(order(rows), [one, group]);
    let first = store.list_dms(a.id, None, 1).await.unwrap();
    assert_eq!(
        order(
            store
                .list_dms(a.id, Some(first[0].activity()), 10)
                .await
                .unwrap()
        ),
        [group]
    );
    assert_eq!(
        order(store.list_dms(b.id, None, 10).await.unwrap()).len(),
        2
    );
    let mut ids = store.list_dm_ids(c.id).await.unwrap();
    ids.sort();
    assert_eq!(ids, [group]);

    let found = store
        .list_messages_by_ids(&[sent, Uuid::now_v7()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].id, found[0].content.as_str()), (sent, "hi"));
}

#[tokio::test]
async fn pins_are_kept_once_counted_per_channel_and_listed_newest_first() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "pinner").await;
    let room = channel(&*store, owner.id, "pinboard", false, &[]).await;
    let other = channel(&*store, owner.id, "elsewhere", false, &[]).await;
    let a = send(&*store, room, &owner, "a").await;
    let b = send(&*store, room, &owner, "b").await;
    let c = send(&*store, room, &owner, "c").await;
    let d = send(&*store, other, &owner, "d").await;
    let at = Utc::now();

    let (row, changed) = store
        .set_pin(a, Some((owner.id, at)), 2, None)
        .await
        .unwrap()
        .unwrap();
    assert!(changed);
    assert_eq!(row.pinned_by, Some(owner.id));
    let first = row.pinned_at.unwrap();
    assert!((first - at).num_milliseconds().abs() < 1);
    // Pinned again later: kept as it was.
    let (row, changed) = store
        .set_pin(a, Some((owner.id, at + Span::seconds(5))), 2, None)
        .await
        .unwrap()
        .unwrap();
    assert!(!changed);
    assert_eq!(row.pinned_at, Some(first));
    store
        .set_pin(b, Some((owner.id, at + Span::seconds(1))), 2, None)
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_pin(c, Some((owner.id, at + Span::seconds(2))), 2, None)
            .await,
        Err(StoreError::LimitReached)
    ));
    // Another channel counts its own.
    store
        .set_pin(d, Some((owner.id, at + Span::seconds(3))), 2, None)
        .await
        .unwrap();
    let list: Vec<Uuid> = store
        .list_pins(room, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(list, [b, a]);
    assert_eq!(
        store.fetch_message(c).await.unwrap().unwrap().pinned_at,
        None
    );

    let (row, changed) = store.set_pin(a, None, 2, None).await.unwrap().unwrap();
    assert!(changed && row.pinned_at.is_none() && row.pinned_by.is_none());
    assert!(!store.set_pin(a, None, 2, None).await.unwrap().unwrap().1);
    assert!(
        store
            .set_pin(Uuid::now_v7(), None, 2, None)
            .await
            .unwrap()
            .is_none()
    );
    let list: Vec<Uuid> = store
        .list_pins(room, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(list, [b]);
}

#[tokio::test]
async fn reactions_are_one_per_person_and_emoji_capped_per_message_and_summarised() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "reactor").await;
    let others = [user(&*store, "reacta").await, user(&*store, "reactb").await];
    let stranger = user(&*store, "reactstranger").await;
    let room = channel(
        &*store,
        owner.id,
        "reacts",
        false,
        &[others[0].id, others[1].id],
    )
    .await;
    let m = send(&*store, room, &owner, "m").await;
    let quiet = send(&*store, room, &owner, "quiet").await;
    let at = Utc::now();
    // Members only, even of a public channel: a stranger's reaction is refused, unwritten.
    assert_eq!(
        done(
            store
                .set_reaction(m, stranger.id, "👍", Some((at, 2)))
                .await
                .unwrap()
        ),
        None
    );

    assert_eq!(
        done(
            store
                .set_reaction(m, owner.id, "👍", Some((at, 2)))
                .await
                .unwrap()
        ),
        Some((room, true))
    );
    assert_eq!(
        done(
            store
                .set_reaction(m, owner.id, "👍", Some((at, 2)))
                .await
                .unwrap()
        ),
        Some((room, false))
    );
    for (i, u) in others.iter().enumerate() {
        let later = at + Span::seconds(i64::try_from(i).unwrap() + 1);
        store
            .set_reaction(m, u.id, "👍", Some((later, 2)))
            .await
            .unwrap();
    }
    store
        .set_reaction(m, others[0].id, ":tada:", Some((at + Span::seconds(9), 2)))
        .await
        .unwrap();
    assert!(matches!(
        store.set_reaction(m, owner.id, ":x:", Some((at, 2))).await,
        Err(StoreError::LimitReached)
    ));

    let rows = store
        .list_extras(&ExtrasOf::ids(&[m, quiet]))
        .await
        .unwrap()
        .reactions;
    let summary = chai_tapri::models::reaction::summarize(rows);
    assert!(!summary.contains_key(&quiet));
    let list = &summary[&m];
    assert_eq!(list.len(), 2, "the refused third is not there");
    assert_eq!((list[0].emoji.as_str(), list[0].count), ("👍", 3));
    assert_eq!(list[0].user_ids, [owner.id, others[0].id, others[1].id]);
    assert_eq!((list[1].emoji.as_str(), list[1].count), (":tada:", 1));
    // The answer is the message as its reactor sees it.
    let Reacted::Done {
        message, extras, ..
    } = store
        .set_reaction(m, others[0].id, ":tada:", Some((at, 2)))
        .await
        .unwrap()
    else {
        panic!("a member reacts");
    };
    assert_eq!(message.id, m);
    let mut seen = extras.own;
    seen.sort();
    assert_eq!(seen, [(m, ":tada:".to_owned()), (m, "👍".to_owned())]);
    assert_eq!(extras.reactions.len(), 4, "three 👍 and one 🎉");
    let mut own = store
        .list_own_reactions(others[0].id, &[m, quiet])
        .await
        .unwrap();
    own.sort();
    assert_eq!(own, [(m, ":tada:".to_owned()), (m, "👍".to_owned())]);
    // Read with the extras for one reader: the same, in the same hand-off.
    let mut with_extras = store
        .list_extras(&ExtrasOf::ids(&[m, quiet]).for_reader(others[0].id))
        .await
        .unwrap()
        .own;
    with_extras.sort();
    assert_eq!(with_extras, own);
    assert!(
        store
            .list_extras(&ExtrasOf::ids(&[m, quiet]))
            .await
            .unwrap()
            .own
            .is_empty(),
        "nobody's own without a reader"
    );

    assert_eq!(
        done(
            store
                .set_reaction(m, others[0].id, "👍", None)
                .await
                .unwrap()
        ),
        Some((room, true))
    );
    assert_eq!(
        done(
            store
                .set_reaction(m, others[0].id, "👍", None)
                .await
                .unwrap()
        ),
        Some((room, false))
    );
    assert_eq!(
        done(
            store
                .set_reaction(Uuid::now_v7(), owner.id, "👍", None)
                .await
                .unwrap()
        ),
        None
    );
    // A page comes with its reactions.
    let (page, extras) = store
        .list_history(room, owner.id, Anchor::Latest, 10, false)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [quiet, m]);
    let summary = chai_tapri::models::reaction::summarize(extras.reactions);
    assert_eq!(summary[&m][0].count, 2);
    assert_eq!(summary.len(), 1);
    // They go with their message.
    store.delete_message(m, Utc::now(), None).await.unwrap();
    assert!(
        store
            .list_extras(&ExtrasOf::ids(&[m]))
            .await
            .unwrap()
            .reactions
            .is_empty()
    );
}

#[tokio::test]
async fn a_message_is_read_with_its_channel_as_the_viewer_sees_it() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "inowner").await;
    let stranger = user(&*store, "instranger").await;
    let private = channel(&*store, owner.id, "in-private", true, &[]).await;
    let m = send(&*store, private, &owner, "kept close").await;

    let (row, seen) = store.fetch_message_in(m, owner.id).await.unwrap().unwrap();
    assert_eq!(row.content, "kept close");
    let seen = seen.unwrap();
    assert_eq!(
        (
            seen.id,
            seen.name.as_str(),
            seen.is_private,
            seen.member_count
        ),
        (private, "in-private", true, 1)
    );
    assert_eq!(seen.my_role.as_deref(), Some("owner"));
    assert_eq!(seen.description.as_deref(), Some("about in-private"));
    // A stranger gets the same channel without a role: the services decide what they see.
    let (_, theirs) = store
        .fetch_message_in(m, stranger.id)
        .await
        .unwrap()
        .unwrap();
    let theirs = theirs.unwrap();
    assert_eq!((theirs.id, theirs.my_role), (private, None));
    assert!(
        store
            .fetch_message_in(Uuid::now_v7(), owner.id)
            .await
            .unwrap()
            .is_none()
    );
}

/// `reader`'s unread count in thread `root` as the store reads it.
async fn thread_unread(store: &dyn Store, reader: Uuid, root: Uuid) -> i64 {
    let rows = store
        .list_thread_reads(reader, Some(&[root]))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].unread
}

/// `reader`'s unread count in `channel` as the store reads it.
async fn unread(store: &dyn Store, reader: Uuid, channel: Uuid) -> i64 {
    let rows = store
        .list_channel_reads(reader, Some(&[channel]))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].unread
}

#[tokio::test]
async fn unread_counts_are_the_live_roots_after_a_marker_whatever_a_batch_left_out() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "countowner").await;
    let reader = user(&*store, "countreader").await;
    let stranger = user(&*store, "countstranger").await;
    let ch = channel(&*store, owner.id, "counts", false, &[reader.id]).await;
    assert_eq!(unread(&*store, reader.id, ch).await, 0);
    let first = {
        let mut r = store
            .insert_messages(&[message(ch, &owner, "first", Some("dup"))])
            .await
            .unwrap();
        r.remove(0).unwrap().message.id
    };
    // One batch: a repeated nonce and a stranger's message are left out before the roots
    // that are written, and a reply is not a root.
    let mut reply = message(ch, &owner, "a reply", None);
    reply.parent_id = Some(first);
    let results = store
        .insert_messages(&[
            message(ch, &owner, "again", Some("dup")),
            message(ch, &stranger, "not a member", None),
            message(ch, &owner, "a", None),
            message(ch, &owner, "b", None),
            reply,
        ])
        .await
        .unwrap();
    assert!(!results[0].as_ref().unwrap().created);
    assert!(results[1].is_err());
    let a = results[2].as_ref().unwrap().message.id;
    let b = results[3].as_ref().unwrap().message.id;
    assert_eq!(unread(&*store, reader.id, ch).await, 3, "first, a and b");
    // The sender has read everything they sent.
    assert_eq!(unread(&*store, owner.id, ch).await, 0);

    assert_eq!(
        store
            .move_channel_marker(ch, reader.id, Some(a))
            .await
            .unwrap(),
        Some(true)
    );
    assert_eq!(unread(&*store, reader.id, ch).await, 1, "b");
    // Never back; a message of nowhere is not found.
    assert_eq!(
        store
            .move_channel_marker(ch, reader.id, Some(first))
            .await
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        store
            .move_channel_marker(ch, reader.id, Some(Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );
    let reads = store
        .list_channel_reads(reader.id, Some(&[ch]))
        .await
        .unwrap();
    assert_eq!(reads[0].last_read_id, Some(a));

    // Deleted roots leave the count, before and after the marker alike.
    store.delete_message(b, Utc::now(), None).await.unwrap();
    assert_eq!(unread(&*store, reader.id, ch).await, 0);
    let c = send(&*store, ch, &owner, "c").await;
    let d = send(&*store, ch, &owner, "d").await;
    store.delete_message(c, Utc::now(), None).await.unwrap();
    assert_eq!(unread(&*store, reader.id, ch).await, 1, "d");
    assert_eq!(
        store
            .move_channel_marker(ch, reader.id, Some(c))
            .await
            .unwrap(),
        None,
        "a deleted message is no place for a marker"
    );
    // A root deleted with replies is a tombstone: it leaves the count too.
    let mut on_d = message(ch, &reader, "on d", None);
    on_d.parent_id = Some(d);
    store.insert_messages(&[on_d]).await.unwrap();
    store.delete_message(d, Utc::now(), None).await.unwrap();
    assert_eq!(unread(&*store, reader.id, ch).await, 0);
    let e = send(&*store, ch, &owner, "e").await;
    assert_eq!(unread(&*store, reader.id, ch).await, 1);
    // Mark all read: the newest.
    assert_eq!(
        store
            .move_channel_marker(ch, reader.id, None)
            .await
            .unwrap(),
        Some(true)
    );
    let reads = store
        .list_channel_reads(reader.id, Some(&[ch]))
        .await
        .unwrap();
    assert_eq!((reads[0].last_read_id, reads[0].unread), (Some(e), 0));

    // A newcomer starts at the newest message.
    store
        .insert_member(ch, stranger.id, false, Utc::now(), None)
        .await
        .unwrap();
    let reads = store.list_channel_reads(stranger.id, None).await.unwrap();
    assert_eq!((reads[0].last_read_id, reads[0].unread), (Some(e), 0));
}

#[tokio::test]
async fn a_thread_counts_the_replies_after_its_marker_and_replying_reads_it() {
    let (store, _dir) = open().await;
    let owner = user(&*store, "threadowner").await;
    let reader = user(&*store, "threadreader").await;
    let ch = channel(&*store, owner.id, "thread-counts", false, &[reader.id]).await;
    let root = send(&*store, ch, &owner, "root").await;
    let reply = |who: &UserRow, text: &str| {
        let mut m = message(ch, who, text, None);
        m.parent_id = Some(root);
        m
    };
    let ids: Vec<Uuid> = store
        .insert_messages(&[reply(&owner, "one"), reply(&owner, "two")])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().message.id)
        .collect();
    // No marker: every reply counts.
    assert_eq!(thread_unread(&*store, reader.id, root).await, 2);
    assert_eq!(
        store
            .move_thread_marker(root, ch, reader.id, Some(ids[0]))
            .await
            .unwrap(),
        Some(true)
    );
    assert_eq!(thread_unread(&*store, reader.id, root).await, 1);
    // A message of another thread, or of none, is not in this one.
    let other = send(&*store, ch, &owner, "other").await;
    assert_eq!(
        store
            .move_thread_marker(root, ch, reader.id, Some(other))
            .await
            .unwrap(),
        None
    );
    // Replying reads the thread; only followed threads are listed without roots.
    store
        .insert_messages(&[reply(&reader, "mine")])
        .await
        .unwrap();
    assert_eq!(thread_unread(&*store, reader.id, root).await, 0);
    assert!(
        store
            .list_thread_reads(reader.id, None)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .set_follow(reader.id, root, ch, true, false, Utc::now())
        .await
        .unwrap();
    store
        .insert_messages(&[reply(&owner, "three")])
        .await
        .unwrap();
    let followed = store.list_thread_reads(reader.id, None).await.unwrap();
    assert_eq!((followed[0].id, followed[0].unread), (root, 1));
    // Replies never count in the channel.
    assert_eq!(
        unread(&*store, reader.id, ch).await,
        2,
        "the root and `other`"
    );
}

/// The kinds of the entries `query` lists, newest first.
async fn audited(store: &dyn Store, query: &AuditQuery) -> Vec<String> {
    store
        .list_audit(query)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.action)
        .collect()
}

#[tokio::test]
async fn audit_entries_commit_with_their_change_filter_page_and_expire() {
    let (store, _dir) = open().await;
    let store = store.as_ref();
    let (owner, member) = (user(store, "owner").await, user(store, "member").await);
    let by = Actor::now(Some(owner.id), Some("198.51.100.4".parse().unwrap()));
    let id = Uuid::now_v7();
    let new = NewChannel {
        id,
        name: ChannelName::parse("audited").unwrap(),
        description: None,
        is_private: false,
        created_by: owner.id,
        created_at: Utc::now(),
    };
    store
        .insert_channel(&new, &[member.id], Some(&by))
        .await
        .unwrap();
    let taken = channel(store, owner.id, "taken", false, &[]).await;
    // A change that fails leaves no entry; one that changes nothing records nothing.
    assert!(matches!(
        store
            .update_channel(id, Some("taken"), None, Utc::now(), Some(&by))
            .await,
        Err(StoreError::Conflict)
    ));
    store
        .update_channel(id, Some("audited"), None, Utc::now(), Some(&by))
        .await
        .unwrap();
    store
        .update_channel(
            id,
            Some("renamed"),
            Some(Some("ops")),
            Utc::now(),
            Some(&by),
        )
        .await
        .unwrap();
    assert!(
        store
            .upsert_member(id, member.id, Role::Admin, Utc::now(), Some(&by))
            .await
            .is_ok()
    );
    assert!(
        store
            .upsert_member(id, member.id, Role::Admin, Utc::now(), Some(&by))
            .await
            .is_ok()
    );
    let sent = send(store, id, &member, "theirs").await;
    store
        .set_pin(sent, Some((owner.id, Utc::now())), 100, Some(&by))
        .await
        .unwrap();
    store
        .set_pin(sent, Some((owner.id, Utc::now())), 100, Some(&by))
        .await
        .unwrap();
    store
        .delete_message(sent, Utc::now(), Some(&by))
        .await
        .unwrap();
    let own = send(store, id, &owner, "mine").await;
    store
        .delete_message(own, Utc::now(), Some(&by))
        .await
        .unwrap();
    store.delete_member(id, member.id, Some(&by)).await.unwrap();
    store
        .insert_revocation(Uuid::now_v7(), 2_000, Some(&by))
        .await
        .unwrap();
    store.delete_channel(id, Some(&by)).await.unwrap();
    // Written without an actor: not audited.
    store.delete_channel(taken, None).await.unwrap();

    let everything = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(
        audited(store, &everything).await,
        [
            "channel.deleted",
            "auth.logout",
            "member.removed",
            "message.deleted",
            "message.pinned",
            "member.role_changed",
            "channel.updated",
            "channel.created",
        ]
    );
    let rows = store.list_audit(&everything).await.unwrap();
    let updated = rows.iter().find(|r| r.action == "channel.updated").unwrap();
    let details: serde_json::Value =
        serde_json::from_str(updated.details.as_deref().unwrap()).unwrap();
    assert_eq!(
        details,
        serde_json::json!({
            "name": {"from": "audited", "to": "renamed"},
            "description": {"from": null, "to": "ops"},
        })
    );
    assert_eq!(updated.ip.as_deref(), Some("198.51.100.4"));
    assert_eq!(updated.actor_id, Some(owner.id));
    let deleted = rows.iter().find(|r| r.action == "message.deleted").unwrap();
    assert_eq!(
        (deleted.message_id, deleted.target_user_id),
        (Some(sent), Some(member.id))
    );
    // The channel is gone; its entries are not.
    assert!(store.fetch_channel(id, owner.id).await.unwrap().is_none());
    let of_channel = AuditQuery {
        channel: Some(id),
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(audited(store, &of_channel).await.len(), 7);

    // Filters combine; pages continue after the last entry read.
    let removals = AuditQuery {
        channel: Some(id),
        actor: Some(owner.id),
        action: Some(Action::MemberRemoved),
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(audited(store, &removals).await, ["member.removed"]);
    let first = store
        .list_audit(&AuditQuery {
            limit: 3,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let rest = AuditQuery {
        before: Some(first[2].id),
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(audited(store, &rest).await.len(), 5);
    let strangers = AuditQuery {
        actor: Some(member.id),
        limit: 100,
        ..AuditQuery::default()
    };
    assert!(audited(store, &strangers).await.is_empty());

    // A login names no change; retention deletes what is older than its limit only.
    let mut old = NewAudit::login(&Actor::now(Some(member.id), None));
    old.at = Utc::now() - Span::days(400);
    old.id = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(old.at.timestamp()).unwrap(),
        0,
    ));
    store.insert_audit(&old).await.unwrap();
    store
        .insert_audit(&NewAudit::login_failed(&Actor::now(None, None), "nobody"))
        .await
        .unwrap();
    assert_eq!(audited(store, &everything).await.len(), 10);
    assert_eq!(
        store
            .delete_audit_before(Utc::now() - Span::days(365))
            .await
            .unwrap(),
        1
    );
    let left = audited(store, &everything).await;
    assert_eq!(left.len(), 9);
    assert_eq!(left[0], "auth.login_failed");
}

#[tokio::test]
async fn two_deletes_of_one_thread_root_tombstone_it_once_and_record_it_once() {
    let (store, _dir) = open().await;
    let store = store.as_ref();
    let (owner, member) = (user(store, "owner").await, user(store, "member").await);
    let ch = channel(store, owner.id, "moderated", false, &[member.id]).await;
    let root = send(store, ch, &member, "root").await;
    let mut reply = message(ch, &owner, "reply", None);
    reply.parent_id = Some(root);
    store.insert_messages(&[reply]).await.unwrap();
    let by = Actor::now(Some(owner.id), None);

    let (first, second) = tokio::join!(
        store.delete_message(root, Utc::now(), Some(&by)),
        store.delete_message(root, Utc::now(), Some(&by)),
    );
    let done: Vec<_> = [first.unwrap(), second.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        done.len(),
        1,
        "one delete tombstones, the other finds a tombstone"
    );
    assert!(done[0].tombstone);
    assert!(
        store
            .delete_message(root, Utc::now(), Some(&by))
            .await
            .unwrap()
            .is_none()
    );
    let entries = AuditQuery {
        channel: Some(ch),
        action: Some(Action::MessageDeleted),
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(audited(store, &entries).await, ["message.deleted"]);
}
