//! SQLite: the embedded default. WAL journal, `synchronous=FULL` (an acknowledged write
//! survives power loss), foreign keys on, and a busy timeout (10 s) so concurrent writers
//! wait instead of failing; past it the request answers 503 `SERVICE_UNAVAILABLE`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use super::sqlite_threads::Threads;
use super::{
    ChannelDeleted, ChannelQuery, Extras, ExtrasOf, HistoryVersion, Joined, Left, Reacted,
    StoreError, UserQuery, queries,
};
use crate::models::channel::{ChannelRow, MemberRow, NewChannel, Role};
use crate::models::file::FileRow;
use crate::models::mention::MentionRow;
use crate::models::message::{Anchor, Inserted, MessageRow, NewMessage};
use crate::models::reaction::ReactionRow;
use crate::models::thread::ReplierRow;
use crate::models::user::{NewUser, ProfilePatch, UserRow};

/// This database's migrations, embedded at compile time (same numbering as the other's).
pub(crate) const MIGRATIONS: &[super::migrations::Embedded] = &[
    (
        1,
        "users",
        include_str!("../../migrations/sqlite/0001_users.sql"),
    ),
    (
        2,
        "channels_messages",
        include_str!("../../migrations/sqlite/0002_channels_messages.sql"),
    ),
    (
        3,
        "health_probe",
        include_str!("../../migrations/sqlite/0003_health_probe.sql"),
    ),
    (
        4,
        "files",
        include_str!("../../migrations/sqlite/0004_files.sql"),
    ),
    (
        5,
        "history_versions",
        include_str!("../../migrations/sqlite/0005_history_versions.sql"),
    ),
    (
        6,
        "direct_messages",
        include_str!("../../migrations/sqlite/0006_direct_messages.sql"),
    ),
    (
        7,
        "pins",
        include_str!("../../migrations/sqlite/0007_pins.sql"),
    ),
    (
        8,
        "reactions",
        include_str!("../../migrations/sqlite/0008_reactions.sql"),
    ),
    (
        9,
        "threads",
        include_str!("../../migrations/sqlite/0009_threads.sql"),
    ),
    (
        10,
        "mentions",
        include_str!("../../migrations/sqlite/0010_mentions.sql"),
    ),
    (
        11,
        "edit_history",
        include_str!("../../migrations/sqlite/0011_edit_history.sql"),
    ),
    (
        12,
        "read_state",
        include_str!("../../migrations/sqlite/0012_read_state.sql"),
    ),
    (
        13,
        "search",
        include_str!("../../migrations/sqlite/0013_search.sql"),
    ),
    (
        14,
        "audit",
        include_str!("../../migrations/sqlite/0014_audit.sql"),
    ),
];

/// How long a connection waits for a lock before giving up (then 503).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Page cache per connection: 64 MiB (negative = KiB, SQLite's convention).
pub(super) const CACHE_SIZE: i64 = -65_536;
/// Memory-mapped reads of up to 256 MiB of the file.
pub(super) const MMAP_SIZE: i64 = 268_435_456;

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// History pages: read where their rows are built (see [`Threads`]).
    readers: Arc<Threads>,
    /// The group commit's batches: written on a thread of their own.
    writer: Arc<Threads>,
    /// What history pages are read at.
    versions: Arc<Versions>,
}

/// The versions of history pages ([`super::Store::history_version`]). This process is the
/// only writer of its file, so they live in memory: this store's writes move them right
/// after their commits, and a page read before a move is never served after it.
#[derive(Debug, Default)]
struct Versions {
    /// Per channel written or read since start: its version, and whether it is public
    /// (fixed at creation, so once seen it needs no query).
    channels: Mutex<HashMap<Uuid, (i64, bool)>>,
    /// Moves with every change that shows in every channel's pages.
    everywhere: AtomicI64,
}

