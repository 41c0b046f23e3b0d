//! PostgreSQL: the store for many nodes. A pooled connection per request; defaults for
//! durability (`synchronous_commit=on`).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use uuid::Uuid;

use super::{
    ChannelDeleted, ChannelQuery, Extras, ExtrasOf, HistoryVersion, Joined, Left, Reacted,
    StoreError, UserQuery, queries,
};
use crate::models::channel::{ChannelRow, MemberRow, NewChannel, Role};
use crate::models::file::FileRow;
use crate::models::message::{Anchor, Inserted, MessageRow, NewMessage};
use crate::models::user::{NewUser, ProfilePatch, UserRow};

/// This database's migrations, embedded at compile time (same numbering as the other's).
pub(crate) const MIGRATIONS: &[super::migrations::Embedded] = &[
    (
        1,
        "users",
        include_str!("../../migrations/postgres/0001_users.sql"),
    ),
    (
        2,
        "channels_messages",
        include_str!("../../migrations/postgres/0002_channels_messages.sql"),
    ),
    (
        3,
        "health_probe",
        include_str!("../../migrations/postgres/0003_health_probe.sql"),
    ),
    (
        4,
        "files",
        include_str!("../../migrations/postgres/0004_files.sql"),
    ),
    (
        5,
        "history_versions",
        include_str!("../../migrations/postgres/0005_history_versions.sql"),
    ),
    (
        6,
        "direct_messages",
        include_str!("../../migrations/postgres/0006_direct_messages.sql"),
    ),
    (
        7,
        "pins",
        include_str!("../../migrations/postgres/0007_pins.sql"),
    ),
    (
        8,
        "reactions",
        include_str!("../../migrations/postgres/0008_reactions.sql"),
    ),
    (
        9,
        "threads",
        include_str!("../../migrations/postgres/0009_threads.sql"),
    ),
    (
        10,
        "mentions",
        include_str!("../../migrations/postgres/0010_mentions.sql"),
    ),
    (
        11,
        "edit_history",
        include_str!("../../migrations/postgres/0011_edit_history.sql"),
    ),
    (
        12,
        "read_state",
        include_str!("../../migrations/postgres/0012_read_state.sql"),
    ),
    (
        13,
        "search",
        include_str!("../../migrations/postgres/0013_search.sql"),
    ),
    (
        14,
        "audit",
        include_str!("../../migrations/postgres/0014_audit.sql"),
    ),
];

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// One statement for the whole batch (a round trip per user was most of a reconnect
    /// storm's write time); a user listed twice keeps the later time.
    async fn write_last_seen(&self, seen: &[(Uuid, DateTime<Utc>)]) -> Result<(), StoreError> {
        let (ids, ats): (Vec<Uuid>, Vec<DateTime<Utc>>) =
            queries::latest_per_user(seen).into_iter().unzip();
        sqlx::query(
            "UPDATE users SET last_seen = v.at \
             FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) WHERE users.id = v.id",
        )
        .bind(ids)
        .bind(ats)
        .execute(&mut *queries::acquire(&self.pool).await?)
        .await?;
        Ok(())
    }

    /// Connects a pool to `url` and migrates the database.
    ///
    /// A `schema=<name>` query parameter (used by the test suite, one schema per test)
    /// creates that schema if needed and puts it first on the search path.
    ///
    /// # Errors
    /// The server cannot be reached, or a migration fails.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let (base, schema) = split_schema(url);
        let mut options = PgConnectOptions::from_str(&base)?;
        if !has_user(&base) && std::env::var_os("PGUSER").is_none() {
            // libpq would use the OS account; where that cannot be read, the
            // conventional `postgres` role is the one every installation has.
            let user = std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "postgres".to_owned());
            options = options.username(&user);
        }
        if let Some(schema) = &schema {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.clone())
                .await?;
            // Nodes started together race on CREATE SCHEMA IF NOT EXISTS (it is not atomic
            // against itself in PostgreSQL); a transaction-scoped advisory lock orders them.
            let mut tx = admin.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('chai-tapri create schema'))")
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            admin.close().await;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // A connection whose transaction could not be ended (a COMMIT or ROLLBACK that
            // failed while the disk was full or the server went away) is closed, not reused:
            // reused, every later BEGIN on it would fail until a restart.
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect_with(options)
            .await?;
        super::migrations::migrator(MIGRATIONS).run(&pool).await?;
        Ok(Self { pool })
    }
}

