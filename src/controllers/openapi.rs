//! The contract as an OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the views' `ToSchema` derives, served at `GET /api/openapi.json`.
//!
//! What every operation shares is added here once ([`SharedAnswers`]): the 401s of a signed-in
//! route, the 400/408/413 of a body, the 429 of the rate limits and the 503 of a storage
//! fault. The Socket.IO events live beside the paths under the `x-socketio` extension.

// The body and `data` types below exist to be described: only their derives read them.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

use crate::models::channel::ChannelView;
use crate::models::dm::DmView;
use crate::models::file::FileView;
use crate::models::file_type::FileType;
use crate::models::message::MessageView;
use crate::models::page::Pagination;
use crate::models::thread::FollowedThreadView;
use crate::models::user::UserView;
use crate::services::channels::MemberView;

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chai Tapri",
        description = "Team chat: REST under /api and Socket.IO at /socket.io (see x-socketio)."
    ),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "users", description = "The user directory and profiles"),
        (name = "channels", description = "Channels, membership and stars"),
        (name = "dms", description = "Direct conversations of 2 to 8 people"),
        (name = "messages", description = "History, sending, editing, deleting"),
        (name = "audit", description = "The audit log of administrative actions and logins"),
        (name = "meta", description = "Health and this document"),
    ),
    components(schemas(ErrorEnvelope, ErrorObject, FieldErrorSchema, ErrorCode))
)]
pub struct ApiDoc;

/// The document, assembled once from the routers' parts.
static DOCUMENT: OnceLock<Arc<str>> = OnceLock::new();

/// Assembles the document from the `/api` routes and the top-level ones (every server of
/// one binary builds the same document: the first one built is served).
pub fn publish(api: utoipa::openapi::OpenApi, top: utoipa::openapi::OpenApi) {
    DOCUMENT.get_or_init(|| Arc::from(assemble(api, top).to_string()));
}

/// The whole document.
#[must_use]
pub fn assemble(api: utoipa::openapi::OpenApi, top: utoipa::openapi::OpenApi) -> Value {
    let mut doc = ApiDoc::openapi().nest("/api", api);
    doc.merge(top);
    SecuritySchemes.modify(&mut doc);
    SharedAnswers.modify(&mut doc);
    SocketEvents.modify(&mut doc);
    let mut doc = serde_json::to_value(&doc).unwrap_or(Value::Null);
    refine(&mut doc);
    doc
}

/// What the derives cannot say: a query integer is text on the wire, so it has no width
/// (`limit=99999999999999999999` is 100, not an overflow), and an empty value of an
/// optional query parameter is as absent; a login names `email` or
/// `username`.
fn refine(doc: &mut Value) {
    // `get_mut`, not indexing: indexing a missing key would insert a null.
    let paths = doc.get_mut("paths").and_then(Value::as_object_mut);
    for item in paths.into_iter().flat_map(|p| p.values_mut()) {
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            let params = op.get_mut("parameters").and_then(Value::as_array_mut);
            for param in params.into_iter().flatten() {
                let required = param.get("required") == Some(&Value::Bool(true));
                if param.get("in").is_some_and(|v| v == "query")
                    && let Some(schema) = param.get_mut("schema")
                {
                    if let Some(typed) = schema.as_object_mut()
                        && typed.get("type").is_some_and(|t| t == "integer")
                    {
                        typed.remove("format");
                    }
                    // `?limit=` (an empty value) is as absent, as a form would send it; a
                    // required value must be there.
                    if !required {
                        *schema = json!({
                            "anyOf": [schema.take(), { "type": "string", "maxLength": 0 }]
                        });
                    }
                }
            }
        }
    }
    // A download answers with the type of the stored bytes: each type a file can have.
    let download = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .and_then(|p| p.iter_mut().find(|(k, _)| k.ends_with("/files/{key}")))
        .and_then(|(_, item)| item.get_mut("get"))
        .and_then(|op| op.get_mut("responses"));
    if let Some(responses) = download {
        let content: serde_json::Map<String, Value> = FileType::ALL
            .iter()
            .map(|t| {
                let schema =
                    json!({ "schema": { "type": "string", "contentMediaType": t.mime() } });
                (t.mime().to_owned(), schema)
            })
            .collect();
        for status in ["200", "206"] {
            if let Some(answer) = responses.get_mut(status).and_then(Value::as_object_mut) {
                answer.insert("content".to_owned(), Value::Object(content.clone()));
            }
        }
    }
    let schemas = doc
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(Value::as_object_mut);
    for (name, schema) in schemas.into_iter().flat_map(|s| s.iter_mut()) {
        // An upload takes its file parts and nothing else; a delete, its key.
        if matches!(
            name.as_str(),
            "UploadForm" | "UploadManyForm" | "DeleteFileBody"
        ) && let Some(object) = schema.as_object_mut()
        {
            object.insert("additionalProperties".to_owned(), Value::Bool(false));
        }
    }
    let login = doc
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(|s| s.get_mut("LoginBody"))
        .and_then(Value::as_object_mut);
    if let Some(login) = login {
        login.insert(
            "anyOf".to_owned(),
            json!([{ "required": ["email"] }, { "required": ["username"] }]),
        );
    }
}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
pub async fn document() -> impl IntoResponse {
    let body = DOCUMENT.get().map_or_else(|| Arc::from("{}"), Arc::clone);
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// `{"success": true, "data": …}`.
#[derive(ToSchema)]
pub struct Envelope<T: ToSchema> {
    /// Always true.
    success: bool,
    /// The answer.
    data: T,
}

/// `{"success": false, "error": …}`.
#[derive(ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    success: bool,
    /// What went wrong.
    error: ErrorObject,
}

