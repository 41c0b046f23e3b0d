//! Persistence: one [`Store`] trait, one implementation per database.
//!
//! `DATABASE_URL` picks [`sqlite::SqliteStore`] or [`postgres::PgStore`]; both embed their
//! migrations (`migrations/sqlite`, `migrations/postgres`, same numbering) and run them at
//! start-up. Methods are in CRUD order with a doc line each, in the same order in every
//! implementation, and one conformance suite (`tests/api/store.rs`) runs against both.

// `queries` defines the `impl_store!` macro the two stores use: it must come first.
#[macro_use]
mod queries;
mod migrations;
pub mod postgres;
pub mod sqlite;
mod sqlite_threads;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::Config;
use crate::models::audit::{Actor, AuditQuery, AuditRow, NewAudit};
use crate::models::channel::{ChannelRow, MemberRow, NewChannel, Role};
use crate::models::dm::{DmMembers, DmRow};
use crate::models::file::FileRow;
use crate::models::mention::may_mention;
use crate::models::message::{Anchor, Inserted, MessageRow, NewMessage};
use crate::models::reaction::ReactionRow;
use crate::models::thread::ReplierRow;
use crate::models::user::{NewUser, ProfilePatch, UserRow};

/// What messages carry besides their rows ([`Store::list_extras`]).
#[derive(Debug, Default)]
pub struct Extras {
    /// Reactions: the first users of each emoji, with its count.
    pub reactions: Vec<ReactionRow>,
    /// Threads: the first repliers of each root, with its counts.
    pub repliers: Vec<ReplierRow>,
    /// Mentions, by place.
    pub mentions: Vec<crate::models::mention::MentionRow>,
    /// The reader's own reactions among them, `(message, emoji)`, when a reader was named
    /// ([`ExtrasOf::for_reader`]).
    pub own: Vec<(Uuid, String)>,
}

/// The messages whose extras to read ([`Store::list_extras`]): each one's reactions, the
/// thread counts of those that are roots, the mentions of those whose content has an `@`
/// (a message without one mentions nobody, and a reply has no thread: neither costs a
/// statement).
#[derive(Debug, Default, Clone)]
pub struct ExtrasOf {
    /// `(id, is a root, may mention)` of each message.
    pub messages: Vec<(Uuid, bool, bool)>,
    /// Whose own reactions to read with them.
    pub reader: Option<Uuid>,
    /// Leave reactions out (only the thread counts or mentions are wanted).
    pub no_reactions: bool,
}

impl ExtrasOf {
    /// `(id, is a root, may mention)` of each message.
    #[must_use]
    pub fn new(messages: impl IntoIterator<Item = (Uuid, bool, bool)>) -> Self {
        Self {
            messages: messages.into_iter().collect(),
            reader: None,
            no_reactions: false,
        }
    }

    /// Only the thread counts of `root` (what `thread-updated` carries).
    #[must_use]
    pub fn thread_counts(root: Uuid) -> Self {
        Self {
            no_reactions: true,
            ..Self::new([(root, true, false)])
        }
    }

    /// Messages about which nothing is known: every statement for each.
    #[must_use]
    pub fn ids(ids: &[Uuid]) -> Self {
        Self::new(ids.iter().map(|id| (*id, true, true)))
    }

    /// The same, with `reader`'s own reactions among them read too (in the same hand-off).
    #[must_use]
    pub fn for_reader(self, reader: Uuid) -> Self {
        Self {
            reader: Some(reader),
            ..self
        }
    }