impl PgStore {
    /// The pool, for tools that copy whole tables (`migrate-data`).
    #[must_use]
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

/// Whether the URL names a user (`postgres://user@host/…`).
fn has_user(url: &str) -> bool {
    url.split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .is_some_and(|authority| authority.contains('@'))
}

/// Takes `schema=<name>` out of the URL's query; the name may hold `[a-z0-9_]` only.
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("schema=") {
            Some(name)
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                schema = Some(name.to_owned());
                false
            }
            _ => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

impl super::HasDatabase for PgStore {
    type Db = sqlx::Postgres;
}

impl PgStore {
    /// What every transaction that writes messages runs last: nothing (the trigram index
    /// is PostgreSQL's own).
    pub(super) const AFTER_MESSAGES: &'static [&'static str] = &[];

    /// [`super::Store::list_messages`]: one round trip.
    async fn list_page(
        &self,
        channel: Uuid,
        reader: Uuid,
        anchor: Anchor,
        limit: u32,
        collapsed: bool,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let (sql, id) = queries::page_query(anchor, collapsed);
        let mut query = sqlx::query_as::<_, MessageRow>(sql)
            .bind(channel)
            .bind(reader);
        if let Some(id) = id {
            query = query.bind(id);
        }
        Ok(query
            .bind(i64::from(limit))
            .fetch_all(&mut *queries::acquire(&self.pool).await?)
            .await?)
    }

    /// [`super::Store::set_reaction`]: the channel's row, the check, the change and, for an
    /// addition, the count of different emoji, then the answer, in one transaction.
    async fn write_reaction(
        &self,
        message: Uuid,
        user: Uuid,
        emoji: &str,
        add: Option<(DateTime<Utc>, u32)>,
    ) -> Result<Reacted, StoreError> {
        let mut conn = queries::acquire(&self.pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        // The channel's row first, as every write of a message's rows takes it.
        let allowed = bump_history_of(&mut tx, message).await?.is_some()
            && sqlx::query_scalar::<_, bool>(queries::MAY_REACT)
                .bind(message)
                .bind(user)
                .fetch_one(&mut *tx)
                .await?;
        if !allowed {
            tx.rollback().await?;
            return Ok(Reacted::Refused);
        }
        let changed = match add {
            Some((at, max)) => {
                let changed = sqlx::query(queries::INSERT_REACTION)
                    .bind(message)
                    .bind(emoji)
                    .bind(user)
                    .bind(at)
                    .bind(Uuid::now_v7())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if changed {
                    let distinct: i64 = sqlx::query_scalar(queries::COUNT_REACTION_EMOJI)
                        .bind(message)
                        .fetch_one(&mut *tx)
                        .await?;
                    if distinct > i64::from(max) {
                        tx.rollback().await?;
                        return Err(StoreError::LimitReached);
                    }
                }
                changed
            }
            None => {
                sqlx::query(queries::DELETE_REACTION)
                    .bind(message)
                    .bind(emoji)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1
            }
        };
        let row = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(queries::fetch_message()))
            .bind(message)
            .fetch_one(&mut *tx)
            .await?;
        let extras = extras_on(
            &mut tx,
            &ExtrasOf::rows(std::slice::from_ref(&row)).for_reader(user),
        )
        .await?;
        tx.commit().await?;
        Ok(Reacted::Done {
            message: Box::new(row),
            extras,
            changed,
        })
    }