impl Versions {
    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (i64, bool)>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SqliteStore {
    /// One transaction of one `UPDATE` per user: statements are in-process calls here.
    async fn write_last_seen(&self, seen: &[(Uuid, DateTime<Utc>)]) -> Result<(), StoreError> {
        let mut conn = queries::acquire(&self.pool).await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        for (id, at) in queries::latest_per_user(seen) {
            sqlx::query(queries::UPDATE_LAST_SEEN)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Opens (creating it and its folder if needed) the database file and migrates it.
    ///
    /// # Errors
    /// The folder or file cannot be created, or a migration fails.
    pub async fn open(path: &Path, max_connections: u32) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // 64 MiB of page cache per connection and memory-mapped reads: hot index pages
            // stay in memory instead of costing a read syscall each.
            .pragma("cache_size", CACHE_SIZE.to_string())
            .pragma("mmap_size", MMAP_SIZE.to_string());
        let pool = SqlitePoolOptions::new()
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
        Ok(Self {
            pool,
            readers: Arc::new(
                Threads::start(path, max_connections)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?,
            ),
            writer: Arc::new(
                Threads::start_writer(path)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?,
            ),
            versions: Arc::default(),
        })
    }
}

impl SqliteStore {
    /// The pool, for tools that copy whole tables (`migrate-data`).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl SqliteStore {
    /// What every transaction that writes messages runs last: their search entries.
    pub(super) const AFTER_MESSAGES: &'static [&'static str] = &queries::INDEX_PENDING;

    /// [`super::Store::list_messages`]: the statement and the rows on one blocking thread.
    async fn list_page(
        &self,
        channel: Uuid,
        reader: Uuid,
        anchor: Anchor,
        limit: u32,
        collapsed: bool,
    ) -> Result<Vec<MessageRow>, StoreError> {
        self.readers
            .run(move |conn| read_page(conn, channel, reader, anchor, limit, collapsed))
            .await
    }

    /// [`super::Store::fetch_message_in`]: both statements in one hand-off to a reader
    /// thread.
    async fn read_message_in(
        &self,
        id: Uuid,
        viewer: Uuid,
    ) -> Result<Option<(MessageRow, Option<ChannelRow>)>, StoreError> {
        self.readers
            .run(move |conn| {
                use rusqlite::OptionalExtension;
                let Some(message) = conn
                    .prepare_cached(&queries::fetch_message())?
                    .query_row([id], message_row)
                    .optional()?
                else {
                    return Ok(None);
                };
                let channel = conn
                    .prepare_cached(&queries::fetch_channel())?
                    .query_row(rusqlite::params![viewer, message.channel_id], channel_row)
                    .optional()?;
                Ok(Some((message, channel)))
            })
            .await
    }

    /// [`super::Store::list_history`]: the page and its extras in one hand-off to a reader
    /// thread (a page holds at most 101 messages, one chunk).
    async fn list_page_extras(
        &self,
        channel: Uuid,
        reader: Uuid,
        anchor: Anchor,
        limit: u32,
        collapsed: bool,
    ) -> Result<(Vec<MessageRow>, Extras), StoreError> {
        self.readers
            .run(move |conn| {
                let page = read_page(conn, channel, reader, anchor, limit, collapsed)?;
                let extras = read_extras(conn, &ExtrasOf::rows(&page))?;
                Ok((page, extras))
            })
            .await
    }
}

/// One history page (`queries::page_query`) on a reader connection.
fn read_page(
    conn: &rusqlite::Connection,
    channel: Uuid,
    reader: Uuid,
    anchor: Anchor,
    limit: u32,
    collapsed: bool,
) -> rusqlite::Result<Vec<MessageRow>> {
    let (sql, id) = queries::page_query(anchor, collapsed);
    let mut statement = conn.prepare_cached(sql)?;
    let limit = i64::from(limit);
    let rows = match id {
        None => statement.query(rusqlite::params![channel, reader, limit])?,
        Some(id) => statement.query(rusqlite::params![channel, reader, id, limit])?,
    };
    let mut page = Vec::with_capacity(usize::try_from(limit).unwrap_or(0));
    for row in rows.mapped(message_row) {
        page.push(row?);
    }
    Ok(page)
}

/// The extras of at most 500 messages (`queries::reactions_of`, `queries::repliers_of`,
/// `queries::mentions_of`) on a reader connection.
fn read_extras(conn: &rusqlite::Connection, messages: &ExtrasOf) -> rusqlite::Result<Extras> {
    let (all, roots, mentioning) = messages.split();
    let mut extras = Extras::default();
    if !all.is_empty() {
        extras.reactions = rows_for(conn, &queries::reactions_of(all.len()), &all, |row| {
            Ok(ReactionRow {
                message_id: row.get(0)?,
                emoji: row.get(1)?,
                user_id: row.get(2)?,
                created_at: time(row, 3)?,
                n: row.get(4)?,
                total: row.get(5)?,
            })
        })?;
    }
    let threads = !roots.is_empty()
        && conn
            .prepare_cached(&queries::any_reply_to(roots.len()))?
            .exists(rusqlite::params_from_iter(roots.iter()))?;
    if threads {
        extras.repliers = rows_for(conn, &queries::repliers_of(roots.len()), &roots, |row| {
            Ok(ReplierRow {
                root_id: row.get(0)?,
                sender_id: row.get(1)?,
                n: row.get(2)?,
                total: row.get(3)?,
                last_at: time(row, 4)?,
            })
        })?;
    }
    if !mentioning.is_empty() {
        extras.mentions = rows_for(
            conn,
            &queries::mentions_of(mentioning.len()),
            &mentioning,
            |row| {
                Ok(MentionRow {
                    message_id: row.get(0)?,
                    n: row.get(1)?,
                    user_id: row.get(2)?,
                })
            },
        )?;
    }
    if let Some(reader) = messages.reader {
        let reacted = super::reacted(&extras);
        if !reacted.is_empty() {
            let mut statement = conn.prepare_cached(&queries::reactions_by(reacted.len()))?;
            let params = std::iter::once(reader).chain(reacted);
            extras.own = statement
                .query(rusqlite::params_from_iter(params))?
                .mapped(|row| Ok((row.get(0)?, row.get(1)?)))
                .collect::<rusqlite::Result<_>>()?;
        }
    }
    Ok(extras)
}

/// The rows of `sql`, whose parameters are `ids`, each built by `build`.
fn rows_for<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    ids: &[Uuid],
    build: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query(rusqlite::params_from_iter(ids.iter()))?;
    rows.mapped(build).collect()
}

