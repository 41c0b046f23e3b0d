//! Accounts: signup, login, logout, and turning a token into an [`AuthUser`].

use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::audit::{Actor, NewAudit};
use crate::models::user::{DisplayName, Email, NewUser, Password, UserRow, Username};
use crate::services::Services;
use crate::services::tokens::VerifiedToken;
use crate::store::StoreError;

/// The signed-in caller: a verified, unrevoked token and the user it names.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The user as stored when the request came in.
    pub user: UserRow,
    /// The token the request carried.
    pub token: VerifiedToken,
    /// The client's address as the rate limits see it (`TRUSTED_PROXIES`), when known.
    pub ip: Option<std::net::IpAddr>,
}

impl AuthUser {
    /// The caller acting now, for the audit log.
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor::now(Some(self.user.id), self.ip)
    }
}

/// A parsed signup.
#[derive(Debug)]
pub struct Signup {
    /// Username.
    pub username: Username,
    /// Email.
    pub email: Email,
    /// Password.
    pub password: Password,
    /// Display name; the username when absent.
    pub display_name: Option<DisplayName>,
}

/// Who is logging in: by email or by username.
#[derive(Debug)]
pub enum LoginId {
    /// Lower-cased email.
    Email(String),
    /// Username, compared case-insensitively.
    Username(String),
}

/// A new session: the user and their token.
#[derive(Debug)]
pub struct Session {
    /// The user.
    pub user: UserRow,
    /// The signed token.
    pub token: String,
    /// When the token expires (unix seconds).
    pub expires_at: i64,
}

/// Creates an account and its first session.
///
/// # Errors
/// `USER_EXISTS` when the username or email is taken (decided by the unique indexes, so
/// two concurrent signups of one name cannot both win).
#[tracing::instrument(skip_all, fields(username = signup.username.as_str()))]
pub async fn signup(services: &Services, signup: Signup) -> Result<Session, AppError> {
    let password_hash = services.passwords.hash(signup.password).await?;
    let display_name = match signup.display_name {
        Some(name) => name,
        None => DisplayName::parse(signup.username.as_str()).map_err(AppError::internal)?,
    };
    let new = NewUser {
        id: Uuid::now_v7(),
        username: signup.username,
        email: signup.email,
        password_hash,
        display_name,
        created_at: Utc::now(),
    };
    let user = services
        .store
        .insert_user(&new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => AppError::UserExists,
            other => other.into(),
        })?;
    tracing::info!(user_id = %user.id, "account created");
    session(services, user)
}

/// Checks a password and opens a session. Unknown users and wrong passwords get the same
/// answer after about the same time.
///
/// # Errors
/// `INVALID_CREDENTIALS` for both.
pub async fn login(
    services: &Services,
    id: LoginId,
    password: String,
    ip: Option<std::net::IpAddr>,
) -> Result<Session, AppError> {
    let (user, login) = match &id {
        LoginId::Email(email) => (services.store.fetch_user_by_email(email).await?, email),
        LoginId::Username(name) => (services.store.fetch_user_by_username(name).await?, name),
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let by = Actor::now(user.as_ref().map(|u| u.id), ip);
    // Both answers write an entry, so they still take about the same time.
    let verified = services.passwords.verify(password, hash).await?;
    let Some(user) = user.filter(|_| verified) else {
        services
            .store
            .insert_audit(&NewAudit::login_failed(&by, login))
            .await?;
        return Err(AppError::InvalidCredentials);
    };
    // The token first: a login recorded is a login that happened.
    let session = session(services, user)?;
    services.store.insert_audit(&NewAudit::login(&by)).await?;
    Ok(session)
}

fn session(services: &Services, user: UserRow) -> Result<Session, AppError> {
    let (token, claims) = services.tokens.issue(user.id)?;
    Ok(Session {
        user,
        token,
        expires_at: claims.exp,
    })
}

/// Revokes the caller's token until it expires: in the database (survives a restart) and
/// in the revocation backend (seen by every node at once).
///
/// # Errors
/// The database or Redis cannot be reached.
pub async fn logout(services: &Services, auth: &AuthUser) -> Result<(), AppError> {
    services
        .store
        .insert_revocation(auth.token.jti, auth.token.exp, Some(&auth.actor()))
        .await?;
    services
        .backends
        .revocations
        .revoke(auth.token.jti, auth.token.exp)
        .await?;
    services
        .events
        .emit(crate::services::events::Event::TokenRevoked {
            jti: auth.token.jti,
        });
    tracing::info!(user_id = %auth.user.id, "logged out; token revoked");
    Ok(())
}

/// Users recently seen by [`authenticate`], so that a request costs no database round
/// trip for its caller. An entry lives [`UserCache::TTL`]; this node drops it at once when
/// the profile changes here, other nodes within the TTL.
#[derive(Debug, Default)]
pub struct UserCache {
    entries: std::sync::Mutex<std::collections::HashMap<Uuid, (UserRow, std::time::Instant)>>,
}

impl UserCache {
    /// How long a cached user is trusted.
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(5);
    /// Entries kept at most (the map is cleared past it).
    const MAX: usize = 100_000;

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, (UserRow, std::time::Instant)>>
    {
        // Every operation is one insert, lookup or remove: a poisoned map is still sound.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: Uuid) -> Option<UserRow> {
        self.lock()
            .get(&id)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(user, _)| user.clone())
    }

    fn put(&self, user: UserRow) {
        let mut map = self.lock();
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(user.id, (user, std::time::Instant::now()));
    }

    /// Forgets a user whose profile just changed.
    pub fn forget(&self, id: Uuid) {
        self.lock().remove(&id);
    }
}

