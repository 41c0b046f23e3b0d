//! Read markers and unread counts (docs/api.md, "Read markers and unread counts"): the
//! store's rows and what clients see of them.

use serde::Serialize;
use uuid::Uuid;

/// Counts stop here: `1000` means "1,000 or more".
pub const MAX_COUNT: u32 = 1000;

/// A member's read state in one channel, DM or thread, as the store reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReadRow {
    /// The channel's id, or the thread's root's.
    pub id: Uuid,
    /// The channel (of the thread).
    pub channel_id: Uuid,
    /// A direct conversation.
    pub is_dm: bool,
    /// The newest message read; `None` when nothing was.
    pub last_read_id: Option<Uuid>,
    /// Messages after the marker that count (not capped).
    pub unread: i64,
    /// Those that mention the reader (the store stops counting at [`MAX_COUNT`]).
    pub mentions: i64,
    /// The newest message's id (the channel's, or the root's when it has no message yet):
    /// the newest activity sorts first.
    pub activity: Uuid,
}

/// What a badge shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Unread messages, at most 1000 ("1000+").
    pub unread_count: u32,
    /// Unread messages that mention the reader, at most 1000.
    pub mention_count: u32,
}

impl Counts {
    /// A row's counts, capped.
    #[must_use]
    pub fn of(row: &ReadRow) -> Self {
        let cap = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX).min(MAX_COUNT);
        Self {
            unread_count: cap(row.unread),
            mention_count: cap(row.mentions),
        }
    }
}

/// A channel's or DM's read state (`POST /api/channels/{id}/read`, `channel:read`,
/// `GET /api/unreads`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRead {
    /// The channel or DM.
    pub channel_id: Uuid,
    /// A direct conversation.
    pub is_dm: bool,
    /// The newest message read; null when nothing was.
    #[schema(required = true)]
    pub last_read_id: Option<Uuid>,
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
}

impl From<&ReadRow> for ChannelRead {
    fn from(row: &ReadRow) -> Self {
        Self {
            channel_id: row.id,
            is_dm: row.is_dm,
            last_read_id: row.last_read_id,
            counts: Counts::of(row),
        }
    }
}

/// A thread's read state (`POST /api/messages/{id}/thread/read`, `thread:read`,
/// `GET /api/unreads`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadRead {
    /// The thread's root.
    pub root_id: Uuid,
    /// Its channel or DM.
    pub channel_id: Uuid,
    /// The newest reply read; null when none was.
    #[schema(required = true)]
    pub last_read_id: Option<Uuid>,
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
}

impl From<&ReadRow> for ThreadRead {
    fn from(row: &ReadRow) -> Self {
        Self {
            root_id: row.id,
            channel_id: row.channel_id,
            last_read_id: row.last_read_id,
            counts: Counts::of(row),
        }
    }
}

/// The marker and counts a listed conversation carries (flattened into it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadState {
    /// The newest message read; null when nothing was.
    #[schema(required = true)]
    pub last_read_id: Option<Uuid>,
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
}

impl From<&ReadRow> for ReadState {
    fn from(row: &ReadRow) -> Self {
        Self {
            last_read_id: row.last_read_id,
            counts: Counts::of(row),
        }
    }
}

/// A member's marker and counts on a channel or DM object where the caller's state shows
/// (flattened into it; every field left out where it does not show).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaybeRead {
    /// The newest message read; null when nothing was. Only where the counts show.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Uuid>)]
    pub last_read_id: Option<Option<Uuid>>,
    /// Unread messages, at most 1000 ("1000+").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<u32>,
    /// Unread messages that mention the caller, at most 1000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mention_count: Option<u32>,
}

impl From<Option<ReadState>> for MaybeRead {
    fn from(read: Option<ReadState>) -> Self {
        read.map_or_else(Self::default, |r| Self {
            last_read_id: Some(r.last_read_id),
            unread_count: Some(r.counts.unread_count),
            mention_count: Some(r.counts.mention_count),
        })
    }
}

/// Everything unread (`GET /api/unreads`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unreads {
    /// Over every channel, DM and followed thread (each adding at most 1000).
    #[serde(flatten)]
    pub totals: Counts,
    /// The channels and DMs with something unread, the newest activity first.
    pub channels: Vec<ChannelRead>,
    /// The followed threads with something unread, the newest activity first.
    pub threads: Vec<ThreadRead>,
}

impl Unreads {
    /// The totals and lists from the store's rows of channels and of threads.
    #[must_use]
    pub fn new(mut channels: Vec<ReadRow>, mut threads: Vec<ReadRow>) -> Self {
        let mut totals = Counts::default();
        for row in channels.iter().chain(&threads) {
            let counts = Counts::of(row);
            totals.unread_count = totals.unread_count.saturating_add(counts.unread_count);
            totals.mention_count = totals.mention_count.saturating_add(counts.mention_count);
        }
        let unread = |r: &ReadRow| {
            let c = Counts::of(r);
            c.unread_count > 0 || c.mention_count > 0
        };
        channels.retain(unread);
        threads.retain(unread);
        channels.sort_by_key(|r| std::cmp::Reverse(r.activity));
        threads.sort_by_key(|r| std::cmp::Reverse(r.activity));
        Self {
            totals,
            channels: channels.iter().map(ChannelRead::from).collect(),
            threads: threads.iter().map(ThreadRead::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(unread: i64, mentions: i64, activity: u128) -> ReadRow {
        ReadRow {
            id: Uuid::from_u128(activity),
            channel_id: Uuid::from_u128(activity),
            is_dm: false,
            last_read_id: None,
            unread,
            mentions,
            activity: Uuid::from_u128(activity),
        }
    }

    #[test]
    fn counts_stop_at_a_thousand_and_never_go_below_zero() {
        assert_eq!(
            Counts::of(&row(5_000_000, 1000, 1)),
            Counts {
                unread_count: 1000,
                mention_count: 1000
            }
        );
        assert_eq!(Counts::of(&row(-3, 0, 1)), Counts::default());
    }

    #[test]
    fn unreads_total_everything_and_list_what_is_unread_newest_first() {
        let unreads = Unreads::new(
            vec![row(2, 0, 1), row(0, 0, 2), row(1500, 1, 3)],
            vec![row(0, 0, 4), row(4, 2, 5)],
        );
        assert_eq!(
            unreads.totals,
            Counts {
                unread_count: 1006,
                mention_count: 3
            }
        );
        let channels: Vec<Uuid> = unreads.channels.iter().map(|c| c.channel_id).collect();
        assert_eq!(channels, [Uuid::from_u128(3), Uuid::from_u128(1)]);
        assert_eq!(unreads.threads.len(), 1);
    }
}