impl SqliteStore {
    /// [`super::Store::list_extras`] of at most 500 messages, on a reader thread like the
    /// page they go with (through sqlx's connection thread it cost a history page more
    /// than its own query).
    async fn read_extras(&self, messages: ExtrasOf) -> Result<Extras, StoreError> {
        self.readers
            .run(move |conn| read_extras(conn, &messages))
            .await
    }

    /// [`super::Store::list_channels`] on a reader thread: the page's rows in one hand-off.
    async fn read_channel_list(
        &self,
        query: super::ChannelQuery,
    ) -> Result<Vec<ChannelRow>, StoreError> {
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(&queries::list_channels())?;
                let rows = statement.query(rusqlite::params![
                    query.viewer,
                    query.joined_only,
                    query.search_pattern(),
                    query.after_name,
                    i64::from(query.limit),
                ])?;
                rows.mapped(channel_row).collect()
            })
            .await
    }

    /// [`super::Store::search_messages`] on a reader thread: the candidates in one hand-off.
    async fn read_search(
        &self,
        scan: super::SearchScan,
    ) -> Result<Vec<crate::models::search::SearchRow>, StoreError> {
        self.readers
            .run(move |conn| {
                let (sql, args) = queries::search_candidates(&scan, true);
                let mut statement = conn.prepare_cached(&sql)?;
                let rows = statement.query(rusqlite::params_from_iter(args.iter()))?;
                rows.mapped(|row| {
                    Ok(crate::models::search::SearchRow {
                        message: message_row(row)?,
                        channel_name: row.get(15)?,
                        is_dm: row.get(16)?,
                        key: u128::try_from(row.get::<_, i64>(17)?).unwrap_or_default(),
                    })
                })
                .collect()
            })
            .await
    }

    /// [`super::Store::list_channel_reads`] and [`super::Store::list_thread_reads`]: `sql`
    /// with `ids` bound in order, every row read on a reader thread in one hand-off (through
    /// sqlx's connection thread each row was a hand-off of its own: a third of the time of
    /// a list of 500 channels went to switching threads).
    async fn read_states(
        &self,
        sql: String,
        ids: Vec<Uuid>,
    ) -> Result<Vec<crate::models::read::ReadRow>, StoreError> {
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(&sql)?;
                let rows = statement.query(rusqlite::params_from_iter(ids.iter()))?;
                rows.mapped(read_row).collect()
            })
            .await
    }

    /// [`super::Store::history_version`]: from memory; a public channel once seen costs no
    /// query, a private one a membership check.
    async fn read_history_version(
        &self,
        channel: Uuid,
        reader: Uuid,
    ) -> Result<Option<HistoryVersion>, StoreError> {
        let known = self.versions.channels().get(&channel).copied();
        let version = match known {
            Some((version, true)) => version,
            _ => {
                let access = self
                    .readers
                    .run(move |conn| {
                        use rusqlite::OptionalExtension;
                        conn.prepare_cached(queries::CHANNEL_ACCESS)?
                            .query_row(rusqlite::params![channel, reader], |row| {
                                Ok((row.get::<_, bool>(0)?, row.get::<_, bool>(1)?))
                            })
                            .optional()
                    })
                    .await?;
                let mut channels = self.versions.channels();
                match access {
                    None | Some((true, false)) => return Ok(None),
                    Some((true, true)) => channels.get(&channel).map_or(0, |(version, _)| *version),
                    Some((false, _)) => {
                        let known = channels.entry(channel).or_default();
                        known.1 = true;
                        known.0
                    }
                }
            }
        };
        Ok(Some(HistoryVersion {
            channel: version,
            newest: None,
            everywhere: self.versions.everywhere.load(Ordering::SeqCst),
        }))
    }

    /// A write of `channel`'s messages has ended (committed, or perhaps so).
    fn history_changed(&self, channel: Uuid) {
        self.versions.channels().entry(channel).or_default().0 += 1;
    }

    /// A write that shows in every channel's pages has ended.
    fn everything_changed(&self) {
        self.versions.everywhere.fetch_add(1, Ordering::SeqCst);
    }
}

