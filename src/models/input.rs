//! Client input, shared by both doors: a REST body and a socket payload are both a JSON
//! object read through [`Fields`] (every wrong field reported at once), and each action's
//! input type parses itself from one, so the two doors cannot disagree on a rule.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{AppError, FieldError};
use crate::models::parse_id;

/// A socket payload as an object (`VALIDATION_ERROR` for anything else; a REST body was
/// checked by its extractor).
///
/// # Errors
/// `VALIDATION_ERROR` on `payload`.
pub fn payload_object<E>(payload: Result<Value, E>) -> Result<Fields, AppError> {
    match payload {
        Ok(Value::Object(map)) => Ok(Fields::new(map)),
        _ => Err(AppError::field("payload", "must be a JSON object")),
    }
}

/// Reads typed fields out of a JSON object, collecting every problem.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// Starts reading `map` (a REST body or a socket payload).
    #[must_use]
    pub fn new(map: Map<String, Value>) -> Self {
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

    /// A required id field: absent is recorded as `is required` (`Ok(None)`), anything but
    /// a UUID is `missing` — the error an unknown id gets, so a malformed id and an unknown
    /// one look alike to the client.
    ///
    /// # Errors
    /// `missing` for a malformed id.
    pub fn id(&mut self, field: &str, missing: AppError) -> Result<Option<Uuid>, AppError> {
        match self.string(field) {
            None => Ok(None),
            Some(raw) => parse_id(&raw).map(Some).ok_or(missing),
        }
    }

    /// An optional id field whose malformed value is a validation error on it (where the
    /// id says where to go, not which thing to act on: a read marker's `messageId`).
    pub fn opt_id(&mut self, field: &str) -> Option<Uuid> {
        self.optional(field, |raw| {
            parse_id(&raw).ok_or_else(|| "must be an id (a UUID)".to_owned())
        })
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
