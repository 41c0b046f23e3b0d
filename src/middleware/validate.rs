//! Extractors that turn bad input into the contract's errors before a handler runs.
//!
//! - [`JsonObject`]: the body must be declared as JSON (`INVALID_JSON` otherwise), parse
//!   (`INVALID_JSON`), fit the limit (`PAYLOAD_TOO_LARGE`) and be an object
//!   (`VALIDATION_ERROR`). Handlers then read it with the model input types
//!   ([`crate::models::input`]), which the socket handlers share. `Option<JsonObject>`
//!   also takes a request with no body at all.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

use crate::error::AppError;

/// Largest JSON body accepted on REST routes, in bytes.
///
/// 64 KiB holds the longest message (4,000 characters, even when every one is a
/// `\uXXXX\uXXXX` escape) with room for attachments, and matches the Socket.IO packet limit.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// A JSON object body.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

fn is_json_content_type(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body as JSON: declared as JSON, within the limit, and parsed.
async fn json_value<S: Send + Sync>(req: Request, state: &S) -> Result<Value, AppError> {
    if !is_json_content_type(&req) {
        return Err(AppError::InvalidJson(
            "the Content-Type header must be application/json".into(),
        ));
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            AppError::PayloadTooLarge {
                limit: JSON_BODY_LIMIT,
            }
        }
        other => AppError::InvalidJson(other.body_text()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        AppError::InvalidJson(format!(
            "{} at line {} column {}",
            describe(&e),
            e.line(),
            e.column()
        ))
    })
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match json_value(req, state).await? {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(AppError::field("body", "must be a JSON object")),
        }
    }
}

/// A body that may be left out: no body at all (no `Content-Type`, no bytes) or a JSON
/// `null` is `None`; anything else is read as a [`JsonObject`], with its errors.
impl<S: Send + Sync> axum::extract::OptionalFromRequest<S> for JsonObject {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return match json_value(req, state).await? {
                Value::Null => Ok(None),
                Value::Object(map) => Ok(Some(Self(map))),
                _ => Err(AppError::field("body", "must be a JSON object")),
            };
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| AppError::InvalidJson(e.body_text()))?;
        if bytes.is_empty() {
            Ok(None)
        } else {
            Err(AppError::InvalidJson(
                "the Content-Type header must be application/json".into(),
            ))
        }
    }
}

fn describe(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Io => "unreadable body",
        serde_json::error::Category::Syntax | serde_json::error::Category::Data => "syntax error",
    }
}
