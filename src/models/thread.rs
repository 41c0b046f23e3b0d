//! Threads (docs/api.md, "Threads"): the counts a root shows, the follow answer and a
//! followed thread as `GET /api/threads` lists it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::message::MessageView;
use super::timestamp;

/// Users shown in a root's `participants`.
pub const SHOWN_PARTICIPANTS: usize = 5;

/// One of the first users to reply in a thread, with the thread's totals (a row of the
/// store's thread summary).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplierRow {
    /// The thread's root.
    pub root_id: Uuid,
    /// A user who replied.
    pub sender_id: Uuid,
    /// That user's place among the thread's repliers (1 = first to reply).
    pub n: i64,
    /// Replies in the thread.
    pub total: i64,
    /// Time of the thread's newest reply.
    pub last_at: DateTime<Utc>,
}

/// What a root shows of its thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadSummary {
    /// Replies.
    pub reply_count: u32,
    /// Time of the newest reply.
    pub last_reply_at: Option<DateTime<Utc>>,
    /// The first repliers, in the order they first replied.
    pub participants: Vec<Uuid>,
}

impl ThreadSummary {
    /// Puts the summary on its root's view.
    pub fn apply(self, view: &mut MessageView) {
        view.reply_count = self.reply_count;
        view.last_reply_at = self.last_reply_at.map(timestamp);
        view.participants = self.participants;
    }
}

/// The store's rows as one summary per root (roots nobody replied to are absent).
#[must_use]
pub fn summarize(mut rows: Vec<ReplierRow>) -> HashMap<Uuid, ThreadSummary> {
    rows.sort_by_key(|r| (r.root_id, r.n));
    let mut out: HashMap<Uuid, ThreadSummary> = HashMap::new();
    for row in rows {
        let summary = out.entry(row.root_id).or_default();
        summary.reply_count = u32::try_from(row.total).unwrap_or(u32::MAX);
        summary.last_reply_at = Some(row.last_at);
        if summary.participants.len() < SHOWN_PARTICIPANTS {
            summary.participants.push(row.sender_id);
        }
    }
    out
}

/// The answer of `PUT` / `DELETE /api/messages/{id}/follow`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowView {
    /// The thread's root.
    pub message_id: Uuid,
    /// Whether the caller follows it now.
    pub following: bool,
}

/// A followed thread, as `GET /api/threads` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowedThreadView {
    /// The root, with its counts.
    pub root: MessageView,
    /// Its channel or conversation.
    pub channel_id: Uuid,
    /// Replies.
    pub reply_count: u32,
    /// Time of the newest reply.
    #[schema(required = true, format = DateTime)]
    pub last_reply_at: Option<String>,
    /// The caller's marker in the thread and its counts.
    #[serde(flatten)]
    pub read: super::read::ReadState,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(root: u128, sender: u128, n: i64, total: i64) -> ReplierRow {
        ReplierRow {
            root_id: Uuid::from_u128(root),
            sender_id: Uuid::from_u128(sender),
            n,
            total,
            last_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn participants_keep_the_order_of_first_replies_and_stop_at_five() {
        let rows = vec![
            row(1, 30, 3, 9),
            row(1, 10, 1, 9),
            row(2, 99, 1, 1),
            row(1, 20, 2, 9),
        ];
        let by_root = summarize(rows);
        let one = &by_root[&Uuid::from_u128(1)];
        assert_eq!(one.reply_count, 9);
        assert_eq!(one.participants, [10, 20, 30].map(Uuid::from_u128).to_vec());
        assert_eq!(by_root[&Uuid::from_u128(2)].reply_count, 1);
        let many = summarize((1..=7u8).map(|n| row(3, n.into(), n.into(), 7)).collect());
        assert_eq!(many[&Uuid::from_u128(3)].participants.len(), 5);
    }
}
