//! One error type for the whole API: the closed catalogue of API.md §2.
//!
//! Every variant maps to exactly one status and code in [`AppError::status_and_code`]
//! (a `match` without a wildcard, so a new variant forces a decision). The response
//! body never says anything internal; the cause of a 500 or 503 travels in a response
//! extension to the logging middleware, which writes it inside the request's span.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::middleware::{rate_limit, request_id};

/// One failing field of a request, as listed in `error.details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name as the client spells it (camelCase).
    pub field: String,
    /// What is wrong with it, in words a user can act on.
    pub message: String,
}

impl FieldError {
    /// A failing field.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every error the API can answer with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No token came with a protected request.
    #[error("authentication required")]
    AuthRequired,
    /// The token is malformed, forged, of another algorithm or revoked.
    #[error("invalid token")]
    InvalidToken,
    /// The token's `exp` has passed.
    #[error("token expired")]
    TokenExpired,
    /// Unknown user or wrong password (one answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Fields that break the rules.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// The body is not JSON, or not declared as JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The caller is not a member of the channel.
    #[error("not a channel member")]
    NotChannelMember,
    /// A private channel the caller is not in.
    #[error("private channel")]
    PrivateChannel,
    /// The caller may not change this message.
    #[error("not the message owner")]
    NotMessageOwner,
    /// The caller did not upload this file.
    #[error("not the file owner")]
    NotFileOwner,
    /// The caller's channel role is too low.
    #[error("insufficient role")]
    InsufficientRole,
    /// No such user.
    #[error("user not found")]
    UserNotFound,
    /// No such channel.
    #[error("channel not found")]
    ChannelNotFound,
    /// No such message.
    #[error("message not found")]
    MessageNotFound,
    /// No such file.
    #[error("file not found")]
    FileNotFound,
    /// The file is attached to a message and cannot be deleted on its own.
    #[error("file attached to a message")]
    FileAttached,
    /// A per-channel or per-message cap is reached; the message names it.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// A `Range` that starts past the end of the file (its size, for `Content-Range`).
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// The file's size in bytes.
        size: u64,
    },
    /// No such route.
    #[error("route not found")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Username or email already taken.
    #[error("user exists")]
    UserExists,
    /// Channel name already taken.
    #[error("channel exists")]
    ChannelExists,
    /// Too many requests; try again after this many seconds.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until a request would be allowed again.
        retry_after: u64,
        /// The budget that was exceeded (events per window).
        limit: u64,
    },
    /// The request body is over the limit (bytes).
    #[error("payload too large")]
    PayloadTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The request body did not arrive whole within `BODY_TIMEOUT` (milliseconds).
    #[error("request body timed out")]
    RequestTimeout {
        /// The limit that passed.
        limit_ms: u128,
    },
    /// An uploaded file is over `MAX_FILE_SIZE`.
    #[error("file too large")]
    FileTooLarge,
    /// An uploaded file is of a type we do not accept.
    #[error("unsupported file type")]
    UnsupportedFileType,
    /// The database or Redis cannot be reached (cause kept for the log).
    #[error("service unavailable: {0}")]
    ServiceUnavailable(String),
    /// Anything else (cause kept for the log).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The internal cause of an error response, for the logging middleware.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub Arc<str>);

