//! `GET /api/audit` and `GET /api/channels/{id}/audit` (docs/api.md, "Audit log").

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::channels::{channel_id, query};
use super::{PageQuery, ok, openapi};
use crate::error::{AppError, FieldError};
use crate::models::audit::{Action, AuditQuery};
use crate::models::page::{CursorKind, decode_id_cursor, parse_limit};
use crate::models::parse_id;
use crate::services::audit;
use crate::services::auth::AuthUser;
use crate::state::AppState;

/// The query string of `GET /api/audit`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditParams {
    limit: Option<String>,
    cursor: Option<String>,
    action: Option<String>,
    actor_id: Option<String>,
    channel_id: Option<String>,
}

impl AuditParams {
    /// The entries these parameters ask for; every malformed one named at once.
    fn parse(self) -> Result<AuditQuery, AppError> {
        let mut errors = Vec::new();
        let present = |raw: Option<String>| raw.filter(|r| !r.is_empty());
        let action = present(self.action).and_then(|raw| {
            let action = Action::parse(&raw);
            if action.is_none() {
                errors.push(FieldError::new(
                    "action",
                    "must be one of the audit log's actions, such as channel.created",
                ));
            }
            action
        });
        let mut id = |name: &str, raw: Option<String>| {
            present(raw).and_then(|raw| {
                let id = parse_id(&raw);
                if id.is_none() {
                    errors.push(FieldError::new(name, "must be an id"));
                }
                id
            })
        };
        let actor = id("actorId", self.actor_id);
        let channel = id("channelId", self.channel_id);
        let limit = parse_limit(self.limit.as_deref());
        let before = present(self.cursor)
            .map(|c| decode_id_cursor(CursorKind::Audit, &c))
            .transpose();
        for result in [limit.as_ref().err(), before.as_ref().err()] {
            if let Some(AppError::Validation(e)) = result {
                errors.extend(e.iter().cloned());
            }
        }
        match (limit, before) {
            (Ok(limit), Ok(before)) if errors.is_empty() => Ok(AuditQuery {
                before,
                action,
                actor,
                channel,
                limit,
            }),
            _ => Err(AppError::Validation(errors)),
        }
    }
}

/// `GET /api/audit?limit&cursor&action&actorId&channelId`.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this list"),
        ("action" = Option<String>, Query, description = "Only this action, such as member.removed"),
        ("actorId" = Option<String>, Query, description = "Only what this user did", format = Uuid),
        ("channelId" = Option<String>, Query, description = "Only what happened in this channel or conversation (deleted ones too)", format = Uuid),
    ),
    responses(
        (status = 200, description = "Every entry asked for, newest first", body = openapi::Envelope<audit::AuditPage>),
        (status = 400, description = "VALIDATION_ERROR on limit, cursor, action, actorId or channelId", body = openapi::ErrorEnvelope),
        (status = 403, description = "INSUFFICIENT_ROLE: not one of the server's admins (ADMIN_USERNAMES)", body = openapi::ErrorEnvelope),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    auth: AuthUser,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    // Who asks comes first: a non-admin hears 403 whatever the parameters.
    let admin = audit::server_admin(&state, &auth)?;
    let query = query(q)?.parse()?;
    let page = audit::all(&state, &admin, query).await?;
    Ok(ok(
        json!({ "entries": page.entries, "pagination": page.pagination }),
    ))
}

/// `GET /api/channels/{id}/audit?limit&cursor`.
#[utoipa::path(
    get,
    path = "/channels/{id}/audit",
    tag = "audit",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = Uuid, Path, description = "Channel id"),
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this list"),
    ),
    responses(
        (status = 200, description = "The channel's entries, newest first", body = openapi::Envelope<audit::AuditPage>),
        (status = 400, description = "VALIDATION_ERROR on limit or cursor", body = openapi::ErrorEnvelope),
        (status = 403, description = "PRIVATE_CHANNEL, NOT_CHANNEL_MEMBER or INSUFFICIENT_ROLE (neither owner nor admin)", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND (a direct conversation too)", body = openapi::ErrorEnvelope),
    )
)]
pub async fn channel_audit(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let id = channel_id(id)?;
    let (before, limit) = query(q)?.read(|c| decode_id_cursor(CursorKind::Audit, c))?;
    let page = audit::of_channel(&state, &auth, id, before, limit).await?;
    Ok(ok(
        json!({ "entries": page.entries, "pagination": page.pagination }),
    ))
}
