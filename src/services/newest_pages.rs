//! The newest page of each channel's history, kept serialised: what every client asks for
//! when a channel opens. A page is stored with the [`HistoryVersion`] read before it was
//! built and served again only while the store reports the same version, so an edit,
//! delete or new message made through any node is seen by the next read on every node
//! (the version moves inside the write's own transaction on PostgreSQL; SQLite has one
//! process). Older pages (`before=`, `after=`) are read each time.
//!
//! Memory is bounded: past [`BUDGET`] bytes of pages, arbitrary pages are dropped (they
//! are rebuilt on their next read). Time is bounded too: a page older than [`MAX_AGE`] is
//! rebuilt, so a change that moves no version — one made during a rolling upgrade through
//! a node of the version before this one, or by hand in the database — shows within it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use uuid::Uuid;

use crate::store::HistoryVersion;

/// Bytes of serialised pages kept at most (about 4,000 pages of 50 messages).
pub const BUDGET: usize = 64 * 1024 * 1024;

/// How long a page is served at most.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// A kept page: its body as everyone sees it (every reaction's `me` false), and the
/// messages on it that have reactions — a reader who reacted to one of them gets the page
/// built for them instead.
#[derive(Debug, Clone)]
pub struct Kept {
    /// The serialised page.
    pub body: Bytes,
    /// Its messages that carry reactions.
    pub reacted: Arc<[Uuid]>,
}

impl Kept {
    /// A page none of whose messages has a reaction.
    #[must_use]
    pub fn plain(body: Bytes) -> Self {
        Self {
            body,
            reacted: Arc::from([]),
        }
    }
}

/// One channel's newest page.
struct Page {
    version: HistoryVersion,
    limit: u32,
    kept: Kept,
    built: Instant,
}

/// The pages, by channel.
#[derive(Default)]
pub struct NewestPages {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pages: HashMap<Uuid, Page>,
    bytes: usize,
}

impl NewestPages {
    /// The newest `limit` messages of `channel` as they were at `version`, if kept.
    pub fn get(&self, channel: Uuid, version: HistoryVersion, limit: u32) -> Option<Kept> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .pages
            .get(&channel)
            .filter(|page| {
                page.version == version && page.limit == limit && page.built.elapsed() < MAX_AGE
            })
            .map(|page| page.kept.clone())
    }

    /// Keeps the newest page of `channel`, built after `version` was read (replacing the
    /// one kept before).
    pub fn put(&self, channel: Uuid, version: HistoryVersion, limit: u32, kept: Kept) {
        if kept.body.len() > BUDGET / 16 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let size = kept.body.len();
        if let Some(old) = inner.pages.insert(
            channel,
            Page {
                version,
                limit,
                kept,
                built: Instant::now(),
            },
        ) {
            inner.bytes -= old.kept.body.len();
        }
        inner.bytes += size;
        while inner.bytes > BUDGET {
            let Some(victim) = inner.pages.keys().find(|k| **k != channel).copied() else {
                break;
            };
            if let Some(old) = inner.pages.remove(&victim) {
                inner.bytes -= old.kept.body.len();
            }
        }
    }

    /// Pages kept, and their bytes.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (inner.pages.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(channel: i64, everywhere: i64) -> HistoryVersion {
        HistoryVersion {
            channel,
            newest: None,
            everywhere,
        }
    }

    #[test]
    fn a_page_is_served_only_at_the_version_and_limit_it_was_built_for() {
        let pages = NewestPages::default();
        let channel = Uuid::now_v7();
        pages.put(
            channel,
            version(3, 1),
            50,
            Kept::plain(Bytes::from_static(b"[1]")),
        );
        assert_eq!(
            pages
                .get(channel, version(3, 1), 50)
                .map(|k| k.body)
                .as_deref(),
            Some(&b"[1]"[..])
        );
        assert!(pages.get(channel, version(4, 1), 50).is_none());
        assert!(pages.get(channel, version(3, 2), 50).is_none());
        assert!(pages.get(channel, version(3, 1), 20).is_none());
        assert!(pages.get(Uuid::now_v7(), version(3, 1), 50).is_none());
        let moved = HistoryVersion {
            newest: Some(Uuid::now_v7()),
            ..version(3, 1)
        };
        assert!(pages.get(channel, moved, 50).is_none());
        pages.put(
            channel,
            version(4, 1),
            50,
            Kept::plain(Bytes::from_static(b"[1,2]")),
        );
        assert_eq!(pages.size(), (1, 5));
    }

    #[test]
    fn pages_past_the_budget_are_dropped() {
        let pages = NewestPages::default();
        let body = Bytes::from(vec![b' '; BUDGET / 20]);
        let channels: Vec<Uuid> = (0..40).map(|_| Uuid::now_v7()).collect();
        for channel in &channels {
            pages.put(*channel, version(1, 1), 50, Kept::plain(body.clone()));
        }
        let (count, bytes) = pages.size();
        assert!(bytes <= BUDGET, "{bytes} bytes kept");
        assert_eq!(count, 20);
        let last = channels.last().copied().unwrap();
        assert!(pages.get(last, version(1, 1), 50).is_some());
        // Too large to keep at all.
        let huge = Bytes::from(vec![b' '; BUDGET / 8]);
        pages.put(Uuid::now_v7(), version(1, 1), 50, Kept::plain(huge));
        assert_eq!(pages.size().0, 20);
    }
}