impl AppError {
    /// An internal fault with its cause (logged, never sent).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// A validation error on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The HTTP status and the contract's code.
    #[must_use]
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::AuthRequired => (StatusCode::UNAUTHORIZED, "AUTH_REQUIRED"),
            Self::InvalidToken => (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
            Self::TokenExpired => (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS"),
            Self::Validation(_) => (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "INVALID_JSON"),
            Self::NotChannelMember => (StatusCode::FORBIDDEN, "NOT_CHANNEL_MEMBER"),
            Self::PrivateChannel => (StatusCode::FORBIDDEN, "PRIVATE_CHANNEL"),
            Self::NotMessageOwner => (StatusCode::FORBIDDEN, "NOT_MESSAGE_OWNER"),
            Self::NotFileOwner => (StatusCode::FORBIDDEN, "NOT_FILE_OWNER"),
            Self::InsufficientRole => (StatusCode::FORBIDDEN, "INSUFFICIENT_ROLE"),
            Self::UserNotFound => (StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
            Self::ChannelNotFound => (StatusCode::NOT_FOUND, "CHANNEL_NOT_FOUND"),
            Self::MessageNotFound => (StatusCode::NOT_FOUND, "MESSAGE_NOT_FOUND"),
            Self::FileNotFound => (StatusCode::NOT_FOUND, "FILE_NOT_FOUND"),
            Self::FileAttached => (StatusCode::CONFLICT, "FILE_ATTACHED"),
            Self::LimitReached(_) => (StatusCode::CONFLICT, "LIMIT_REACHED"),
            Self::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_NOT_SATISFIABLE")
            }
            Self::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            Self::UserExists => (StatusCode::CONFLICT, "USER_EXISTS"),
            Self::ChannelExists => (StatusCode::CONFLICT, "CHANNEL_EXISTS"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::RequestTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT"),
            Self::FileTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "FILE_TOO_LARGE"),
            Self::UnsupportedFileType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_FILE_TYPE")
            }
            Self::ServiceUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        }
    }

    /// The message a client sees: never an internal detail.
    #[must_use]
    pub fn public_message(&self) -> String {
        match self {
            Self::AuthRequired => "Authentication required".into(),
            Self::InvalidToken => "Invalid or revoked token".into(),
            Self::TokenExpired => "Token has expired".into(),
            Self::InvalidCredentials => "Invalid email/username or password".into(),
            Self::Validation(_) => "Validation failed".into(),
            Self::InvalidJson(why) => format!("Request body is not valid JSON: {why}"),
            Self::NotChannelMember => "You are not a member of this channel".into(),
            Self::PrivateChannel => "This channel is private".into(),
            Self::NotMessageOwner => "You cannot change this message".into(),
            Self::NotFileOwner => "You did not upload this file".into(),
            Self::InsufficientRole => "Your role in this channel does not allow this".into(),
            Self::UserNotFound => "User not found".into(),
            Self::ChannelNotFound => "Channel not found".into(),
            Self::MessageNotFound => "Message not found".into(),
            Self::FileNotFound => "File not found".into(),
            Self::FileAttached => {
                "This file is attached to a message; delete the message instead".into()
            }
            Self::LimitReached(what) => what.clone(),
            Self::RangeNotSatisfiable { size } => {
                format!("The requested range starts past the end of the file ({size} bytes)")
            }
            Self::NotFound => "Route not found".into(),
            Self::MethodNotAllowed => "Method not allowed on this route".into(),
            Self::UserExists => "Username or email is already taken".into(),
            Self::ChannelExists => "A channel with this name already exists".into(),
            Self::RateLimited { retry_after, .. } => {
                format!("Too many requests, try again in {retry_after} s")
            }
            Self::PayloadTooLarge { limit } => {
                format!("Request body is larger than the limit of {limit} bytes")
            }
            Self::RequestTimeout { limit_ms } => {
                format!("Request body did not arrive within {limit_ms} ms")
            }
            Self::FileTooLarge => "File is larger than the upload limit".into(),
            Self::UnsupportedFileType => "File type is not allowed".into(),
            Self::ServiceUnavailable(_) => "Service temporarily unavailable".into(),
            Self::Internal(_) => "Internal server error".into(),
        }
    }

    /// The error object of the envelope (`{code, message, details?, requestId?}`).
    #[must_use]
    pub fn body(&self) -> serde_json::Value {
        let (status, code) = self.status_and_code();
        let mut error = json!({ "code": code, "message": self.public_message() });
        if let Self::Validation(details) = self {
            error["details"] = json!(details);
        }
        if status.is_server_error()
            && let Some(id) = request_id::current()
        {
            error["requestId"] = json!(id);
        }
        json!({ "success": false, "error": error })
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Self::RateLimited { retry_after, limit } = self {
            // The budget that refused it, so a client can tell which one it hit.
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            rate_limit::set_headers(headers, limit, 0, retry_after);
        }
        if let Self::RangeNotSatisfiable { size } = self {
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            );
        }
        if status.is_server_error() {
            response
                .extensions_mut()
                .insert(ErrorCause(Arc::from(self.to_string())));
        }
        response
    }
}

/// Whether a database error is the storage's or the server's state, not the request's nor
/// a bug: then the answer is 503 and the same request may succeed later.
///
/// SQLite (primary result codes): see [`sqlite_unavailable`].
/// PostgreSQL (SQLSTATE): connection exceptions (`08…`), insufficient resources (`53…`, a full
/// disk is `53100`), operator intervention (`57P…`: shutdown, cannot connect now), system
/// errors (`58…`), and a read-only transaction (`25006`, a standby).
fn storage_unavailable(db: &dyn sqlx::error::DatabaseError) -> bool {
    let code = db.code();
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return code
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(sqlite_unavailable);
    }
    code.is_some_and(|c| {
        c.starts_with("08")
            || c.starts_with("53")
            || c.starts_with("57P")
            || c.starts_with("58")
            || c == "25006"
    })
}

/// A SQLite result code (primary or extended) that is the storage's state: BUSY and LOCKED
/// (gave up waiting for a lock: overloaded, not broken), READONLY, IOERR, FULL, CANTOPEN.
fn sqlite_unavailable(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::BeginFailed
            | sqlx::Error::InvalidSavePointStatement => {
                Self::ServiceUnavailable(format!("database: {e}"))
            }
            sqlx::Error::Database(db) if storage_unavailable(db.as_ref()) => {
                Self::ServiceUnavailable(format!("database: {db}"))
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(failure, _)
                if sqlite_unavailable(failure.extended_code) =>
            {
                Self::ServiceUnavailable(format!("database: {e}"))
            }
            _ => Self::Internal(format!("database: {e}")),
        }
    }
}

impl From<redis::RedisError> for AppError {
    fn from(e: redis::RedisError) -> Self {
        Self::ServiceUnavailable(format!("redis: {e}"))
    }
}

/// Result type of services and handlers.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_writer_that_gives_up_waiting_is_503_not_500() {
        use sqlx::ConnectOptions;
        let dir = std::env::temp_dir().join(format!("chai-busy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("busy.db"))
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::ZERO);
        let mut holder = options.connect().await.unwrap();
        let mut waiter = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut holder)
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let e = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut waiter)
            .await
            .unwrap_err();
        let e = AppError::from(e);
        assert!(matches!(e, AppError::ServiceUnavailable(_)), "{e:?}");
        // Other database errors stay internal.
        let e = AppError::from(
            sqlx::query("SELECT nope FROM t")
                .execute(&mut waiter)
                .await
                .unwrap_err(),
        );
        assert!(matches!(e, AppError::Internal(_)), "{e:?}");
        drop((holder, waiter));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn validation_errors_list_every_field() {
        let e = AppError::Validation(vec![
            FieldError::new("email", "must be a valid email address"),
            FieldError::new("password", "must be 8 to 72 bytes"),
        ]);
        let body = e.body();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(body["error"]["details"][1]["field"], "password");
    }

    #[test]
    fn internal_causes_stay_out_of_the_body() {
        let e = AppError::internal("constraint users_pkey on 10.0.0.5 failed");
        let text = e.body().to_string();
        assert!(!text.contains("10.0.0.5"), "{text}");
        assert!(text.contains("INTERNAL_ERROR"));
    }
}
