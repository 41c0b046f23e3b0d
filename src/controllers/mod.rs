//! HTTP handlers: extract → call one service → envelope. No SQL, no rules.

pub mod auth;
pub mod channels;
pub mod health;
pub mod messages;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};

use crate::error::AppError;
use crate::middleware::{self, validate::JSON_BODY_LIMIT};
use crate::state::AppState;

/// The `/api` routes (REST), before state is attached.
fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/me", get(auth::me))
        .route("/auth/logout", post(auth::logout))
        .route("/users", get(users::list_users))
        .route("/users/online", get(users::online_users))
        .route("/users/me", patch(users::update_me))
        .route("/users/{id}", get(users::get_user))
        .route(
            "/channels",
            get(channels::list_channels).post(channels::create_channel),
        )
        .route("/channels/starred", get(channels::list_starred_channels))
        .route(
            "/channels/{id}",
            get(channels::get_channel)
                .patch(channels::update_channel)
                .delete(channels::delete_channel),
        )
        .route("/channels/{id}/join", post(channels::join_channel))
        .route("/channels/{id}/leave", post(channels::leave_channel))
        .route(
            "/channels/{id}/star",
            put(channels::star_channel).delete(channels::unstar_channel),
        )
        .route(
            "/channels/{id}/members",
            get(channels::list_members).post(channels::add_member),
        )
        .route(
            "/channels/{id}/members/{user_id}",
            delete(channels::remove_member),
        )
        .route(
            "/channels/{id}/messages",
            get(messages::list_messages).post(messages::send_message),
        )
        .route(
            "/messages/{id}",
            patch(messages::edit_message).delete(messages::delete_message),
        )
}

/// Every route, with the 404 and 405 fallbacks in the envelope. `extra_api` routes are
/// mounted under `/api` with the same layers (the test suite uses it for fault routes).
pub fn router(state: AppState, extra_api: Option<Router<AppState>>) -> Router {
    let mut api = api_routes();
    if let Some(extra) = extra_api {
        api = api.merge(extra);
    }
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(state.clone());
    let api = middleware::api_layers(api, &state);
    Router::new()
        .route("/health", get(health::get_health))
        .with_state(state)
        .nest("/api", api)
        .fallback(not_found)
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