impl SqliteStore {
    /// The group commit's batch in one transaction without savepoints (fails as a whole),
    /// on the writer thread: one `INSERT` per message, one read and one update per channel,
    /// all of them in-process calls on that thread.
    async fn write_batch(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let batch = batch.to_vec();
        self.writer
            .run(move |conn| {
                conn.execute_batch("BEGIN IMMEDIATE")?;
                match write_in(conn, &batch) {
                    Ok(Ok(results)) => {
                        conn.execute_batch("COMMIT")?;
                        Ok(Ok(results))
                    }
                    Ok(Err(whole)) => {
                        conn.execute_batch("ROLLBACK")?;
                        Ok(Err(whole))
                    }
                    Err(e) => {
                        // The connection is closed after an error, which rolls back too.
                        let _ = conn.execute_batch("ROLLBACK");
                        Err(e)
                    }
                }
            })
            .await?
    }
}

impl SqliteStore {
    /// [`super::Store::set_reaction`] on the writer thread, in one hand-off: the channel's
    /// row, the check, the change and, for an addition, the count of different emoji, then
    /// the answer, in one transaction (through sqlx and the reader threads this was a dozen
    /// round trips between threads, and a reaction cost more than a message to deliver).
    async fn write_reaction(
        &self,
        message: Uuid,
        user: Uuid,
        emoji: &str,
        add: Option<(DateTime<Utc>, u32)>,
    ) -> Result<Reacted, StoreError> {
        let emoji = emoji.to_owned();
        let done = self
            .writer
            .run(move |conn| {
                conn.execute_batch("BEGIN IMMEDIATE")?;
                let done = match react_in(conn, message, user, &emoji, add)? {
                    Some((channel, Ok(reacted))) => match conn.execute_batch("COMMIT") {
                        Ok(()) => Some((channel, Ok(reacted))),
                        Err(e) => Some((channel, Err(StoreError::from(e)))),
                    },
                    done => done,
                };
                if !conn.is_autocommit() {
                    // Still in the transaction: a refusal, or a COMMIT that failed. A
                    // connection that cannot roll back is closed (the error ends the job).
                    conn.execute_batch("ROLLBACK")?;
                }
                Ok(done)
            })
            .await?;
        let Some((channel, reacted)) = done else {
            return Ok(Reacted::Refused);
        };
        // Written, or perhaps so: a page read before this is not served after it.
        self.history_changed(channel);
        reacted
    }
}