    /// [`super::Store::fetch_message_in`]: two statements on one connection.
    async fn read_message_in(
        &self,
        id: Uuid,
        viewer: Uuid,
    ) -> Result<Option<(MessageRow, Option<ChannelRow>)>, StoreError> {
        let mut conn = queries::acquire(&self.pool).await?;
        let Some(message) =
            sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(queries::fetch_message()))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        else {
            return Ok(None);
        };
        let channel =
            sqlx::query_as::<_, ChannelRow>(sqlx::AssertSqlSafe(queries::fetch_channel()))
                .bind(viewer)
                .bind(message.channel_id)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(Some((message, channel)))
    }

    /// [`super::Store::list_history`]: the page, then its extras (a page holds at most
    /// 101 messages, one chunk).
    async fn list_page_extras(
        &self,
        channel: Uuid,
        reader: Uuid,
        anchor: Anchor,
        limit: u32,
        collapsed: bool,
    ) -> Result<(Vec<MessageRow>, Extras), StoreError> {
        let page = self
            .list_page(channel, reader, anchor, limit, collapsed)
            .await?;
        if page.is_empty() {
            return Ok((page, Extras::default()));
        }
        let extras = self.read_extras(ExtrasOf::rows(&page)).await?;
        Ok((page, extras))
    }

    /// [`super::Store::list_extras`] of at most 500 messages ([`extras_on`]).
    async fn read_extras(&self, messages: ExtrasOf) -> Result<Extras, StoreError> {
        if messages.messages.is_empty() {
            return Ok(Extras::default());
        }
        extras_on(&mut *queries::acquire(&self.pool).await?, &messages).await
    }
}

/// The extras of at most 500 messages: up to five statements on one connection (none for
/// what the messages cannot have).
async fn extras_on(
    conn: &mut sqlx::PgConnection,
    messages: &ExtrasOf,
) -> Result<Extras, StoreError> {
    let (all, roots, mentioning) = messages.split();
    let mut extras = Extras::default();
    if !all.is_empty() {
        extras.reactions = rows_for(conn, queries::reactions_of(all.len()), &all).await?;
    }
    if !roots.is_empty() {
        let replied: Vec<(i32,)> =
            rows_for(conn, queries::any_reply_to(roots.len()), &roots).await?;
        if !replied.is_empty() {
            extras.repliers = rows_for(conn, queries::repliers_of(roots.len()), &roots).await?;
        }
    }
    if !mentioning.is_empty() {
        extras.mentions =
            rows_for(conn, queries::mentions_of(mentioning.len()), &mentioning).await?;
    }
    if let Some(reader) = messages.reader {
        let reacted = super::reacted(&extras);
        if !reacted.is_empty() {
            let mut query = sqlx::query_as::<_, (Uuid, String)>(sqlx::AssertSqlSafe(
                queries::reactions_by(reacted.len()),
            ))
            .bind(reader);
            for id in &reacted {
                query = query.bind(*id);
            }
            extras.own = query.fetch_all(&mut *conn).await?;
        }
    }
    Ok(extras)
}

/// The rows of `sql`, whose parameters are `ids`.
async fn rows_for<T>(
    conn: &mut sqlx::PgConnection,
    sql: String,
    ids: &[Uuid],
) -> Result<Vec<T>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut query = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(conn).await?)
}

impl PgStore {
    /// [`super::Store::history_version`]: read from the database, where every node's
    /// writes move it inside their own transactions.
    async fn read_history_version(
        &self,
        channel: Uuid,
        reader: Uuid,
    ) -> Result<Option<HistoryVersion>, StoreError> {
        Ok(
            sqlx::query_as::<_, (i64, Option<Uuid>, i64)>(queries::HISTORY_VERSION)
                .bind(channel)
                .bind(reader)
                .fetch_optional(&mut *queries::acquire(&self.pool).await?)
                .await?
                .map(|(channel, newest, everywhere)| HistoryVersion {
                    channel,
                    newest,
                    everywhere,
                }),
        )
    }

    /// [`super::Store::list_channels`].
    async fn read_channel_list(
        &self,
        query: super::ChannelQuery,
    ) -> Result<Vec<ChannelRow>, StoreError> {
        Ok(
            sqlx::query_as::<_, ChannelRow>(sqlx::AssertSqlSafe(queries::list_channels()))
                .bind(query.viewer)
                .bind(query.joined_only)
                .bind(query.search_pattern())
                .bind(query.after_name.as_deref())
                .bind(i64::from(query.limit))
                .fetch_all(&mut *queries::acquire(&self.pool).await?)
                .await?,
        )
    }