    /// At most `n` messages each, for the same reader.
    pub fn chunks(&self, n: usize) -> impl Iterator<Item = Self> + '_ {
        self.messages.chunks(n).map(|chunk| Self {
            messages: chunk.to_vec(),
            reader: self.reader,
            no_reactions: self.no_reactions,
        })
    }

    /// Stored messages.
    #[must_use]
    pub fn rows(rows: &[MessageRow]) -> Self {
        Self::new(
            rows.iter()
                .map(|r| (r.id, r.parent_id.is_none(), may_mention(&r.content))),
        )
    }

    /// The ids whose reactions to read (none with `no_reactions`), the roots' and the
    /// mentioning ones'.
    #[must_use]
    pub fn split(&self) -> (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>) {
        let all = if self.no_reactions {
            Vec::new()
        } else {
            self.messages.iter().map(|m| m.0).collect()
        };
        let roots = self.messages.iter().filter(|m| m.1).map(|m| m.0).collect();
        let mentioning = self.messages.iter().filter(|m| m.2).map(|m| m.0).collect();
        (all, roots, mentioning)
    }
}

/// The messages among `extras`' reactions, each once: those whose reader's own to read.
fn reacted(extras: &Extras) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = extras.reactions.iter().map(|r| r.message_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What [`Store::set_reaction`] did.
#[derive(Debug)]
pub enum Reacted {
    /// Nothing was written: no such message, a tombstone, or the user is not a member of
    /// its channel (the services tell which, with the rules' own errors).
    Refused,
    /// Written (or nothing to change): the message as it is now and its extras as the user
    /// sees them.
    Done {
        /// The message.
        message: Box<MessageRow>,
        /// Its reactions (the user's own marked), thread counts and mentions.
        extras: Extras,
        /// Whether the reaction was added or removed (not there already, or already gone).
        changed: bool,
    },
}

/// What a delete did ([`Store::delete_message`]).
#[derive(Debug)]
pub struct Deleted {
    /// Storage keys of the files that went with it.
    pub file_keys: Vec<String>,
    /// It is a thread's root with replies: emptied, kept as a tombstone.
    pub tombstone: bool,
}

/// What can go wrong below the services.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique index refused the write (which one is for the caller to know).
    #[error("unique constraint violated")]
    Conflict,
    /// The row the write depends on is gone (for example the channel was deleted).
    #[error("referenced row not found")]
    Missing,
    /// The sender of a message is not a member of its channel (checked inside the write).
    #[error("sender is not a member of the channel")]
    NotMember,
    /// A file to attach is not the sender's, not stored yet, or attached elsewhere (checked
    /// inside the write).
    #[error("file cannot be attached")]
    Unattachable,
    /// The write would go over a per-channel cap (pins).
    #[error("limit reached")]
    LimitReached,
    /// The database could not be reached or answered with an error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A SQLite statement on a connection of the store's own threads failed.
    #[error(transparent)]
    Read(#[from] rusqlite::Error),
    /// A read's blocking task ended without an answer (it panicked).
    #[error("read task failed: {0}")]
    ReadTask(String),
    /// Migrations could not be applied.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<StoreError> for crate::error::AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(e) => e.into(),
            StoreError::Read(e) => e.into(),
            other => Self::internal(other),
        }
    }
}

/// Turns a unique-index violation into [`StoreError::Conflict`], keyed on the violation
/// kind (SQLite reports no constraint names).
pub(crate) fn conflict_on_unique(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(e),
    }
}

/// One page of the user directory.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Lower-cased prefix of the username or the display name.
    pub prefix: Option<String>,
    /// Only users whose lower-cased username sorts after this one.
    pub after_username: Option<String>,
    /// Rows to return (the caller asks for one more than it shows, to learn `hasMore`).
    pub limit: u32,
}

