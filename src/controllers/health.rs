//! `GET /health` (API.md §8): a bare object monitors read directly, not the envelope.

use crate::controllers::openapi;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// How long one dependency may take to answer before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks the database (a committed one-row write: writes fail on a full disk while reads
/// still work) and Redis (a `PING`) for real.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "Everything answers", body = openapi::HealthBody),
        (status = 503, description = "The database or Redis does not", body = openapi::HealthBody),
    )
)]
pub async fn get_health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let probe = state.store.probe_write(chrono::Utc::now());
    let database = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health: database check failed");
            "error"
        }
        Err(_) => {
            tracing::error!("health: database check timed out");
            "error"
        }
    };
    let redis = match tokio::time::timeout(CHECK_TIMEOUT, state.backends.ping_redis()).await {
        Ok(None) => "disabled",
        Ok(Some(Ok(()))) => "ok",
        Ok(Some(Err(e))) => {
            tracing::error!(error = %e, "health: redis check failed");
            "error"
        }
        Err(_) => {
            tracing::error!("health: redis check timed out");
            "error"
        }
    };
    let healthy = database != "error" && redis != "error";
    let uptime = (state.started().elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let body = json!({
        "status": if healthy { "ok" } else { "error" },
        "uptime": uptime,
        "version": env!("CARGO_PKG_VERSION"),
        "checks": { "database": database, "redis": redis },
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