    /// [`super::Store::search_messages`]: one round trip; a candidate's key is its id.
    async fn read_search(
        &self,
        scan: super::SearchScan,
    ) -> Result<Vec<crate::models::search::SearchRow>, StoreError> {
        /// A candidate's row: the message and its channel.
        #[derive(sqlx::FromRow)]
        struct Candidate {
            #[sqlx(flatten)]
            message: MessageRow,
            channel_name: String,
            is_dm: bool,
        }
        let (sql, args) = queries::search_candidates(&scan, false);
        let mut query = sqlx::query_as::<_, Candidate>(sqlx::AssertSqlSafe(sql));
        for arg in args {
            query = match arg {
                queries::SearchArg::Id(id) => query.bind(id),
                queries::SearchArg::Text(text) => query.bind(text),
                queries::SearchArg::Int(n) => query.bind(n),
            };
        }
        let rows = query
            .fetch_all(&mut *queries::acquire(&self.pool).await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(|c| crate::models::search::SearchRow {
                key: c.message.id.as_u128(),
                channel_name: c.channel_name,
                is_dm: c.is_dm,
                message: c.message,
            })
            .collect())
    }

    /// [`super::Store::list_channel_reads`] and [`super::Store::list_thread_reads`]: `sql`
    /// with `ids` bound in order.
    async fn read_states(
        &self,
        sql: String,
        ids: Vec<Uuid>,
    ) -> Result<Vec<crate::models::read::ReadRow>, StoreError> {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id);
        }
        Ok(query
            .fetch_all(&mut *queries::acquire(&self.pool).await?)
            .await?)
    }

    /// Nothing to do: the write moved the version in its own transaction.
    #[allow(clippy::unused_self)]
    fn history_changed(&self, _channel: Uuid) {}

    /// Nothing to do: the write moved the version in its own transaction.
    #[allow(clippy::unused_self)]
    fn everything_changed(&self) {}
}

impl PgStore {
    /// The group commit's batch in one transaction without savepoints (fails as a whole):
    /// per channel, one lock of its row, one `INSERT` of all its messages (arrays
    /// unnested) and one update — a round trip per message was most of a batch's time.
    async fn write_batch(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let mut results: Vec<Option<Result<Inserted, StoreError>>> =
            (0..batch.len()).map(|_| None).collect();
        let order = channel_order(batch);
        let mut conn = queries::acquire(&self.pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for group in order.chunk_by(|a, b| batch[*a].channel_id == batch[*b].channel_id) {
            let channel = batch[group[0]].channel_id;
            let Some((mut last, first_seq)) = lock_channel(&mut tx, channel).await? else {
                return Err(StoreError::Missing);
            };
            // One moment for the group: each id's millisecond is its `created_at`'s.
            let created_at = Utc::now();
            let ids: Vec<Uuid> = group
                .iter()
                .map(|_| {
                    let id = crate::models::message::mint_id(last, created_at);
                    last = Some(id);
                    id
                })
                .collect();
            // Numbered as if every message is written (see 0012_read_state); renumbered
            // below in the rare batch where one is not.
            let numbers = |written: &dyn Fn(Uuid) -> bool| {
                let mut seq = first_seq;
                group
                    .iter()
                    .zip(&ids)
                    .map(|(&i, &id)| {
                        if written(id) {
                            seq += i64::from(batch[i].parent_id.is_none());
                        }
                        seq
                    })
                    .collect::<Vec<i64>>()
            };
            let planned = numbers(&|_| true);
            let messages = || group.iter().map(|&i| &batch[i]);
            let written: std::collections::HashSet<Uuid> =
                sqlx::query_scalar::<_, Uuid>(queries::INSERT_MESSAGES_IF_MEMBER)
                    .bind(&ids)
                    .bind(channel)
                    .bind(messages().map(|m| m.sender.id).collect::<Vec<_>>())
                    .bind(messages().map(|m| m.content.as_str()).collect::<Vec<_>>())
                    .bind(
                        messages()
                            .map(|m| m.attachments.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(messages().map(|m| m.parent_id).collect::<Vec<_>>())
                    .bind(
                        messages()
                            .map(|m| m.nonce.as_ref().map(|n| n.as_str()))
                            .collect::<Vec<_>>(),
                    )
                    .bind(created_at)
                    .bind(&planned)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
            let seqs = if written.len() == ids.len() {
                planned
            } else {
                let seqs = numbers(&|id| written.contains(&id));
                let (moved_ids, moved_seqs): (Vec<Uuid>, Vec<i64>) = ids
                    .iter()
                    .zip(seqs.iter().zip(&planned))
                    .filter(|(id, (seq, plan))| written.contains(id) && seq != plan)
                    .map(|(id, (seq, _))| (*id, *seq))
                    .unzip();
                if !moved_ids.is_empty() {
                    sqlx::query(queries::RENUMBER_MESSAGES)
                        .bind(&moved_ids)
                        .bind(&moved_seqs)
                        .execute(&mut *tx)
                        .await?;
                }
                seqs
            };
            let mut newest = None;
            for (&i, &id) in group.iter().zip(&ids) {
                let message = &batch[i];
                results[i] = Some(if written.contains(&id) {
                    attach_files(&mut tx, message, id).await?;
                    link_mentions(&mut tx, id, channel, &message.mentions).await?;
                    newest = Some(id);
                    Ok(Inserted {
                        message: row_of(message, id, created_at),
                        created: true,
                    })
                } else {
                    unwritten(&mut tx, message).await?
                });
            }
            if let Some(newest) = newest {
                let sent = Sent::of(group, batch, &ids, &seqs, &written);
                sqlx::query(queries::SET_LAST_MESSAGE_MARKING)
                    .bind(channel)
                    .bind(newest)
                    .bind(seqs.last().copied().unwrap_or(first_seq))
                    .bind(&sent.root_senders)
                    .bind(&sent.root_ids)
                    .bind(&sent.root_seqs)
                    .execute(&mut *tx)
                    .await?;
                sent.mark_replies(&mut tx, channel).await?;
            }
        }
        tx.commit().await?;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(StoreError::Missing)))
            .collect())
    }
}

