//! The SQL both databases share, and the macro that implements [`super::Store`] with it.
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` placeholders, `RETURNING`,
//! `ON CONFLICT`, `LIKE … ESCAPE`), so one text serves both; what differs between them —
//! connection setup, pragmas, migrations, column types — lives in `sqlite.rs` and
//! `postgres.rs`. A statement that must differ gets a method of its own in each file.
//!
//! Why one macro rather than a plain implementation per database: every rule of a write —
//! membership checked inside the insert, ids minted in commit order, ownership hand-over —
//! is written once, so a change cannot reach one database and miss the other. The macro
//! body is ordinary Rust over `$store`'s pool; what a newcomer edits is a SQL constant or
//! one method body, and `tests/api/store.rs` calls every method on both databases, so a
//! statement one of them rejects, or answers differently, fails there.

use std::sync::LazyLock;

use uuid::Uuid;

use crate::models::message::Anchor;

pub(super) const INSERT_USER: &str = "INSERT INTO users \
    (id, username, email, password_hash, display_name, search_name, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING *";

pub(super) const PROBE_WRITE: &str = "UPDATE health_probe SET checked_at = $1 WHERE id = 1";

pub(super) const FETCH_USER: &str = "SELECT * FROM users WHERE id = $1";

pub(super) const FETCH_USER_BY_EMAIL: &str = "SELECT * FROM users WHERE lower(email) = $1";

pub(super) const FETCH_USER_BY_USERNAME: &str =
    "SELECT * FROM users WHERE lower(username) = lower($1)";

pub(super) const LIST_USERS: &str = "SELECT * FROM users \
    WHERE ($1 IS NULL OR lower(username) LIKE $1 ESCAPE '\\' OR search_name LIKE $1 ESCAPE '\\') \
      AND ($2 IS NULL OR lower(username) > $2) \
    ORDER BY lower(username) LIMIT $3";

pub(super) const UPDATE_USER_PROFILE: &str = "UPDATE users SET \
    display_name = COALESCE($2, display_name), \
    search_name = COALESCE($3, search_name), \
    avatar_url = CASE WHEN $4 THEN $5 ELSE avatar_url END, \
    status = CASE WHEN $6 THEN $7 ELSE status END, \
    updated_at = $8 \
    WHERE id = $1 RETURNING *";

/// A `lastSeen` batch with each user once, at their latest time.
pub(super) fn latest_per_user(
    seen: &[(uuid::Uuid, chrono::DateTime<chrono::Utc>)],
) -> Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>)> {
    let mut latest: std::collections::HashMap<uuid::Uuid, chrono::DateTime<chrono::Utc>> =
        std::collections::HashMap::with_capacity(seen.len());
    for (id, at) in seen {
        let entry = latest.entry(*id).or_insert(*at);
        *entry = (*entry).max(*at);
    }
    latest.into_iter().collect()
}

pub(super) const UPDATE_LAST_SEEN: &str = "UPDATE users SET last_seen = $2 WHERE id = $1";

pub(super) const INSERT_REVOCATION: &str =
    "INSERT INTO token_revocations (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";

pub(super) const LIST_REVOCATIONS: &str =
    "SELECT jti, expires_at FROM token_revocations WHERE expires_at > $1";

pub(super) const DELETE_EXPIRED_REVOCATIONS: &str =
    "DELETE FROM token_revocations WHERE expires_at <= $1";

/// A channel with the viewer's (`$1`) role and star and the member count.
const CHANNEL_SELECT: &str = "SELECT c.id, c.name, c.description, c.is_private, c.created_by, \
    c.created_at, c.updated_at, c.dm_key, \
    (SELECT COUNT(*) FROM channel_members cm WHERE cm.channel_id = c.id) AS member_count, \
    me.role AS my_role, \
    EXISTS (SELECT 1 FROM channel_stars s WHERE s.channel_id = c.id AND s.user_id = $1) AS starred \
    FROM channels c LEFT JOIN channel_members me ON me.channel_id = c.id AND me.user_id = $1 ";

pub(super) fn fetch_channel() -> String {
    format!("{CHANNEL_SELECT} WHERE c.id = $2")
}

pub(super) fn list_channels() -> String {
    format!(
        "{CHANNEL_SELECT} WHERE (c.is_private = FALSE OR me.user_id IS NOT NULL) \
         AND c.dm_key IS NULL \
         AND ($2 = FALSE OR me.user_id IS NOT NULL) \
         AND ($3 IS NULL OR c.name LIKE $3 ESCAPE '\\') \
         AND ($4 IS NULL OR c.name > $4) \
         ORDER BY c.name LIMIT $5"
    )
}

pub(super) fn list_starred_channels() -> String {
    format!(
        "{CHANNEL_SELECT} JOIN channel_stars st ON st.channel_id = c.id AND st.user_id = $1 \
         WHERE (c.is_private = FALSE OR me.user_id IS NOT NULL) AND c.dm_key IS NULL \
         ORDER BY c.name"
    )
}

pub(super) const INSERT_CHANNEL: &str = "INSERT INTO channels \
    (id, name, description, is_private, created_by, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $6)";

/// A direct conversation, unless the same set of people already has one.
pub(super) const INSERT_DM: &str = "INSERT INTO channels \
    (id, name, description, is_private, created_by, created_at, updated_at, dm_key) \
    VALUES ($1, $2, NULL, TRUE, $3, $4, $4, $5) ON CONFLICT (dm_key) DO NOTHING";

pub(super) const FETCH_DM_BY_KEY: &str = "SELECT id FROM channels WHERE dm_key = $1";

/// A user's direct conversations, the one with the newest message (else the newest
/// conversation: ids are UUIDv7 either way) first.
pub(super) const LIST_DMS: &str = "SELECT c.id, c.dm_key, c.last_message_id, c.created_at, \
    COALESCE(c.last_message_id, c.id) AS activity FROM channel_members me \
    JOIN channels c ON c.id = me.channel_id \
    WHERE me.user_id = $1 AND c.dm_key IS NOT NULL \
    AND ($2 IS NULL OR COALESCE(c.last_message_id, c.id) < $2) \
    ORDER BY activity DESC LIMIT $3";

pub(super) const LIST_DM_IDS: &str = "SELECT c.id FROM channel_members me \
    JOIN channels c ON c.id = me.channel_id WHERE me.user_id = $1 AND c.dm_key IS NOT NULL";

/// A new member has read everything already there: their marker starts at the channel's
/// newest message.
pub(super) const INSERT_MEMBER: &str = "INSERT INTO channel_members \
    (channel_id, user_id, role, joined_at, last_read_id, last_read_seq) \
    SELECT $1, $2, $3, $4, c.last_message_id, c.last_root_seq FROM channels c WHERE c.id = $1 \
    ON CONFLICT (channel_id, user_id) DO NOTHING";

pub(super) const UPDATE_CHANNEL: &str = "UPDATE channels SET name = COALESCE($2, name), \
    description = CASE WHEN $3 THEN $4 ELSE description END, updated_at = $5 WHERE id = $1";

pub(super) const LIST_MEMBER_IDS: &str =
    "SELECT user_id FROM channel_members WHERE channel_id = $1";

pub(super) const DELETE_CHANNEL: &str = "DELETE FROM channels WHERE id = $1";

pub(super) const FETCH_MEMBER: &str =
    "SELECT user_id, role, joined_at FROM channel_members WHERE channel_id = $1 AND user_id = $2";

pub(super) const HAS_OWNER: &str =
    "SELECT user_id FROM channel_members WHERE channel_id = $1 AND role = 'owner'";

pub(super) const UPDATE_MEMBER_ROLE: &str =
    "UPDATE channel_members SET role = $3 WHERE channel_id = $1 AND user_id = $2";

pub(super) const NEXT_OWNER: &str = "SELECT user_id FROM channel_members \
    WHERE channel_id = $1 AND user_id <> $2 \
    ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1";

pub(super) const DELETE_MEMBER: &str =
    "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2";

pub(super) const LIST_MEMBERS: &str = "SELECT user_id, role, joined_at FROM channel_members \
    WHERE channel_id = $1 AND ($2 IS NULL OR joined_at > $2 OR (joined_at = $2 AND user_id > $3)) \
    ORDER BY joined_at, user_id LIMIT $4";

pub(super) const LIST_CO_MEMBER_IDS: &str = "SELECT DISTINCT other.user_id FROM channel_members mine \
    JOIN channel_members other ON other.channel_id = mine.channel_id WHERE mine.user_id = $1";

pub(super) const INSERT_STAR: &str = "INSERT INTO channel_stars (user_id, channel_id, created_at) \
    VALUES ($1, $2, $3) ON CONFLICT (user_id, channel_id) DO NOTHING";

pub(super) const DELETE_STAR: &str =
    "DELETE FROM channel_stars WHERE user_id = $1 AND channel_id = $2";

/// `n` numbered parameters from `$first`, comma-separated: the list of an `IN (…)`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A message's columns with its sender's public profile (`m`: the message, `u`: the
/// sender), in the order of the row mappers.
macro_rules! message_columns {
    () => {
        "m.id, m.channel_id, m.sender_id, m.content, m.attachments, \
         m.parent_id, m.nonce, m.edited_at, m.created_at, u.username AS sender_username, \
         u.display_name AS sender_display_name, u.avatar_url AS sender_avatar_url, \
         m.pinned_at, m.pinned_by, m.deleted_at"
    };
}

/// A message with its sender's public profile.
const MESSAGE_SELECT: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages m JOIN users u ON u.id = m.sender_id "
);

/// SQLite: indexes the messages written in this transaction (`search_pending`, see
/// `0013_search`) in one statement, then empties the queue. Run before every commit of
/// new messages.
pub(super) const INDEX_PENDING: [&str; 2] = [
    // `CROSS JOIN` keeps the queue the outer loop: the planner, knowing no sizes, would
    // rather walk every document.
    // `İ` as `i`, as the matching rule reads it (FTS5 does not fold it; see `0013_search`).
    "INSERT INTO search_index (rowid, text) SELECT d.id, replace(m.content, 'İ', 'i') \
     FROM search_pending p \
     CROSS JOIN search_docs d ON d.id = p.doc_id CROSS JOIN messages m ON m.id = d.message_id",
    "DELETE FROM search_pending",
];

/// A value bound to a search's statement ([`search_candidates`]).
#[derive(Debug, Clone)]
pub(super) enum SearchArg {
    /// An id.
    Id(Uuid),
    /// A text.
    Text(String),
    /// A number.
    Int(i64),
}

/// Terms handed to the index at most: the rest are judged by the server alone.
const SEARCH_INDEX_TERMS: usize = 8;

/// The statement that reads a search's candidates, newest first, with its arguments in
/// order: live messages the reader may read (public channels, and those they are a member
/// of now), through the filters, containing every text of `scan.texts` as the index sees
/// it. Each row is the message's columns, its channel's name, whether that is a DM, and on
/// SQLite the candidate's key (on PostgreSQL the key is the message id).
///
/// SQLite reads the FTS5 trigram index (`search_index`, see `0013_search`) in its document
/// order, newest written first; without a text it walks `search_docs` the same way.
/// PostgreSQL walks the messages by id with one `ILIKE` per text, which its trigram index
/// answers when it is the cheaper way.
pub(super) fn search_candidates(
    scan: &super::SearchScan,
    sqlite: bool,
) -> (String, Vec<SearchArg>) {
    let mut args: Vec<SearchArg> = Vec::new();
    let mut arg = |value: SearchArg| {
        args.push(value);
        if sqlite {
            format!("?{}", args.len())
        } else {
            format!("${}", args.len())
        }
    };
    let texts = &scan.texts[..scan.texts.len().min(SEARCH_INDEX_TERMS)];
    let (mut sql, mut conditions, channel, key) = if sqlite {
        let from = if texts.is_empty() {
            "FROM search_docs d"
        } else {
            "FROM search_index s JOIN search_docs d ON d.id = s.rowid"
        };
        let mut conditions = Vec::new();
        if !texts.is_empty() {
            // One FTS5 query: every text as a quoted string (a substring for `trigram`).
            let query = texts
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(" AND ");
            conditions.push(format!("s.text MATCH {}", arg(SearchArg::Text(query))));
        }
        (
            format!(
                "SELECT {}, c.name, c.dm_key IS NOT NULL, d.id {from} \
                 JOIN messages m ON m.id = d.message_id \
                 JOIN users u ON u.id = m.sender_id JOIN channels c ON c.id = d.channel_id",
                message_columns!()
            ),
            conditions,
            "d.channel_id",
            if texts.is_empty() { "d.id" } else { "s.rowid" },
        )
    } else {
        let mut conditions = vec!["m.deleted_at IS NULL".to_owned()];
        for text in texts {
            // `σ` stands for either sigma (`ς` ends a word): `_` matches one character.
            let pattern = format!("%{}", super::like_prefix(text)).replace('σ', "_");
            conditions.push(format!("m.content ILIKE {}", arg(SearchArg::Text(pattern))));
        }
        (
            format!(
                "SELECT {}, c.name AS channel_name, c.dm_key IS NOT NULL AS is_dm \
                 FROM messages m JOIN users u ON u.id = m.sender_id \
                 JOIN channels c ON c.id = m.channel_id",
                message_columns!()
            ),
            conditions,
            "m.channel_id",
            "m.id",
        )
    };
    // On SQLite, a channel condition must not pick the index of search_docs by channel
    // when the scan has its own order to follow (the trigram index's, or search_docs'
    // own when every channel is in play): a unary `+` keeps it a filter. Asked for one
    // channel without a text, that index is the scan.
    let filter = if sqlite { "+" } else { "" };
    let one_channel = if sqlite && !texts.is_empty() { "+" } else { "" };
    if let Some(after) = scan.after_key {
        let after = if sqlite {
            SearchArg::Int(i64::try_from(after).unwrap_or(i64::MAX))
        } else {
            SearchArg::Id(Uuid::from_u128(after))
        };
        conditions.push(format!("{key} < {}", arg(after)));
    }
    conditions.push(format!(
        "{filter}{channel} IN (SELECT id FROM channels WHERE is_private = FALSE UNION ALL \
         SELECT channel_id FROM channel_members WHERE user_id = {})",
        arg(SearchArg::Id(scan.reader))
    ));
    if let Some(id) = scan.channel {
        conditions.push(format!(
            "{one_channel}{channel} = {}",
            arg(SearchArg::Id(id))
        ));
    }
    if let Some(name) = &scan.channel_name {
        conditions.push(format!(
            "{one_channel}{channel} IN (SELECT id FROM channels WHERE name = {} \
             AND dm_key IS NULL)",
            arg(SearchArg::Text(name.clone()))
        ));
    }
    if let Some(name) = &scan.sender {
        conditions.push(format!(
            "m.sender_id IN (SELECT id FROM users WHERE lower(username) = {})",
            arg(SearchArg::Text(name.clone()))
        ));
    }
    if let Some(id) = scan.id_before {
        conditions.push(format!("m.id < {}", arg(SearchArg::Id(id))));
    }
    if let Some(id) = scan.id_from {
        conditions.push(format!("m.id >= {}", arg(SearchArg::Id(id))));
    }
    let limit = arg(SearchArg::Int(i64::from(scan.limit)));
    sql.push_str(" WHERE ");
    sql.push_str(&conditions.join(" AND "));
    sql.push_str(&format!(" ORDER BY {key} DESC LIMIT {limit}"));
    (sql, args)
}

pub(super) fn fetch_message() -> String {
    format!("{MESSAGE_SELECT} WHERE m.id = $1")
}

pub(super) fn messages_by_ids(n: usize) -> String {
    format!("{MESSAGE_SELECT} WHERE m.id IN ({})", placeholders(1, n))
}

pub(super) fn fetch_message_by_nonce() -> String {
    format!("{MESSAGE_SELECT} WHERE m.channel_id = $1 AND m.sender_id = $2 AND m.nonce = $3")
}

/// A page's rows only when `$2` may read the channel (public, or a member): the check
/// rides in the page's own query, one round trip instead of two. (It names only `$1` and
/// `$2`, so both databases run it once per query, not per row.)
const READABLE_BY: &str = "m.channel_id = $1 AND EXISTS (SELECT 1 FROM channels c \
    WHERE c.id = $1 AND (c.is_private = FALSE OR EXISTS (SELECT 1 FROM channel_members cm \
    WHERE cm.channel_id = $1 AND cm.user_id = $2)))";

/// The statement of a history page and the id it starts after or before, if any. Its
/// parameters: `$1` channel, `$2` reader, then the id (when there is one), then the limit.
/// A collapsed page leaves replies out (docs/api.md, "Threads").
pub(super) fn page_query(anchor: Anchor, collapsed: bool) -> (&'static str, Option<Uuid>) {
    fn page(collapsed: bool, rest: &str) -> String {
        let roots = if collapsed {
            " AND m.parent_id IS NULL"
        } else {
            ""
        };
        format!("{MESSAGE_SELECT} WHERE {READABLE_BY}{roots} {rest}")
    }
    const LATEST: &str = "ORDER BY m.id DESC LIMIT $3";
    const BEFORE: &str = "AND m.id < $3 ORDER BY m.id DESC LIMIT $4";
    const AFTER: &str = "AND m.id > $3 ORDER BY m.id ASC LIMIT $4";
    static PAGES: LazyLock<[[String; 3]; 2]> = LazyLock::new(|| {
        [false, true].map(|collapsed| [LATEST, BEFORE, AFTER].map(|rest| page(collapsed, rest)))
    });
    let pages = &PAGES[usize::from(collapsed)];
    match anchor {
        Anchor::Latest => (pages[0].as_str(), None),
        Anchor::Before(id) => (pages[1].as_str(), Some(id)),
        Anchor::After(id) => (pages[2].as_str(), Some(id)),
    }
}

/// A thread's replies after `$2` (the root's id to start), oldest first, at most `$3`.
pub(super) fn thread_query() -> &'static str {
    static THREAD: LazyLock<String> = LazyLock::new(|| {
        format!("{MESSAGE_SELECT} WHERE m.parent_id = $1 AND m.id > $2 ORDER BY m.id ASC LIMIT $3")
    });
    THREAD.as_str()
}

/// Whether any message among `$1…` has a reply (a probe of `messages_parent` per id that
/// stops at the first: most pages have no thread, and skip [`repliers_of`]).
pub(super) fn any_reply_to(n: usize) -> String {
    format!(
        "SELECT 1 FROM messages WHERE parent_id IN ({}) LIMIT 1",
        placeholders(1, n)
    )
}

/// The first repliers of each thread whose root is among `$1…`, with the thread's reply
/// count and newest reply time (one index range per root: `messages_parent`).
pub(super) fn repliers_of(n: usize) -> String {
    format!(
        "SELECT root_id, sender_id, n, total, last_at FROM (SELECT parent_id AS root_id, \
         sender_id, ROW_NUMBER() OVER (PARTITION BY parent_id \
         ORDER BY MIN(created_at), sender_id) AS n, \
         CAST(SUM(COUNT(*)) OVER (PARTITION BY parent_id) AS BIGINT) AS total, \
         MAX(MAX(created_at)) OVER (PARTITION BY parent_id) AS last_at \
         FROM messages WHERE parent_id IN ({}) GROUP BY parent_id, sender_id) t WHERE n <= {}",
        placeholders(1, n),
        crate::models::thread::SHOWN_PARTICIPANTS
    )
}

/// The mentions of messages `$1…`.
pub(super) fn mentions_of(n: usize) -> String {
    format!(
        "SELECT message_id, n, user_id FROM message_mentions WHERE message_id IN ({})",
        placeholders(1, n)
    )
}

/// Records one mention of message `$2` in channel `$5`: place `$3`, user `$4` (none for
/// a channel-wide one).
pub(super) const INSERT_MENTION: &str = "INSERT INTO message_mentions \
    (id, message_id, n, user_id, channel_id) VALUES ($1, $2, $3, $4, $5)";

pub(super) const DELETE_MENTIONS: &str = "DELETE FROM message_mentions WHERE message_id = $1";

/// The members of channel `$1` among lower-cased usernames `$2…`: `(id, lower(username))`.
pub(super) fn members_named(n: usize) -> String {
    format!(
        "SELECT u.id, lower(u.username) FROM users u JOIN channel_members cm \
         ON cm.user_id = u.id AND cm.channel_id = $1 WHERE lower(u.username) IN ({})",
        placeholders(2, n)
    )
}

pub(super) const MEMBER_IDS: &str = "SELECT user_id FROM channel_members WHERE channel_id = $1";

/// Messages that mention `$1` — by name, or channel-wide in a channel they are a member
/// of — not their own, in channels they may read, older than `$2` (none: the newest), at
/// most `$3`, newest first.
pub(super) fn mentions_query() -> &'static str {
    static MENTIONS: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{MESSAGE_SELECT} WHERE m.id IN (SELECT message_id FROM message_mentions \
             WHERE user_id = $1 UNION SELECT mm.message_id FROM message_mentions mm \
             JOIN channel_members cm ON cm.channel_id = mm.channel_id AND cm.user_id = $1 \
             WHERE mm.user_id IS NULL) AND m.sender_id <> $1 AND ($2 IS NULL OR m.id < $2) \
             AND EXISTS (SELECT 1 FROM channels c WHERE c.id = m.channel_id \
             AND (c.is_private = FALSE OR EXISTS (SELECT 1 FROM channel_members cm2 \
             WHERE cm2.channel_id = c.id AND cm2.user_id = $1))) \
             ORDER BY m.id DESC LIMIT $3"
        )
    });
    MENTIONS.as_str()
}

/// Follows (`$4` true) or unfollows thread `$2` of channel `$3` for user `$1`.
pub(super) const SET_FOLLOW: &str = "INSERT INTO thread_follows \
    (user_id, root_id, channel_id, following, updated_at) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (user_id, root_id) DO UPDATE SET following = $4, updated_at = $5";

/// [`SET_FOLLOW`] that leaves an earlier choice alone (the root's author on a reply).
pub(super) const ADD_FOLLOW: &str = "INSERT INTO thread_follows \
    (user_id, root_id, channel_id, following, updated_at) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (user_id, root_id) DO NOTHING";

/// The threads `$1` follows in channels they may read, by newest activity (the newest
/// reply's id, or the root's when none) before `$2` (none: from the newest), at most `$3`.
pub(super) const FOLLOWED_THREADS: &str = "SELECT root_id, activity FROM (SELECT f.root_id, \
    COALESCE((SELECT r.id FROM messages r WHERE r.parent_id = f.root_id \
    ORDER BY r.id DESC LIMIT 1), f.root_id) \
    AS activity FROM thread_follows f JOIN channels c ON c.id = f.channel_id \
    WHERE f.user_id = $1 AND f.following AND (c.is_private = FALSE OR EXISTS (SELECT 1 \
    FROM channel_members cm WHERE cm.channel_id = c.id AND cm.user_id = $1))) t \
    WHERE $2 IS NULL OR activity < $2 ORDER BY activity DESC LIMIT $3";

/// Whether message `$1` has replies.
pub(super) const HAS_REPLIES: &str = "SELECT EXISTS (SELECT 1 FROM messages WHERE parent_id = $1)";

/// Empties a deleted root that keeps its replies (a tombstone).
pub(super) const TOMBSTONE_MESSAGE: &str = "UPDATE messages SET content = '', \
    attachments = '[]', pinned_at = NULL, pinned_by = NULL, deleted_at = $2 WHERE id = $1";

pub(super) const DELETE_MESSAGE_REACTIONS: &str = "DELETE FROM reactions WHERE message_id = $1";

/// Whether channel `$1` is private, and whether `$2` is in it (SQLite, whose versions live
/// in memory).
pub(super) const CHANNEL_ACCESS: &str = "SELECT c.is_private, EXISTS (SELECT 1 \
    FROM channel_members cm WHERE cm.channel_id = $1 AND cm.user_id = $2) \
    FROM channels c WHERE c.id = $1";

/// Records a channel's newest id and root number; every page of its history is now another
/// one.
pub(super) const SET_LAST_MESSAGE: &str = "UPDATE channels SET last_message_id = $2, \
    last_root_seq = $3, history_version = history_version + 1 WHERE id = $1";

/// The sender has read the root they sent (`$1` id, `$2` its number) in channel `$3`.
pub(super) const MARK_SENT_ROOT: &str = "UPDATE channel_members \
    SET last_read_id = $1, last_read_seq = $2 WHERE channel_id = $3 AND user_id = $4 \
    AND (last_read_id IS NULL OR last_read_id < $1)";

/// [`SET_LAST_MESSAGE`] and [`MARK_SENT_ROOT`] for many senders at once, in one round trip
/// (PostgreSQL): `$4` senders (each once), `$5` the newest root each sent, `$6` its number.
pub(super) const SET_LAST_MESSAGE_MARKING: &str = "WITH marked AS (UPDATE channel_members cm \
    SET last_read_id = v.id, last_read_seq = v.seq \
    FROM unnest($4::uuid[], $5::uuid[], $6::bigint[]) AS v(user_id, id, seq) \
    WHERE cm.channel_id = $1 AND cm.user_id = v.user_id \
    AND (cm.last_read_id IS NULL OR cm.last_read_id < v.id) RETURNING 1) \
    UPDATE channels SET last_message_id = $2, last_root_seq = $3, \
    history_version = history_version + 1 WHERE id = $1";

/// User `$1` has read thread `$2` (of channel `$3`) up to reply `$4`: the marker moves
/// forward, never back.
pub(super) const MOVE_THREAD_MARKER: &str = "INSERT INTO thread_reads \
    (user_id, root_id, channel_id, last_read_id) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (user_id, root_id) DO UPDATE SET last_read_id = excluded.last_read_id \
    WHERE thread_reads.last_read_id < excluded.last_read_id";

/// [`MOVE_THREAD_MARKER`] for many `(user, root, channel, reply)` at once (PostgreSQL; each
/// `(user, root)` once).
pub(super) const MOVE_THREAD_MARKERS: &str = "INSERT INTO thread_reads \
    (user_id, root_id, channel_id, last_read_id) \
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[]) \
    ON CONFLICT (user_id, root_id) DO UPDATE SET last_read_id = excluded.last_read_id \
    WHERE thread_reads.last_read_id < excluded.last_read_id";

/// Gives written messages `$1…` their numbers `$2…` when a message of their batch was not
/// written after all (PostgreSQL).
pub(super) const RENUMBER_MESSAGES: &str = "UPDATE messages SET root_seq = v.seq \
    FROM unnest($1::uuid[], $2::bigint[]) AS v(id, seq) WHERE messages.id = v.id";

/// Message `$1` is about to go: when it is a root (not already a tombstone), its number
/// leaves the unread counts.
pub(super) const RECORD_DELETED_ROOT: &str = "INSERT INTO deleted_roots (message_id, channel_id, seq) \
    SELECT id, channel_id, root_seq FROM messages \
    WHERE id = $1 AND parent_id IS NULL AND deleted_at IS NULL \
    ON CONFLICT (message_id) DO NOTHING";

/// Moves member `$3`'s marker in channel `$2` forward to live message `$1` of it; no row
/// changes when it is not ahead of the marker (or not there).
pub(super) const MOVE_CHANNEL_MARKER: &str = "UPDATE channel_members \
    SET last_read_id = m.id, last_read_seq = m.root_seq FROM messages m \
    WHERE m.id = $1 AND m.channel_id = channel_members.channel_id AND m.deleted_at IS NULL \
    AND (channel_members.last_read_id IS NULL OR channel_members.last_read_id < $1) \
    AND channel_members.channel_id = $2 AND channel_members.user_id = $3";

/// Moves member `$2`'s marker in channel `$1` to its newest message.
pub(super) const MOVE_CHANNEL_MARKER_TO_NEWEST: &str = "UPDATE channel_members \
    SET last_read_id = c.last_message_id, last_read_seq = c.last_root_seq FROM channels c \
    WHERE c.id = $1 AND channel_members.channel_id = $1 AND channel_members.user_id = $2 \
    AND c.last_message_id IS NOT NULL \
    AND (channel_members.last_read_id IS NULL OR channel_members.last_read_id < c.last_message_id)";

/// User `$1`'s read state in their channels and DMs — in channels `$3…` only when `n` is
/// given — as [`crate::models::read::ReadRow`]s (`$2` the nil id, below every message
/// id). The unread count is arithmetic on root numbers (see `0012_read_state`): no scan of
/// the messages, however many are unread. Mentions after the marker, roots only, by name
/// or channel-wide, counted up to 1,000.
pub(super) fn channel_reads(n: Option<usize>) -> String {
    let only = n.map_or(String::new(), |n| {
        format!(" AND cm.channel_id IN ({})", placeholders(3, n))
    });
    format!(
        "SELECT cm.channel_id AS id, cm.channel_id, c.dm_key IS NOT NULL AS is_dm, \
         cm.last_read_id, \
         c.last_root_seq - cm.last_read_seq - (SELECT COUNT(*) FROM deleted_roots d \
         WHERE d.channel_id = cm.channel_id AND d.seq > cm.last_read_seq) AS unread, \
         (SELECT COUNT(*) FROM (SELECT u.message_id FROM ( \
         SELECT mm.message_id FROM message_mentions mm WHERE mm.channel_id = cm.channel_id \
         AND mm.user_id = $1 AND mm.message_id > COALESCE(cm.last_read_id, $2) \
         UNION SELECT mm.message_id FROM message_mentions mm \
         WHERE mm.channel_id = cm.channel_id AND mm.user_id IS NULL \
         AND mm.message_id > COALESCE(cm.last_read_id, $2)) u \
         JOIN messages m ON m.id = u.message_id WHERE m.parent_id IS NULL LIMIT {max}) x) \
         AS mentions, \
         COALESCE(c.last_message_id, c.id) AS activity \
         FROM channel_members cm JOIN channels c ON c.id = cm.channel_id \
         WHERE cm.user_id = $1{only}",
        max = crate::models::read::MAX_COUNT,
    )
}

/// User `$1`'s read state in threads: threads `$2…` when `n` is given (followed or not),
/// else every thread they follow in a channel they may read now. Replies after the marker
/// (the root when there is none), and those of them mentioning the user, up to 1,000
/// each; the activity is the newest reply (the root when none).
pub(super) fn thread_reads(n: Option<usize>) -> String {
    let from = match n {
        Some(n) => format!(
            "FROM messages t JOIN channels c ON c.id = t.channel_id \
             LEFT JOIN thread_reads tr ON tr.user_id = $1 AND tr.root_id = t.id \
             WHERE t.id IN ({})",
            placeholders(2, n)
        ),
        None => "FROM thread_follows f JOIN messages t ON t.id = f.root_id \
             JOIN channels c ON c.id = f.channel_id \
             LEFT JOIN thread_reads tr ON tr.user_id = $1 AND tr.root_id = f.root_id \
             WHERE f.user_id = $1 AND f.following AND (c.is_private = FALSE OR EXISTS \
             (SELECT 1 FROM channel_members cm WHERE cm.channel_id = c.id AND cm.user_id = $1))"
            .to_owned(),
    };
    format!(
        "SELECT t.id, t.channel_id, c.dm_key IS NOT NULL AS is_dm, tr.last_read_id, \
         (SELECT COUNT(*) FROM (SELECT 1 FROM messages r WHERE r.parent_id = t.id \
         AND r.id > COALESCE(tr.last_read_id, t.id) LIMIT {max}) x) AS unread, \
         (SELECT COUNT(*) FROM (SELECT DISTINCT mm.message_id FROM messages r \
         JOIN message_mentions mm ON mm.message_id = r.id WHERE r.parent_id = t.id \
         AND r.id > COALESCE(tr.last_read_id, t.id) \
         AND (mm.user_id = $1 OR mm.user_id IS NULL) LIMIT {max}) y) AS mentions, \
         COALESCE((SELECT r.id FROM messages r WHERE r.parent_id = t.id \
         ORDER BY r.id DESC LIMIT 1), t.id) AS activity {from}",
        max = crate::models::read::MAX_COUNT,
    )
}

/// Whether `$1` is a live message of channel `$2`.
pub(super) const IS_LIVE_MESSAGE_OF: &str = "SELECT EXISTS (SELECT 1 FROM messages \
    WHERE id = $1 AND channel_id = $2 AND deleted_at IS NULL)";

/// Whether `$1` is thread `$2`'s root or one of its replies (live).
pub(super) const IS_IN_THREAD: &str = "SELECT EXISTS (SELECT 1 FROM messages \
    WHERE id = $1 AND (id = $2 OR parent_id = $2) AND deleted_at IS NULL)";

/// Thread `$1`'s newest reply (none: no replies).
pub(super) const NEWEST_REPLY: &str =
    "SELECT (SELECT id FROM messages WHERE parent_id = $1 ORDER BY id DESC LIMIT 1)";

/// A message is about to be edited or deleted: its channel's pages will be other ones.
/// Returns the channel (none: no such message). It locks the channel's row before the
/// message's, the order every write of a channel's rows takes.
pub(super) const BUMP_HISTORY_OF_MESSAGE: &str = "UPDATE channels \
    SET history_version = history_version + 1 \
    WHERE id = (SELECT channel_id FROM messages WHERE id = $1) RETURNING id";

/// Whether message `$1` is there (not a tombstone) and `$2` is a member of its channel.
/// (`$1` comes first: SQLite numbers parameters in the order they first appear.)
pub(super) const MAY_REACT: &str = "SELECT EXISTS (SELECT 1 FROM messages m \
    WHERE m.id = $1 AND m.deleted_at IS NULL AND EXISTS (SELECT 1 FROM channel_members cm \
    WHERE cm.channel_id = m.channel_id AND cm.user_id = $2))";

pub(super) const INSERT_REACTION: &str = "INSERT INTO reactions \
    (message_id, emoji, user_id, created_at, id) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (message_id, emoji, user_id) DO NOTHING";

pub(super) const COUNT_REACTION_EMOJI: &str =
    "SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = $1";

pub(super) const DELETE_REACTION: &str =
    "DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3";

/// The first users of each emoji on messages `$1…` (`n` their place, `total` the count).
pub(super) fn reactions_of(n: usize) -> String {
    format!(
        "SELECT message_id, emoji, user_id, created_at, n, total FROM (SELECT message_id, emoji, \
         user_id, created_at, ROW_NUMBER() OVER (PARTITION BY message_id, emoji \
         ORDER BY created_at, user_id) AS n, COUNT(*) OVER (PARTITION BY message_id, emoji) \
         AS total FROM reactions WHERE message_id IN ({})) r WHERE n <= {}",
        placeholders(1, n),
        crate::models::reaction::SHOWN_USERS
    )
}

/// The reactions of user `$1` among messages `$2…`.
pub(super) fn reactions_by(n: usize) -> String {
    format!(
        "SELECT message_id, emoji FROM reactions WHERE user_id = $1 AND message_id IN ({})",
        placeholders(2, n)
    )
}

pub(super) const COUNT_PINS: &str =
    "SELECT COUNT(*) FROM messages WHERE channel_id = $1 AND pinned_at IS NOT NULL";

pub(super) const PIN_MESSAGE: &str = "UPDATE messages SET pinned_at = $2, pinned_by = $3 \
    WHERE id = $1 AND pinned_at IS NULL";

pub(super) const UNPIN_MESSAGE: &str = "UPDATE messages SET pinned_at = NULL, pinned_by = NULL \
    WHERE id = $1 AND pinned_at IS NOT NULL";

pub(super) fn list_pins() -> String {
    format!(
        "{MESSAGE_SELECT} WHERE m.channel_id = $1 AND m.pinned_at IS NOT NULL \
         ORDER BY m.pinned_at DESC, m.id DESC LIMIT $2"
    )
}

/// A display name or an avatar changed: every page showing that sender is another one now.
pub(super) const BUMP_PROFILES: &str =
    "UPDATE cache_versions SET value = value + 1 WHERE name = 'profiles'";

/// The versions a history page is read at (PostgreSQL), when `$2` may read channel `$1`
/// (no row otherwise: the page's own read says why).
pub(super) const HISTORY_VERSION: &str = "SELECT c.history_version, c.last_message_id, \
    (SELECT value FROM cache_versions WHERE name = 'profiles') FROM channels c \
    WHERE c.id = $1 AND (c.is_private = FALSE OR EXISTS (SELECT 1 FROM channel_members cm \
    WHERE cm.channel_id = $1 AND cm.user_id = $2))";

/// Writes a message only when its sender is a member of the channel and its nonce is new
/// (so membership is checked in the same transaction as the write, at no extra round trip).
/// [`INSERT_MESSAGE_IF_MEMBER`] for many messages of channel `$2` in one statement
/// (PostgreSQL): `$1` ids, `$3` senders, `$4` contents, `$5` attachments, `$6` parents,
/// `$7` nonces, `$8` the time. Returns the ids written; a later duplicate of a nonce in
/// the same batch is the one left out.
pub(super) const INSERT_MESSAGES_IF_MEMBER: &str = "INSERT INTO messages \
    (id, channel_id, sender_id, content, attachments, parent_id, nonce, created_at, root_seq) \
    SELECT v.id, $2, v.sender_id, v.content, v.attachments, v.parent_id, v.nonce, $8, v.seq \
    FROM unnest($1::uuid[], $3::uuid[], $4::text[], $5::text[], $6::uuid[], $7::text[], \
    $9::bigint[]) \
    WITH ORDINALITY AS v(id, sender_id, content, attachments, parent_id, nonce, seq, n) \
    WHERE EXISTS (SELECT 1 FROM channel_members cm \
    WHERE cm.channel_id = $2 AND cm.user_id = v.sender_id) \
    ORDER BY v.n \
    ON CONFLICT (channel_id, sender_id, nonce) DO NOTHING RETURNING id";

pub(super) const INSERT_MESSAGE_IF_MEMBER: &str = "INSERT INTO messages \
    (id, channel_id, sender_id, content, attachments, parent_id, nonce, created_at, root_seq) \
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
    WHERE EXISTS (SELECT 1 FROM channel_members WHERE channel_id = $2 AND user_id = $3) \
    ON CONFLICT (channel_id, sender_id, nonce) DO NOTHING";

/// Keeps message `$2`'s content before an edit, with the time it was written, as version
/// `$1`.
pub(super) const KEEP_VERSION: &str = "INSERT INTO message_versions \
    (id, message_id, content, written_at) \
    SELECT $1, id, content, COALESCE(edited_at, created_at) FROM messages \
    WHERE id = $2 AND deleted_at IS NULL";

/// Up to `$3` versions of live message `$1` after version `$2` (or from the first), oldest
/// first: the stored ones, then the current content (id `NULL`), read in one statement so
/// an edit lands wholly before or after it.
pub(super) const LIST_VERSIONS: &str = "SELECT id, content, written_at FROM ( \
    SELECT id, content, written_at FROM message_versions \
    WHERE message_id = $1 AND ($2 IS NULL OR id > $2) \
    UNION ALL SELECT NULL, content, COALESCE(edited_at, created_at) FROM messages \
    WHERE id = $1 AND deleted_at IS NULL) v ORDER BY id IS NULL, id LIMIT $3";

pub(super) const DELETE_VERSIONS: &str = "DELETE FROM message_versions WHERE message_id = $1";

/// Edits a live message (never a tombstone: a delete that won the channel's row first
/// leaves nothing to edit).
pub(super) const UPDATE_MESSAGE: &str =
    "UPDATE messages SET content = $2, edited_at = $3 WHERE id = $1 AND deleted_at IS NULL";

pub(super) const DELETE_MESSAGE: &str = "DELETE FROM messages WHERE id = $1";

/// A file with the channel of the message attaching it.
const FILE_SELECT: &str = "SELECT f.id, f.key, f.thumbnail_key, f.uploader_id, f.file_name, \
    f.file_type, f.file_size, f.state, f.message_id, m.channel_id, f.created_at \
    FROM files f LEFT JOIN messages m ON m.id = f.message_id ";

pub(super) const INSERT_FILE: &str = "INSERT INTO files \
    (id, key, thumbnail_key, uploader_id, file_name, file_type, file_size, state, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)";

pub(super) const MARK_FILE_READY: &str =
    "UPDATE files SET state = 'ready' WHERE id = $1 AND state = 'pending'";

pub(super) fn fetch_file() -> String {
    format!("{FILE_SELECT} WHERE f.id = $1")
}

/// `… WHERE f.id IN ($1, …, $n)`.
pub(super) fn files_by_ids(n: usize) -> String {
    format!("{FILE_SELECT} WHERE f.id IN ({})", placeholders(1, n))
}

/// Deletes a file that no message attaches (the condition and the delete are one statement,
/// so an attach racing the delete cannot leave a message pointing at nothing).
pub(super) const DELETE_UNATTACHED_FILE: &str =
    "DELETE FROM files WHERE id = $1 AND message_id IS NULL";

pub(super) const LIST_STALE_FILES: &str = "SELECT id, key, thumbnail_key, uploader_id, file_name, file_type, file_size, state, \
    message_id, created_at FROM files WHERE state = 'pending' AND created_at < $1";

pub(super) const DELETE_STALE_FILE: &str = "DELETE FROM files WHERE id = $1 AND state = 'pending'";

/// Links a file to the message attaching it: only a ready file the sender uploaded that no
/// other message carries.
pub(super) const ATTACH_FILE: &str = "UPDATE files SET message_id = $1 \
    WHERE id = $2 AND uploader_id = $3 AND state = 'ready' AND message_id IS NULL";

pub(super) const MESSAGE_FILE_KEYS: &str =
    "SELECT key, thumbnail_key FROM files WHERE message_id = $1";

pub(super) const DELETE_MESSAGE_FILES: &str = "DELETE FROM files WHERE message_id = $1";

pub(super) const CHANNEL_FILE_KEYS: &str = "SELECT f.key, f.thumbnail_key FROM files f \
    JOIN messages m ON m.id = f.message_id WHERE m.channel_id = $1";

pub(super) const DELETE_CHANNEL_FILES: &str =
    "DELETE FROM files WHERE message_id IN (SELECT id FROM messages WHERE channel_id = $1)";

/// `SELECT * FROM users WHERE id IN ($1, …, $n) ORDER BY lower(username)`.
pub(super) fn users_by_ids(n: usize) -> String {
    format!(
        "SELECT * FROM users WHERE id IN ({}) ORDER BY lower(username)",
        placeholders(1, n)
    )
}

pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_log \
    (id, action, at, actor_id, channel_id, target_user_id, message_id, ip, details) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

pub(super) const CHANNEL_TEXT: &str = "SELECT name, description FROM channels WHERE id = $1";

pub(super) const MESSAGE_SENDER: &str =
    "SELECT sender_id FROM messages WHERE id = $1 AND deleted_at IS NULL";

pub(super) const DELETE_AUDIT_BEFORE: &str = "DELETE FROM audit_log WHERE id < $1";

/// The audit entries `query` asks for, newest first; the values bind in the order of
/// [`audit_binds`].
pub(super) fn list_audit(query: &crate::models::audit::AuditQuery) -> String {
    let mut sql = String::from(
        "SELECT id, action, at, actor_id, channel_id, target_user_id, message_id, ip, details \
         FROM audit_log",
    );
    let mut n = 0;
    let mut clauses = Vec::new();
    for (present, column) in [
        (query.channel.is_some(), "channel_id ="),
        (query.actor.is_some(), "actor_id ="),
        (query.action.is_some(), "action ="),
        (query.before.is_some(), "id <"),
    ] {
        if present {
            n += 1;
            clauses.push(format!("{column} ${n}"));
        }
    }
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    n += 1;
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${n}"));
    sql
}

/// The values of [`list_audit`]'s placeholders but the limit, in order.
pub(super) fn audit_binds(
    query: &crate::models::audit::AuditQuery,
) -> (Vec<Uuid>, Option<&'static str>, Option<Uuid>) {
    let ids: Vec<Uuid> = query.channel.into_iter().chain(query.actor).collect();
    (
        ids,
        query.action.map(crate::models::audit::Action::as_str),
        query.before,
    )
}

/// A connection from `pool`, counted as waiting (in the metrics) until it comes.
///
/// # Errors
/// The pool is closed or timed out.
pub(crate) async fn acquire<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::pool::PoolConnection<DB>, sqlx::Error> {
    let _waiting = crate::metrics::Waiting::start();
    pool.acquire().await
}

/// Implements [`super::Store`] for a store type with a `pool` field.
///
/// - `$kind`: the name reported by `kind()`;
/// - `$begin`: the statement that opens a write transaction (SQLite takes its write lock
///   at once with `BEGIN IMMEDIATE`, so a transaction that reads first never fails to
///   upgrade);
/// - `$lock_channel`: reads a channel's newest message id, locking the channel row where
///   the database has row locks (PostgreSQL `FOR UPDATE`), so membership changes and id
///   minting of one channel are serialised across nodes.
macro_rules! impl_store {
    ($store:ty, $kind:literal, $begin:literal, $lock_channel:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn kind(&self) -> &'static str {
                $kind
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&mut *queries::acquire(&self.pool).await?).await?;
                Ok(())
            }

            async fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query(queries::PROBE_WRITE).bind(now).execute(&mut *queries::acquire(&self.pool).await?).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            fn pool_stats(&self) -> $crate::store::PoolStats {
                let size = self.pool.size();
                let idle = u32::try_from(self.pool.num_idle()).unwrap_or(size);
                $crate::store::PoolStats {
                    in_use: size.saturating_sub(idle),
                    idle,
                    max: self.pool.options().get_max_connections(),
                }
            }

            async fn insert_user(&self, user: &NewUser) -> Result<UserRow, StoreError> {
                sqlx::query_as::<_, UserRow>(queries::INSERT_USER)
                    .bind(user.id)
                    .bind(user.username.as_str())
                    .bind(user.email.as_str())
                    .bind(&user.password_hash)
                    .bind(user.display_name.as_str())
                    .bind(user.display_name.as_str().to_lowercase())
                    .bind(user.created_at)
                    .fetch_one(&mut *queries::acquire(&self.pool).await?)
                    .await
                    .map_err($crate::store::conflict_on_unique)
            }

            async fn fetch_user(&self, id: Uuid) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(queries::FETCH_USER)
                    .bind(id)
                    .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn fetch_user_by_email(
                &self,
                email: &str,
            ) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(queries::FETCH_USER_BY_EMAIL)
                    .bind(email)
                    .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn fetch_user_by_username(
                &self,
                username: &str,
            ) -> Result<Option<UserRow>, StoreError> {
                Ok(
                    sqlx::query_as::<_, UserRow>(queries::FETCH_USER_BY_USERNAME)
                        .bind(username)
                        .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                        .await?,
                )
            }

            async fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(queries::LIST_USERS)
                    .bind(query.prefix.as_deref().map($crate::store::like_prefix))
                    .bind(query.after_username.as_deref())
                    .bind(i64::from(query.limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn list_users_by_ids(&self, ids: &[Uuid]) -> Result<Vec<UserRow>, StoreError> {
                let mut rows = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let sql = queries::users_by_ids(chunk.len());
                    let mut q = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    rows.extend(q.fetch_all(&mut *queries::acquire(&self.pool).await?).await?);
                }
                rows.sort_by_key(|r| r.username.to_lowercase());
                Ok(rows)
            }

            async fn update_user_profile(
                &self,
                id: Uuid,
                patch: &ProfilePatch,
                now: DateTime<Utc>,
            ) -> Result<Option<UserRow>, StoreError> {
                let name = patch.display_name.as_ref().map(|d| d.as_str().to_owned());
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let row = sqlx::query_as::<_, UserRow>(queries::UPDATE_USER_PROFILE)
                    .bind(id)
                    .bind(name.as_deref())
                    .bind(name.as_deref().map(str::to_lowercase))
                    .bind(patch.avatar_url.is_some())
                    .bind(patch.avatar_url.clone().flatten())
                    .bind(patch.status.is_some())
                    .bind(patch.status.clone().flatten())
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                // A name or an avatar shows in the pages of every channel the user wrote in.
                let shown = row.is_some() && (name.is_some() || patch.avatar_url.is_some());
                if shown {
                    sqlx::query(queries::BUMP_PROFILES).execute(&mut *tx).await?;
                }
                let committed = tx.commit().await;
                if shown {
                    self.everything_changed();
                }
                committed?;
                Ok(row)
            }

            async fn update_last_seen(
                &self,
                seen: &[(Uuid, DateTime<Utc>)],
            ) -> Result<(), StoreError> {
                // Each database has its fastest form of a batch update.
                self.write_last_seen(seen).await
            }

            async fn insert_revocation(
                &self,
                jti: Uuid,
                expires_at: i64,
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<(), StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                sqlx::query(queries::INSERT_REVOCATION)
                    .bind(jti)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                record(&mut tx, by.map($crate::models::audit::NewAudit::logout).as_ref()).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_revocations(&self, now: i64) -> Result<Vec<(Uuid, i64)>, StoreError> {
                Ok(sqlx::query_as::<_, (Uuid, i64)>(queries::LIST_REVOCATIONS)
                    .bind(now)
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn delete_expired_revocations(&self, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(queries::DELETE_EXPIRED_REVOCATIONS)
                    .bind(now)
                    .execute(&mut *queries::acquire(&self.pool).await?)
                    .await?
                    .rows_affected())
            }

            async fn insert_channel(
                &self,
                channel: &NewChannel,
                members: &[Uuid],
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<(), StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                sqlx::query(queries::INSERT_CHANNEL)
                    .bind(channel.id)
                    .bind(channel.name.as_str())
                    .bind(channel.description.as_deref())
                    .bind(channel.is_private)
                    .bind(channel.created_by)
                    .bind(channel.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::conflict_on_unique)?;
                sqlx::query(queries::INSERT_MEMBER)
                    .bind(channel.id)
                    .bind(channel.created_by)
                    .bind(Role::Owner.as_str())
                    .bind(channel.created_at)
                    .execute(&mut *tx)
                    .await?;
                // Members join in the order given, a microsecond apart, after the owner.
                let mut joined_at = channel.created_at;
                for member in members.iter().filter(|m| **m != channel.created_by) {
                    joined_at += chrono::Duration::microseconds(1);
                    sqlx::query(queries::INSERT_MEMBER)
                        .bind(channel.id)
                        .bind(*member)
                        .bind(Role::Member.as_str())
                        .bind(joined_at)
                        .execute(&mut *tx)
                        .await?;
                }
                let others = members.iter().filter(|m| **m != channel.created_by).count();
                let entry = by.map(|by| $crate::models::audit::NewAudit::channel_created(by, channel, others));
                record(&mut tx, entry.as_ref()).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn fetch_channel(
                &self,
                id: Uuid,
                viewer: Uuid,
            ) -> Result<Option<ChannelRow>, StoreError> {
                Ok(
                    sqlx::query_as::<_, ChannelRow>(sqlx::AssertSqlSafe(queries::fetch_channel()))
                        .bind(viewer)
                        .bind(id)
                        .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                        .await?,
                )
            }

            async fn list_channels(
                &self,
                query: &ChannelQuery,
            ) -> Result<Vec<ChannelRow>, StoreError> {
                self.read_channel_list(query.clone()).await
            }

            async fn list_starred_channels(
                &self,
                viewer: Uuid,
            ) -> Result<Vec<ChannelRow>, StoreError> {
                Ok(sqlx::query_as::<_, ChannelRow>(sqlx::AssertSqlSafe(
                    queries::list_starred_channels(),
                ))
                .bind(viewer)
                .fetch_all(&mut *queries::acquire(&self.pool).await?)
                .await?)
            }

            async fn update_channel(
                &self,
                id: Uuid,
                name: Option<&str>,
                description: Option<Option<&str>>,
                now: DateTime<Utc>,
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<(), StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                // The channel's row first: what it was is what the audit says it was.
                if lock_channel(&mut tx, id).await?.is_none() {
                    return Err(StoreError::Missing);
                }
                let before: (String, Option<String>) = sqlx::query_as(queries::CHANNEL_TEXT)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(queries::UPDATE_CHANNEL)
                    .bind(id)
                    .bind(name)
                    .bind(description.is_some())
                    .bind(description.flatten())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::conflict_on_unique)?;
                let entry = by.and_then(|by| {
                    $crate::models::audit::NewAudit::channel_updated(
                        by,
                        id,
                        (&before.0, before.1.as_deref()),
                        name,
                        description,
                    )
                });
                record(&mut tx, entry.as_ref()).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_channel(
                &self,
                id: Uuid,
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<ChannelDeleted, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                // The channel's row first, as every write of its rows takes them.
                lock_channel(&mut tx, id).await?;
                if let Some(by) = by {
                    let name: Option<String> = sqlx::query_scalar(queries::CHANNEL_TEXT)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(name) = name {
                        let entry = $crate::models::audit::NewAudit::channel_deleted(by, id, &name);
                        record(&mut tx, Some(&entry)).await?;
                    }
                }
                let members: Vec<Uuid> = sqlx::query_scalar(queries::LIST_MEMBER_IDS)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                let files: Vec<(String, Option<String>)> = sqlx::query_as(queries::CHANNEL_FILE_KEYS)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                sqlx::query(queries::DELETE_CHANNEL_FILES).bind(id).execute(&mut *tx).await?;
                sqlx::query(queries::DELETE_CHANNEL)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let committed = tx.commit().await;
                self.history_changed(id);
                committed?;
                Ok(ChannelDeleted { members, file_keys: flatten_keys(files) })
            }

            async fn insert_member(
                &self,
                channel: Uuid,
                user: Uuid,
                claim_ownerless: bool,
                now: DateTime<Utc>,
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<Joined, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                if lock_channel(&mut tx, channel).await?.is_none() {
                    return Err(StoreError::Missing);
                }
                let current = member_in(&mut tx, channel, user).await?;
                if let Some(member) = current {
                    return Ok(Joined::Already(Role::from_db(&member.role)));
                }
                let has_owner = sqlx::query_scalar::<_, Uuid>(queries::HAS_OWNER)
                    .bind(channel)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                let role = if claim_ownerless && !has_owner {
                    Role::Owner
                } else {
                    Role::Member
                };
                sqlx::query(queries::INSERT_MEMBER)
                    .bind(channel)
                    .bind(user)
                    .bind(role.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if role == Role::Owner {
                    let entry = by.map(|by| $crate::models::audit::NewAudit::channel_claimed(by, channel));
                    record(&mut tx, entry.as_ref()).await?;
                }
                tx.commit().await?;
                Ok(Joined::Added(role))
            }

            async fn upsert_member(
                &self,
                channel: Uuid,
                user: Uuid,
                role: Role,
                now: DateTime<Utc>,
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<bool, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                if lock_channel(&mut tx, channel).await?.is_none() {
                    return Err(StoreError::Missing);
                }
                let current = member_in(&mut tx, channel, user).await?;
                let added = current.is_none();
                let sql = if added {
                    queries::INSERT_MEMBER
                } else {
                    queries::UPDATE_MEMBER_ROLE
                };
                let mut q = sqlx::query(sql)
                    .bind(channel)
                    .bind(user)
                    .bind(role.as_str());
                if added {
                    q = q.bind(now);
                }
                q.execute(&mut *tx).await?;
                let entry = by.and_then(|by| {
                    $crate::models::audit::NewAudit::member_set(
                        by,
                        channel,
                        user,
                        current.as_ref().map(|m| Role::from_db(&m.role)),
                        role,
                    )
                });
                record(&mut tx, entry.as_ref()).await?;
                tx.commit().await?;
                Ok(added)
            }

            async fn fetch_member(
                &self,
                channel: Uuid,
                user: Uuid,
            ) -> Result<Option<MemberRow>, StoreError> {
                Ok(sqlx::query_as::<_, MemberRow>(queries::FETCH_MEMBER)
                    .bind(channel)
                    .bind(user)
                    .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn list_members(
                &self,
                channel: Uuid,
                after: Option<(DateTime<Utc>, Uuid)>,
                limit: u32,
            ) -> Result<Vec<MemberRow>, StoreError> {
                Ok(sqlx::query_as::<_, MemberRow>(queries::LIST_MEMBERS)
                    .bind(channel)
                    .bind(after.map(|(at, _)| at))
                    .bind(after.map(|(_, id)| id))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn delete_member(
                &self,
                channel: Uuid,
                user: Uuid,
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<Left, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                lock_channel(&mut tx, channel).await?;
                let current = member_in(&mut tx, channel, user).await?;
                let Some(current) = current else {
                    return Ok(Left::NotMember);
                };
                let mut new_owner = None;
                if Role::from_db(&current.role) == Role::Owner {
                    new_owner = sqlx::query_scalar::<_, Uuid>(queries::NEXT_OWNER)
                        .bind(channel)
                        .bind(user)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(next) = new_owner {
                        sqlx::query(queries::UPDATE_MEMBER_ROLE)
                            .bind(channel)
                            .bind(next)
                            .bind(Role::Owner.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                sqlx::query(queries::DELETE_MEMBER)
                    .bind(channel)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                let entry = by.map(|by| {
                    $crate::models::audit::NewAudit::member_gone(
                        by,
                        channel,
                        user,
                        Role::from_db(&current.role),
                        new_owner,
                    )
                });
                record(&mut tx, entry.as_ref()).await?;
                tx.commit().await?;
                Ok(Left::Left { new_owner })
            }

            async fn list_co_member_ids(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
                Ok(sqlx::query_scalar::<_, Uuid>(queries::LIST_CO_MEMBER_IDS)
                    .bind(user)
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn insert_star(
                &self,
                user: Uuid,
                channel: Uuid,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(queries::INSERT_STAR)
                    .bind(user)
                    .bind(channel)
                    .bind(now)
                    .execute(&mut *queries::acquire(&self.pool).await?)
                    .await?;
                Ok(())
            }

            async fn delete_star(&self, user: Uuid, channel: Uuid) -> Result<(), StoreError> {
                sqlx::query(queries::DELETE_STAR)
                    .bind(user)
                    .bind(channel)
                    .execute(&mut *queries::acquire(&self.pool).await?)
                    .await?;
                Ok(())
            }

            async fn open_dm(
                &self,
                id: Uuid,
                members: &$crate::models::dm::DmMembers,
                opener: Uuid,
                now: DateTime<Utc>,
            ) -> Result<(Uuid, bool), StoreError> {
                let key = members.key();
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let inserted = sqlx::query(queries::INSERT_DM)
                    .bind(id)
                    .bind($crate::models::dm::stored_name(id))
                    .bind(opener)
                    .bind(now)
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if !inserted {
                    // Opened before, or by a concurrent open that committed first (the
                    // unique index waited for it).
                    tx.rollback().await?;
                    let existing = sqlx::query_scalar::<_, Uuid>(queries::FETCH_DM_BY_KEY)
                        .bind(&key)
                        .fetch_optional(&mut *conn)
                        .await?
                        .ok_or(StoreError::Missing)?;
                    return Ok((existing, false));
                }
                for member in members.ids() {
                    sqlx::query(queries::INSERT_MEMBER)
                        .bind(id)
                        .bind(*member)
                        .bind(Role::Member.as_str())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok((id, true))
            }

            async fn list_dms(
                &self,
                user: Uuid,
                before: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<$crate::models::dm::DmRow>, StoreError> {
                Ok(sqlx::query_as::<_, $crate::models::dm::DmRow>(queries::LIST_DMS)
                    .bind(user)
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn list_dm_ids(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
                Ok(sqlx::query_scalar::<_, Uuid>(queries::LIST_DM_IDS)
                    .bind(user)
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn insert_messages(
                &self,
                batch: &[NewMessage],
            ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
                // The common case is one transaction without savepoints, in each
                // database's fastest form. Any error rolls the whole attempt back, and the
                // batch is written again message by message behind savepoints, so that a
                // failing message fails alone.
                let written = match self.write_batch(batch).await {
                    Ok(inserted) => Ok(inserted),
                    Err(e) => {
                        tracing::debug!(error = %e, size = batch.len(), "fast batch failed; writing one by one");
                        insert_batch_careful(&self.pool, batch).await
                    }
                };
                // Whatever the outcome: a commit whose answer was lost may still have landed.
                for message in batch {
                    self.history_changed(message.channel_id);
                }
                written
            }
            async fn fetch_message(&self, id: Uuid) -> Result<Option<MessageRow>, StoreError> {
                Ok(
                    sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(queries::fetch_message()))
                        .bind(id)
                        .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                        .await?,
                )
            }

            async fn fetch_message_in(
                &self,
                id: Uuid,
                viewer: Uuid,
            ) -> Result<Option<(MessageRow, Option<ChannelRow>)>, StoreError> {
                self.read_message_in(id, viewer).await
            }

            async fn list_messages_by_ids(&self, ids: &[Uuid]) -> Result<Vec<MessageRow>, StoreError> {
                let mut rows = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let sql = queries::messages_by_ids(chunk.len());
                    let mut q = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    rows.extend(q.fetch_all(&mut *queries::acquire(&self.pool).await?).await?);
                }
                Ok(rows)
            }

            async fn fetch_message_by_nonce(
                &self,
                channel: Uuid,
                sender: Uuid,
                nonce: &str,
            ) -> Result<Option<MessageRow>, StoreError> {
                Ok(sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(
                    queries::fetch_message_by_nonce(),
                ))
                .bind(channel)
                .bind(sender)
                .bind(nonce)
                .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                .await?)
            }

            async fn list_messages(
                &self,
                channel: Uuid,
                reader: Uuid,
                anchor: Anchor,
                limit: u32,
            ) -> Result<Vec<MessageRow>, StoreError> {
                self.list_page(channel, reader, anchor, limit, false).await
            }

            async fn list_history(
                &self,
                channel: Uuid,
                reader: Uuid,
                anchor: Anchor,
                limit: u32,
                collapsed: bool,
            ) -> Result<(Vec<MessageRow>, $crate::store::Extras), StoreError> {
                self.list_page_extras(channel, reader, anchor, limit, collapsed).await
            }

            async fn list_thread(
                &self,
                root: Uuid,
                after: Uuid,
                limit: u32,
            ) -> Result<Vec<MessageRow>, StoreError> {
                Ok(sqlx::query_as::<_, MessageRow>(queries::thread_query())
                    .bind(root)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn history_version(
                &self,
                channel: Uuid,
                reader: Uuid,
            ) -> Result<Option<$crate::store::HistoryVersion>, StoreError> {
                self.read_history_version(channel, reader).await
            }

            async fn update_message(
                &self,
                id: Uuid,
                content: &str,
                at: DateTime<Utc>,
                mentions: &$crate::models::mention::Mentions,
            ) -> Result<Option<MessageRow>, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let Some(channel) = bump_history_of(&mut tx, id).await? else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                sqlx::query(queries::KEEP_VERSION)
                    .bind(Uuid::now_v7())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let edited = sqlx::query(queries::UPDATE_MESSAGE)
                    .bind(id)
                    .bind(content)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if edited == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                sqlx::query(queries::DELETE_MENTIONS).bind(id).execute(&mut *tx).await?;
                link_mentions(&mut tx, id, channel, mentions).await?;
                let committed = tx.commit().await;
                self.history_changed(channel);
                committed?;
                drop(conn);
                self.fetch_message(id).await
            }

            async fn set_pin(
                &self,
                id: Uuid,
                pin: Option<(Uuid, DateTime<Utc>)>,
                max: u32,
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<Option<(MessageRow, bool)>, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                // The channel's row first: pins of one channel are counted one at a time.
                let Some(channel) = bump_history_of(&mut tx, id).await? else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let changed = match pin {
                    Some((by, at)) => {
                        let changed = sqlx::query(queries::PIN_MESSAGE)
                            .bind(id)
                            .bind(at)
                            .bind(by)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected()
                            == 1;
                        let pinned: i64 = sqlx::query_scalar(queries::COUNT_PINS)
                            .bind(channel)
                            .fetch_one(&mut *tx)
                            .await?;
                        if changed && pinned > i64::from(max) {
                            tx.rollback().await?;
                            self.history_changed(channel);
                            return Err(StoreError::LimitReached);
                        }
                        changed
                    }
                    None => {
                        sqlx::query(queries::UNPIN_MESSAGE)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected()
                            == 1
                    }
                };
                if changed {
                    let entry = by.map(|by| {
                        $crate::models::audit::NewAudit::pin(by, channel, id, pin.is_some())
                    });
                    record(&mut tx, entry.as_ref()).await?;
                }
                let committed = tx.commit().await;
                self.history_changed(channel);
                committed?;
                drop(conn);
                Ok(self.fetch_message(id).await?.map(|row| (row, changed)))
            }

            async fn set_reaction(
                &self,
                message: Uuid,
                user: Uuid,
                emoji: &str,
                add: Option<(DateTime<Utc>, u32)>,
            ) -> Result<$crate::store::Reacted, StoreError> {
                self.write_reaction(message, user, emoji, add).await
            }

            async fn list_extras(&self, messages: &$crate::store::ExtrasOf) -> Result<$crate::store::Extras, StoreError> {
                let mut extras = $crate::store::Extras::default();
                for chunk in messages.chunks(500) {
                    let more = self.read_extras(chunk).await?;
                    extras.reactions.extend(more.reactions);
                    extras.repliers.extend(more.repliers);
                    extras.mentions.extend(more.mentions);
                    extras.own.extend(more.own);
                }
                Ok(extras)
            }

            async fn set_follow(
                &self,
                user: Uuid,
                root: Uuid,
                channel: Uuid,
                following: bool,
                keep_choice: bool,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let sql = if keep_choice { queries::ADD_FOLLOW } else { queries::SET_FOLLOW };
                sqlx::query(sql)
                    .bind(user)
                    .bind(root)
                    .bind(channel)
                    .bind(following)
                    .bind(at)
                    .execute(&mut *queries::acquire(&self.pool).await?)
                    .await?;
                Ok(())
            }

            async fn find_members_named(
                &self,
                channel: Uuid,
                usernames: &[String],
            ) -> Result<Vec<(Uuid, String)>, StoreError> {
                if usernames.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = queries::members_named(usernames.len());
                let mut q = sqlx::query_as::<_, (Uuid, String)>(sqlx::AssertSqlSafe(sql)).bind(channel);
                for name in usernames {
                    q = q.bind(name.as_str());
                }
                Ok(q.fetch_all(&mut *queries::acquire(&self.pool).await?).await?)
            }

            async fn list_member_ids(&self, channel: Uuid) -> Result<Vec<Uuid>, StoreError> {
                Ok(sqlx::query_scalar(queries::MEMBER_IDS)
                    .bind(channel)
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn list_mentions(
                &self,
                user: Uuid,
                before: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<MessageRow>, StoreError> {
                Ok(sqlx::query_as::<_, MessageRow>(queries::mentions_query())
                    .bind(user)
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn list_followed_threads(
                &self,
                user: Uuid,
                before: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
                Ok(sqlx::query_as::<_, (Uuid, Uuid)>(queries::FOLLOWED_THREADS)
                    .bind(user)
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn list_own_reactions(
                &self,
                user: Uuid,
                messages: &[Uuid],
            ) -> Result<Vec<(Uuid, String)>, StoreError> {
                let mut rows = Vec::new();
                for chunk in messages.chunks(500) {
                    let sql = queries::reactions_by(chunk.len());
                    let mut q = sqlx::query_as::<_, (Uuid, String)>(sqlx::AssertSqlSafe(sql)).bind(user);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    rows.extend(q.fetch_all(&mut *queries::acquire(&self.pool).await?).await?);
                }
                Ok(rows)
            }

            async fn search_messages(
                &self,
                scan: &$crate::store::SearchScan,
            ) -> Result<Vec<$crate::models::search::SearchRow>, StoreError> {
                self.read_search(scan.clone()).await
            }

            async fn list_versions(
                &self,
                message: Uuid,
                after: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<$crate::models::message::VersionRow>, StoreError> {
                Ok(sqlx::query_as(queries::LIST_VERSIONS)
                    .bind(message)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn list_channel_reads(
                &self,
                user: Uuid,
                channels: Option<&[Uuid]>,
            ) -> Result<Vec<$crate::models::read::ReadRow>, StoreError> {
                if channels.is_some_and(<[Uuid]>::is_empty) {
                    return Ok(Vec::new());
                }
                self.read_states(queries::channel_reads(channels.map(<[Uuid]>::len)), [user, Uuid::nil()].into_iter().chain(channels.unwrap_or_default().iter().copied()).collect()).await
            }

            async fn list_thread_reads(
                &self,
                user: Uuid,
                roots: Option<&[Uuid]>,
            ) -> Result<Vec<$crate::models::read::ReadRow>, StoreError> {
                if roots.is_some_and(<[Uuid]>::is_empty) {
                    return Ok(Vec::new());
                }
                self.read_states(queries::thread_reads(roots.map(<[Uuid]>::len)), std::iter::once(user).chain(roots.unwrap_or_default().iter().copied()).collect()).await
            }

            async fn move_channel_marker(
                &self,
                channel: Uuid,
                user: Uuid,
                to: Option<Uuid>,
            ) -> Result<Option<bool>, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let moved = match to {
                    Some(message) => {
                        let moved = sqlx::query(queries::MOVE_CHANNEL_MARKER)
                            .bind(message)
                            .bind(channel)
                            .bind(user)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected()
                            > 0;
                        // Not moved: behind the marker, or not a live message of it.
                        if !moved
                            && !sqlx::query_scalar::<_, bool>(queries::IS_LIVE_MESSAGE_OF)
                                .bind(message)
                                .bind(channel)
                                .fetch_one(&mut *conn)
                                .await?
                        {
                            return Ok(None);
                        }
                        moved
                    }
                    None => {
                        sqlx::query(queries::MOVE_CHANNEL_MARKER_TO_NEWEST)
                            .bind(channel)
                            .bind(user)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected()
                            > 0
                    }
                };
                Ok(Some(moved))
            }

            async fn move_thread_marker(
                &self,
                root: Uuid,
                channel: Uuid,
                user: Uuid,
                to: Option<Uuid>,
            ) -> Result<Option<bool>, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let to = match to {
                    Some(message) => {
                        let there: bool = sqlx::query_scalar(queries::IS_IN_THREAD)
                            .bind(message)
                            .bind(root)
                            .fetch_one(&mut *conn)
                            .await?;
                        if !there {
                            return Ok(None);
                        }
                        message
                    }
                    None => sqlx::query_scalar::<_, Option<Uuid>>(queries::NEWEST_REPLY)
                        .bind(root)
                        .fetch_one(&mut *conn)
                        .await?
                        .unwrap_or(root),
                };
                let moved = sqlx::query(queries::MOVE_THREAD_MARKER)
                    .bind(user)
                    .bind(root)
                    .bind(channel)
                    .bind(to)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                    > 0;
                Ok(Some(moved))
            }

            async fn list_pins(&self, channel: Uuid, limit: u32) -> Result<Vec<MessageRow>, StoreError> {
                Ok(sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(queries::list_pins()))
                    .bind(channel)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn delete_message(
                &self,
                id: Uuid,
                at: DateTime<Utc>,
                by: Option<&$crate::models::audit::Actor>,
            ) -> Result<Option<$crate::store::Deleted>, StoreError> {
                let mut conn = queries::acquire(&self.pool).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let Some(channel) = bump_history_of(&mut tx, id).await? else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                // Read under the channel's lock taken above: of two deletes of one message,
                // the second finds it gone (or a tombstone) and changes nothing.
                let sender: Option<Uuid> = sqlx::query_scalar(queries::MESSAGE_SENDER)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(sender) = sender else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                if let Some(by) = by {
                    let entry = $crate::models::audit::NewAudit::message_deleted(by, channel, id, sender);
                    record(&mut tx, entry.as_ref()).await?;
                }
                let files: Vec<(String, Option<String>)> = sqlx::query_as(queries::MESSAGE_FILE_KEYS)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                sqlx::query(queries::DELETE_MESSAGE_FILES).bind(id).execute(&mut *tx).await?;
                // Replies commit under the channel's row, locked above: none can slip in
                // between this check and the delete.
                let tombstone: bool = sqlx::query_scalar(queries::HAS_REPLIES)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(queries::RECORD_DELETED_ROOT).bind(id).execute(&mut *tx).await?;
                if tombstone {
                    sqlx::query(queries::DELETE_MESSAGE_REACTIONS).bind(id).execute(&mut *tx).await?;
                    sqlx::query(queries::DELETE_MENTIONS).bind(id).execute(&mut *tx).await?;
                    sqlx::query(queries::DELETE_VERSIONS).bind(id).execute(&mut *tx).await?;
                    sqlx::query(queries::TOMBSTONE_MESSAGE)
                        .bind(id)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    sqlx::query(queries::DELETE_MESSAGE).bind(id).execute(&mut *tx).await?;
                }
                let committed = tx.commit().await;
                self.history_changed(channel);
                committed?;
                Ok(Some($crate::store::Deleted {
                    file_keys: flatten_keys(files),
                    tombstone,
                }))
            }

            async fn insert_file(&self, file: &FileRow) -> Result<(), StoreError> {
                sqlx::query(queries::INSERT_FILE)
                    .bind(file.id)
                    .bind(&file.key)
                    .bind(file.thumbnail_key.as_deref())
                    .bind(file.uploader_id)
                    .bind(&file.file_name)
                    .bind(&file.file_type)
                    .bind(file.file_size)
                    .bind(file.created_at)
                    .execute(&mut *queries::acquire(&self.pool).await?)
                    .await
                    .map_err($crate::store::conflict_on_unique)?;
                Ok(())
            }

            async fn mark_file_ready(&self, id: Uuid) -> Result<bool, StoreError> {
                Ok(sqlx::query(queries::MARK_FILE_READY)
                    .bind(id)
                    .execute(&mut *queries::acquire(&self.pool).await?)
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn fetch_file(&self, id: Uuid) -> Result<Option<FileRow>, StoreError> {
                Ok(sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(queries::fetch_file()))
                    .bind(id)
                    .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn list_files_by_ids(&self, ids: &[Uuid]) -> Result<Vec<FileRow>, StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = queries::files_by_ids(ids.len());
                let mut query = sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(sql));
                for id in ids {
                    query = query.bind(*id);
                }
                Ok(query.fetch_all(&mut *queries::acquire(&self.pool).await?).await?)
            }

            async fn delete_unattached_file(&self, id: Uuid) -> Result<bool, StoreError> {
                Ok(sqlx::query(queries::DELETE_UNATTACHED_FILE)
                    .bind(id)
                    .execute(&mut *queries::acquire(&self.pool).await?)
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn delete_stale_files(
                &self,
                before: DateTime<Utc>,
            ) -> Result<Vec<FileRow>, StoreError> {
                let stale: Vec<FileRow> = sqlx::query_as(queries::LIST_STALE_FILES)
                    .bind(before)
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?;
                let mut deleted = Vec::with_capacity(stale.len());
                for file in stale {
                    let gone = sqlx::query(queries::DELETE_STALE_FILE)
                        .bind(file.id)
                        .execute(&mut *queries::acquire(&self.pool).await?)
                        .await?
                        .rows_affected()
                        > 0;
                    if gone {
                        deleted.push(file);
                    }
                }
                Ok(deleted)
            }

            async fn insert_audit(
                &self,
                entry: &$crate::models::audit::NewAudit,
            ) -> Result<(), StoreError> {
                record(&mut *queries::acquire(&self.pool).await?, Some(entry)).await
            }

            async fn list_audit(
                &self,
                query: &$crate::models::audit::AuditQuery,
            ) -> Result<Vec<$crate::models::audit::AuditRow>, StoreError> {
                let sql = queries::list_audit(query);
                let (ids, action, before) = queries::audit_binds(query);
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for id in ids {
                    q = q.bind(id);
                }
                if let Some(action) = action {
                    q = q.bind(action);
                }
                if let Some(before) = before {
                    q = q.bind(before);
                }
                Ok(q.bind(i64::from(query.limit))
                    .fetch_all(&mut *queries::acquire(&self.pool).await?)
                    .await?)
            }

            async fn delete_audit_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                Ok(sqlx::query(queries::DELETE_AUDIT_BEFORE)
                    .bind($crate::models::search::first_id_at(before))
                    .execute(&mut *queries::acquire(&self.pool).await?)
                    .await?
                    .rows_affected())
            }
        }

/// Channels in a fixed order (stable: arrival order within a channel is kept), so two
        /// nodes' batches lock channel rows in the same order and never deadlock.
        fn channel_order(batch: &[NewMessage]) -> Vec<usize> {
            let mut order: Vec<usize> = (0..batch.len()).collect();
            order.sort_by_key(|&i| batch[i].channel_id);
            order
        }

        /// Why an insert wrote nothing: the nonce was seen (answer with that message) or the
        /// sender is not a member.
        async fn unwritten(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            message: &NewMessage,
        ) -> Result<Result<Inserted, StoreError>, StoreError> {
            if let Some(nonce) = &message.nonce
                && let Some(existing) = fetch_by_nonce(tx, message, nonce.as_str()).await?
            {
                return Ok(Ok(Inserted { message: existing, created: false }));
            }
            Ok(Err(StoreError::NotMember))
        }

        /// The batch in one transaction with a savepoint per message: each succeeds or
        /// fails alone.
        async fn insert_batch_careful(
            pool: &sqlx::Pool<<$store as $crate::store::HasDatabase>::Db>,
            batch: &[NewMessage],
        ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
            let mut results: Vec<Option<Result<Inserted, StoreError>>> = (0..batch.len()).map(|_| None).collect();
            let mut conn = queries::acquire(pool).await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
            for i in channel_order(batch) {
                let message = &batch[i];
                sqlx::query("SAVEPOINT send").execute(&mut *tx).await?;
                let mut outcome = insert_one(&mut tx, message).await;
                if outcome.is_err() {
                    sqlx::query("ROLLBACK TO SAVEPOINT send").execute(&mut *tx).await?;
                    // A concurrent send of the same nonce (another node) won the index:
                    // answer with its message.
                    if matches!(outcome, Err(StoreError::Conflict))
                        && let Some(nonce) = &message.nonce
                        && let Some(existing) = fetch_by_nonce(&mut tx, message, nonce.as_str()).await?
                    {
                        outcome = Ok(Inserted { message: existing, created: false });
                    }
                }
                sqlx::query("RELEASE SAVEPOINT send").execute(&mut *tx).await?;
                results[i] = Some(outcome);
            }
            for sql in <$store>::AFTER_MESSAGES {
                sqlx::query(*sql).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(results.into_iter().map(|r| r.unwrap_or(Err(StoreError::Missing))).collect())
        }

        /// Storage keys of deleted files: each original, then its thumbnail.
        fn flatten_keys(files: Vec<(String, Option<String>)>) -> Vec<String> {
            files.into_iter().flat_map(|(key, thumb)| std::iter::once(key).chain(thumb)).collect()
        }

        /// Attaches a message's files inside its write; [`StoreError::Unattachable`] when one
        /// is not the sender's, not ready, or already attached (the message is then not written).
        async fn attach_files(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            message: &NewMessage,
            id: Uuid,
        ) -> Result<(), StoreError> {
            for file in &message.attachment_ids {
                let linked = sqlx::query(queries::ATTACH_FILE)
                    .bind(id)
                    .bind(*file)
                    .bind(message.sender.id)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                if linked != 1 {
                    return Err(StoreError::Unattachable);
                }
            }
            Ok(())
        }

        /// Stores message `id`'s mentions (after removing any it had).
        async fn link_mentions(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            id: Uuid,
            channel: Uuid,
            mentions: &$crate::models::mention::Mentions,
        ) -> Result<(), StoreError> {
            for (n, user) in mentions.rows() {
                sqlx::query(queries::INSERT_MENTION)
                    .bind(Uuid::now_v7())
                    .bind(id)
                    .bind(n)
                    .bind(user)
                    .bind(channel)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(())
        }

        /// The stored row of a message just written (no query: the sender's profile came
        /// with the request).
        fn row_of(message: &NewMessage, id: Uuid, created_at: DateTime<Utc>) -> MessageRow {
            MessageRow {
                id,
                channel_id: message.channel_id,
                sender_id: message.sender.id,
                content: message.content.as_str().to_owned(),
                attachments: message.attachments.clone(),
                parent_id: message.parent_id,
                nonce: message.nonce.as_ref().map(|n| n.as_str().to_owned()),
                edited_at: None,
                created_at,
                sender_username: message.sender.username.clone(),
                sender_display_name: message.sender.display_name.clone(),
                sender_avatar_url: message.sender.avatar_url.clone(),
                pinned_at: None,
                pinned_by: None,
                deleted_at: None,
                mentions: message.mentions.user_ids.clone(),
                mentions_channel: message.mentions.channel,
            }
        }

/// Writes an audit entry, when there is one, on `conn` (a transaction's, to record
        /// its change).
        async fn record(
            conn: &mut <<$store as $crate::store::HasDatabase>::Db as sqlx::Database>::Connection,
            entry: Option<&$crate::models::audit::NewAudit>,
        ) -> Result<(), StoreError> {
            let Some(entry) = entry else { return Ok(()) };
            sqlx::query(queries::INSERT_AUDIT)
                .bind(entry.id)
                .bind(entry.action.as_str())
                .bind(entry.at)
                .bind(entry.actor_id)
                .bind(entry.channel_id)
                .bind(entry.target_user_id)
                .bind(entry.message_id)
                .bind(entry.ip.as_deref())
                .bind(entry.details_text())
                .execute(conn)
                .await?;
            Ok(())
        }

        /// A channel's newest message id, locking its row where the database has row locks;
        /// `None` when the channel does not exist.
        async fn lock_channel(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            channel: Uuid,
        ) -> Result<Option<(Option<Uuid>, i64)>, StoreError> {
            Ok(sqlx::query_as($lock_channel).bind(channel).fetch_optional(&mut **tx).await?)
        }

        /// The sender of `message`, written as `id` with number `root_seq`, has read it: the
        /// channel's marker for a root, the thread's for a reply.
        async fn mark_sent(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            message: &NewMessage,
            id: Uuid,
            root_seq: i64,
        ) -> Result<(), StoreError> {
            match message.parent_id {
                None => sqlx::query(queries::MARK_SENT_ROOT)
                    .bind(id)
                    .bind(root_seq)
                    .bind(message.channel_id)
                    .bind(message.sender.id),
                Some(root) => sqlx::query(queries::MOVE_THREAD_MARKER)
                    .bind(message.sender.id)
                    .bind(root)
                    .bind(message.channel_id)
                    .bind(id),
            }
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Moves the history version of the channel of message `id` (locking the channel's
        /// row); `None` when there is no such message.
        async fn bump_history_of(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            id: Uuid,
        ) -> Result<Option<Uuid>, StoreError> {
            Ok(sqlx::query_scalar(queries::BUMP_HISTORY_OF_MESSAGE).bind(id).fetch_optional(&mut **tx).await?)
        }

        /// The membership of `user` in `channel`, read inside the transaction.
        async fn member_in(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            channel: Uuid,
            user: Uuid,
        ) -> Result<Option<MemberRow>, StoreError> {
            Ok(sqlx::query_as(queries::FETCH_MEMBER).bind(channel).bind(user).fetch_optional(&mut **tx).await?)
        }

        /// The earlier message with the same channel, sender and nonce.
        async fn fetch_by_nonce(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            message: &NewMessage,
            nonce: &str,
        ) -> Result<Option<MessageRow>, StoreError> {
            Ok(sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(
                queries::fetch_message_by_nonce(),
            ))
            .bind(message.channel_id)
            .bind(message.sender.id)
            .bind(nonce)
            .fetch_optional(&mut **tx)
            .await?)
        }

        /// One send inside the batch transaction: nonce check, id minted after the
        /// channel's newest id (row locked where the database can), then the insert.
        async fn insert_one(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::store::HasDatabase>::Db>,
            message: &NewMessage,
        ) -> Result<Inserted, StoreError> {
            if let Some(nonce) = &message.nonce {
                if let Some(existing) = fetch_by_nonce(tx, message, nonce.as_str()).await? {
                    return Ok(Inserted {
                        message: existing,
                        created: false,
                    });
                }
            }
            let locked = lock_channel(tx, message.channel_id).await?;
            let Some((last, seq)) = locked else {
                return Err(StoreError::Missing);
            };
            let created_at = Utc::now();
            let id = $crate::models::message::mint_id(last, created_at);
            // A root takes the next number; a reply the newest root's (see 0012_read_state).
            let root_seq = seq + i64::from(message.parent_id.is_none());
            let written = sqlx::query(queries::INSERT_MESSAGE_IF_MEMBER)
                .bind(id)
                .bind(message.channel_id)
                .bind(message.sender.id)
                .bind(message.content.as_str())
                .bind(&message.attachments)
                .bind(message.parent_id)
                .bind(message.nonce.as_ref().map(|n| n.as_str()))
                .bind(created_at)
                .bind(root_seq)
                .execute(&mut **tx)
                .await
                .map_err($crate::store::conflict_on_unique)?
                .rows_affected();
            if written == 0 {
                return unwritten(tx, message).await?;
            }
            sqlx::query(queries::SET_LAST_MESSAGE)
                .bind(message.channel_id)
                .bind(id)
                .bind(root_seq)
                .execute(&mut **tx)
                .await?;
            mark_sent(tx, message, id, root_seq).await?;
            attach_files(tx, message, id).await?;
            link_mentions(tx, id, message.channel_id, &message.mentions).await?;
            Ok(Inserted { message: row_of(message, id, created_at), created: true })
        }
    };
}
