//! HTTP handlers: extract → call one service → envelope. No SQL, no rules.

pub mod audit;
pub mod auth;
pub mod channels;
pub mod dms;
pub mod files;
pub mod health;
pub mod mentions;
pub mod messages;
pub mod openapi;
pub mod reads;
pub mod search;
pub mod threads;
pub mod users;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::middleware::{self, validate::JSON_BODY_LIMIT};
use crate::state::AppState;

/// `limit` and `cursor` of a list that takes nothing else.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

impl PageQuery {
    /// The cursor as `parse` reads it (none when absent or empty), and the limit.
    ///
    /// # Errors
    /// `VALIDATION_ERROR` on `limit` or `cursor`.
    pub fn read<C>(
        &self,
        parse: impl FnOnce(&str) -> Result<C, AppError>,
    ) -> Result<(Option<C>, u32), AppError> {
        let limit = crate::models::page::parse_limit(self.limit.as_deref())?;
        let cursor = self
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(parse)
            .transpose()?;
        Ok((cursor, limit))
    }
}

/// The `/api` routes (REST), before state is attached; each handler's path, method and
/// document entry come from its `#[utoipa::path]`, so a route cannot exist undocumented.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::me))
        .routes(routes!(auth::logout))
        .routes(routes!(users::list_users))
        .routes(routes!(users::online_users))
        .routes(routes!(users::update_me))
        .routes(routes!(users::get_user))
        .routes(routes!(channels::list_channels, channels::create_channel))
        .routes(routes!(channels::list_starred_channels))
        .routes(routes!(
            channels::get_channel,
            channels::update_channel,
            channels::delete_channel
        ))
        .routes(routes!(channels::join_channel))
        .routes(routes!(channels::leave_channel))
        .routes(routes!(channels::star_channel, channels::unstar_channel))
        .routes(routes!(channels::list_members, channels::add_member))
        .routes(routes!(channels::remove_member))
        .routes(routes!(dms::list_dms, dms::open_dm))
        .routes(routes!(dms::get_dm))
        .routes(routes!(messages::list_messages, messages::send_message))
        .routes(routes!(messages::edit_message, messages::delete_message))
        .routes(routes!(messages::pin_message, messages::unpin_message))
        .routes(routes!(messages::list_pins))
        .routes(routes!(messages::message_history))
        .routes(routes!(messages::add_reaction, messages::remove_reaction))
        .routes(routes!(threads::get_thread))
        .routes(routes!(threads::follow_thread, threads::unfollow_thread))
        .routes(routes!(threads::list_threads))
        .routes(routes!(mentions::list_mentions))
        .routes(routes!(search::search_messages))
        .routes(routes!(reads::mark_channel_read))
        .routes(routes!(reads::mark_thread_read))
        .routes(routes!(reads::unreads))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::channel_audit))
        .routes(routes!(files::upload, files::delete_upload))
        .routes(routes!(files::upload_multiple))
        .routes(routes!(files::get_file))
        .routes(routes!(openapi::document))
}

/// Every route, with the 404 and 405 fallbacks in the envelope. `extra_api` routes are
/// mounted under `/api` with the same layers (the test suite uses it for fault routes).
pub fn router(state: AppState, extra_api: Option<Router<AppState>>) -> Router {
    let (mut api, api_doc) = api_routes().split_for_parts();
    let (health_routes, health_doc) = OpenApiRouter::new()
        .routes(routes!(health::get_health))
        .split_for_parts();
    openapi::publish(api_doc, health_doc);
    if let Some(extra) = extra_api {
        api = api.merge(extra);
    }
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(state.clone());
    let api = middleware::api_layers(api, &state);
    health_routes
        .with_state(state)
        .nest("/api", api)
        .fallback(web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The success envelope around a typed `data`, serialised straight to the body (no
/// intermediate JSON tree; used on the hottest routes).
#[derive(Debug, serde::Serialize)]
pub struct Envelope<T> {
    success: bool,
    data: T,
}

/// `{"success": true, "data": data}` for a typed `data`.
pub fn envelope<T: serde::Serialize>(data: T) -> axum::Json<Envelope<T>> {
    axum::Json(Envelope {
        success: true,
        data,
    })
}

/// `{"success": true, "data": data}` around a `data` serialised before (a kept page).
pub fn envelope_json(data: &[u8]) -> axum::response::Response {
    const HEAD: &[u8] = br#"{"success":true,"data":"#;
    let mut body = Vec::with_capacity(HEAD.len() + data.len() + 1);
    body.extend_from_slice(HEAD);
    body.extend_from_slice(data);
    body.push(b'}');
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The success envelope: `{"success": true, "data": data}`.
pub fn ok(data: serde_json::Value) -> axum::Json<serde_json::Value> {
    let mut body = serde_json::Map::with_capacity(2);
    body.insert("success".into(), serde_json::Value::Bool(true));
    body.insert("data".into(), data);
    axum::Json(serde_json::Value::Object(body))
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