/// The statements of [`SqliteStore::write_reaction`], inside its transaction: `None` when
/// the message is not there or the user may not react to it, else its channel and what was
/// done — or the refusal of an addition over the limit. A statement's error ends the job
/// (the connection is closed, which rolls back).
fn react_in(
    conn: &rusqlite::Connection,
    message: Uuid,
    user: Uuid,
    emoji: &str,
    add: Option<(DateTime<Utc>, u32)>,
) -> rusqlite::Result<Option<(Uuid, Result<Reacted, StoreError>)>> {
    use rusqlite::{OptionalExtension, params};
    let Some(channel) = conn
        .prepare_cached(queries::BUMP_HISTORY_OF_MESSAGE)?
        .query_row([message], |row| row.get::<_, Uuid>(0))
        .optional()?
    else {
        return Ok(None);
    };
    let allowed: bool = conn
        .prepare_cached(queries::MAY_REACT)?
        .query_row(params![message, user], |row| row.get(0))?;
    if !allowed {
        return Ok(None);
    }
    let changed = match add {
        Some((at, max)) => {
            let added = conn
                .prepare_cached(queries::INSERT_REACTION)?
                .execute(params![
                    message,
                    emoji,
                    user,
                    // The text form sqlx writes, so both read every row alike.
                    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                    Uuid::now_v7(),
                ])?
                == 1;
            if added {
                let distinct: i64 = conn
                    .prepare_cached(queries::COUNT_REACTION_EMOJI)?
                    .query_row([message], |row| row.get(0))?;
                if distinct > i64::from(max) {
                    return Ok(Some((channel, Err(StoreError::LimitReached))));
                }
            }
            added
        }
        None => {
            conn.prepare_cached(queries::DELETE_REACTION)?
                .execute(params![message, emoji, user])?
                == 1
        }
    };
    let row = conn
        .prepare_cached(&queries::fetch_message())?
        .query_row([message], message_row)?;
    let extras = read_extras(
        conn,
        &ExtrasOf::rows(std::slice::from_ref(&row)).for_reader(user),
    )?;
    Ok(Some((
        channel,
        Ok(Reacted::Done {
            message: Box::new(row),
            extras,
            changed,
        }),
    )))
}

/// The outcome of each message of a batch, or the error that fails the whole batch.
type BatchOutcome = Result<Vec<Result<Inserted, StoreError>>, StoreError>;

/// The statements of [`SqliteStore::write_batch`], inside its transaction.
fn write_in(conn: &rusqlite::Connection, batch: &[NewMessage]) -> rusqlite::Result<BatchOutcome> {
    use rusqlite::{OptionalExtension, params};
    let mut results: Vec<Option<Result<Inserted, StoreError>>> =
        (0..batch.len()).map(|_| None).collect();
    let order = channel_order(batch);
    let mut insert = conn.prepare_cached(queries::INSERT_MESSAGE_IF_MEMBER)?;
    for group in order.chunk_by(|a, b| batch[*a].channel_id == batch[*b].channel_id) {
        let channel = batch[group[0]].channel_id;
        let locked: Option<(Option<Uuid>, i64)> = conn
            .prepare_cached(LOCK_CHANNEL)?
            .query_row(params![channel], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let Some((mut last, mut seq)) = locked else {
            return Ok(Err(StoreError::Missing));
        };
        let mut moved = false;
        for &i in group {
            let message = &batch[i];
            let created_at = Utc::now();
            let id = crate::models::message::mint_id(last, created_at);
            // A root takes the next number; a reply the newest root's (see 0012_read_state).
            let root_seq = seq + i64::from(message.parent_id.is_none());
            let written = insert.execute(params![
                id,
                channel,
                message.sender.id,
                message.content.as_str(),
                message.attachments,
                message.parent_id,
                message.nonce.as_ref().map(|n| n.as_str()),
                // The text form sqlx writes, so both read every row alike.
                created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                root_seq,
            ])?;
            results[i] =
                Some(if written == 1 {
                    for file in &message.attachment_ids {
                        let linked = conn
                            .prepare_cached(queries::ATTACH_FILE)?
                            .execute(params![id, file, message.sender.id])?;
                        if linked != 1 {
                            return Ok(Err(StoreError::Unattachable));
                        }
                    }
                    for (n, user) in message.mentions.rows() {
                        conn.prepare_cached(queries::INSERT_MENTION)?
                            .execute(params![Uuid::now_v7(), id, n, user, channel])?;
                    }
                    // The sender has read what they sent.
                    match message.parent_id {
                        None => conn
                            .prepare_cached(queries::MARK_SENT_ROOT)?
                            .execute(params![id, root_seq, channel, message.sender.id])?,
                        Some(root) => conn
                            .prepare_cached(queries::MOVE_THREAD_MARKER)?
                            .execute(params![message.sender.id, root, channel, id])?,
                    };
                    last = Some(id);
                    seq = root_seq;
                    moved = true;
                    Ok(Inserted {
                        message: row_of(message, id, created_at),
                        created: true,
                    })
                } else {
                    // The nonce was seen (answer with that message), or the sender is not a
                    // member.
                    let existing = match &message.nonce {
                        Some(nonce) => conn
                            .prepare_cached(&queries::fetch_message_by_nonce())?
                            .query_row(
                                params![channel, message.sender.id, nonce.as_str()],
                                message_row,
                            )
                            .optional()?,
                        None => None,
                    };
                    existing
                        .map(|message| Inserted {
                            message,
                            created: false,
                        })
                        .ok_or(StoreError::NotMember)
                });
        }
        if moved {
            // By name: SQLite numbers `$n` parameters in the order they first appear, and
            // this statement names `$2` before `$1`.
            conn.prepare_cached(queries::SET_LAST_MESSAGE)?
                .execute(rusqlite::named_params! { "$1": channel, "$2": last, "$3": seq })?;
        }
    }
    for sql in queries::INDEX_PENDING {
        conn.prepare_cached(sql)?.execute([])?;
    }
    Ok(Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Err(StoreError::Missing)))
        .collect()))
}