/// The error of the envelope.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ErrorObject {
    /// One of the contract's codes.
    code: ErrorCode,
    /// For people; never an internal detail.
    message: String,
    /// `VALIDATION_ERROR` only: one entry per failing field.
    details: Option<Vec<FieldErrorSchema>>,
    /// 500 and 503 only: the `X-Request-Id` of the request, to quote.
    request_id: Option<String>,
}

/// One failing field.
#[derive(ToSchema)]
#[schema(title = "FieldError")]
pub struct FieldErrorSchema {
    /// The field (`body`, `query`, or a field name).
    field: String,
    /// Why.
    message: String,
}

/// The contract's error codes.
#[derive(ToSchema)]
#[allow(clippy::upper_case_acronyms, non_camel_case_types)]
pub enum ErrorCode {
    AUTH_REQUIRED,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    INVALID_CREDENTIALS,
    VALIDATION_ERROR,
    INVALID_JSON,
    NOT_CHANNEL_MEMBER,
    PRIVATE_CHANNEL,
    NOT_MESSAGE_OWNER,
    NOT_FILE_OWNER,
    INSUFFICIENT_ROLE,
    USER_NOT_FOUND,
    CHANNEL_NOT_FOUND,
    MESSAGE_NOT_FOUND,
    FILE_NOT_FOUND,
    FILE_ATTACHED,
    LIMIT_REACHED,
    RANGE_NOT_SATISFIABLE,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    USER_EXISTS,
    CHANNEL_EXISTS,
    RATE_LIMITED,
    REQUEST_TIMEOUT,
    PAYLOAD_TOO_LARGE,
    FILE_TOO_LARGE,
    UNSUPPORTED_FILE_TYPE,
    SERVICE_UNAVAILABLE,
    INTERNAL_ERROR,
}

// ---- request bodies (the handlers read them field by field through `models::input`) ----

/// `POST /api/auth/signup`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct SignupBody {
    /// 3–30 of `A-Z a-z 0-9 _ . -`; unique whatever the case.
    #[schema(min_length = 3, max_length = 30, pattern = "^[A-Za-z0-9_.-]{3,30}$")]
    username: String,
    /// Stored lower-case; unique.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 8–72 bytes (bcrypt's limit; a character may take up to 4): at least 2 and at most
    /// 72 characters, the rest checked by the server.
    #[schema(min_length = 2, max_length = 72)]
    password: String,
    /// 1–50 characters, not all blank, no control characters; the username when absent.
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    display_name: Option<String>,
}

/// `POST /api/auth/login`: `email` or `username` (if both, `email`), and the password.
#[derive(ToSchema)]
pub struct LoginBody {
    /// Case-insensitive.
    #[schema(min_length = 1, nullable = false)]
    email: Option<String>,
    /// Case-insensitive.
    #[schema(min_length = 1, nullable = false)]
    username: Option<String>,
    #[schema(min_length = 1)]
    password: String,
}