/// What a search reads ([`Store::search_messages`]): live messages the reader may read —
/// public channels and those they are a member of now — newest first, narrowed by the
/// index and the filters. Every candidate is judged again by the matching rule
/// ([`crate::models::search::SearchQuery::matches`]).
#[derive(Debug, Clone, Default)]
pub struct SearchScan {
    /// Who searches.
    pub reader: Uuid,
    /// Lower-cased texts every candidate contains as the index sees them (terms of at
    /// least three characters: shorter ones are judged by the rule alone).
    pub texts: Vec<String>,
    /// Only this channel or DM.
    pub channel: Option<Uuid>,
    /// Only the channel of this name (not a DM).
    pub channel_name: Option<String>,
    /// Only messages of the user of this lower-cased username.
    pub sender: Option<String>,
    /// Only messages with a smaller id (sent before a time, as a UUIDv7).
    pub id_before: Option<Uuid>,
    /// Only messages with this id or a larger one (sent at or after a time).
    pub id_from: Option<Uuid>,
    /// Continues after the candidate of this key.
    pub after_key: Option<u128>,
    /// Candidates to read.
    pub limit: u32,
}

/// One page of the channel list, as one viewer sees it.
#[derive(Debug, Clone)]
pub struct ChannelQuery {
    /// The viewer: public channels plus the private ones they are in.
    pub viewer: Uuid,
    /// Lower-cased substring of the name.
    pub search: Option<String>,
    /// Only channels the viewer is in.
    pub joined_only: bool,
    /// Only channels whose name sorts after this one.
    pub after_name: Option<String>,
    /// Rows to return.
    pub limit: u32,
}

impl ChannelQuery {
    /// The `LIKE` pattern of `search`: the name contains it.
    #[must_use]
    pub fn search_pattern(&self) -> Option<String> {
        self.search
            .as_deref()
            .map(|s| format!("%{}", like_prefix(s)))
    }
}

/// What joining did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// Already a member with this role; nothing changed.
    Already(Role),
    /// Added with this role (`owner` when the channel had none).
    Added(Role),
}

/// What leaving did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Was not a member.
    NotMember,
    /// Left; ownership went to this user (when the leaver was the owner).
    Left {
        /// The new owner, if ownership was handed over.
        new_owner: Option<Uuid>,
    },
}

/// What deleting a channel removed.
#[derive(Debug, Clone, Default)]
pub struct ChannelDeleted {
    /// Who were members.
    pub members: Vec<Uuid>,
    /// Storage keys of the files its messages attached (their rows are gone).
    pub file_keys: Vec<String>,
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Names the sqlx database type of a store (the shared queries need it for transactions).
pub trait HasDatabase {
    /// The sqlx database.
    type Db: sqlx::Database;
}

/// What a history page was read at ([`Store::history_version`]): equal versions, equal
/// pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryVersion {
    /// Moves with every message written, edited or deleted in the channel.
    pub channel: i64,
    /// The channel's newest message id where the database keeps it (PostgreSQL: moved by
    /// every node, also one still on a version from before `channel` existed, during a
    /// rolling upgrade); `None` on SQLite, whose one process moves `channel` itself.
    pub newest: Option<Uuid>,
    /// Moves with every change that shows in every channel's pages (a sender's display name
    /// or avatar).
    pub everywhere: i64,
}

/// Connections of a store's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Lent out to a query or transaction.
    pub in_use: u32,
    /// Open and free.
    pub idle: u32,
    /// The most the pool opens (`DATABASE_MAX_CONNECTIONS`).
    pub max: u32,
}

