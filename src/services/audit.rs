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

/// Warns of each name in `ADMIN_USERNAMES` that no account holds yet: whoever signs up
/// with it becomes a server admin. (A database that cannot be read now is the start-up's
/// other checks' business; nothing is said then.)
pub async fn warn_of_unclaimed_admins(services: &Services) {
    for name in &services.admin_usernames {
        if let Ok(None) = services.store.fetch_user_by_username(name).await {
            tracing::warn!(
                username = name.as_str(),
                "ADMIN_USERNAMES names an account that does not exist yet: whoever signs up with this name will be a server admin"
            );
        }
    }
}

/// Proof that the caller is one of the server's admins.
#[derive(Debug)]
pub struct ServerAdmin(());

/// The caller as a server admin.
///
/// # Errors
/// `INSUFFICIENT_ROLE` for anyone else.
pub fn server_admin(services: &Services, auth: &AuthUser) -> Result<ServerAdmin, AppError> {
    if is_admin(services, &auth.user.username) {
        Ok(ServerAdmin(()))
    } else {
        Err(AppError::InsufficientRole)
    }
}

/// A page of what `query` asks for; the clients' addresses only for a server admin.
async fn page(
    services: &Services,
    mut query: AuditQuery,
    admin: bool,
) -> Result<AuditPage, AppError> {
    let limit = query.limit;
    query.limit = limit + 1;
    let mut rows = services.store.list_audit(&query).await?;
    let pagination = Pagination::cut(&mut rows, limit, CursorKind::Audit, |r| r.id.to_string());
    let view = |row| {
        let view = AuditView::from(row);
        if admin { view } else { view.without_ip() }
    };
    Ok(AuditPage {
        entries: rows.into_iter().map(view).collect(),
        pagination,
    })
}

/// A channel's entries, for its owner and admins (without the clients' addresses) and the
/// server's admins.
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
    let admin = is_admin(services, &auth.user.username);
    if !admin {
        row.check_manager()?;
    }
    let query = AuditQuery {
        before,
        channel: Some(channel),
        limit,
        ..AuditQuery::default()
    };
    page(services, query, admin).await
}

/// Every entry `query` asks for, for the server's admins.
///
/// # Errors
/// The database cannot be reached.
pub async fn all(
    services: &Services,
    _admin: &ServerAdmin,
    query: AuditQuery,
) -> Result<AuditPage, AppError> {
    page(services, query, true).await
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