/// What the senders of a batch's messages in one channel have read by sending: each
/// sender's newest root (the channel's marker, moved with the channel's row) and newest
/// reply in each thread (the thread's marker).
struct Sent {
    root_senders: Vec<Uuid>,
    root_ids: Vec<Uuid>,
    root_seqs: Vec<i64>,
    reply_senders: Vec<Uuid>,
    reply_roots: Vec<Uuid>,
    reply_ids: Vec<Uuid>,
}

impl Sent {
    /// From the group's messages (`ids`, numbered `seqs`), those `written`.
    fn of(
        group: &[usize],
        batch: &[NewMessage],
        ids: &[Uuid],
        seqs: &[i64],
        written: &std::collections::HashSet<Uuid>,
    ) -> Self {
        // Later messages of the group are newer: the last one seen per key wins, and each
        // key comes once (an UPDATE … FROM or an upsert takes a row once).
        let mut roots: std::collections::HashMap<Uuid, (Uuid, i64)> = Default::default();
        let mut replies: std::collections::HashMap<(Uuid, Uuid), Uuid> = Default::default();
        for ((&i, &id), &seq) in group.iter().zip(ids).zip(seqs) {
            if !written.contains(&id) {
                continue;
            }
            let message = &batch[i];
            match message.parent_id {
                None => {
                    roots.insert(message.sender.id, (id, seq));
                }
                Some(root) => {
                    replies.insert((message.sender.id, root), id);
                }
            }
        }
        let (root_senders, newest): (Vec<Uuid>, Vec<(Uuid, i64)>) = roots.into_iter().unzip();
        let (root_ids, root_seqs) = newest.into_iter().unzip();
        let (keys, reply_ids): (Vec<(Uuid, Uuid)>, Vec<Uuid>) = replies.into_iter().unzip();
        let (reply_senders, reply_roots) = keys.into_iter().unzip();
        Self {
            root_senders,
            root_ids,
            root_seqs,
            reply_senders,
            reply_roots,
            reply_ids,
        }
    }

    /// Moves the repliers' thread markers (one statement; none without replies).
    async fn mark_replies(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        channel: Uuid,
    ) -> Result<(), StoreError> {
        if self.reply_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(queries::MOVE_THREAD_MARKERS)
            .bind(&self.reply_senders)
            .bind(&self.reply_roots)
            .bind(vec![channel; self.reply_ids.len()])
            .bind(&self.reply_ids)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

impl_store!(
    PgStore,
    "postgres",
    "BEGIN",
    "SELECT last_message_id, last_root_seq FROM channels WHERE id = $1 FOR UPDATE"
);
