//! Extractors that turn bad input into the contract's errors before a handler runs.
//!
//! - [`JsonObject`]: the body must be declared as JSON (`INVALID_JSON` otherwise), parse
//!   (`INVALID_JSON`), fit the limit (`PAYLOAD_TOO_LARGE`) and be an object
//!   (`VALIDATION_ERROR`). Handlers then read typed fields from it with [`Fields`], which
//!   collects every wrong field so a client learns about all of them at once.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

use crate::error::{AppError, FieldError};

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

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
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
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            AppError::InvalidJson(format!(
                "{} at line {} column {}",
                describe(&e),
                e.line(),
                e.column()
            ))
        })?;
        match value {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(AppError::field("body", "must be a JSON object")),
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

/// Reads typed fields out of a JSON object, collecting every problem.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// Starts reading `body`.
    #[must_use]
    pub fn new(JsonObject(map): JsonObject) -> Self {
        Self {
            map,
            errors: Vec::new(),
        }
    }

    /// Records a problem with `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// An optional string field; `null` counts as absent.
    pub fn opt_string(&mut self, field: &str) -> Option<String> {
        match self.map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    /// A required string field.
    pub fn string(&mut self, field: &str) -> Option<String> {
        let present = matches!(self.map.get(field), Some(v) if !v.is_null());
        let value = self.opt_string(field);
        if !present {
            self.error(field, "is required");
        }
        value
    }

    /// A required string field run through `parse`; failures are recorded under `field`.
    pub fn required<T>(
        &mut self,
        field: &str,
        parse: impl FnOnce(String) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.string(field)?;
        self.check(field, parse(raw))
    }

    /// An optional string field run through `parse`.
    pub fn optional<T>(
        &mut self,
        field: &str,
        parse: impl FnOnce(String) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.opt_string(field)?;
        self.check(field, parse(raw))
    }

    /// A field that may be absent (`None`), `null` (`Some(None)`) or a string run through
    /// `parse` (`Some(Some(value))`).
    pub fn nullable<T>(
        &mut self,
        field: &str,
        parse: impl FnOnce(String) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.map.get(field) {
            None => None,
            Some(Value::Null) => {
                self.map.remove(field);
                Some(None)
            }
            Some(_) => self.optional(field, parse).map(Some),
        }
    }

    fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(field, message);
                None
            }
        }
    }

    /// An optional boolean field.
    pub fn opt_bool(&mut self, field: &str) -> Option<bool> {
        match self.map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                self.error(field, "must be true or false");
                None
            }
        }
    }

    /// An optional list of strings.
    pub fn opt_string_list(&mut self, field: &str) -> Option<Vec<String>> {
        match self.map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => out.push(s),
                        _ => {
                            self.error(field, "must be a list of strings");
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.error(field, "must be a list of strings");
                None
            }
        }
    }

    /// An optional list of attachments: file keys, or file objects with a `key`.
    pub fn attachment_keys(&mut self, field: &str) -> Option<Vec<String>> {
        let items = match self.map.remove(field) {
            None | Some(Value::Null) => return None,
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.error(field, "must be a list of file keys");
                return None;
            }
        };
        if items.len() > 10 {
            self.error(field, "must list at most 10 files");
            return None;
        }
        let keys: Option<Vec<String>> = items
            .into_iter()
            .map(|item| match item {
                Value::String(key) => Some(key),
                Value::Object(mut file) => match file.remove("key") {
                    Some(Value::String(key)) => Some(key),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        if keys.is_none() {
            self.error(field, "must be a list of file keys");
        }
        keys
    }

    /// Whether any field failed so far.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `Ok(value)` when no field failed, else every failure at once.
    ///
    /// # Errors
    /// `VALIDATION_ERROR` listing each failing field.
    pub fn finish<T>(self, value: T) -> Result<T, AppError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(AppError::Validation(self.errors))
        }
    }
}