/// `PATCH /api/users/me`: each field present is changed; `null` clears the nullable ones.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ProfileBody {
    /// 1–50 characters, not all blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    display_name: Option<String>,
    /// An http(s) URL or a path on this server (at most 2048 characters), or null to clear.
    #[schema(
        max_length = 2048,
        pattern = "^(https?://|/)[^\\s\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    avatar_url: Option<String>,
    /// At most 100 characters, or null to clear.
    #[schema(max_length = 100)]
    status: Option<String>,
}

/// `POST /api/channels`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CreateChannelBody {
    /// 2–50 of `a-z 0-9 _ -`; unique.
    #[schema(min_length = 2, max_length = 50, pattern = "^[a-z0-9_-]{2,50}$")]
    name: String,
    /// At most 500 characters.
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Default false.
    is_private: Option<bool>,
    /// Users added as members at once (at most 100).
    #[schema(max_items = 100)]
    member_ids: Option<Vec<Uuid>>,
}

/// `POST /api/dms`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct OpenDmBody {
    /// The other people: 1 to 7 after the caller and repeats are set aside (at most 100
    /// entries).
    #[schema(min_items = 1, max_items = 100)]
    user_ids: Vec<Uuid>,
}

/// `PATCH /api/channels/{id}`.
#[derive(ToSchema)]
pub struct UpdateChannelBody {
    #[schema(min_length = 2, max_length = 50, pattern = "^[a-z0-9_-]{2,50}$")]
    name: Option<String>,
    /// At most 500 characters, or null to clear.
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// `POST /api/channels/{id}/members`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct AddMemberBody {
    user_id: Uuid,
    /// `member` (default) or `admin`.
    role: Option<String>,
}

/// `POST /api/channels/{id}/messages`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct SendMessageBody {
    /// 1–4000 characters after trimming.
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    content: String,
    /// A message of the same channel this one replies to.
    parent_id: Option<Uuid>,
    /// 1–100 characters: a repeated send with the same nonce returns the first message.
    #[schema(min_length = 1, max_length = 100)]
    nonce: Option<String>,
    /// Keys of files the sender uploaded and no other message attaches (at most 10).
    #[schema(max_items = 10)]
    attachments: Option<Vec<String>>,
}

/// `POST /api/upload`.
#[derive(ToSchema)]
pub struct UploadForm {
    /// The file (at most `MAX_FILE_SIZE` bytes; its type is read from its bytes).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// `POST /api/upload/multiple`.
#[derive(ToSchema)]
pub struct UploadManyForm {
    /// 1–10 files, each as `file` of `/upload`.
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1, max_items = 10)]
    files: Vec<Vec<u8>>,
}

/// `DELETE /api/upload`.
#[derive(ToSchema)]
pub struct DeleteFileBody {
    /// The key of a file the caller uploaded.
    key: String,
}

/// `PATCH /api/messages/{id}`.
#[derive(ToSchema)]
pub struct EditMessageBody {
    /// 1–4000 characters after trimming.
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    content: String,
}

/// `POST /api/channels/{id}/read` and `POST /api/messages/{id}/thread/read`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct MarkReadBody {
    /// A message of the conversation (or thread); absent: its newest.
    #[schema(
        pattern = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
    )]
    message_id: Option<Uuid>,
}

// ---- the `data` of the answers ----

/// `{user, token}`.
#[derive(ToSchema)]
pub struct SessionData {
    user: UserView,
    /// A JWT (HS256); also set as the `token` cookie.
    token: String,
}

/// `{user}`.
#[derive(ToSchema)]
pub struct UserData {
    user: UserView,
}

/// `{}` (logout).
#[derive(ToSchema)]
pub struct EmptyData {}

/// `{users, pagination}`.
#[derive(ToSchema)]
pub struct UserPage {
    users: Vec<UserView>,
    pagination: Pagination,
}

/// `{users}`.
#[derive(ToSchema)]
pub struct UserList {
    users: Vec<UserView>,
}

/// `{channel}`.
#[derive(ToSchema)]
pub struct ChannelData {
    channel: ChannelView,
}

/// `{channels, pagination}`.
#[derive(ToSchema)]
pub struct ChannelPage {
    channels: Vec<ChannelView>,
    pagination: Pagination,
}