/// The persistence interface every service uses.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and health.
    fn kind(&self) -> &'static str;

    /// Runs a trivial query: proves the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Commits a one-row write: proves the database can still write (reads may work on a
    /// full disk or a read-only file system while writes fail).
    async fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Waits for open connections to finish and closes the pool.
    async fn close(&self);

    /// How the connection pool is used right now (for the metrics).
    fn pool_stats(&self) -> PoolStats;

    /// Inserts a user; [`StoreError::Conflict`] when the username or email is taken.
    async fn insert_user(&self, user: &NewUser) -> Result<UserRow, StoreError>;

    /// The user with this id.
    async fn fetch_user(&self, id: Uuid) -> Result<Option<UserRow>, StoreError>;

    /// The user with this (lower-cased) email.
    async fn fetch_user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError>;

    /// The user with this username, compared case-insensitively.
    async fn fetch_user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError>;

    /// Users ordered by lower-cased username, filtered and paged by `query`.
    async fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRow>, StoreError>;

    /// The users with these ids (unknown ids are skipped), ordered by username.
    async fn list_users_by_ids(&self, ids: &[Uuid]) -> Result<Vec<UserRow>, StoreError>;

    /// Applies a profile change; `None` when the user does not exist.
    async fn update_user_profile(
        &self,
        id: Uuid,
        patch: &ProfilePatch,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRow>, StoreError>;

    /// Records when each user was last seen online, all in one transaction.
    async fn update_last_seen(&self, seen: &[(Uuid, DateTime<Utc>)]) -> Result<(), StoreError>;

    /// Revokes a token id until `expires_at` (unix seconds); revoking twice is harmless.
    /// With `by`, the logout is audited in the same transaction.
    async fn insert_revocation(
        &self,
        jti: Uuid,
        expires_at: i64,
        by: Option<&Actor>,
    ) -> Result<(), StoreError>;

    /// Revocations still in force at `now` (unix seconds).
    async fn list_revocations(&self, now: i64) -> Result<Vec<(Uuid, i64)>, StoreError>;

    /// Deletes revocations whose token has expired by `now`; returns how many.
    async fn delete_expired_revocations(&self, now: i64) -> Result<u64, StoreError>;

    /// Creates a channel with its creator as owner and `members` as members, in one
    /// transaction; [`StoreError::Conflict`] when the name is taken. With `by`, audited
    /// in that transaction (as every write below that takes a `by`).
    async fn insert_channel(
        &self,
        channel: &NewChannel,
        members: &[Uuid],
        by: Option<&Actor>,
    ) -> Result<(), StoreError>;

    /// A channel as `viewer` sees it (role, star, member count).
    async fn fetch_channel(&self, id: Uuid, viewer: Uuid)
    -> Result<Option<ChannelRow>, StoreError>;

    /// Channels by name, filtered and paged by `query`.
    async fn list_channels(&self, query: &ChannelQuery) -> Result<Vec<ChannelRow>, StoreError>;

    /// The viewer's starred channels that they can still see, by name.
    async fn list_starred_channels(&self, viewer: Uuid) -> Result<Vec<ChannelRow>, StoreError>;

    /// Renames and/or re-describes a channel; [`StoreError::Conflict`] when the new name
    /// is taken. `description: Some(None)` clears it.
    async fn update_channel(
        &self,
        id: Uuid,
        name: Option<&str>,
        description: Option<Option<&str>>,
        now: DateTime<Utc>,
        by: Option<&Actor>,
    ) -> Result<(), StoreError>;

    /// Deletes a channel with its messages, their files' rows, memberships and stars (its
    /// audit entries stay).
    async fn delete_channel(
        &self,
        id: Uuid,
        by: Option<&Actor>,
    ) -> Result<ChannelDeleted, StoreError>;

    /// Adds `user` as a member (as owner when the channel has no owner and `claim_ownerless`,
    /// recorded as `channel.claimed` when `by` says who).
    async fn insert_member(
        &self,
        channel: Uuid,
        user: Uuid,
        claim_ownerless: bool,
        now: DateTime<Utc>,
        by: Option<&Actor>,
    ) -> Result<Joined, StoreError>;

    /// Adds `user` with `role`, or sets the role of an existing member; `true` when added.
    async fn upsert_member(
        &self,
        channel: Uuid,
        user: Uuid,
        role: Role,
        now: DateTime<Utc>,
        by: Option<&Actor>,
    ) -> Result<bool, StoreError>;

    /// The membership of `user` in `channel`.
    async fn fetch_member(
        &self,
        channel: Uuid,
        user: Uuid,
    ) -> Result<Option<MemberRow>, StoreError>;

    /// Members by `joined_at` (then user id), after the given position.
    async fn list_members(
        &self,
        channel: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<MemberRow>, StoreError>;

    /// Removes a membership; a leaving owner hands ownership to the oldest admin, else the
    /// oldest member, in the same transaction.
    async fn delete_member(
        &self,
        channel: Uuid,
        user: Uuid,
        by: Option<&Actor>,
    ) -> Result<Left, StoreError>;

    /// Users who share at least one channel with `user` (`user` included).
    async fn list_co_member_ids(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError>;

    /// Stars a channel for `user` (idempotent).
    async fn insert_star(
        &self,
        user: Uuid,
        channel: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Unstars a channel for `user` (idempotent).
    async fn delete_star(&self, user: Uuid, channel: Uuid) -> Result<(), StoreError>;

    /// Opens the direct conversation of `members` with id `id` (all of them members, in one
    /// transaction), or finds the one they already have: its id, and whether it is new.
    async fn open_dm(
        &self,
        id: Uuid,
        members: &DmMembers,
        opener: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(Uuid, bool), StoreError>;

    /// `user`'s direct conversations, the most recently active first, only those less
    /// active than `before` (see [`DmRow::activity`]).
    async fn list_dms(
        &self,
        user: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DmRow>, StoreError>;

    /// The ids of every direct conversation `user` is in.
    async fn list_dm_ids(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError>;

    /// Writes a batch of messages in one transaction (one fsync). Each message mints its id
    /// inside the write, is written only if its sender is a member of the channel
    /// ([`StoreError::NotMember`] otherwise), and succeeds or fails alone; a repeated nonce
    /// returns the earlier message. The outer error means the whole batch failed.
    async fn insert_messages(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError>;

    /// One message.
    async fn fetch_message(&self, id: Uuid) -> Result<Option<MessageRow>, StoreError>;

    /// One message and its channel as `viewer` sees it ([`Store::fetch_channel`]), read
    /// together.
    async fn fetch_message_in(
        &self,
        id: Uuid,
        viewer: Uuid,
    ) -> Result<Option<(MessageRow, Option<ChannelRow>)>, StoreError>;

    /// The messages with these ids, in no particular order (unknown ids are skipped).
    async fn list_messages_by_ids(&self, ids: &[Uuid]) -> Result<Vec<MessageRow>, StoreError>;

    /// The message `sender` already sent to `channel` with `nonce`, if any.
    async fn fetch_message_by_nonce(
        &self,
        channel: Uuid,
        sender: Uuid,
        nonce: &str,
    ) -> Result<Option<MessageRow>, StoreError>;

    /// Up to `limit` messages of a channel around `anchor`, in index order (newest first
    /// for [`Anchor::Latest`] and [`Anchor::Before`], oldest first for [`Anchor::After`]);
    /// none when `reader` may not read the channel (private and not a member) or it does
    /// not exist.
    async fn list_messages(
        &self,
        channel: Uuid,
        reader: Uuid,
        anchor: Anchor,
        limit: u32,
    ) -> Result<Vec<MessageRow>, StoreError>;

    /// [`Store::list_messages`] with what goes on the messages read ([`Store::list_extras`]),
    /// in one hand-off where the database has them; `collapsed` leaves replies out.
    async fn list_history(
        &self,
        channel: Uuid,
        reader: Uuid,
        anchor: Anchor,
        limit: u32,
        collapsed: bool,
    ) -> Result<(Vec<MessageRow>, Extras), StoreError>;

    /// Up to `limit` replies of thread `root` after `after` (oldest first; the root's id
    /// to start).
    async fn list_thread(
        &self,
        root: Uuid,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<MessageRow>, StoreError>;

    /// The version of a channel's history as `reader` may see it; `None` when `reader` may
    /// not read the channel or it does not exist. Read before a page, it tells later whether
    /// that page is still the page: every message written, edited or deleted in the
    /// channel, and every change of a sender's name or avatar, moves it — at once for every
    /// node.
    async fn history_version(
        &self,
        channel: Uuid,
        reader: Uuid,
    ) -> Result<Option<HistoryVersion>, StoreError>;

    /// Replaces a message's content and mentions and sets `edited_at`.
    async fn update_message(
        &self,
        id: Uuid,
        content: &str,
        at: DateTime<Utc>,
        mentions: &crate::models::mention::Mentions,
    ) -> Result<Option<MessageRow>, StoreError>;

    /// Pins a message (`Some((by, at))`; kept as it was when already pinned) or unpins it
    /// (`None`), taking its channel's row first; [`StoreError::LimitReached`] when the pin
    /// would make more than `max` in the channel. `None` when the message does not exist;
    /// else the message as it is now and whether anything changed.
    async fn set_pin(
        &self,
        id: Uuid,
        pin: Option<(Uuid, DateTime<Utc>)>,
        max: u32,
        by: Option<&Actor>,
    ) -> Result<Option<(MessageRow, bool)>, StoreError>;

    /// Adds (`Some((at, max))`) or removes (`None`) `user`'s `emoji` on a message, taking its
    /// channel's row first, if the message is there (not a tombstone) and `user` is a member
    /// of its channel; [`StoreError::LimitReached`] when the addition would make more than
    /// `max` different emoji on it. Done, it answers with the message as it is now, its
    /// extras as `user` sees them, all read in the same transaction.
    async fn set_reaction(
        &self,
        message: Uuid,
        user: Uuid,
        emoji: &str,
        add: Option<(DateTime<Utc>, u32)>,
    ) -> Result<Reacted, StoreError>;

    /// What these messages carry besides their row: the first users of each emoji with
    /// each emoji's count, the first repliers of each thread with its counts, their
    /// mentions, and the reader's own reactions when one is named.
    async fn list_extras(&self, messages: &ExtrasOf) -> Result<Extras, StoreError>;

    /// Records whether `user` follows thread `root` of `channel`. With `keep_choice`, a
    /// choice made before stays (the root's author when a reply arrives).
    async fn set_follow(
        &self,
        user: Uuid,
        root: Uuid,
        channel: Uuid,
        following: bool,
        keep_choice: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The members of `channel` among these lower-cased usernames: `(id, lower-cased
    /// username)`.
    async fn find_members_named(
        &self,
        channel: Uuid,
        usernames: &[String],
    ) -> Result<Vec<(Uuid, String)>, StoreError>;

    /// Every member of `channel`.
    async fn list_member_ids(&self, channel: Uuid) -> Result<Vec<Uuid>, StoreError>;

    /// Up to `limit` messages that mention `user` — by name, or channel-wide in a channel
    /// they are a member of — other than their own, in channels they may read, older than
    /// `before`, newest first.
    async fn list_mentions(
        &self,
        user: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<MessageRow>, StoreError>;

    /// Up to `limit` threads `user` follows in channels they may read, newest activity
    /// first, before activity `before`: `(root, activity)`, the activity being the newest
    /// reply's id (the root's when it has none).
    async fn list_followed_threads(
        &self,
        user: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<(Uuid, Uuid)>, StoreError>;

    /// `user`'s own reactions among these messages: `(message, emoji)`.
    async fn list_own_reactions(
        &self,
        user: Uuid,
        messages: &[Uuid],
    ) -> Result<Vec<(Uuid, String)>, StoreError>;

    /// Up to `scan.limit` candidates of a search, newest first (see [`SearchScan`]).
    async fn search_messages(
        &self,
        scan: &SearchScan,
    ) -> Result<Vec<crate::models::search::SearchRow>, StoreError>;

    /// Up to `limit` versions of a live message after version `after`, oldest first: the
    /// contents its edits replaced, then its current content (the one without an id), all
    /// read at one moment. None when the message is gone or a tombstone.
    async fn list_versions(
        &self,
        message: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<crate::models::message::VersionRow>, StoreError>;

    /// `user`'s read state in each of their channels and DMs (`channels` only, when given;
    /// others are skipped): marker, unread and mention counts, activity.
    async fn list_channel_reads(
        &self,
        user: Uuid,
        channels: Option<&[Uuid]>,
    ) -> Result<Vec<crate::models::read::ReadRow>, StoreError>;

    /// `user`'s read state in threads `roots` (followed or not), or, without `roots`, in
    /// every thread they follow in a channel they may read now.
    async fn list_thread_reads(
        &self,
        user: Uuid,
        roots: Option<&[Uuid]>,
    ) -> Result<Vec<crate::models::read::ReadRow>, StoreError>;

    /// Moves member `user`'s marker in `channel` forward to message `to` (its newest
    /// message without one): whether it moved; `None` when `to` is not a live message of
    /// the channel.
    async fn move_channel_marker(
        &self,
        channel: Uuid,
        user: Uuid,
        to: Option<Uuid>,
    ) -> Result<Option<bool>, StoreError>;

    /// Moves `user`'s marker in thread `root` (of `channel`) forward to `to` — the root or
    /// one of its replies — or to its newest reply: whether it moved; `None` when `to` is
    /// not in the thread.
    async fn move_thread_marker(
        &self,
        root: Uuid,
        channel: Uuid,
        user: Uuid,
        to: Option<Uuid>,
    ) -> Result<Option<bool>, StoreError>;

    /// A channel's pinned messages, the most recently pinned first.
    async fn list_pins(&self, channel: Uuid, limit: u32) -> Result<Vec<MessageRow>, StoreError>;

    /// Deletes a message and the rows of its files — or, for a thread's root with replies,
    /// empties it into a tombstone at `at`; `None` when it was already gone or a tombstone
    /// (of two concurrent deletes, one changes nothing).
    async fn delete_message(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        by: Option<&Actor>,
    ) -> Result<Option<Deleted>, StoreError>;

    /// Writes an audit entry that records no change of its own (a login, a failed one).
    async fn insert_audit(&self, entry: &NewAudit) -> Result<(), StoreError>;

    /// Audit entries, newest first, as `query` asks.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError>;

    /// Deletes audit entries written before `before`; returns how many.
    async fn delete_audit_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Writes an upload's row as `pending`, before its bytes are stored.
    async fn insert_file(&self, file: &FileRow) -> Result<(), StoreError>;

    /// Marks an upload `ready` once its bytes are stored; `false` when its row is gone.
    async fn mark_file_ready(&self, id: Uuid) -> Result<bool, StoreError>;

    /// A file (pending or ready) with the channel of the message attaching it.
    async fn fetch_file(&self, id: Uuid) -> Result<Option<FileRow>, StoreError>;

    /// The files with these ids, in no particular order (unknown ids are skipped).
    async fn list_files_by_ids(&self, ids: &[Uuid]) -> Result<Vec<FileRow>, StoreError>;

    /// Deletes a file's row unless a message attaches it; `false` when nothing was deleted.
    async fn delete_unattached_file(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Deletes the rows of uploads still `pending` since before `before` (a crash
    /// mid-upload) and returns them, for their bytes to be removed.
    async fn delete_stale_files(&self, before: DateTime<Utc>) -> Result<Vec<FileRow>, StoreError>;
}

/// Connects to the database named by the configuration and applies pending migrations.
///
/// # Errors
/// The database cannot be opened or reached, or a migration fails.
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match &config.database_url {
        crate::config::DatabaseUrl::Sqlite(path) => Ok(Arc::new(
            sqlite::SqliteStore::open(path, config.database_max_connections).await?,
        )),
        crate::config::DatabaseUrl::Postgres(url) => Ok(Arc::new(
            postgres::PgStore::connect(url, config.database_max_connections).await?,
        )),
    }
}
