//! The audit log (docs/api.md, "Audit log"): who may read it, and its retention. Entries
//! are written by the store with the change they record (see `models::audit`).

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::audit::{AuditQuery, AuditView};
use crate::models::page::{CursorKind, Pagination};
use crate::services::Services;
use crate::services::auth::AuthUser;

/// How often entries past retention are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// A page of entries, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditView>,
    /// More, older?
    pub pagination: Pagination,
}

/// Whether `username` is one of the server's admins (`ADMIN_USERNAMES`).
#[must_use]
pub fn is_admin(services: &Services, username: &str) -> bool {
    let name = username.to_lowercase();
    services.admin_usernames.contains(&name)
}

async fn page(services: &Services, mut query: AuditQuery) -> Result<AuditPage, AppError> {
    let limit = query.limit;
    query.limit = limit + 1;
    let mut rows = services.store.list_audit(&query).await?;
    let pagination = Pagination::cut(&mut rows, limit, CursorKind::Audit, |r| r.id.to_string());
    Ok(AuditPage {
        entries: rows.into_iter().map(AuditView::from).collect(),
        pagination,
    })
}

/// A channel's entries, for its owner and admins and the server's admins.
///
/// # Errors
/// `CHANNEL_NOT_FOUND` (a direct conversation too), `PRIVATE_CHANNEL`,
/// `NOT_CHANNEL_MEMBER`, `INSUFFICIENT_ROLE`.
pub async fn of_channel(
    services: &Services,
    auth: &AuthUser,
    channel: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> Result<AuditPage, AppError> {
    let row = super::channels::load_channel(services, channel, auth.user.id).await?;
    if !is_admin(services, &auth.user.username) {
        row.check_manager()?;
    }
    page(
        services,
        AuditQuery {
            before,
            channel: Some(channel),
            limit,
            ..AuditQuery::default()
        },
    )
    .await
}

/// Every entry `query` asks for, for the server's admins.
///
/// # Errors
/// `INSUFFICIENT_ROLE` for anyone else.
pub async fn all(
    services: &Services,
    auth: &AuthUser,
    query: AuditQuery,
) -> Result<AuditPage, AppError> {
    if !is_admin(services, &auth.user.username) {
        return Err(AppError::InsufficientRole);
    }
    page(services, query).await
}

/// Deletes the entries older than `retention`, now and once an hour, while the services
/// live.
pub fn spawn_sweeper(services: &Services, retention: Duration) {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    services.every(SWEEP_EVERY, move |services| async move {
        let Some(before) = Utc::now().checked_sub_signed(retention) else {
            return;
        };
        match services.store.delete_audit_before(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "swept audit entries past retention"),
            Err(e) => tracing::warn!(error = %e, "audit sweep failed; will retry"),
        }
    });
}