/// `{messages}`.
#[derive(ToSchema)]
pub struct MessageList {
    messages: Vec<MessageView>,
}

/// `{dm}`.
#[derive(ToSchema)]
pub struct DmData {
    dm: DmView,
}

/// `{dms, pagination}`.
#[derive(ToSchema)]
pub struct DmPage {
    dms: Vec<DmView>,
    pagination: Pagination,
}

/// `{channels}`.
#[derive(ToSchema)]
pub struct ChannelList {
    channels: Vec<ChannelView>,
}

/// `{channelId}`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ChannelIdData {
    channel_id: Uuid,
}

/// `{members, pagination}`.
#[derive(ToSchema)]
pub struct MemberPage {
    members: Vec<MemberView>,
    pagination: Pagination,
}

/// `{member}`.
#[derive(ToSchema)]
pub struct MemberData {
    member: MemberView,
}

/// `{userId}`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct UserIdData {
    user_id: Uuid,
}

/// `{messages, pagination}`, oldest first.
#[derive(ToSchema)]
pub struct MessagePage {
    messages: Vec<MessageView>,
    pagination: Pagination,
}

/// `{message}`.
#[derive(ToSchema)]
pub struct MessageData {
    message: MessageView,
}

/// `{root, messages, pagination}`: a thread's replies, oldest first.
#[derive(ToSchema)]
pub struct ThreadPage {
    root: MessageView,
    messages: Vec<MessageView>,
    pagination: Pagination,
}

/// `{versions, pagination}`: a message's versions, oldest first.
#[derive(ToSchema)]
pub struct VersionPage {
    versions: Vec<crate::models::message::VersionView>,
    pagination: Pagination,
}

/// `{threads, pagination}`: followed threads, newest activity first.
#[derive(ToSchema)]
pub struct FollowedThreadPage {
    threads: Vec<FollowedThreadView>,
    pagination: Pagination,
}

/// `{file}`.
#[derive(ToSchema)]
pub struct FileData {
    file: FileView,
}

/// `{files}`, in the order sent.
#[derive(ToSchema)]
pub struct FilesData {
    files: Vec<FileView>,
}

/// `{key}` of a deleted file.
#[derive(ToSchema)]
pub struct FileKeyData {
    key: String,
}

/// `{messageId, channelId}`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct MessageIdData {
    message_id: Uuid,
    channel_id: Uuid,
}

/// `GET /health`: a bare object, not the envelope.
#[derive(ToSchema)]
pub struct HealthBody {
    #[schema(pattern = "^(ok|error)$")]
    status: String,
    /// Seconds since start.
    uptime: f64,
    version: String,
    checks: HealthChecks,
}

/// The checks of `/health`.
#[derive(ToSchema)]
pub struct HealthChecks {
    #[schema(pattern = "^(ok|error)$")]
    database: String,
    #[schema(pattern = "^(ok|error|disabled)$")]
    redis: String,
}

// ---- what every operation shares ----

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("token"))),
        );
    }
}

/// An error answer: the envelope, described by the codes it may carry.
fn error(codes: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(codes)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name(
                    "ErrorEnvelope",
                )))
                .build(),
        )
        .build()
        .into()
}

/// Adds an answer unless the operation describes that status itself.
fn add(op: &mut Operation, status: &str, codes: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error(codes));
}

struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                if !path.starts_with("/api/") || path == "/api/openapi.json" {
                    continue;
                }
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add(op, "401", "AUTH_REQUIRED, INVALID_TOKEN or TOKEN_EXPIRED");
                }
                if op.request_body.is_some() {
                    add(op, "400", "VALIDATION_ERROR (with details) or INVALID_JSON");
                    add(
                        op,
                        "408",
                        "REQUEST_TIMEOUT: the body did not arrive within BODY_TIMEOUT",
                    );
                    add(op, "413", "PAYLOAD_TOO_LARGE");
                } else if op.parameters.as_ref().is_some_and(|p| {
                    p.iter()
                        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query))
                }) {
                    add(op, "400", "VALIDATION_ERROR (with details)");
                }
                add(
                    op,
                    "429",
                    "RATE_LIMITED, with Retry-After and RateLimit-* headers",
                );
                add(
                    op,
                    "503",
                    "SERVICE_UNAVAILABLE: storage or Redis unavailable, or REQUEST_TIMEOUT passed",
                );
            }
        }
    }
}

