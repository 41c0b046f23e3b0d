//! Search (docs/api.md, "Search"): the store's indexes narrow the candidates, the matching
//! rule of [`crate::models::search`] judges each one and finds the ranges to highlight.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::message::MessageView;
use crate::models::page::{CursorKind, Pagination, encode_cursor};
use crate::models::search::{Match, SearchQuery, SearchRow, first_id_at};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::views;
use crate::store::SearchScan;

/// Candidates read after the first batch, per statement.
const BATCH: u32 = 500;

/// Candidates judged for one page at most: a query the index cannot narrow (only terms
/// of two characters) answers a shorter page, with `hasMore` and a cursor to go on, rather
/// than reading every message.
const MAX_CANDIDATES: usize = 5_000;

/// A search, parsed.
#[derive(Debug, Clone)]
pub struct Search {
    /// `q`.
    pub query: SearchQuery,
    /// `channelId`.
    pub channel: Option<Uuid>,
    /// `from` (a username, lower-cased, without `@`).
    pub from: Option<String>,
    /// `before`.
    pub before: Option<DateTime<Utc>>,
    /// `after`.
    pub after: Option<DateTime<Utc>>,
    /// Where the previous page stopped.
    pub cursor: Option<u128>,
    /// Results per page.
    pub limit: u32,
}

/// Where a result was said.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultChannel {
    /// Channel (or DM) id.
    pub id: Uuid,
    /// The channel's name; `null` for a DM.
    #[schema(required = true)]
    pub name: Option<String>,
    /// A DM.
    pub is_dm: bool,
}

/// One found message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    /// The message, as history shows it to the caller.
    pub message: MessageView,
    /// Where.
    pub channel: ResultChannel,
    /// The matched ranges of `message.content` (UTF-16 code units, in text order).
    pub matches: Vec<Match>,
}

/// A page of results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// Newest first.
    pub results: Vec<SearchResult>,
    /// More, older?
    pub pagination: Pagination,
}

/// The messages the caller may read that match `search`, newest first.
///
/// # Errors
/// The database cannot be reached.
pub async fn search(
    services: &Services,
    auth: &AuthUser,
    search: Search,
) -> Result<SearchPage, AppError> {
    let limit = search.limit as usize;
    let empty = SearchPage {
        results: Vec::new(),
        pagination: Pagination {
            has_more: false,
            next_cursor: None,
        },
    };
    // `from=` and `from:` together name one sender, or nobody.
    let sender = match (search.from, search.query.from.clone()) {
        (Some(a), Some(b)) if a != b => return Ok(empty),
        (a, b) => a.or(b),
    };
    let mut scan = SearchScan {
        reader: auth.user.id,
        texts: search.query.indexed_texts(),
        channel: search.channel,
        channel_name: search.query.channel.clone(),
        sender,
        id_before: search.before.map(first_id_at),
        id_from: search.after.map(first_id_at),
        after_key: search.cursor,
        limit: search.limit + 1,
    };
    let mut found: Vec<(SearchRow, Vec<Match>)> = Vec::new();
    let mut judged = 0;
    let mut last = None;
    let mut exhausted = false;
    'read: loop {
        let rows = services.store.search_messages(&scan).await?;
        let full = rows.len() == scan.limit as usize;
        for row in rows {
            judged += 1;
            last = Some(row.key);
            if let Some(matches) = search.query.matches(&row.message.content) {
                found.push((row, matches));
                if found.len() > limit {
                    break 'read;
                }
            }
        }
        if !full {
            exhausted = true;
            break;
        }
        if judged >= MAX_CANDIDATES {
            break;
        }
        scan.after_key = last;
        scan.limit = BATCH;
    }
    let more_found = found.len() > limit;
    found.truncate(limit);
    let next = if more_found {
        found.last().map(|(row, _)| row.key)
    } else if exhausted {
        None
    } else {
        last
    };
    let pagination = Pagination {
        has_more: next.is_some(),
        next_cursor: next.map(|key| encode_cursor(CursorKind::Search, &key.to_string())),
    };
    let (rows, matches): (Vec<SearchRow>, Vec<Vec<Match>>) = found.into_iter().unzip();
    let channels: Vec<ResultChannel> = rows
        .iter()
        .map(|r| ResultChannel {
            id: r.message.channel_id,
            name: (!r.is_dm).then(|| r.channel_name.clone()),
            is_dm: r.is_dm,
        })
        .collect();
    let mut messages: Vec<MessageView> = rows
        .into_iter()
        .map(|r| MessageView::from(r.message))
        .collect();
    views::for_reader(services, auth.user.id, &mut messages).await?;
    let results = messages
        .into_iter()
        .zip(channels)
        .zip(matches)
        .map(|((message, channel), matches)| SearchResult {
            message,
            channel,
            matches,
        })
        .collect();
    Ok(SearchPage {
        results,
        pagination,
    })
}