/// Turns a token into the signed-in user.
///
/// # Errors
/// `TOKEN_EXPIRED`, or `INVALID_TOKEN` for a forged, revoked or orphaned token.
pub async fn authenticate(services: &Services, token: &str) -> Result<AuthUser, AppError> {
    let token = services.tokens.verify(token)?;
    if is_revoked(services, token.jti).await? {
        return Err(AppError::InvalidToken);
    }
    let user = match services.users.get(token.user_id) {
        Some(user) => user,
        None => {
            let user = services
                .store
                .fetch_user(token.user_id)
                .await?
                .ok_or(AppError::InvalidToken)?;
            services.users.put(user.clone());
            user
        }
    };
    Ok(AuthUser {
        user,
        token,
        ip: None,
    })
}

/// Whether a token id is revoked. The backend answers; one that lost its revocations (Redis
/// restarted empty) is filled again from the database first; when Redis cannot be reached,
/// the database answers (it holds every revocation too).
async fn is_revoked(services: &Services, jti: Uuid) -> Result<bool, AppError> {
    static RESTORING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    match services.backends.revocations.is_revoked(jti).await {
        Ok(Some(revoked)) => Ok(revoked),
        Ok(None) => {
            let _one_at_a_time = RESTORING.lock().await;
            if let Some(revoked) = services.backends.revocations.is_revoked(jti).await? {
                return Ok(revoked);
            }
            restore_revocations(services).await?;
            Ok(services
                .backends
                .revocations
                .is_revoked(jti)
                .await?
                .unwrap_or(true))
        }
        Err(e) => {
            tracing::warn!(error = %e, "revocations: Redis did not answer; asking the database");
            let now = Utc::now().timestamp();
            let live = services.store.list_revocations(now).await?;
            Ok(live.iter().any(|(id, _)| *id == jti))
        }
    }
}

/// Copies the revocations still in force from the database into the revocation backend
/// (after a restart, or a Redis that lost its keys) and purges expired ones.
///
/// # Errors
/// The database or Redis cannot be reached.
pub async fn restore_revocations(services: &Services) -> Result<usize, AppError> {
    let now = Utc::now().timestamp();
    let purged = services.store.delete_expired_revocations(now).await?;
    let live = services.store.list_revocations(now).await?;
    for (jti, exp) in &live {
        services.backends.revocations.revoke(*jti, *exp).await?;
    }
    services.backends.revocations.mark_restored().await?;
    tracing::info!(restored = live.len(), purged, "token revocations loaded");
    Ok(live.len())
}