impl rusqlite::ToSql for queries::SearchArg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Self::Id(id) => id.to_sql(),
            Self::Text(text) => text.to_sql(),
            Self::Int(n) => n.to_sql(),
        }
    }
}

/// A [`MessageRow`] from a row of `queries::MESSAGE_SELECT`, in its column order.
fn message_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: row.get(0)?,
        channel_id: row.get(1)?,
        sender_id: row.get(2)?,
        content: row.get(3)?,
        attachments: row.get(4)?,
        parent_id: row.get(5)?,
        nonce: row.get(6)?,
        edited_at: opt_time(row, 7)?,
        created_at: time(row, 8)?,
        sender_username: row.get(9)?,
        sender_display_name: row.get(10)?,
        sender_avatar_url: row.get(11)?,
        pinned_at: opt_time(row, 12)?,
        pinned_by: row.get(13)?,
        deleted_at: opt_time(row, 14)?,
        mentions: Vec::new(),
        mentions_channel: false,
    })
}

/// A [`ChannelRow`] from a row of `queries::CHANNEL_SELECT`, in its column order.
fn channel_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ChannelRow> {
    Ok(ChannelRow {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        is_private: row.get(3)?,
        created_by: row.get(4)?,
        created_at: time(row, 5)?,
        updated_at: time(row, 6)?,
        dm_key: row.get(7)?,
        member_count: row.get(8)?,
        my_role: row.get(9)?,
        starred: row.get(10)?,
    })
}

/// A [`crate::models::read::ReadRow`] from a row of `queries::channel_reads` or
/// `queries::thread_reads`, in their column order.
fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<crate::models::read::ReadRow> {
    Ok(crate::models::read::ReadRow {
        id: row.get(0)?,
        channel_id: row.get(1)?,
        is_dm: row.get(2)?,
        last_read_id: row.get(3)?,
        unread: row.get(4)?,
        mentions: row.get(5)?,
        activity: row.get(6)?,
    })
}

/// A time column that may be `NULL`.
fn opt_time(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get_ref(i)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => time(row, i).map(Some),
    }
}

/// A time column: RFC 3339 as sqlx writes it, read with chrono's RFC 3339 parser (several
/// times faster than the format-string parse behind `FromSql`, which stays the fallback
/// for any other form SQLite accepts).
fn time(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    if let rusqlite::types::ValueRef::Text(text) = row.get_ref(i)?
        && let Some(at) = std::str::from_utf8(text)
            .ok()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        return Ok(at.with_timezone(&Utc));
    }
    row.get(i)
}

impl super::HasDatabase for SqliteStore {
    type Db = sqlx::Sqlite;
}

/// A channel's newest id (SQLite has no row locks: `BEGIN IMMEDIATE` took the write lock).
const LOCK_CHANNEL: &str = "SELECT last_message_id, last_root_seq FROM channels WHERE id = $1";

impl_store!(SqliteStore, "sqlite", "BEGIN IMMEDIATE", LOCK_CHANNEL);