/// The Socket.IO side of the contract, as the `x-socketio` extension of the document.
struct SocketEvents;

impl Modify for SocketEvents {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let ack =
            "the REST envelope: {success: true, data} or {success: false, error: {code, message}}";
        let events = json!({
            "path": "/socket.io",
            "namespace": "/",
            "protocol": "Socket.IO v4 (protocol 5) over Engine.IO 4; WebSocket, or long-polling with upgrade",
            "auth": "a token in the handshake's auth {token}, the Authorization header, or the token cookie; \
                     refused with a connect_error whose message is AUTH_REQUIRED, INVALID_TOKEN or TOKEN_EXPIRED",
            "clientToServer": {
                "join-channel": { "payload": {"channelId": "uuid"}, "ack": ack, "emits": "channel:joined {channelId}" },
                "leave-channel": { "payload": {"channelId": "uuid"}, "ack": ack, "emits": "channel:left {channelId, reason: unsubscribed}" },
                "send-message": { "payload": {"channelId": "uuid", "content": "string", "attachments?": "[string]", "parentId?": "uuid", "nonce?": "string"}, "ack": "as POST /api/channels/{id}/messages" },
                "edit-message": { "payload": {"messageId": "uuid", "content": "string"}, "ack": "as PATCH /api/messages/{id}" },
                "delete-message": { "payload": {"messageId": "uuid"}, "ack": "as DELETE /api/messages/{id}" },
                "mark-read": { "payload": {"channelId": "uuid", "messageId?": "uuid"}, "ack": "as POST /api/channels/{id}/read", "emits": "channel:read to the caller's sockets when the marker moved" },
                "mark-thread-read": { "payload": {"threadId": "uuid (the root or any reply)", "messageId?": "uuid"}, "ack": "as POST /api/messages/{id}/thread/read", "emits": "thread:read to the caller's sockets when the marker moved" },
                "typing-start": { "payload": {"channelId": "uuid"}, "ack": ack },
                "typing-stop": { "payload": {"channelId": "uuid"}, "ack": ack },
            },
            "serverToClient": {
                "new-message": "#/components/schemas/MessageView",
                "message-edited": "#/components/schemas/MessageView",
                "message-deleted": {"messageId": "uuid", "channelId": "uuid", "tombstone": "boolean"},
                "mention": {"message": "#/components/schemas/MessageView"},
                "thread-updated": {"messageId": "uuid", "channelId": "uuid", "replyCount": "integer", "lastReplyAt": "date-time|null", "participants": "[uuid]"},
                "message-pinned": {"messageId": "uuid", "channelId": "uuid", "pinnedAt": "date-time", "pinnedBy": "uuid"},
                "message-unpinned": {"messageId": "uuid", "channelId": "uuid", "pinnedAt": null, "pinnedBy": null},
                "reaction-added": {"messageId": "uuid", "channelId": "uuid", "emoji": "string", "userId": "uuid"},
                "reaction-removed": {"messageId": "uuid", "channelId": "uuid", "emoji": "string", "userId": "uuid"},
                "user-typing": {"channelId": "uuid", "user": {"id": "uuid", "username": "string", "displayName": "string", "avatarUrl": "string|null"}},
                "user-stopped-typing": {"channelId": "uuid", "user": {"id": "uuid", "username": "string", "displayName": "string", "avatarUrl": "string|null"}},
                "user:online": {"userId": "uuid"},
                "user:offline": {"userId": "uuid", "lastSeen": "date-time"},
                "channel:joined": {"channelId": "uuid"},
                "channel:added": {"channel": "#/components/schemas/ChannelView"},
                "dm:opened": {"dm": "#/components/schemas/DmView"},
                "channel:left": {"channelId": "uuid", "reason": "unsubscribed|left|removed|deleted"},
                "channel:read": "#/components/schemas/ChannelRead",
                "thread:read": "#/components/schemas/ThreadRead",
                "error": {"code": "ErrorCode", "message": "string"},
            },
            "limits": "a packet over 64 KiB closes the connection; at most 500 channel rooms per socket",
        });
        let mut extensions = openapi.extensions.take().unwrap_or_default();
        extensions.insert("x-socketio".to_owned(), events);
        openapi.extensions = Some(extensions);
    }
}
