//! `/api/upload`, `/api/upload/multiple` and `/api/files/{key}` (API.md §7, docs/api.md
//! Files). Multipart bodies are read here as they stream in — each part spooled to a
//! temporary file, its size checked chunk by chunk — and handed to the files service whole.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{envelope, ok};
use crate::controllers::openapi;
use crate::error::AppError;
use crate::middleware::validate::JsonObject;
use crate::models::file::{FileName, FileView, Range};
use crate::models::file_type::FileType;
use crate::models::input::Fields;
use crate::services::auth::AuthUser;
use crate::services::files::{self, Incoming, Spool};
use crate::state::AppState;

/// Most files in one `/upload/multiple`.
pub const MAX_FILES: usize = 10;
/// Room for multipart framing (boundaries, part headers) beyond the files themselves.
const FRAMING: u64 = 64 * 1024;

/// `POST /api/upload`: one part named `file`.
#[utoipa::path(
    post,
    path = "/upload",
    tag = "files",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = openapi::UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = openapi::Envelope<openapi::FileData>),
        (status = 413, description = "FILE_TOO_LARGE", body = openapi::ErrorEnvelope),
        (status = 415, description = "UNSUPPORTED_FILE_TYPE", body = openapi::ErrorEnvelope),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let incoming = match receive(&state, &headers, body, Part::Single).await {
        Ok(incoming) => incoming,
        Err(e) => return Ok(refuse(e)),
    };
    let mut stored = files::upload(&state, &auth, incoming).await?;
    let file = stored
        .pop()
        .ok_or_else(|| AppError::internal("no file stored"))?;
    Ok((StatusCode::CREATED, envelope(FileData { file })).into_response())
}

/// `POST /api/upload/multiple`: 1–10 parts named `files`.
#[utoipa::path(
    post,
    path = "/upload/multiple",
    tag = "files",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = openapi::UploadManyForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored, in the order sent", body = openapi::Envelope<openapi::FilesData>),
        (status = 413, description = "FILE_TOO_LARGE", body = openapi::ErrorEnvelope),
        (status = 415, description = "UNSUPPORTED_FILE_TYPE", body = openapi::ErrorEnvelope),
    )
)]
pub async fn upload_multiple(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let incoming = match receive(&state, &headers, body, Part::Many).await {
        Ok(incoming) => incoming,
        Err(e) => return Ok(refuse(e)),
    };
    let files = files::upload(&state, &auth, incoming).await?;
    Ok((StatusCode::CREATED, envelope(FilesData { files })).into_response())
}

/// `data` of `/upload`.
#[derive(Debug, serde::Serialize)]
struct FileData {
    file: FileView,
}

/// `data` of `/upload/multiple`.
#[derive(Debug, serde::Serialize)]
struct FilesData {
    files: Vec<FileView>,
}

/// `DELETE /api/upload` with `{key}` (the uploader only).
#[utoipa::path(
    delete,
    path = "/upload",
    tag = "files",
    security(("bearer" = []), ("cookie" = [])),
    request_body = openapi::DeleteFileBody,
    responses(
        (status = 200, description = "Deleted", body = openapi::Envelope<openapi::FileKeyData>),
        (status = 403, description = "NOT_FILE_OWNER", body = openapi::ErrorEnvelope),
        (status = 404, description = "FILE_NOT_FOUND", body = openapi::ErrorEnvelope),
        (status = 409, description = "FILE_ATTACHED: a message attaches it", body = openapi::ErrorEnvelope),
    )
)]
pub async fn delete_upload(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonObject,
) -> Result<Json<Value>, AppError> {
    let mut fields = Fields::new(body.0);
    let key = fields.required("key", Ok);
    let key = fields
        .finish(key)?
        .ok_or_else(|| AppError::field("key", "is required"))?;
    let key = files::delete(&state, &auth, &key).await?;
    Ok(ok(json!({ "key": key })))
}

