//! `GET /api/search` (docs/api.md, "Search").

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::channels::query;
use super::{ok, openapi};
use crate::error::{AppError, FieldError};
use crate::models::page::{CursorKind, decode_cursor_shaped, parse_limit};
use crate::models::parse_id;
use crate::models::search::{SearchQuery, parse_time};
use crate::services::auth::AuthUser;
use crate::services::search::{self, Search};
use crate::state::AppState;

/// Results per page when `limit` is not given.
const DEFAULT_LIMIT: u32 = 20;

/// The query string of `GET /api/search`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchParams {
    q: Option<String>,
    channel_id: Option<String>,
    from: Option<String>,
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl SearchParams {
    /// The search these parameters ask for; every malformed one named at once.
    fn parse(self) -> Result<Search, AppError> {
        let mut errors = Vec::new();
        let mut field = |name: &str, e: String| errors.push(FieldError::new(name, e));
        let query = SearchQuery::parse(self.q.as_deref().unwrap_or_default())
            .map_err(|e| field("q", e))
            .ok();
        let channel = self
            .channel_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .and_then(|c| {
                let id = parse_id(c);
                if id.is_none() {
                    field("channelId", "must be a channel id".into());
                }
                id
            });
        let from = self
            .from
            .as_deref()
            .map(|f| f.trim().trim_start_matches('@').to_lowercase())
            .filter(|f| !f.is_empty());
        let mut time = |name: &str, raw: Option<&str>| {
            raw.filter(|r| !r.is_empty())
                .and_then(|r| parse_time(r).map_err(|e| field(name, e)).ok())
        };
        let before = time("before", self.before.as_deref());
        let after = time("after", self.after.as_deref());
        let limit = match self.limit.as_deref() {
            None | Some("") => Ok(DEFAULT_LIMIT),
            raw => parse_limit(raw),
        };
        let cursor = self
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                decode_cursor_shaped(CursorKind::Search, c, |k| k.parse::<u128>().is_ok())
                    .map(|k| k.parse::<u128>().unwrap_or_default())
            })
            .transpose();
        if let Err(AppError::Validation(e)) = &limit {
            errors.extend(e.iter().cloned());
        }
        if let Err(AppError::Validation(e)) = &cursor {
            errors.extend(e.iter().cloned());
        }
        match (query, limit, cursor) {
            (Some(query), Ok(limit), Ok(cursor)) if errors.is_empty() => Ok(Search {
                query,
                channel,
                from,
                before,
                after,
                cursor,
                limit,
            }),
            _ => Err(AppError::Validation(errors)),
        }
    }
}

/// `GET /api/search?q=&channelId=&from=&before=&after=&limit&cursor`.
#[utoipa::path(
    get,
    path = "/search",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("q" = String, Query, description = "Words (all must match, each a case-insensitive substring), \"a phrase\", prefix*, from:username, in:channel-name; 1-500 characters with a term of at least 2 characters or a filter", max_length = 500, pattern = "[^\\s\"*][^\\s\"*]"),
        ("channelId" = Option<String>, Query, description = "Only this channel or DM", format = Uuid),
        ("from" = Option<String>, Query, description = "Only messages of this username"),
        ("before" = Option<String>, Query, description = "Sent before: an RFC 3339 time, or a date (2026-12-01, its 00:00 UTC)", format = DateTime),
        ("after" = Option<String>, Query, description = "Sent at or after: an RFC 3339 time, or a date (2026-12-01, its 00:00 UTC)", format = DateTime),
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 20", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this search"),
    ),
    responses(
        (status = 200, description = "Messages the caller may read that match, newest first, with the matched ranges", body = openapi::Envelope<search::SearchPage>),
        (status = 400, description = "VALIDATION_ERROR on q, channelId, before, after, limit or cursor", body = openapi::ErrorEnvelope),
    )
)]
pub async fn search_messages(
    State(state): State<AppState>,
    auth: AuthUser,
    q: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let search = query(q)?.parse()?;
    let page = search::search(&state, &auth, search).await?;
    Ok(ok(
        json!({ "results": page.results, "pagination": page.pagination }),
    ))
}
