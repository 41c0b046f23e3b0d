//! `/api/auth/*` (API.md §3).

use crate::controllers::openapi;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::AppError;
use crate::middleware::auth::TOKEN_COOKIE;
use crate::middleware::rate_limit::ClientIp;
use crate::middleware::validate::JsonObject;
use crate::models::input::Fields;
use crate::models::user::{DisplayName, Email, Password, UserView, Username};
use crate::services::auth::{self, AuthUser, LoginId, Session, Signup};
use crate::services::{audit, users};
use crate::state::AppState;

fn cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config().is_production() {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{TOKEN_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("token=; Max-Age=0"))
}

fn session_response(state: &AppState, status: StatusCode, session: &Session) -> Response {
    // A new token lives exactly JWT_EXPIRES_IN; the cookie lives as long.
    let max_age = i64::try_from(state.tokens.lifetime().as_secs()).unwrap_or(i64::MAX);
    let body = json!({
        "success": true,
        "data": { "user": UserView::own(
            &session.user,
            false,
            audit::is_admin(state, &session.user.username),
        ), "token": session.token },
    });
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(state, &session.token, max_age));
    response
}

/// `POST /api/auth/signup`.
#[utoipa::path(
    post,
    path = "/auth/signup",
    tag = "auth",
    request_body = openapi::SignupBody,
    responses(
        (status = 201, description = "Signed up and signed in; the token is also set as the `token` cookie", body = openapi::Envelope<openapi::SessionData>),
        (status = 409, description = "USER_EXISTS", body = openapi::ErrorEnvelope),
    )
)]
pub async fn signup(State(state): State<AppState>, body: JsonObject) -> Result<Response, AppError> {
    let mut f = Fields::new(body.0);
    let username = f.required("username", |s| Username::parse(&s));
    let email = f.required("email", |s| Email::parse(&s));
    let password = f.required("password", Password::parse);
    let display_name = f.optional("displayName", |s| DisplayName::parse(&s));
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(f
            .finish(())
            .err()
            .unwrap_or_else(|| AppError::field("body", "is incomplete")));
    };
    let signup = f.finish(Signup {
        username,
        email,
        password,
        display_name,
    })?;
    let session = auth::signup(&state, signup).await?;
    Ok(session_response(&state, StatusCode::CREATED, &session))
}

/// `POST /api/auth/login` with `{email, password}` or `{username, password}`.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = openapi::LoginBody,
    responses(
        (status = 200, description = "Signed in; the token is also set as the `token` cookie", body = openapi::Envelope<openapi::SessionData>),
        (status = 401, description = "INVALID_CREDENTIALS", body = openapi::ErrorEnvelope),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: JsonObject,
) -> Result<Response, AppError> {
    let mut f = Fields::new(body.0);
    let email = f.opt_string("email");
    let username = f.opt_string("username");
    let password = f.required("password", |p| {
        if p.is_empty() {
            Err("is required".into())
        } else if p.len() > 72 {
            Err("must be at most 72 bytes".into())
        } else {
            Ok(p)
        }
    });
    let id = match (email, username) {
        (Some(email), _) => Some(LoginId::Email(email.trim().to_lowercase())),
        (None, Some(username)) => Some(LoginId::Username(username.trim().to_owned())),
        (None, None) => {
            f.error("email", "email or username is required");
            None
        }
    };
    let (Some(id), Some(password)) = (id, password) else {
        return Err(f
            .finish(())
            .err()
            .unwrap_or_else(|| AppError::field("body", "is incomplete")));
    };
    f.finish(())?;
    let session = auth::login(&state, id, password, ip).await?;
    Ok(session_response(&state, StatusCode::OK, &session))
}

/// `GET /api/auth/me`.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller, with their email", body = openapi::Envelope<openapi::UserData>))
)]
pub async fn me(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<serde_json::Value>, AppError> {
    let user = users::own_view(&state, &auth.user).await?;
    Ok(super::ok(json!({ "user": user })))
}

/// `POST /api/auth/logout`: revokes the token and clears the cookie.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The token is revoked (its sockets disconnected) and the cookie cleared", body = openapi::Envelope<openapi::EmptyData>))
)]
pub async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<Response, AppError> {
    auth::logout(&state, &auth).await?;
    let mut response =
        Json(json!({ "success": true, "data": {}, "message": "Logged out" })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0));
    Ok(response)
}