/// `GET /api/files/{key}`: the bytes, whole (200), a range (206), or 304 for a cached copy.
#[utoipa::path(
    get,
    path = "/files/{key}",
    tag = "files",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("key" = String, Path, description = "A key the server minted (`<UUIDv7>.<ext>`, `<UUIDv7>.thumb.<jpg|png>`)"),
        ("Range" = Option<String>, Header, description = "`bytes=a-b`, `bytes=a-` or `bytes=-n`"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The bytes, with their content type (one per file type)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The range asked for, with `Content-Range` (one content type per file type)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified (`If-None-Match` matched)"),
        (status = 404, description = "FILE_NOT_FOUND (unknown, not minted here, or not readable by the caller)", body = openapi::ErrorEnvelope),
        (status = 416, description = "RANGE_NOT_SATISFIABLE", body = openapi::ErrorEnvelope),
    )
)]
pub async fn get_file(
    State(state): State<AppState>,
    auth: AuthUser,
    key: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Ok(Path(key)) = key else {
        return Err(AppError::FileNotFound);
    };
    let file = files::open(&state, &auth, &key).await?;
    let etag = format!("\"{}\"", file.key);
    let cached = header_str(&headers, header::IF_NONE_MATCH).is_some_and(|tags| {
        tags.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    });
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // An `If-Range` naming another version asks for the whole file; a key's bytes
        // never change, so only a malformed one can differ.
        let range_header = match header_str(&headers, header::IF_RANGE) {
            Some(tag) if tag != etag => None,
            _ => header_str(&headers, header::RANGE),
        };
        let (status, range) = match Range::parse(range_header, file.size) {
            Range::Unsatisfiable => {
                return Err(AppError::RangeNotSatisfiable { size: file.size });
            }
            Range::Whole => (StatusCode::OK, None),
            Range::Part { start, end } => (StatusCode::PARTIAL_CONTENT, Some(start..end + 1)),
        };
        let download = state.storage.get(&file.key, range.clone()).await?;
        let length = range.as_ref().map_or(download.size, |r| r.end - r.start);
        let mut response = (status, Body::from_stream(download.body)).into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, value(content_type(file.file_type)));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if let Some(r) = &range {
            h.insert(
                header::CONTENT_RANGE,
                value(&format!("bytes {}-{}/{}", r.start, r.end - 1, file.size)),
            );
        }
        h.insert(
            header::CONTENT_DISPOSITION,
            value(&file.name.content_disposition(file.file_type)),
        );
        response
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, value(&etag));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(response)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))
}

fn content_type(ty: FileType) -> &'static str {
    match ty {
        FileType::Txt => "text/plain; charset=utf-8",
        other => other.mime(),
    }
}

/// Which upload route is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `/upload`: one part named `file`.
    Single,
    /// `/upload/multiple`: up to [`MAX_FILES`] parts named `files`.
    Many,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Self::Single => "file",
            Self::Many => "files",
        }
    }
}

/// Reads a multipart body part by part, spooling each file and refusing one byte past
/// `MAX_FILE_SIZE` the moment it arrives (the rest of the body is never read).
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    part: Part,
) -> Result<Vec<Incoming>, AppError> {
    let max = state.config().max_file_size;
    let whole = max.saturating_mul(MAX_FILES as u64).saturating_add(FRAMING);
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|l| l > whole) {
        return Err(too_large());
    }
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        AppError::field(
            "body",
            "must be multipart/form-data with a boundary parameter",
        )
    })?;
    let limits =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(whole));
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, limits);
    let mut files: Vec<Incoming> = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_owned();
        if name != part.name() {
            let label = if name.is_empty() {
                "body"
            } else {
                name.as_str()
            };
            return Err(AppError::field(
                label,
                format!(
                    "unknown part; send the file as a part named {}",
                    part.name()
                ),
            ));
        }
        let label = match part {
            Part::Single if !files.is_empty() => {
                return Err(AppError::field(
                    "file",
                    "send one file here (POST /api/upload/multiple takes up to 10)",
                ));
            }
            Part::Many if files.len() == MAX_FILES => {
                return Err(AppError::field("files", "at most 10 files"));
            }
            Part::Single => "file".to_owned(),
            Part::Many => format!("files[{}]", files.len()),
        };
        let file_name = field
            .file_name()
            .map(|n| FileName::parse(n).map_err(|m| AppError::field("fileName", m)))
            .transpose()?;
        let (mut spool, mut out) = Spool::create().await?;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if spool.size() + chunk.len() as u64 > max {
                return Err(too_large());
            }
            out.write_all(&chunk).await.map_err(files::spool_failed)?;
            spool.grew(chunk.len() as u64);
        }
        out.flush().await.map_err(files::spool_failed)?;
        files.push(Incoming {
            field: label,
            name: file_name,
            spool,
        });
    }
    if files.is_empty() {
        return Err(AppError::field(part.name(), "is required"));
    }
    Ok(files)
}

/// The answer to a body refused while it streamed in. A body cut short by a size limit is
/// not read further, so the connection is closed after the answer.
fn refuse(e: AppError) -> Response {
    let unread = matches!(e, AppError::FileTooLarge);
    let mut response = e.into_response();
    if unread {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn too_large() -> AppError {
    AppError::FileTooLarge
}

fn multipart_error(e: multer::Error) -> AppError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            too_large()
        }
        multer::Error::IncompleteStream
        | multer::Error::IncompleteFieldData { .. }
        | multer::Error::IncompleteHeaders => {
            AppError::field("body", "ends before its closing boundary")
        }
        multer::Error::StreamReadFailed(_) => {
            AppError::field("body", "could not be read to its end")
        }
        other => AppError::field("body", format!("is not a valid multipart body: {other}")),
    }
}
